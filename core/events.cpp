// The event log (core/events.hpp): ring, hooks, and writing chunks to a file.
#include "core/events.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <new>

namespace weakgc::detail {

struct EventLog {
  EventRecord* ring = nullptr;
  size_t capacity = 0;  // records; a power of two
  size_t map_bytes = 0;
  uint64_t head = 0;  // records ever written
  uint64_t tail = 0;  // oldest record still in the ring (head - tail <= capacity)
  uint64_t lost = 0;  // dropped since the last chunk (.inv.ev.ring)
  int fd = -1;
  bool own_fd = false;
  uint64_t start_ns = 0;
  uint64_t serial = 0;
  uint64_t splat_mark = 0;   // stats.slots_splatted when the last pause was recorded
  uint64_t sweep_bytes = 0;  // collector sweeps not yet reported
  uint64_t sweep_segments = 0;
};

namespace {

std::atomic<uint64_t> g_next_serial{1};
std::atomic<bool> g_env_file_opened{false};

// Appends one record, dropping the oldest if the ring is full. signal-safe (.inv.ev.prealloc).
EventRecord* push(EventLog* log) noexcept {
  if (log->head - log->tail == log->capacity) {
    ++log->tail;
    ++log->lost;
  }
  EventRecord* r = &log->ring[log->head & (log->capacity - 1)];
  ++log->head;
  memset(r, 0, sizeof *r);
  return r;
}

uint64_t cycle_number(const ArenaImpl* a) noexcept {
  // During a cycle, the cycle being run; when idle, the one that just ended.
  return a->stats.cycles + (a->phase == Phase::kIdle ? 0 : 1);
}

// Records the pause that started at t0 and what happened inside it that is counted elsewhere:
// weak slots splatted and segments swept.
void pause(ArenaImpl* a, EventKind kind, uint64_t t0, uint64_t value) noexcept {
  EventLog* log = a->events;
  uint64_t t1 = now_ns();
  EventRecord* r = push(log);
  r->time_ns = t0;
  r->duration_ns = t1 - t0;
  r->value = value;
  r->value2 = cycle_number(a);
  r->kind = static_cast<uint16_t>(kind);
  r->phase = static_cast<uint8_t>(a->phase.load(std::memory_order_relaxed));
  uint64_t splats = a->stats.slots_splatted - log->splat_mark;
  log->splat_mark = a->stats.slots_splatted;
  if (splats != 0) {
    EventRecord* s = push(log);
    s->time_ns = t0;
    s->value = splats;
    s->value2 = cycle_number(a);
    s->kind = static_cast<uint16_t>(EventKind::kSplat);
    s->phase = static_cast<uint8_t>(a->phase.load(std::memory_order_relaxed));
    s->detail = static_cast<uint8_t>(kind);
  }
  if (log->sweep_segments != 0) {
    EventRecord* s = push(log);
    s->time_ns = t0;
    s->duration_ns = 0;
    s->value = log->sweep_bytes;
    s->value2 = log->sweep_segments;
    s->kind = static_cast<uint16_t>(EventKind::kSweep);
    s->phase = static_cast<uint8_t>(a->phase.load(std::memory_order_relaxed));
    log->sweep_bytes = log->sweep_segments = 0;
  }
}

bool write_all(int fd, const struct iovec* iov_in, int n) noexcept {
  struct iovec iov[2];
  memcpy(iov, iov_in, sizeof(struct iovec) * static_cast<size_t>(n));
  int i = 0;
  while (i < n) {
    ssize_t w = writev(fd, iov + i, n - i);
    if (w < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    size_t left = static_cast<size_t>(w);
    while (i < n && left >= iov[i].iov_len) {
      left -= iov[i].iov_len;
      ++i;
    }
    if (i < n) {
      iov[i].iov_base = static_cast<char*>(iov[i].iov_base) + left;
      iov[i].iov_len -= left;
    }
  }
  return true;
}

// Writes the ring as one chunk (lock held). The ring is contiguous in at most two pieces; each
// piece goes out with its own header so that one writev() keeps a chunk together (O_APPEND).
Status flush_locked(ArenaImpl* a) noexcept {
  EventLog* log = a->events;
  bool ok = true;
  while (log->tail != log->head || log->lost != 0) {
    size_t first = log->tail & (log->capacity - 1);
    size_t n = log->head - log->tail;
    if (first + n > log->capacity) n = log->capacity - first;  // up to the end of the ring
    EventChunkHeader h;
    memset(&h, 0, sizeof h);
    memcpy(h.magic, "WGCEVLOG", 8);
    h.version = 1;
    h.record_size = sizeof(EventRecord);
    h.records = n;
    h.lost = log->lost;
    h.arena_serial = log->serial;
    h.start_ns = log->start_ns;
    h.pid = static_cast<uint64_t>(getpid());
    struct iovec iov[2] = {{&h, sizeof h}, {&log->ring[first], n * sizeof(EventRecord)}};
    if (!write_all(log->fd, iov, n != 0 ? 2 : 1)) ok = false;
    log->tail += n;
    log->lost = ok ? 0 : log->lost + n;
    if (!ok) break;
  }
  log->tail = log->head;
  return ok ? Status::kOk : Status::kOsError;
}

size_t round_capacity(size_t c) noexcept {
  if (c == 0) c = kDefaultEventCapacity;
  if (c < 64) c = 64;
  if (c > (size_t{1} << 26)) c = size_t{1} << 26;  // 2.5 GiB of records is surely a mistake
  size_t p = 64;
  while (p < c) p <<= 1;
  return p;
}

Status start_with_fd(ArenaImpl* a, int fd, bool own_fd, size_t capacity) noexcept {
  size_t cap = round_capacity(capacity);
  size_t bytes = cap * sizeof(EventRecord);
  void* m = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (m == MAP_FAILED) {
    if (own_fd) close(fd);
    return Status::kNoMemory;
  }
  EventLog* l = new (std::nothrow) EventLog();
  if (l == nullptr) {
    munmap(m, bytes);
    if (own_fd) close(fd);
    return Status::kNoMemory;
  }
  l->ring = static_cast<EventRecord*>(m);
  l->capacity = cap;
  l->map_bytes = bytes;
  l->fd = fd;
  l->own_fd = own_fd;
  l->start_ns = now_ns();
  l->serial = g_next_serial.fetch_add(1, std::memory_order_relaxed);
  LockGuard g(a->lock);
  if (a->events != nullptr) {
    munmap(m, bytes);
    if (own_fd) close(fd);
    delete l;
    return Status::kAlready;
  }
  l->splat_mark = a->stats.slots_splatted;
  a->events = l;
  return Status::kOk;
}

}  // namespace

Status event_log_start(ArenaImpl* a, const char* path, int fd, size_t capacity) noexcept {
  if (a == nullptr) return Status::kBadParam;
  if (a->events != nullptr) return Status::kAlready;  // checked again under the lock
  if (path != nullptr) {
    int f = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0644);
    if (f < 0) return Status::kOsError;
    return start_with_fd(a, f, true, capacity);
  }
  if (fd < 0) return Status::kBadParam;
  return start_with_fd(a, fd, false, capacity);
}

void event_log_from_env(ArenaImpl* a) noexcept {
  const char* path = getenv("WEAKGC_EVENT_LOG");
  if (path == nullptr || path[0] == '\0') return;
  size_t capacity = 0;
  if (const char* c = getenv("WEAKGC_EVENT_LOG_CAPACITY")) capacity = strtoull(c, nullptr, 10);
  bool first = !g_env_file_opened.exchange(true);
  int f = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | (first ? O_TRUNC : 0), 0644);
  if (f < 0) {
    write_err("weakgc: WEAKGC_EVENT_LOG: cannot open the file; no event log\n");
    return;
  }
  if (start_with_fd(a, f, true, capacity) != Status::kOk)
    write_err("weakgc: WEAKGC_EVENT_LOG: cannot start the event log\n");
}

Status event_log_flush(ArenaImpl* a) noexcept {
  LockGuard g(a->lock);
  if (a->events == nullptr) return Status::kNotFound;
  return flush_locked(a);
}

Status event_log_stop(ArenaImpl* a) noexcept {
  EventLog* log;
  Status st;
  {
    LockGuard g(a->lock);
    log = a->events;
    if (log == nullptr) return Status::kNotFound;
    st = flush_locked(a);
    a->events = nullptr;
  }
  if (log->own_fd && close(log->fd) != 0 && st == Status::kOk) st = Status::kOsError;
  munmap(log->ring, log->map_bytes);
  delete log;
  return st;
}

void event_flip_slow(ArenaImpl* a, uint64_t t0) noexcept {
  pause(a, EventKind::kFlip, t0, a->marked_this_cycle);
}

void event_work_slow(ArenaImpl* a, uint64_t t0, uint64_t budget_ns) noexcept {
  if (budget_ns == 0) return;  // a step of collect_full: reported by event_full
  pause(a, EventKind::kIncrement, t0, a->marked_this_cycle);
}

void event_full_slow(ArenaImpl* a, uint64_t t0) noexcept {
  // A full collection contains its own flip: mark that flip nested (detail 1) so that pictures
  // count the pause once. Everything recorded since t0 happened inside this collection.
  EventLog* log = a->events;
  for (uint64_t i = log->head; i > log->tail; --i) {
    EventRecord* r = &log->ring[(i - 1) & (log->capacity - 1)];
    if (r->time_ns < t0) break;
    if (r->kind == static_cast<uint16_t>(EventKind::kFlip)) r->detail = 1;
  }
  // Idle again: the bytes marked were added to stats.bytes_marked; the cycle's own count is
  // still in marked_this_cycle (reset only by the next flip).
  pause(a, EventKind::kFull, t0, a->marked_this_cycle);
}

void event_sweep_slow(ArenaImpl* a, size_t freed) noexcept {
  EventLog* log = a->events;
  if (a->in_collector) {  // inside a pause: reported with it
    log->sweep_bytes += freed;
    ++log->sweep_segments;
    return;
  }
  EventRecord* r = push(log);
  r->time_ns = now_ns();
  r->value = freed;
  r->value2 = 1;
  r->kind = static_cast<uint16_t>(EventKind::kSweep);
  r->phase = static_cast<uint8_t>(a->phase.load(std::memory_order_relaxed));
  r->detail = 1;
}

void FaultEvent::begin(uintptr_t addr, uint64_t t0) noexcept {
  active_ = true;
  addr_ = addr;
  t0_ = t0;
  const Stats& s = a_->stats;
  emulated_ = s.faults_emulated;
  declined_ = s.faults_declined;
  budget_ = s.faults_budget;
  weak_phase_ = s.faults_weak_phase;
}

void FaultEvent::end() noexcept {
  const Stats& s = a_->stats;
  FaultOutcome o = FaultOutcome::kScanned;
  if (s.faults_emulated != emulated_)
    o = FaultOutcome::kEmulated;
  else if (s.faults_declined != declined_)
    o = FaultOutcome::kDeclined;
  else if (s.faults_budget != budget_)
    o = FaultOutcome::kBudget;
  else if (s.faults_weak_phase != weak_phase_)
    o = FaultOutcome::kWeakPhase;
  EventLog* log = a_->events;
  if (log == nullptr) return;
  uint64_t t1 = now_ns();
  EventRecord* r = push(log);
  r->time_ns = t0_;
  r->duration_ns = t1 - t0_;
  r->value = addr_;
  r->value2 = cycle_number(a_);
  r->kind = static_cast<uint16_t>(EventKind::kFault);
  r->phase = static_cast<uint8_t>(a_->phase.load(std::memory_order_relaxed));
  r->detail = static_cast<uint8_t>(o);
  if (o == FaultOutcome::kDeclined) {
    r->reason = reason_;
    r->mnemonic = mnemonic_;
  }
  uint64_t splats = s.slots_splatted - log->splat_mark;
  log->splat_mark = s.slots_splatted;
  if (splats != 0) {
    EventRecord* sp = push(log);
    sp->time_ns = t0_;
    sp->value = splats;
    sp->value2 = cycle_number(a_);
    sp->kind = static_cast<uint16_t>(EventKind::kSplat);
    sp->phase = static_cast<uint8_t>(a_->phase.load(std::memory_order_relaxed));
    sp->detail = static_cast<uint8_t>(EventKind::kFault);
  }
}

}  // namespace weakgc::detail
