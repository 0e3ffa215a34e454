// ArenaImpl: the state of one arena, shared by core/, barrier/, pools/ and weak/.
//
// Invariants (cited by name in the code):
//  .inv.views     mutator address p and collector address p + view_offset name the same byte.
//  .inv.grey      an object is grey iff its mark bit and grey bit are both set; black iff marked
//                 and not grey. grey_count[page] = number of grey objects overlapping the page
//                 (a large AWL object counts once per page it still has unscanned).
//  .inv.barrier   whenever the mutator runs during marking, every page with grey_count > 0 and
//                 no expose is protected (PROT_NONE) — DESIGN.md §4's barrier invariant.
//                 Exception, .inv.pending: a page of a large referent of an owner-guarded
//                 handle (HandleNode::owner_guarded) greyed at the flip may stay unprotected
//                 while pending[page] != 0; its owner guards (guard_for_mutator) a page before
//                 loading from it, and retries the load if a flip happened meanwhile (state).
//                 The mark phase ends only when no page is pending (guard_pending).
//  .inv.black-alloc  objects allocated while a cycle is marking are marked (black).
//  .inv.sweep     mark bits of a segment are only turned into allocation bits by sweep, which
//                 runs only after the weak phase finished; flip requires every segment swept.
//  .inv.lock      every mutation of this state happens with `lock` held by the calling thread;
//                 the fault handler takes it too, and aborts if its own thread already holds it.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <unordered_map>
#include <vector>

#include "core/check.hpp"
#include "core/layout.hpp"
#include "core/threads.hpp"
#include "weakgc/arena.hpp"
#include "weakgc/handle.hpp"

namespace weakgc::detail {

struct PoolBox;
struct EventLog;  // core/events.hpp

enum class SegKind : uint8_t { kFree = 0, kSmall, kLargeHead, kLargeTail };

// Side table of one segment (never inside the segment itself).
struct Segment {
  SegKind kind = SegKind::kFree;
  Rank rank = Rank::kExact;
  uint8_t size_class = 0;
  bool needs_sweep = false;  // marked in the last cycle and not yet swept (.inv.sweep)
  bool scanned = false;      // its pool is scanned (AMS, AWL); false for LO
  bool awl = false;          // its pool is AWL with the library's weak-array layout
  bool client_awl = false;   // its pool is AWL with a client format (MPS's tagging rule)
  bool on_partial = false;   // on its pool's list of segments with free cells
  bool dirty = false;        // free: memory not known to be zero (cached, not yet punched)
  uint32_t cell_size = 0;    // small: bytes per cell
  // small: ceil(2^32 / cell_size); offset / cell_size == (offset * cell_recip) >> 32 exactly for
  // every offset < 64 KiB with cell_size ≤ 16 KiB (the error stays below 2^-16 < 1/cell_size).
  uint32_t cell_recip = 0;
  uint32_t cell_count = 0;   // small: cells in the segment; large: 1
  uint32_t live_cells = 0;   // cells allocated
  uint32_t alloc_hint = 0;   // next cell index worth looking at
  uint32_t nsegs = 1;        // large head: length of the run
  uint32_t head = 0;         // large tail: index of the head segment
  size_t large_size = 0;     // large head: bytes requested (rounded to the grain)
  uint32_t grey_pages = 0;   // large AWL head: pages still unscanned while grey
  uint32_t scan_cursor = 0;  // large AWL head: pages below it scanned this cycle (drain)
  Pool* pool = nullptr;
  uint64_t alloc[kBitmapWords];
  uint64_t mark[kBitmapWords];
  uint64_t grey[kBitmapWords];
};

// Per-page flags.
enum PageFlag : uint8_t {
  kPageProtected = 1,  // the mutator view of the page is PROT_NONE
  kPageDirty = 2,      // on the dirty list: protection to be recomputed
  kPageWeak = 4,       // the page belongs to an AWL segment of weak or ephemeron rank
};

// A fixed-capacity stack in its own mapping: pushing never calls malloc, so the fault handler
// may push. On overflow the `overflowed` flag is set and the collector rescans grey bitmaps.
struct WordStack {
  uintptr_t* data = nullptr;
  size_t size = 0;
  size_t capacity = 0;
  bool overflowed = false;
  bool push(uintptr_t v) noexcept {
    if (size == capacity) {
      overflowed = true;
      return false;
    }
    data[size++] = v;
    return true;
  }
  bool pop(uintptr_t* v) noexcept {
    if (size == 0) return false;
    *v = data[--size];
    return true;
  }
};

// A spin lock that knows its owner, so the fault handler can tell "my own thread holds the
// arena" (a collector bug: abort) from "another thread does" (wait). .inv.lock
struct ArenaLock {
  std::atomic<uint32_t> owner{0};
  uint32_t depth = 0;
  // Where the outermost holder entered: the frames above entry_sp and the registers in
  // entry_regs are the mutator's (ambiguous roots); the frames below are the collector's own,
  // whose locals (the arena's base address, cursors) must not pin objects.
  uintptr_t entry_sp = 0;
  const uintptr_t* entry_regs = nullptr;
  void lock() noexcept;
  void unlock() noexcept;
  bool held_by_me() const noexcept;
};
// Small per-thread identifier (never 0). signal-safe.
uint32_t current_thread_id() noexcept;

struct LockGuard {
  // Spills the caller's callee-saved registers into the guard (in the caller's frame) before
  // locking, and records the guard as the mutator's stack boundary if this is the outermost hold.
  explicit LockGuard(ArenaLock& l) : l_(l) {
    spill_callee_saved(regs_);
    l_.lock();
    if (l_.depth == 1) {
      l_.entry_sp = reinterpret_cast<uintptr_t>(this);
      l_.entry_regs = regs_;
    }
  }
  ~LockGuard() {
    if (l_.depth == 1) {
      l_.entry_sp = 0;
      l_.entry_regs = nullptr;
    }
    l_.unlock();
  }
  ArenaLock& l_;
  uintptr_t regs_[6];
};

struct Pool {
  ArenaImpl* arena = nullptr;
  PoolClass cls = PoolClass::kAMS;
  Format format;
  bool client_awl = false;  // AWL pool whose objects are described by `format`
  // Segments with free cells, per (rank, size class).
  std::vector<uint32_t> partial[3][kNumSizeClasses];
  uint32_t current[3][kNumSizeClasses];  // segment index being allocated from, or UINT32_MAX
};

// A pool with its public handle (weakgc::Pool points back at it).
struct PoolBox {
  Pool pool;
  weakgc::Pool handle{&pool};
};

struct ExactRoot {
  void** base;
  size_t count;
  uint64_t id;
};

struct ArenaImpl {
  // --- Address space (core/vm.cpp) ---
  char* base = nullptr;   // mutator view
  char* cbase = nullptr;  // collector view
  ptrdiff_t view_offset = 0;
  size_t reserve = 0;
  size_t nsegs = 0;
  size_t npages = 0;
  int memfd = -1;
  Segment* segs = nullptr;            // nsegs descriptors (own mapping, committed lazily)
  uint32_t* grey_count = nullptr;     // per page
  uint8_t* page_flags = nullptr;      // per page
  uint16_t* exposed = nullptr;        // per page: expose() nesting count
  uint16_t* single_access = nullptr;  // per page: emulated accesses this cycle
  uint8_t* pending = nullptr;  // per page: 1 while pending (.inv.pending); atomic byte accesses
  uint32_t seg_hint = 0;
  size_t seg_limit = 0;  // one past the highest segment ever claimed; all above are free, so
                         // per-cycle loops end here, not at nsegs (O(heap), not O(reserve))
  size_t segs_in_use = 0;
  size_t cached_segs = 0;  // free segments whose memory is still committed (dirty)

  ArenaOptions options;
  bool incremental = true;
  ArenaLock lock;
  Stats stats;
  std::atomic<int> faults_in_flight{0};  // threads inside handle_fault (statistics)

  // --- Pools ---
  std::vector<PoolBox*> pools;
  weakgc::Pool* weak_pool = nullptr;  // built-in AWL pool for weak arrays (weak/)
  // Built-in pools, created on first use under the lock and read without it (pools/typed.cpp).
  std::atomic<weakgc::Pool*> typed_pool{nullptr};  // AMS pool for GcObject
  std::atomic<weakgc::Pool*> leaf_pool{nullptr};   // LO pool

  // --- Roots ---
  std::vector<ExactRoot> roots;
  uint64_t next_root_id = 1;
  std::vector<ThreadState*> threads;  // registered mutator threads (core/threads.hpp)
  HandleNode* handles = nullptr;      // intrusive list of Root<T> handles

  // --- Collector state (core/collector.cpp) ---
  // Written under the lock only; atomic so that Arena::phase() and the tables can read it
  // without the lock. epoch = 2 * completed cycles + (1 while weak or sweeping): splat counters
  // only change at odd epochs.
  std::atomic<Phase> phase{Phase::kIdle};
  std::atomic<uint64_t> epoch{0};
  // (flips so far << 2) | phase: changes at every flip (after the roots are scanned) and every
  // phase change. Inline lookups read only this word; a guarded load retries if it changed.
  std::atomic<uint64_t> state{0};
  // Page ranges [first, last] set pending at the flip, guarded from the front (.inv.pending).
  std::vector<std::pair<size_t, size_t>> pending_ranges;
  size_t pending_front = 0;  // ranges before it are fully guarded
  static_assert(static_cast<uint64_t>(Phase::kSweep) < 4, "the phase fits state's low 2 bits");
  void set_phase(Phase p) noexcept {
    phase.store(p, std::memory_order_release);
    epoch.store(stats.cycles * 2 + (p == Phase::kWeak || p == Phase::kSweep ? 1 : 0),
                std::memory_order_release);
    state.store((state.load(std::memory_order_relaxed) & ~uint64_t{3}) | static_cast<uint64_t>(p),
                std::memory_order_release);
  }
  bool in_collector = false;  // the collector is running on some thread
  WordStack mark_stack;       // grey objects (mutator addresses) to scan
  WordStack dirty;            // page indices whose protection must be recomputed
  bool dirty_overflowed = false;
  // A full collection whose thread is the only registered one holds the lock from start to end,
  // so no mutator runs meanwhile and .inv.barrier asks for nothing: every page stays
  // unprotected and grey changes are not recorded (collect_full, drop_barrier).
  bool barrier_off = false;
  size_t sweep_cursor = 0;  // next segment to sweep
  size_t weak_cursor = 0;   // next segment in the weak phase
  int mark_subphase = 0;    // 0 exact, 1 ephemeron passes, 2 final, 3 exact after final
  size_t eph_cursor = 0;    // ephemeron pass: segment, cell and entry to resume at
  uint32_t eph_cell = 0;
  uint64_t eph_entry = 0;
  uint64_t eph_mark_start = 0;
  bool final_done = false;
  uint64_t bytes_since_cycle = 0;
  uint64_t trigger = 0;
  double work_credit = 0;  // bytes of marking owed by allocation (pacing)
  uint64_t marked_this_cycle = 0;
  uint64_t live_after_sweep = 0;
  int (*mprotect_fn)(void*, size_t, int) = nullptr;  // injectable for tests
  double mprotect_ns = 4000;   // moving average of one mprotect call (about 3–6 µs on a VM)
  EventLog* events = nullptr;  // the event log, or null when off (core/events.hpp)

  // --- Finalization (.inv.final) ---
  // Registered objects, each once; an object's bit in final_bits (per segment with any, a bit per
  // cell) is set exactly while it is registered, so registering is O(1) however many there are.
  std::vector<uintptr_t> final_registered;
  std::unordered_map<size_t, std::unique_ptr<uint64_t[]>> final_bits;
  size_t final_cache_seg = SIZE_MAX;  // final_word's last segment and its bitmap
  uint64_t* final_cache_bits = nullptr;
  size_t final_cursor = 0;  // run_finalization's progress through final_registered this cycle
  size_t final_kept = 0;    // entries below final_cursor still registered, compacted in place
  // Messages not yet taken: final_queue[final_head, size). Its capacity covers every registered
  // object too (reserved by finalize), so queueing in the collector never allocates.
  std::vector<uintptr_t> final_queue;
  size_t final_head = 0;
  // The messages a cycle must still grey (.inv.final-roots): final_queue[final_scan_next,
  // final_scan_end), those untaken at the flip. The flip does not scan them; the first marking
  // increments do (scan_final_queue), and take_finalized greys one it hands over first.
  size_t final_scan_next = 0;
  size_t final_scan_end = 0;
  uint64_t final_root_id = 0;

  // ---------------------------------------------------------------- address helpers
  bool in_arena(uintptr_t p) const noexcept {
    return p - reinterpret_cast<uintptr_t>(base) < reserve;
  }
  size_t seg_index(uintptr_t p) const noexcept {
    return (p - reinterpret_cast<uintptr_t>(base)) >> kSegmentShift;
  }
  size_t page_index(uintptr_t p) const noexcept {
    return (p - reinterpret_cast<uintptr_t>(base)) >> kPageShift;
  }
  uintptr_t seg_base(size_t idx) const noexcept {
    return reinterpret_cast<uintptr_t>(base) + (idx << kSegmentShift);
  }
  uintptr_t page_addr(size_t page) const noexcept {
    return reinterpret_cast<uintptr_t>(base) + (page << kPageShift);
  }
  template <class T>
  T* cview(uintptr_t p) const noexcept {
    return reinterpret_cast<T*>(p + view_offset);
  }

  // ---------------------------------------------------------------- vm.cpp
  Status init_vm(size_t reserve_bytes) noexcept;
  void destroy_vm() noexcept;
  // Finds and claims a run of n free segments; returns the first index or SIZE_MAX.
  size_t claim_segments(size_t n) noexcept;
  // Returns a run of segments to the free state (their memory stays cached, dirty).
  void release_segments(size_t first, size_t n) noexcept;
  // Gives the memory of cached free segments beyond the cache bound back to the OS; with a
  // deadline (≠ 0) it stops when the deadline passes and returns false if some is left.
  bool trim_free_segments(uint64_t deadline = 0) noexcept;
  // Sets the protection of [first_page, first_page+n) of the mutator view. signal-safe.
  bool set_protection(size_t first_page, size_t n, bool protect) noexcept;

  // ---------------------------------------------------------------- heap.cpp
  // Resolves p to (segment, cell). interior: accept any address inside the object; otherwise
  // only its base. Returns false if p is not an allocated object. signal-safe.
  // Inline for small-object segments (the marking hot path); the rest is resolve_slow. A marked
  // cell is allocated (mark bits are set only on allocated cells and cleared by sweep with the
  // dead cells' allocation bits), so the mark word, which marking reads next anyway, is tested
  // first and the allocation word only for an unmarked cell.
  bool resolve(uintptr_t p, bool interior, size_t* seg, uint32_t* cell,
               uintptr_t* obj_base) const noexcept {
    if (!in_arena(p)) return false;
    size_t si = seg_index(p);
    const Segment& s = segs[si];
    if (s.kind != SegKind::kSmall) return resolve_slow(p, interior, seg, cell, obj_base);
    uintptr_t sb = seg_base(si);
    uint32_t c = static_cast<uint32_t>(((p - sb) * uint64_t{s.cell_recip}) >> 32);
    if (c >= s.cell_count) return false;
    uintptr_t obj = sb + uintptr_t{c} * s.cell_size;
    if (!interior && obj != p) return false;
    uint64_t m = uint64_t{1} << (c & 63);
    if (!(s.mark[c >> 6] & m) && !(s.alloc[c >> 6] & m)) return false;
    *seg = si;
    *cell = c;
    *obj_base = obj;
    return true;
  }
  bool resolve_slow(uintptr_t p, bool interior, size_t* seg, uint32_t* cell,
                    uintptr_t* obj_base) const noexcept;
  // Prefetches the descriptor of the segment holding v (if v is an arena address), the first
  // thing resolving it reads. signal-safe.
  void prefetch_segment(uintptr_t v) const noexcept {
    if (in_arena(v)) __builtin_prefetch(&segs[seg_index(v)]);
  }
  // Prefetches the mark word of v's cell; worth it once the descriptor is cached (a lookahead
  // after prefetch_segment). signal-safe.
  void prefetch_mark_word(uintptr_t v) const noexcept {
    if (!in_arena(v)) return;
    size_t si = seg_index(v);
    const Segment& s = segs[si];
    if (s.kind != SegKind::kSmall) return;
    uint32_t c = static_cast<uint32_t>(((v - seg_base(si)) * uint64_t{s.cell_recip}) >> 32);
    if (c < kMaxCells) __builtin_prefetch(&s.mark[c >> 6]);
  }
  size_t object_size(const Segment& s) const noexcept {
    return s.kind == SegKind::kLargeHead ? s.large_size : s.cell_size;
  }
  Status allocate(Pool* pool, size_t size, Rank rank, void** out) noexcept;
  Status allocate_small(Pool* pool, uint32_t sc, Rank rank, void** out) noexcept;
  // Reserves up to max_cells (≤ 64) free cells of one allocation-bitmap word of a segment of
  // (pool, rank, class): sets their allocation bits (and mark bits while marking), zeroes
  // them, and returns the word's first cell address and the mask of cells taken (lock held).
  Status reserve_cells(Pool* pool, uint32_t sc, Rank rank, uint32_t max_cells, uintptr_t* word_base,
                       uint64_t* mask) noexcept;
  // Refills a thread's allocation buffer and takes one cell from it (lock held). Falls back to
  // allocate() when the thread is not registered with this arena.
  Status refill_tlab(ThreadState* t, TlabBin* b, Pool* pool, Rank rank, uint32_t sc, size_t size,
                     void** out) noexcept;
  Status allocate_large(Pool* pool, size_t size, Rank rank, void** out) noexcept;
  void init_segment(size_t idx, Pool* pool, Rank rank, uint32_t sc) noexcept;
  // Sweeps one segment (.inv.sweep); returns bytes freed.
  size_t sweep_segment(size_t idx) noexcept;

  // ---------------------------------------------------------------- collector.cpp
  // Marks the object at (seg, cell) and greys it if it is scanned. signal-safe.
  void mark_object(size_t seg, uint32_t cell, uintptr_t obj) noexcept {
    if (segs[seg].mark[cell >> 6] & (uint64_t{1} << (cell & 63))) return;  // already marked
    mark_object_slow(seg, cell, obj);
  }
  void mark_object_slow(size_t seg, uint32_t cell, uintptr_t obj) noexcept;
  // Fixes an ambiguous word (interior pointers count). signal-safe.
  void fix_ambiguous(uintptr_t v) noexcept;
  // Scans one grey object at `rank_override`-appropriate rank and blackens it. signal-safe.
  void scan_object(size_t seg, uint32_t cell, uintptr_t obj, bool weak_phase) noexcept;
  // Scans the grey objects overlapping one page (exact rank unless weak_phase). signal-safe.
  void scan_page(size_t page, bool weak_phase) noexcept;
  // Scans the part of a large AWL object lying in one page. signal-safe.
  void scan_large_awl_page(size_t head, size_t page, bool weak_phase) noexcept;
  // Scans slots [from, to) of an AWL array (mutator addresses of the slots). signal-safe.
  void scan_awl_slots(uintptr_t obj, uintptr_t from, uintptr_t to, Rank rank,
                      bool weak_phase) noexcept;
  // The dependent of a client AWL object (format.find_dependent), validated; 0 if none or if
  // it is garbage (counted, reported in debug builds). signal-safe.
  uintptr_t client_dependent(const Segment& s, uintptr_t obj) noexcept;
  // Moves the surviving half of a splatted entry to the array's graveyard. signal-safe.
  void bury(AwlHeader* h, size_t index, uintptr_t survivor) noexcept;
  void note_grey_change(size_t page) noexcept;
  // Estimated time the pending protection changes will take (dirty pages, at the measured cost
  // of one mprotect; coalescing makes it an upper bound). With a 30% margin: when the pages do
  // not coalesce, calls cost more than the running average (each splits or merges a mapping),
  // and pause_bench's tree increments reached a 1 ms budget without it (`pause_bench tree alloc
  // 1048575 1`: longest increment 0.85-1.01 ms over 17 runs; 0.77-0.90 ms over 6 with it and
  // drain's per-object debt check).
  uint64_t protection_debt_ns() const noexcept {
    return static_cast<uint64_t>(static_cast<double>(dirty.size) * mprotect_ns * 1.3);
  }
  // True when an increment with this deadline (0: none) must stop now to pay for the protection
  // changes it owes within its budget. Every bounded loop of an increment asks this between
  // work units (a page of a large array, a segment, 16 objects).
  bool out_of_time(uint64_t deadline) const noexcept {
    return deadline != 0 && now_ns() + protection_debt_ns() > deadline;
  }
  void grey_pages(uintptr_t obj, size_t size, int delta) noexcept;
  // .inv.pending: leaves the pages of the grey large object `obj` (an owner-guarded root's
  // referent) unprotected until guarded. Flip only, with the world stopped: allocates nothing
  // (flip reserves pending_ranges first; a stopped thread may hold the malloc lock).
  void make_pending(uintptr_t obj) noexcept;
  bool is_pending(size_t page) const noexcept {
    return __atomic_load_n(&pending[page], __ATOMIC_RELAXED) != 0;
  }
  // Ends page's pending state: if it still holds grey objects it goes on the dirty list, so the
  // next update_protection protects it (from then on the barrier guards it).
  void guard_page(size_t page) noexcept;
  // Guards pending pages in order until none is left (true) or the deadline (false).
  bool guard_pending(uint64_t deadline) noexcept;
  // For a mutator about to load from `addr`: greys the slot's referent if its page is pending.
  // Takes the lock.
  void guard_for_mutator(uintptr_t addr) noexcept;
  // For a mutator about to overwrite the slot at `addr` (or, for an array without dependents,
  // to load from it): a pending exact-rank page is scanned now (as a barrier fault on it would
  // be) and stops being pending; weak pages need nothing (an emulated store greys nothing
  // either). Takes the lock.
  void guard_page_for_mutator(uintptr_t addr) noexcept;
  // Forgets every pending page (the barrier is dropped or the cycle is over).
  void clear_pending() noexcept;
  // Applies pending protection changes in coalesced runs (.inv.barrier). signal-safe.
  void update_protection() noexcept;
  void unprotect_all() noexcept;
  // Unprotects every page, empties the dirty list and sets barrier_off (collect_full only).
  void drop_barrier() noexcept;
  void flip() noexcept;
  void scan_roots() noexcept;
  void scan_thread_stacks() noexcept;
  // Does collection work for up to budget_ns (or to completion if budget_ns == 0).
  bool work(uint64_t budget_ns) noexcept;
  bool drain(uint64_t deadline) noexcept;
  bool ephemeron_pass(uint64_t deadline) noexcept;
  // Phase 4, incremental: false if the deadline came first (resumes at final_cursor).
  bool run_finalization(uint64_t deadline) noexcept;
  // Greys the messages untaken at the flip, in units of 256: false if the deadline came first.
  bool scan_final_queue(uint64_t deadline) noexcept;
  // take_finalized is handing over final_queue[index]: grey it if the cycle has yet to.
  void message_taken(size_t index) noexcept;
  // final_queue lost its first `by` entries (taken ones): the scan window moves with them.
  void final_queue_shifted(size_t by) noexcept;
  // The word of final_bits holding `cell`'s bit in segment `seg`; made (zeroed) if `create`,
  // else null if the segment has none. May throw std::bad_alloc when creating.
  uint64_t* final_word(size_t seg, uint32_t cell, bool create);
  bool weak_phase(uint64_t deadline) noexcept;
  bool sweep(uint64_t deadline) noexcept;
  void finish_cycle(uint64_t deadline) noexcept;
  void collect_full() noexcept;
  void maybe_collect_before_alloc(size_t bytes) noexcept;
  void rescan_grey_bitmaps() noexcept;
  void verify() noexcept;

  // ---------------------------------------------------------------- barrier (barrier/)
  // Handles a barrier fault at `addr` with the signal's context; returns true if handled.
  bool handle_fault(uintptr_t addr, void* ucontext) noexcept;
};

// The buffer slot of a thread for (pool, rank, size class): direct-mapped.
inline size_t tlab_index(const Pool* pool, Rank rank, uint32_t sc) noexcept {
  uintptr_t h = reinterpret_cast<uintptr_t>(pool) >> 4;
  return (h * 0x9E3779B97F4A7C15ull >> 58 ^ (sc * 7 + static_cast<uint32_t>(rank) * 29)) %
         kTlabBins;
}

// Registry of live arenas, read by the fault handler without locks.
inline constexpr int kMaxArenas = 64;
extern std::atomic<ArenaImpl*> g_arenas[kMaxArenas];
// Finds the arena whose mutator view contains p. signal-safe.
ArenaImpl* arena_for(uintptr_t p) noexcept;

}  // namespace weakgc::detail
