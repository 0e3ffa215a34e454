// Thread-safe weak tables (DESIGN.md §7–§8, docs/design/weak.md "Thread safety"): every table
// kind of weakgc/tables.hpp and the intern set of weakgc/intern.hpp behind a reader-writer lock.
// The single-threaded kinds stay lock-free; use these when several registered threads share one
// table.
//
//   ConcurrentWeakTable                  untyped (WeakTable)
//   ConcurrentWeakKeyTable<K, V>         WeakKeyTable<K, V>
//   ConcurrentWeakValueTable<K, V>       WeakValueTable<K, V>
//   ConcurrentDoublyWeakTable<K, V>      DoublyWeakTable<K, V>
//   ConcurrentEphemeronTable<K, V>       EphemeronTable<K, V>
//   ConcurrentWeakSet<K>                 WeakSet<K>
//   ConcurrentInternSet                  InternSet
//
// Invariants (tags in docs/design/weak.md):
//  .inv.read-only  get, contains, find_by, find, iteration and stats change no table state (no
//                  lazy tombstoning, no cached counter): they run under the shared lock, in
//                  parallel. Everything that may write table state (put, remove, exchange, take,
//                  clear, reserve, size — it caches splat counters —, take_dead, intern on a
//                  miss) takes the exclusive lock.
//  .inv.lock-order  table lock, then arena lock; never the other way. The collector (flip, steps,
//                  the barrier fault handler) takes only the arena lock, so a thread may fault,
//                  allocate (and so run collector work, or flip) while holding a table lock.
//  .inv.lock-wait  a thread waiting for a table lock stops for a flip: it spins, yields and
//                  sleeps, polling for the flip's stop request between tries (detail::TableLock),
//                  instead of blocking in the kernel, where a sanitizer may hold the suspend
//                  signal back for as long as the wait lasts — the flip would wait forever.
//
// Who may call: any thread registered with the table's arena (ThreadScope), never a signal
// handler. Keys and values passed in must be reachable during the call (rooted or on a registered
// thread's stack), as for the single-threaded tables. Callbacks (for_each, with_exclusive) must
// not call back into the same table: the lock is not recursive. The typed and intern variants may
// throw std::bad_alloc, as their single-threaded counterparts do.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <shared_mutex>  // std::shared_lock
#include <string_view>
#include <utility>

#include "weakgc/intern.hpp"
#include "weakgc/tables.hpp"

namespace weakgc {

namespace detail {

/// The lock of a concurrent table: a reader-writer lock whose readers count themselves in one of
/// kStripes cache lines (chosen per thread), so that lookups from several threads write no
/// shared line; a writer raises its flag, which holds new readers back (writers are preferred),
/// and waits for every stripe to drain. Waiters poll for the flip between tries
/// (.inv.lock-wait). Not recursive; a shared hold is released by the thread that took it. Meets
/// the standard Lockable and SharedLockable requirements (std::unique_lock, std::shared_lock).
class WEAKGC_API TableLock {
 public:
  /// Takes the lock exclusively.
  void lock();
  /// Takes the lock exclusively if no one holds it.
  bool try_lock();
  /// Releases the exclusive lock.
  void unlock();
  /// Takes the lock shared.
  void lock_shared();
  /// Takes the lock shared if no writer holds it or waits for it.
  bool try_lock_shared();
  /// Releases a shared hold taken by this thread.
  void unlock_shared();

  static constexpr size_t kStripes = 16;  ///< reader counters, one 64-byte line each: 1 KiB

 private:
  struct alignas(64) Stripe {
    std::atomic<uint32_t> readers{0};
  };
  Stripe stripes_[kStripes];
  alignas(64) std::atomic<uint32_t> writer_{0};  // 1 while a writer holds or waits for the lock
};

}  // namespace detail

/// A thread-safe untyped weak table: a WeakTable behind a reader-writer lock. Lookups run in
/// parallel; updates are serialised. See WeakTable for what each operation promises.
class WEAKGC_API ConcurrentWeakTable {
 public:
  /// A table of `kind` keyed by identity (address), with room for `capacity` entries.
  explicit ConcurrentWeakTable(Arena& arena, TableKind kind, size_t capacity = 0);
  /// A table of `kind` keyed by content (hash and eq must be thread-safe and lock-free).
  ConcurrentWeakTable(Arena& arena, TableKind kind, const WeakTable::ContentKeys& content,
                      size_t capacity = 0);
  ConcurrentWeakTable(const ConcurrentWeakTable&) = delete;
  ConcurrentWeakTable& operator=(const ConcurrentWeakTable&) = delete;

  /// The value stored for `key` (strong), or nullptr; for a set, the stored equal key. Shared lock.
  void* get(const void* key);
  /// Whether `key` has an entry (identity tables keep nothing alive). Shared lock.
  bool contains(const void* key);
  /// Content lookup by a probe that is not a key (see WeakTable::find_by). Shared lock.
  void* find_by(uint64_t hash, const void* probe, KeyEqFn eq, void* ctx, void** value = nullptr);
  /// Stores key -> value; true if it made a new entry. Exclusive lock. Throws std::bad_alloc.
  bool put(void* key, void* value);
  /// The value stored for `key` if there is one, else stores `value` and returns it: one atomic
  /// step (for a set: the stored equal key, or `key` after inserting it). Exclusive lock on a miss.
  void* get_or_put(void* key, void* value);
  /// Removes `key`'s entry; true if there was one. Exclusive lock.
  bool remove(const void* key);
  /// Stores key -> value; returns the replaced value (strong) or nullptr. Exclusive lock.
  void* exchange(void* key, void* value);
  /// Removes `key`'s entry; returns its value (strong) or nullptr. Exclusive lock.
  void* take(const void* key);
  /// Removes every entry. Exclusive lock.
  void clear();
  /// Makes room for n entries. Exclusive lock. Throws std::bad_alloc.
  void reserve(size_t n);
  /// Number of entries (an upper bound during a collection; see WeakTable::size). Exclusive lock:
  /// it caches the splat counters.
  size_t size();
  /// Turns on dead-entry notification. Exclusive lock.
  Status enable_notification();
  /// Takes the oldest dead-entry notification, from any thread. Exclusive lock.
  bool take_dead(DeadEntry* out);
  /// Calls f(key, value) for every present entry under the shared lock: updates from other
  /// threads wait until it returns. f must not call into this table; it may allocate.
  template <class F>
  void for_each(F&& f) {
    std::shared_lock lock(mu_);
    t_.for_each(std::forward<F>(f));
  }
  /// Runs f(WeakTable&) under the exclusive lock and returns its result: for compound updates.
  template <class F>
  decltype(auto) with_exclusive(F&& f) {
    std::unique_lock lock(mu_);
    return std::forward<F>(f)(t_);
  }
  /// Counters. Shared lock.
  TableStats stats() const;
  /// The table's kind.
  TableKind kind() const noexcept { return t_.kind(); }
  /// The arena the table lives in.
  Arena& arena() const noexcept { return t_.arena(); }

 private:
  mutable detail::TableLock mu_;
  WeakTable t_;
};

/// The thread-safe typed table of one kind: TypedWeakTable<K, V, Kind> behind a reader-writer
/// lock. K and V are arena objects; see TypedWeakTable and WeakTable for the promises.
template <class K, class V, TableKind Kind>
class ConcurrentTypedWeakTable {
 public:
  /// A table keyed by identity (address).
  explicit ConcurrentTypedWeakTable(Arena& arena, size_t capacity = 0) : t_(arena, capacity) {}
  /// A table keyed by content (hash and eq must be thread-safe and lock-free).
  ConcurrentTypedWeakTable(Arena& arena, ContentKeys<K> content, size_t capacity = 0)
      : t_(arena, content, capacity) {}

  /// The value for key (strong), or nullptr. Shared lock.
  V* get(const K* key) {
    std::shared_lock lock(mu_);
    return t_.get(key);
  }
  /// Whether key has an entry. Shared lock.
  bool contains(const K* key) {
    std::shared_lock lock(mu_);
    return t_.contains(key);
  }
  /// Stores key -> value; true if it made a new entry. Exclusive lock.
  bool put(K* key, V* value) {
    std::unique_lock lock(mu_);
    return t_.put(key, value);
  }
  /// The value stored for key if any, else stores `value` and returns it, atomically.
  V* get_or_put(K* key, V* value) {
    {
      std::shared_lock lock(mu_);
      if (V* v = t_.get(key)) return v;
    }
    std::unique_lock lock(mu_);
    if (V* v = t_.get(key)) return v;
    t_.put(key, value);
    return value;
  }
  /// Removes key's entry; true if there was one. Exclusive lock.
  bool remove(const K* key) {
    std::unique_lock lock(mu_);
    return t_.remove(key);
  }
  /// Stores key -> value; returns the replaced value (strong) or nullptr. Exclusive lock.
  V* exchange(K* key, V* value) {
    std::unique_lock lock(mu_);
    return t_.exchange(key, value);
  }
  /// Removes key's entry; returns its value (strong) or nullptr. Exclusive lock.
  V* take(const K* key) {
    std::unique_lock lock(mu_);
    return t_.take(key);
  }
  /// Removes every entry. Exclusive lock.
  void clear() {
    std::unique_lock lock(mu_);
    t_.clear();
  }
  /// Makes room for n entries. Exclusive lock.
  void reserve(size_t n) {
    std::unique_lock lock(mu_);
    t_.reserve(n);
  }
  /// Number of entries (an upper bound during a collection). Exclusive lock.
  size_t size() {
    std::unique_lock lock(mu_);
    return t_.size();
  }
  /// Calls f(K*, V*) for every present entry under the shared lock (f must not use this table).
  template <class F>
  void for_each(F&& f) {
    std::shared_lock lock(mu_);
    t_.for_each(std::forward<F>(f));
  }
  /// Runs f(TypedWeakTable<K, V, Kind>&) under the exclusive lock and returns its result.
  template <class F>
  decltype(auto) with_exclusive(F&& f) {
    std::unique_lock lock(mu_);
    return std::forward<F>(f)(t_);
  }
  /// Turns on dead-entry notification. Exclusive lock.
  Status enable_notification() {
    std::unique_lock lock(mu_);
    return t_.enable_notification();
  }
  /// Takes one notification (the surviving half; the other is null). Exclusive lock.
  bool take_dead(K** key, V** value) {
    std::unique_lock lock(mu_);
    return t_.take_dead(key, value);
  }
  /// Counters. Shared lock.
  TableStats stats() const {
    std::shared_lock lock(mu_);
    return t_.stats();
  }

 private:
  mutable detail::TableLock mu_;
  TypedWeakTable<K, V, Kind> t_;
};

/// Thread-safe WeakKeyTable<K, V>.
template <class K, class V>
using ConcurrentWeakKeyTable = ConcurrentTypedWeakTable<K, V, TableKind::kWeakKey>;
/// Thread-safe WeakValueTable<K, V>.
template <class K, class V>
using ConcurrentWeakValueTable = ConcurrentTypedWeakTable<K, V, TableKind::kWeakValue>;
/// Thread-safe DoublyWeakTable<K, V>.
template <class K, class V>
using ConcurrentDoublyWeakTable = ConcurrentTypedWeakTable<K, V, TableKind::kDoublyWeak>;
/// Thread-safe EphemeronTable<K, V>.
template <class K, class V>
using ConcurrentEphemeronTable = ConcurrentTypedWeakTable<K, V, TableKind::kEphemeron>;

/// Thread-safe WeakSet<K>: holds its elements weakly.
template <class K>
class ConcurrentWeakSet {
 public:
  /// An identity set.
  explicit ConcurrentWeakSet(Arena& arena, size_t capacity = 0) : s_(arena, capacity) {}
  /// Adds key; returns false if it was present. Exclusive lock.
  bool insert(K* key) {
    std::unique_lock lock(mu_);
    return s_.insert(key);
  }
  /// Whether key is present (keeps nothing alive). Shared lock.
  bool contains(const K* key) {
    std::shared_lock lock(mu_);
    return s_.contains(key);
  }
  /// Removes key; returns whether it was present. Exclusive lock.
  bool erase(const K* key) {
    std::unique_lock lock(mu_);
    return s_.erase(key);
  }
  /// Number of elements (an upper bound during a collection). Exclusive lock.
  size_t size() {
    std::unique_lock lock(mu_);
    return s_.size();
  }
  /// Removes every element. Exclusive lock.
  void clear() {
    std::unique_lock lock(mu_);
    s_.clear();
  }
  /// Calls f(K*) for every present element under the shared lock (f must not use this set).
  template <class F>
  void for_each(F&& f) {
    std::shared_lock lock(mu_);
    s_.for_each(std::forward<F>(f));
  }

 private:
  detail::TableLock mu_;
  WeakSet<K> s_;
};

/// Thread-safe InternSet: at most one live Symbol per byte string, from every registered thread.
/// A hit takes the shared lock only; a miss takes the exclusive lock, looks again and creates the
/// symbol, so threads interning the same new name concurrently all get the same symbol.
class WEAKGC_API ConcurrentInternSet {
 public:
  /// An empty set in `arena` with room for `capacity` symbols.
  explicit ConcurrentInternSet(Arena& arena, size_t capacity = 0);
  ConcurrentInternSet(const ConcurrentInternSet&) = delete;
  ConcurrentInternSet& operator=(const ConcurrentInternSet&) = delete;

  /// The live symbol with these bytes, created if none is alive. Throws std::bad_alloc.
  Symbol* intern(std::string_view name);
  /// The live symbol with these bytes, or nullptr (creates nothing). Shared lock.
  Symbol* find(std::string_view name);
  /// Number of symbols (an upper bound during a collection). Exclusive lock.
  size_t size();
  /// Symbols created since the set was made. Shared lock.
  uint64_t symbols_created() const;
  /// Calls f(Symbol*) for every symbol under the shared lock (f must not use this set).
  template <class F>
  void for_each(F&& f) {
    std::shared_lock lock(mu_);
    s_.for_each(std::forward<F>(f));
  }

 private:
  mutable detail::TableLock mu_;
  InternSet s_;
};

}  // namespace weakgc
