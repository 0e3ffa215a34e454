// TableLock, ConcurrentWeakTable and ConcurrentInternSet (weakgc/concurrent_tables.hpp,
// docs/design/weak.md "Thread safety"): the single-threaded tables behind a reader-writer lock.
//
// Which lock each operation takes follows .inv.read-only: WeakTable::get, contains, find_by, next
// and stats write no table state, so they share the lock; everything else excludes. The lock is
// taken before any arena lock (.inv.lock-order): a holder may fault or allocate, which runs
// collector work under the arena lock only.
//
// TableLock: reader counts striped over cache lines, because one shared counter (std::shared_mutex)
// made lookups slower on two threads than on one: every lookup wrote the same line
// (docs/benchmarks/threads.md). Waiting (.inv.lock-wait): the flip stops every registered thread
// with a signal and waits for each to acknowledge. A thread blocked in pthread_rwlock_wrlock takes
// the signal at once natively, but ThreadSanitizer defers signals that arrive in a wait it does
// not treat as blocking until the wait ends — never, if the lock holder is the thread the flip
// just stopped. So a waiter never blocks in the kernel: it retries, pausing, then yielding, then
// sleeping 50 µs, and calls poll_suspend() between tries, which stops the thread if a flip asked
// it to (the arena lock waits the same way).
#include "weakgc/concurrent_tables.hpp"

#include <sched.h>
#include <time.h>

#include "core/threads.hpp"

namespace weakgc {

// ------------------------------------------------------------------------------ TableLock

namespace detail {

namespace {

// One wait between two tries: a few hundred nanoseconds of pause for a short critical section,
// then the CPU to other threads (the holder may be descheduled: more threads than cores), then
// sleeps (the holder may be running collector work for up to a pause target).
void table_lock_backoff(int tries) {
  if (tries < 64) {
    __builtin_ia32_pause();
    return;
  }
  poll_suspend();
  if (tries < 256) {
    sched_yield();
    return;
  }
  timespec ts{0, 50'000};
  nanosleep(&ts, nullptr);
}

}  // namespace

// The calling thread's stripe: threads take stripes round-robin as they first use any table.
std::atomic<uint32_t> g_next_stripe{0};
thread_local const uint32_t t_stripe =
    g_next_stripe.fetch_add(1, std::memory_order_relaxed) % TableLock::kStripes;

// Readers and writers meet Dekker-style: a reader increments its stripe, then reads the writer
// flag; a writer sets the flag, then reads every stripe (all sequentially consistent), so at
// least one of them sees the other. A reader that sees the flag backs out and waits.

bool TableLock::try_lock_shared() {
  std::atomic<uint32_t>& r = stripes_[t_stripe].readers;
  r.fetch_add(1, std::memory_order_seq_cst);
  if (writer_.load(std::memory_order_seq_cst) == 0) return true;
  r.fetch_sub(1, std::memory_order_release);
  return false;
}

void TableLock::lock_shared() {
  for (int tries = 0; !try_lock_shared(); ++tries) {
    while (writer_.load(std::memory_order_relaxed) != 0) table_lock_backoff(tries++);
  }
}

void TableLock::unlock_shared() {
  stripes_[t_stripe].readers.fetch_sub(1, std::memory_order_release);
}

bool TableLock::try_lock() {
  uint32_t expected = 0;
  if (!writer_.compare_exchange_strong(expected, 1, std::memory_order_seq_cst)) return false;
  for (const Stripe& s : stripes_) {
    if (s.readers.load(std::memory_order_seq_cst) != 0) {
      writer_.store(0, std::memory_order_release);
      return false;
    }
  }
  return true;
}

void TableLock::lock() {
  int tries = 0;
  for (;;) {
    uint32_t expected = 0;
    if (writer_.compare_exchange_weak(expected, 1, std::memory_order_seq_cst)) break;
    table_lock_backoff(tries++);
  }
  // The flag holds new readers back; wait for those inside to leave.
  for (const Stripe& s : stripes_)
    while (s.readers.load(std::memory_order_seq_cst) != 0) table_lock_backoff(tries++);
}

void TableLock::unlock() {
  writer_.store(0, std::memory_order_release);
}

}  // namespace detail

// ------------------------------------------------------------------------------ tables

ConcurrentWeakTable::ConcurrentWeakTable(Arena& arena, TableKind kind, size_t capacity)
    : t_(arena, kind, capacity) {}

ConcurrentWeakTable::ConcurrentWeakTable(Arena& arena, TableKind kind,
                                         const WeakTable::ContentKeys& content, size_t capacity)
    : t_(arena, kind, content, capacity) {}

void* ConcurrentWeakTable::get(const void* key) {
  std::shared_lock lock(mu_);
  return t_.get(key);
}

bool ConcurrentWeakTable::contains(const void* key) {
  std::shared_lock lock(mu_);
  return t_.contains(key);
}

void* ConcurrentWeakTable::find_by(uint64_t hash, const void* probe, KeyEqFn eq, void* ctx,
                                   void** value) {
  std::shared_lock lock(mu_);
  return t_.find_by(hash, probe, eq, ctx, value);
}

bool ConcurrentWeakTable::put(void* key, void* value) {
  std::unique_lock lock(mu_);
  return t_.put(key, value);
}

void* ConcurrentWeakTable::get_or_put(void* key, void* value) {
  {
    std::shared_lock lock(mu_);
    if (void* v = t_.get(key)) return v;
  }
  std::unique_lock lock(mu_);
  // Another thread may have put it between the two locks.
  if (void* v = t_.get(key)) return v;
  t_.put(key, value);
  return t_.kind() == TableKind::kWeakSet ? key : value;
}

bool ConcurrentWeakTable::remove(const void* key) {
  std::unique_lock lock(mu_);
  return t_.remove(key);
}

void* ConcurrentWeakTable::exchange(void* key, void* value) {
  std::unique_lock lock(mu_);
  return t_.exchange(key, value);
}

void* ConcurrentWeakTable::take(const void* key) {
  std::unique_lock lock(mu_);
  return t_.take(key);
}

void ConcurrentWeakTable::clear() {
  std::unique_lock lock(mu_);
  t_.clear();
}

void ConcurrentWeakTable::reserve(size_t n) {
  std::unique_lock lock(mu_);
  t_.reserve(n);
}

size_t ConcurrentWeakTable::size() {
  std::unique_lock lock(mu_);  // WeakTable::size caches the splat counters
  return t_.size();
}

Status ConcurrentWeakTable::enable_notification() {
  std::unique_lock lock(mu_);
  return t_.enable_notification();
}

bool ConcurrentWeakTable::take_dead(DeadEntry* out) {
  std::unique_lock lock(mu_);
  return t_.take_dead(out);
}

TableStats ConcurrentWeakTable::stats() const {
  std::shared_lock lock(mu_);
  return t_.stats();
}

// ------------------------------------------------------------------------------ interning

ConcurrentInternSet::ConcurrentInternSet(Arena& arena, size_t capacity) : s_(arena, capacity) {}

Symbol* ConcurrentInternSet::find(std::string_view name) {
  std::shared_lock lock(mu_);
  return s_.find(name);
}

Symbol* ConcurrentInternSet::intern(std::string_view name) {
  {
    std::shared_lock lock(mu_);
    if (Symbol* s = s_.find(name)) return s;
  }
  // InternSet::intern looks again under the exclusive lock: of several threads that missed the
  // same name, the first creates the symbol and the others find it. Its allocation may run
  // collector work (or flip) while the lock is held: .inv.lock-order.
  std::unique_lock lock(mu_);
  return s_.intern(name);
}

size_t ConcurrentInternSet::size() {
  std::unique_lock lock(mu_);
  return s_.size();
}

uint64_t ConcurrentInternSet::symbols_created() const {
  std::shared_lock lock(mu_);
  return s_.symbols_created();
}

}  // namespace weakgc
