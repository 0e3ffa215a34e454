// The arena: one garbage-collected heap (address space, pools, roots, collector).
//
// An Arena reserves a range of address space backed by a memfd and mapped twice (DESIGN.md §3):
// the mutator view, whose page protection is the collector's read barrier, and a collector view
// that is always read-write. Objects never move: an address is stable for the object's life.
//
// Threads: an arena is used by the thread that created it (it is registered automatically) and
// by threads registered with ThreadScope. Calls take the arena lock; none may be made from a
// signal handler except where marked signal-safe.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>

#include "weakgc/export.hpp"
#include "weakgc/format.hpp"
#include "weakgc/stats.hpp"
#include "weakgc/status.hpp"

namespace weakgc {

namespace detail {
struct ArenaImpl;
struct Pool;
}  // namespace detail

/// Options for creating an arena. Zero means "the default".
struct ArenaOptions {
  size_t reserve_bytes = 0;     ///< address space to reserve; default 4 GiB (never committed)
  double pause_target_ms = 0;   ///< bound on each incremental pause; default 1 ms; 0.001–10^6
  size_t trigger_bytes = 0;     ///< allocation that starts the first cycle; default 8 MiB
  double growth_factor = 0;     ///< next trigger = live * growth_factor; default 1.0; up to
                                ///< 10^6; values below 0.25 are raised to 0.25
  int incremental = -1;         ///< -1: from WEAKGC_INCREMENTAL (default on); 0: off; 1: on
  bool register_thread = true;  ///< register the creating thread's stack as an ambiguous root
  uint32_t single_access_budget = 0;  ///< emulated accesses per weak page per cycle; default 256;
                                      ///< at most 65,535 (a larger value means 65,535)
  bool emulation = true;  ///< emulate single accesses on weak pages (false: always scan)
  /// Identity-table probes compare key slots through the collector's view during a collection
  /// (no barrier fault, nothing kept alive); false: each compare faults and is emulated.
  bool view_probes = true;
  /// Key and value arrays of tables, and GuardedArrays, at least this many pages long are not
  /// protected at the flip: each load through them guards its page first, and the collector
  /// protects the rest in increments (the flip stays short however big they are). Default 32 (128
  /// KiB); 0 is the default, use SIZE_MAX to protect every array at the flip.
  size_t pending_min_pages = 0;
  /// When a table grows (or compacts) outside marking, each later table update moves at most
  /// this many slots of the old arrays into the new ones, so no single operation copies a large
  /// table; a table whose old arrays have no more slots than this moves at once. Default 4,096;
  /// SIZE_MAX: always at once.
  size_t table_move_slots = 0;
};

/// A pool: allocation point with one pool class and format.
enum class PoolClass : uint8_t {
  kAMS,  ///< automatic mark-sweep, exact references described by a format
  kLO,   ///< leaf objects: no references, never scanned
  kAWL,  ///< automatic weak linked: references at one rank (exact, ephemeron or weak)
};

/// A pool of an arena (created by Arena::create_pool; lives as long as the arena).
class WEAKGC_API Pool {
 public:
  /// The pool's class.
  PoolClass pool_class() const noexcept;
  /// Internal: the pool's state.
  detail::Pool* impl() const noexcept { return impl_; }
  /// Internal: wraps the pool's state (pools are made by Arena::create_pool).
  explicit Pool(detail::Pool* p) : impl_(p) {}

 private:
  detail::Pool* impl_;
};

/// Identifies a registered exact root range.
struct RootId {
  uint64_t value = 0;  ///< 0 for none; otherwise unique within the arena
};

/// The phase of the current collection cycle (for tests and tools).
enum class Phase : uint8_t { kIdle, kMark, kWeak, kSweep };

namespace detail {
/// Internal: the arena state that inline table code reads without a call.
struct ArenaPublished {
  const std::atomic<Phase>* phase;     ///< the current phase (written under the arena lock)
  const std::atomic<uint64_t>* epoch;  ///< 2 × completed cycles, +1 in the weak/sweep phases
  ptrdiff_t view_offset;               ///< collector view address − mutator view address
  bool view_probes;                    ///< ArenaOptions::view_probes
  /// (flips so far << 2) | phase: changes at every flip (after the roots are scanned) and at every
  /// phase change, so one load tells an inline lookup both the phase and, read again later,
  /// whether anything happened meanwhile.
  const std::atomic<uint64_t>* state;
  const uint8_t* pending;  ///< per page: nonzero while pending (atomic byte reads)
  uintptr_t base;          ///< mutator view base: page = (address − base) >> 12
};
}  // namespace detail

/// One garbage-collected heap: pools, roots, and the collector. Not copyable or movable.
class WEAKGC_API Arena {
 public:
  /// Creates an arena; on failure *status says why and the result is null (kBadParam for a
  /// reserve, pause target or growth factor out of its range above, negative, NaN or infinite).
  static std::unique_ptr<Arena> create(const ArenaOptions& options, Status* status) noexcept;
  /// Creates an arena with default options; throws std::bad_alloc / std::runtime_error on failure.
  Arena();
  /// Creates an arena with `options`; throws std::bad_alloc / std::runtime_error on failure.
  explicit Arena(const ArenaOptions& options);
  /// Destroys the arena and every object in it; Roots, tables and guarded arrays that outlive it
  /// are detached (their destructors then do nothing).
  ~Arena();
  Arena(const Arena&) = delete;
  Arena& operator=(const Arena&) = delete;

  /// Creates a pool of the given class. Scanned classes (AMS, AWL) need format.scan.
  Status create_pool(PoolClass cls, const Format* format, Pool** out) noexcept;

  /// Allocates `size` bytes (zeroed) in `pool`. AWL objects take their rank here. The client
  /// initialises the object before its next allocation or collection step. Fails with kNoMemory
  /// (after collecting) or kBadParam (zero or absurd size); the arena stays usable.
  Status alloc(Pool* pool, size_t size, void** out, Rank rank = Rank::kExact) noexcept;

  /// Registers `count` words at `base` (outside the heap) as exact roots. kBadParam for a range
  /// that overlaps the heap, is not word-aligned, wraps the address space or is not all mapped
  /// memory, kAlready for a base
  /// already registered, kNoMemory if the root list cannot grow.
  Status register_root(void** base, size_t count, RootId* out) noexcept;
  /// Removes a root registered with register_root.
  Status remove_root(RootId id) noexcept;

  /// Collects now, stop-the-world: on return every object unreachable at the call is reclaimed
  /// (a cycle past its flip is finished first, then a whole cycle runs).
  void collect() noexcept;
  /// Starts a cycle if none is in progress (the flip), without marking further.
  void start_cycle() noexcept;
  /// Does up to `budget_ns` of collection work (marking, weak processing, sweeping) if a cycle
  /// is in progress. Returns true while a cycle remains in progress.
  bool step(uint64_t budget_ns) noexcept;
  /// The current phase.
  Phase phase() const noexcept;
  /// Whether incremental collection is on (ArenaOptions::incremental / WEAKGC_INCREMENTAL).
  bool incremental() const noexcept;

  /// Registers `obj` for finalization: when it is unreachable but for this registration, it is
  /// kept alive and a message naming it is posted (once). O(1). kBadParam for anything but an
  /// object's base address, kAlready if registered, kNoMemory if out of memory. May be called
  /// again for an object once its message has been taken.
  Status finalize(void* obj) noexcept;
  /// Takes the oldest finalization message, if any: *obj is the object, alive again until the
  /// client drops it. Call from the client's own thread; never blocks.
  bool take_finalized(void** obj) noexcept;

  /// Whether p lies in this arena's mutator view. signal-safe.
  bool contains(const void* p) const noexcept;
  /// Base address of the allocated object containing p, or nullptr. O(1).
  void* object_base(const void* p) const noexcept;
  /// Size of the cell of the allocated object at base (≥ the size allocated), or 0.
  size_t object_size(const void* base) const noexcept;
  /// Whether the object containing p is marked in the current cycle (tests, tools).
  bool is_marked(const void* p) const noexcept;

  /// Makes the pages of [p, p+size) accessible (scanning them now) until unexpose(); nesting
  /// counts.
  Status expose(const void* p, size_t size) noexcept;
  /// Ends one expose() of the same range; false (and nothing changes) if some page of the range
  /// is not exposed, or the range is not in the arena.
  bool unexpose(const void* p, size_t size) noexcept;

  /// A snapshot of the statistics.
  Stats stats() const noexcept;
  /// Checks every invariant of the heap (side tables, protection, reachability of marked
  /// objects); aborts with a message on a violation. Runs after every cycle in debug builds.
  void verify() noexcept;

  /// Registers the calling thread: its stack and registers become ambiguous roots, and the flip
  /// stops it. kAlready if registered, kNoMemory if out of memory. A thread that exits
  /// registered is unregistered for it.
  Status register_thread() noexcept;
  /// Unregisters the calling thread. kNotFound if it was not registered.
  Status unregister_thread() noexcept;
  /// Number of threads registered with this arena.
  size_t thread_count() const noexcept;

  /// Bytes of memory currently committed by the arena's segments.
  size_t committed_bytes() const noexcept;

  /// Internal: the arena's state (for the library's own layers).
  detail::ArenaImpl* impl() const noexcept { return impl_; }
  /// Internal: addresses of the state inline table code reads (valid for the arena's life).
  detail::ArenaPublished published() const noexcept;

 private:
  explicit Arena(detail::ArenaImpl* impl);
  detail::ArenaImpl* impl_;
};

/// Registers the calling thread with an arena for the scope's lifetime (RAII).
class WEAKGC_API ThreadScope {
 public:
  /// Registers the calling thread; aborts on failure other than "already registered".
  explicit ThreadScope(Arena& arena);
  /// Unregisters the thread if this scope registered it.
  ~ThreadScope();
  ThreadScope(const ThreadScope&) = delete;
  ThreadScope& operator=(const ThreadScope&) = delete;

 private:
  Arena& arena_;
  bool registered_;
};

/// Keeps `p` (and the object it points into) reachable up to this point of the program, like Go's
/// runtime.KeepAlive: the compiler must materialise p here.
inline void keep_alive(const void* p) noexcept {
  asm volatile("" : : "r"(p) : "memory");
}

/// Scoped expose: makes an object's pages safe to pass to a syscall or foreign code (a protected
/// page handed to the kernel gives EFAULT, not SIGSEGV) for the guard's lifetime.
class WEAKGC_API ExposeGuard {
 public:
  /// Exposes [p, p+size); aborts if the range is not in the arena.
  ExposeGuard(Arena& arena, const void* p, size_t size);
  /// Ends the exposure (Arena::unexpose of the same range).
  ~ExposeGuard();
  ExposeGuard(const ExposeGuard&) = delete;
  ExposeGuard& operator=(const ExposeGuard&) = delete;

 private:
  Arena& arena_;
  const void* p_;
  size_t size_;
};

}  // namespace weakgc
