// The public Arena API: argument checking, locking, and dispatch to ArenaImpl.
#include "weakgc/arena.hpp"

#include <sched.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <new>
#include <stdexcept>

#include "barrier/barrier.hpp"
#include "core/arena_impl.hpp"
#include "core/events.hpp"
#include "pools/pool.hpp"

namespace weakgc {

const char* status_name(Status s) noexcept {
  switch (s) {
    case Status::kOk:
      return "ok";
    case Status::kNoMemory:
      return "no memory";
    case Status::kLimit:
      return "limit reached";
    case Status::kBadParam:
      return "bad parameter";
    case Status::kNotFound:
      return "not found";
    case Status::kAlready:
      return "already registered";
    case Status::kOsError:
      return "operating system error";
    case Status::kUnimplemented:
      return "unimplemented";
  }
  return "unknown status";
}

void PauseHistogram::record(uint64_t ns) noexcept {
  ++count;
  total_ns += ns;
  if (ns > max_ns) max_ns = ns;
  int b = ns == 0 ? 0 : 63 - __builtin_clzll(ns);
  if (b >= kBuckets) b = kBuckets - 1;
  ++bucket[b];
}

uint64_t PauseHistogram::quantile_ns(double q) const noexcept {
  if (count == 0) return 0;
  uint64_t target = static_cast<uint64_t>(q * static_cast<double>(count));
  if (target == 0) target = 1;
  uint64_t seen = 0;
  for (int b = 0; b < kBuckets; ++b) {
    seen += bucket[b];
    if (seen >= target) return std::min<uint64_t>(max_ns, (uint64_t{2} << b) - 1);
  }
  return max_ns;
}

namespace detail {

std::atomic<ArenaImpl*> g_arenas[kMaxArenas];

ArenaImpl* arena_for(uintptr_t p) noexcept {
  for (int i = 0; i < kMaxArenas; ++i) {
    ArenaImpl* a = g_arenas[i].load(std::memory_order_acquire);
    if (a != nullptr && a->in_arena(p)) return a;
  }
  return nullptr;
}

namespace {
std::atomic<uint32_t> g_next_thread_id{1};
__attribute__((tls_model("initial-exec"))) thread_local uint32_t t_thread_id = 0;
}  // namespace

uint32_t current_thread_id() noexcept {
  if (t_thread_id == 0) t_thread_id = g_next_thread_id.fetch_add(1, std::memory_order_relaxed);
  return t_thread_id;
}

void ArenaLock::lock() noexcept {
  uint32_t me = current_thread_id();
  if (owner.load(std::memory_order_relaxed) == me) {
    ++depth;  // re-entry from the same thread (e.g. collect inside alloc)
    return;
  }
  // Spin briefly, then yield: with more threads than cores a pure spin starves the holder.
  // sched_yield is a system call, so this stays usable from the fault handler.
  for (int spins = 0;; ++spins) {
    uint32_t expected = 0;
    if (owner.load(std::memory_order_relaxed) == 0 &&
        owner.compare_exchange_weak(expected, me, std::memory_order_acquire,
                                    std::memory_order_relaxed))
      break;
    if (spins < 64) {
      __builtin_ia32_pause();
    } else {
      poll_suspend();  // a flip holding the lock may be waiting for this thread to stop
      sched_yield();
    }
  }
  depth = 1;
}

void ArenaLock::unlock() noexcept {
  if (--depth == 0) owner.store(0, std::memory_order_release);
}

bool ArenaLock::held_by_me() const noexcept {
  return owner.load(std::memory_order_relaxed) == current_thread_id();
}

// Called with the arena lock held. The lock is recursive: in_collector set means this thread is
// inside the collector (a format's scan function or a trace() that called back into the arena),
// where allocating could start collector work inside collector work and a root made or dropped
// would change a list being scanned. Refused at once, with a message naming what was called.
static void forbid_in_collector(const ArenaImpl* a, const char* what) noexcept {
  if (a->in_collector) fatal(what);
}

void link_handle(ArenaImpl* a, HandleNode* h) noexcept {
  LockGuard g(a->lock);
  forbid_in_collector(a, "a Root made inside the collector (a scan or trace function)");
  h->arena = a;
  h->prev = nullptr;
  h->next = a->handles;
  if (a->handles != nullptr) a->handles->prev = h;
  a->handles = h;
}

void unlink_handle(HandleNode* h) noexcept {
  ArenaImpl* a = h->arena;
  if (a == nullptr) return;
  LockGuard g(a->lock);
  forbid_in_collector(a, "a Root dropped inside the collector (a scan or trace function)");
  if (h->prev != nullptr)
    h->prev->next = h->next;
  else
    a->handles = h->next;
  if (h->next != nullptr) h->next->prev = h->prev;
  h->prev = h->next = nullptr;
  h->arena = nullptr;
}

namespace {

bool env_incremental_default() {
  const char* e = getenv("WEAKGC_INCREMENTAL");
  return e == nullptr || strcmp(e, "0") != 0;
}

}  // namespace
}  // namespace detail

using detail::ArenaImpl;
using detail::LockGuard;

namespace {
constexpr double kMinPauseTargetMs = 1e-3;  // 1 µs: below it a budget rounds to no time at all
constexpr const char* kAllocInCollector =
    "allocation inside the collector (a scan or trace function may only fix references)";
}  // namespace

std::unique_ptr<Arena> Arena::create(const ArenaOptions& options, Status* status) noexcept {
  Status dummy;
  if (status == nullptr) status = &dummy;
  ArenaOptions o = options;
  if (o.reserve_bytes == 0) o.reserve_bytes = detail::kDefaultReserve;
  // Written so that NaN fails every test: a pause target of 0 (the default) or 1 µs – 1000 s (a
  // shorter one would be a budget of no time at all, which the collector reads as "no
  // deadline"); a growth factor of 0 (the default) or up to 10^6.
  const bool pause_ok = o.pause_target_ms == 0 ||
                        (o.pause_target_ms >= kMinPauseTargetMs && o.pause_target_ms <= 1e6);
  const bool growth_ok = o.growth_factor == 0 || (o.growth_factor > 0 && o.growth_factor <= 1e6);
  if (o.reserve_bytes < detail::kSegmentSize * 4 || o.reserve_bytes > detail::kMaxReserve ||
      !pause_ok || !growth_ok) {
    *status = Status::kBadParam;
    return nullptr;
  }
  if (o.pause_target_ms == 0) o.pause_target_ms = 1.0;
  if (o.trigger_bytes == 0) o.trigger_bytes = size_t{8} << 20;
  if (o.growth_factor == 0) o.growth_factor = 1.0;
  if (o.growth_factor < 0.25) o.growth_factor = 0.25;
  if (o.single_access_budget == 0) o.single_access_budget = 256;
  // The per-page counter is 16 bits: a larger budget is the largest it can count.
  o.single_access_budget = std::min<uint32_t>(o.single_access_budget, UINT16_MAX);
  if (o.pending_min_pages == 0) o.pending_min_pages = 32;
  if (o.table_move_slots == 0) o.table_move_slots = 4096;
  auto* impl = new (std::nothrow) ArenaImpl();
  if (impl == nullptr) {
    *status = Status::kNoMemory;
    return nullptr;
  }
  impl->options = o;
  impl->incremental = o.incremental < 0 ? detail::env_incremental_default() : o.incremental != 0;
  impl->trigger = o.trigger_bytes;
  Status st = impl->init_vm(o.reserve_bytes);
  if (st == Status::kOk) st = detail::install_barrier();
  if (st == Status::kOk && o.register_thread) st = detail::register_thread(impl);
  int slot = -1;
  if (st == Status::kOk) {
    for (int i = 0; i < detail::kMaxArenas && slot < 0; ++i) {
      ArenaImpl* expected = nullptr;
      if (detail::g_arenas[i].compare_exchange_strong(expected, impl)) slot = i;
    }
    if (slot < 0) st = Status::kLimit;
  }
  if (st != Status::kOk) {
    impl->destroy_vm();
    delete impl;
    *status = st;
    return nullptr;
  }
  std::unique_ptr<Arena> a(new (std::nothrow) Arena(impl));
  if (!a) {
    detail::g_arenas[slot].store(nullptr);
    impl->destroy_vm();
    delete impl;
    *status = Status::kNoMemory;
    return nullptr;
  }
  detail::event_log_from_env(impl);  // WEAKGC_EVENT_LOG=<path>
  *status = Status::kOk;
  return a;
}

Arena::Arena(detail::ArenaImpl* impl) : impl_(impl) {}

Arena::Arena() : Arena(ArenaOptions{}) {}

Arena::Arena(const ArenaOptions& options) : impl_(nullptr) {
  Status st;
  std::unique_ptr<Arena> a = create(options, &st);
  if (!a) {
    if (st == Status::kNoMemory) throw std::bad_alloc();
    throw std::runtime_error(std::string("weakgc: cannot create arena: ") + status_name(st));
  }
  impl_ = a->impl_;
  a->impl_ = nullptr;
}

Arena::~Arena() {
  if (impl_ == nullptr) return;
  (void)detail::event_log_stop(impl_);  // writes the event log, if one is running
  {
    LockGuard g(impl_->lock);
    if (impl_->phase == Phase::kMark || impl_->phase == Phase::kWeak) impl_->unprotect_all();
    // Buffers of cells reserved in this arena die with it: a later arena may get this
    // ArenaImpl's and its pools' addresses, and a stale buffer matching them would hand out cells
    // that arena never reserved (.inv.tlab).
    for (detail::ThreadState* t : impl_->threads) {
      for (detail::TlabBin& b : t->tlab)
        if (b.arena == impl_) b = detail::TlabBin{};
      --t->arenas;
    }
    impl_->threads.clear();
  }
  for (auto& slot : detail::g_arenas) {
    ArenaImpl* expected = impl_;
    slot.compare_exchange_strong(expected, nullptr);
  }
  // Handles that outlive the arena are detached so their destructors do nothing.
  for (detail::HandleNode* h = impl_->handles; h != nullptr;) {
    detail::HandleNode* next = h->next;
    h->arena = nullptr;
    h->prev = h->next = nullptr;
    h = next;
  }
  for (detail::PoolBox* p : impl_->pools) delete p;
  impl_->destroy_vm();
  delete impl_;
}

Status Arena::create_pool(PoolClass cls, const Format* format, Pool** out) noexcept {
  if (out == nullptr) return Status::kBadParam;
  LockGuard g(impl_->lock);
  return detail::make_pool(impl_, cls, format, out);
}

PoolClass Pool::pool_class() const noexcept {
  return impl_->cls;
}

Status Arena::alloc(Pool* pool, size_t size, void** out, Rank rank) noexcept {
  // A rank outside the enum would index past the thread's buffers below.
  if (pool == nullptr || out == nullptr || static_cast<unsigned>(rank) > 2)
    return Status::kBadParam;
  // Fast path, no lock: a cell from this thread's allocation buffer (.inv.tlab).
  detail::ThreadState* t = detail::current_thread_state();
  if (t != nullptr && size - 1 < detail::kLargeThreshold) {
    uint32_t sc = detail::size_class_of(size);
    detail::TlabBin& b = t->tlab[detail::tlab_index(pool->impl(), rank, sc)];
    if (b.mask != 0 && b.arena == impl_ && b.pool == pool->impl() &&
        b.rank == static_cast<uint8_t>(rank) && b.size_class == sc) {
      if constexpr (detail::kDebug) {  // the slow paths below check always
        if (impl_->lock.held_by_me()) detail::forbid_in_collector(impl_, kAllocInCollector);
      }
      // .inv.tlab: the cell's address must be in a register before its bit leaves the mask. A
      // flip that stops this thread in between then finds it in one place or the other; with
      // the bit cleared first, only the index would be in a register and the flip would miss
      // the cell, hand out a white object during marking and free it at the sweep.
      uintptr_t cell =
          b.base + uintptr_t{b.cell_size} * static_cast<unsigned>(__builtin_ctzll(b.mask));
      asm volatile("" : : "r"(cell) : "memory");
      b.mask &= b.mask - 1;  // handed out: no longer a root of this buffer
      *out = reinterpret_cast<void*>(cell);
      return Status::kOk;
    }
    LockGuard g(impl_->lock);
    detail::forbid_in_collector(impl_, kAllocInCollector);
    return impl_->refill_tlab(t, &b, pool->impl(), rank, sc, size, out);
  }
  LockGuard g(impl_->lock);
  detail::forbid_in_collector(impl_, kAllocInCollector);
  return impl_->allocate(pool->impl(), size, rank, out);
}

Status Arena::register_root(void** base, size_t count, RootId* out) noexcept {
  if (base == nullptr || count == 0 || out == nullptr) return Status::kBadParam;
  // A range that is misaligned, wraps the address space, or overlaps either view of the heap is
  // refused here: scanning it at the next flip would fault or read heap words as roots.
  const uintptr_t lo = reinterpret_cast<uintptr_t>(base);
  if (lo % alignof(void*) != 0 || count > (UINTPTR_MAX - lo) / sizeof(void*))
    return Status::kBadParam;
  const uintptr_t hi = lo + count * sizeof(void*);
  const uintptr_t heap_lo = reinterpret_cast<uintptr_t>(impl_->base);
  const uintptr_t heap_hi = heap_lo + 2 * impl_->reserve;  // mutator view, then collector view
  if (lo < heap_hi && hi > heap_lo) return Status::kBadParam;
  // Every page of the range must be mapped (msync fails with ENOMEM on a hole): a count that
  // runs past the end of the caller's array would fault at the next flip.
  const uintptr_t page = static_cast<uintptr_t>(detail::kPageSize);
  const uintptr_t plo = lo & ~(page - 1);
  if (msync(reinterpret_cast<void*>(plo), hi - plo, MS_ASYNC) != 0) return Status::kBadParam;
  LockGuard g(impl_->lock);
  detail::forbid_in_collector(impl_,
                              "register_root inside the collector (a scan or trace function)");
  for (const auto& r : impl_->roots)
    if (r.base == base) return Status::kAlready;
  detail::ExactRoot r{base, count, impl_->next_root_id};
  try {
    impl_->roots.push_back(r);
  } catch (const std::bad_alloc&) {
    return Status::kNoMemory;
  }
  ++impl_->next_root_id;
  // A root added while marking holds grey or black references only (the mutator is black), so
  // it needs no scan until the next flip.
  out->value = r.id;
  return Status::kOk;
}

Status Arena::remove_root(RootId id) noexcept {
  LockGuard g(impl_->lock);
  detail::forbid_in_collector(impl_, "remove_root inside the collector (a scan or trace function)");
  auto& v = impl_->roots;
  auto it = std::find_if(v.begin(), v.end(), [&](const auto& r) { return r.id == id.value; });
  if (it == v.end()) return Status::kNotFound;
  v.erase(it);
  return Status::kOk;
}

void Arena::collect() noexcept {
  LockGuard g(impl_->lock);
  // A cycle past its flip keeps what was reachable then and what was allocated since: finish
  // it, then run a whole cycle, so that everything unreachable now is reclaimed.
  Phase ph = impl_->phase.load(std::memory_order_relaxed);
  if (ph == Phase::kMark || ph == Phase::kWeak) impl_->collect_full();
  impl_->collect_full();
}

void Arena::start_cycle() noexcept {
  LockGuard g(impl_->lock);
  if (impl_->phase == Phase::kSweep) {
    impl_->in_collector = true;
    (void)impl_->sweep(0);
    impl_->in_collector = false;
  }
  if (impl_->phase != Phase::kIdle) return;
  impl_->in_collector = true;
  impl_->flip();
  impl_->in_collector = false;
}

bool Arena::step(uint64_t budget_ns) noexcept {
  LockGuard g(impl_->lock);
  if (budget_ns == 0) budget_ns = 1;
  return impl_->work(budget_ns);
}

Phase Arena::phase() const noexcept {
  return impl_->phase.load(std::memory_order_acquire);
}
detail::ArenaPublished Arena::published() const noexcept {
  return detail::ArenaPublished{&impl_->phase,
                                &impl_->epoch,
                                impl_->view_offset,
                                impl_->options.view_probes,
                                &impl_->state,
                                impl_->pending,
                                reinterpret_cast<uintptr_t>(impl_->base)};
}
bool Arena::incremental() const noexcept {
  return impl_->incremental;
}

Status Arena::finalize(void* obj) noexcept {
  LockGuard g(impl_->lock);
  detail::forbid_in_collector(impl_, "finalize inside the collector (a scan or trace function)");
  size_t seg;
  uint32_t cell;
  uintptr_t b;
  uintptr_t p = reinterpret_cast<uintptr_t>(obj);
  if (!impl_->resolve(p, false, &seg, &cell, &b)) return Status::kBadParam;
  try {
    uint64_t* w = impl_->final_word(seg, cell, true);
    const uint64_t m = uint64_t{1} << (cell & 63);
    if ((*w & m) != 0) return Status::kAlready;
    // Room for every registered object's message, so that the collector never allocates to
    // queue one: the messages taken are dropped from the front first, then the room grows
    // geometrically.
    auto& q = impl_->final_queue;
    size_t need = q.size() - impl_->final_head + impl_->final_registered.size() + 1;
    if (q.capacity() - impl_->final_head < need) {
      q.erase(q.begin(), q.begin() + static_cast<ptrdiff_t>(impl_->final_head));
      impl_->final_queue_shifted(impl_->final_head);
      impl_->final_head = 0;
      if (q.capacity() < need) q.reserve(std::max(need, 2 * q.capacity()));
    }
    impl_->final_registered.push_back(p);
    *w |= m;
  } catch (const std::bad_alloc&) {
    return Status::kNoMemory;
  }
  return Status::kOk;
}

bool Arena::take_finalized(void** obj) noexcept {
  if (obj == nullptr) return false;
  LockGuard g(impl_->lock);
  auto& q = impl_->final_queue;
  if (impl_->final_head == q.size()) return false;
  impl_->message_taken(impl_->final_head);
  *obj = reinterpret_cast<void*>(q[impl_->final_head++]);
  if (impl_->final_head == q.size()) {
    q.clear();  // keeps the capacity
    impl_->final_queue_shifted(impl_->final_head);
    impl_->final_head = 0;
  }
  return true;
}

bool Arena::contains(const void* p) const noexcept {
  return impl_->in_arena(reinterpret_cast<uintptr_t>(p));
}

void* Arena::object_base(const void* p) const noexcept {
  size_t seg;
  uint32_t cell;
  uintptr_t b;
  if (!impl_->resolve(reinterpret_cast<uintptr_t>(p), true, &seg, &cell, &b)) return nullptr;
  return reinterpret_cast<void*>(b);
}

size_t Arena::object_size(const void* base) const noexcept {
  size_t seg;
  uint32_t cell;
  uintptr_t b;
  if (!impl_->resolve(reinterpret_cast<uintptr_t>(base), false, &seg, &cell, &b)) return 0;
  return impl_->object_size(impl_->segs[seg]);
}

bool Arena::is_marked(const void* p) const noexcept {
  size_t seg;
  uint32_t cell;
  uintptr_t b;
  if (!impl_->resolve(reinterpret_cast<uintptr_t>(p), true, &seg, &cell, &b)) return false;
  return (impl_->segs[seg].mark[cell >> 6] >> (cell & 63)) & 1;
}

Status Arena::expose(const void* p, size_t size) noexcept {
  uintptr_t a = reinterpret_cast<uintptr_t>(p);
  if (size == 0 || size > impl_->reserve || !impl_->in_arena(a) || !impl_->in_arena(a + size - 1))
    return Status::kBadParam;
  LockGuard g(impl_->lock);
  for (size_t pg = impl_->page_index(a); pg <= impl_->page_index(a + size - 1); ++pg) {
    if (impl_->exposed[pg] == UINT16_MAX) return Status::kLimit;
  }
  for (size_t pg = impl_->page_index(a); pg <= impl_->page_index(a + size - 1); ++pg) {
    ++impl_->exposed[pg];
    impl_->note_grey_change(pg);
  }
  // update_protection scans the grey objects of exposed pages and unprotects them.
  impl_->in_collector = true;
  impl_->update_protection();
  impl_->in_collector = false;
  return Status::kOk;
}

bool Arena::unexpose(const void* p, size_t size) noexcept {
  uintptr_t a = reinterpret_cast<uintptr_t>(p);
  if (size == 0 || size > impl_->reserve || !impl_->in_arena(a) || !impl_->in_arena(a + size - 1))
    return false;
  LockGuard g(impl_->lock);
  const size_t first = impl_->page_index(a), last = impl_->page_index(a + size - 1);
  // An unexpose with no matching expose changes nothing (checked whole first, so that a range
  // only partly exposed is not half undone).
  for (size_t pg = first; pg <= last; ++pg)
    if (impl_->exposed[pg] == 0) return false;
  for (size_t pg = first; pg <= last; ++pg) --impl_->exposed[pg];
  return true;
}

Stats Arena::stats() const noexcept {
  LockGuard g(impl_->lock);
  return impl_->stats;
}

void Arena::verify() noexcept {
  LockGuard g(impl_->lock);
  impl_->verify();
}

size_t Arena::committed_bytes() const noexcept {
  return impl_->segs_in_use * detail::kSegmentSize;
}

Status Arena::register_thread() noexcept {
  return detail::register_thread(impl_);
}
Status Arena::unregister_thread() noexcept {
  return detail::unregister_thread(impl_);
}
size_t Arena::thread_count() const noexcept {
  return detail::registered_threads(impl_);
}

ThreadScope::ThreadScope(Arena& arena) : arena_(arena), registered_(false) {
  Status st = arena_.register_thread();
  if (st != Status::kOk && st != Status::kAlready)
    detail::fatal("ThreadScope: cannot register thread");
  registered_ = st == Status::kOk;
}

ThreadScope::~ThreadScope() {
  if (registered_) (void)arena_.unregister_thread();
}

ExposeGuard::ExposeGuard(Arena& arena, const void* p, size_t size)
    : arena_(arena), p_(p), size_(size) {
  Status st = arena_.expose(p, size);
  if (st != Status::kOk) detail::fatal("ExposeGuard: range is not in the arena", p);
}

ExposeGuard::~ExposeGuard() {
  (void)arena_.unexpose(p_, size_);  // matched: the constructor exposed the range
}

}  // namespace weakgc
