// Weak hash tables (DESIGN.md §7, docs/design/weak.md): weak-key, weak-value, doubly weak and
// ephemeron tables, and weak sets, on weak arrays (weakgc/weak_array.hpp).
//
// Three layers, from the bottom:
//  - raw::  one table's storage (a key array, a value array, a control-byte array and, for
//           content keys, a full-hash array) and the probing operations on it. For runtimes that
//           keep the arrays in their own heap objects and bring their own hash and equality.
//  - WeakTable: an untyped table (void* keys and values) owning its arrays through Root
//           handles, with growth, tombstone accounting and dead-entry notification.
//  - WeakKeyTable<K, V>, WeakValueTable<K, V>, DoublyWeakTable<K, V>, EphemeronTable<K, V>,
//           WeakSet<K>: typed wrappers (K, V are arena objects, e.g. made with make<T>).
//
// Invariants and promises (tags are in docs/design/weak.md):
//  .inv.probe    a lookup touches a weak slot only where the slot's control byte (a 7-bit hash
//                tag in a leaf array, never protected) matches; for content keys also the full
//                64-bit hash. An identity lookup compares the slot in memory (cmpq), which the
//                barrier emulates without keeping the slot's referent alive; only the value it
//                returns (and, for content keys, the one key it compares) is loaded, i.e. strong.
//  .inv.entry    an entry is never half present: the collector splats both slots together
//                (dependent arrays), and the table treats a splatted slot as absent.
//  .inv.no-move  objects never move, so identity hashes stay valid: no rehash after a cycle.
//  .inv.mark-copy  the table never copies (loads) all its keys while the collector is marking,
//                because loading a dead key would keep it alive: growth during marking adds a
//                new generation of arrays and moves the old entries once the marking is over.
//  .inv.move     no operation moves more than ArenaOptions::table_move_slots slots: a large
//                table grows into a new generation and later operations move its entries a
//                bounded number of slots at a time (updates only: a lookup changes nothing, so
//                iterating while looking up is safe).
//  .inv.exhaustion  an operation that cannot get arena memory throws std::bad_alloc and leaves
//                the table as it was; an insertion that only needs a compaction reuses a
//                tombstone instead. Notification never needs memory (.inv.orphan): take_dead,
//                clear and remove do not throw for lack of it, and lose no survivor.
//
// Threads: a table is used by one thread at a time (no internal locking); for tables shared by
// several threads see weakgc/concurrent_tables.hpp. Never call from a signal handler. Keys and
// values passed in must be reachable (rooted, or on a registered thread's stack) during the
// call, as for any store into the heap.
#pragma once

#include <emmintrin.h>  // SSE2: control bytes compared a group at a time

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

#include "weakgc/gc.hpp"
#include "weakgc/guarded_array.hpp"
#include "weakgc/weak_array.hpp"

namespace weakgc {

/// Which halves of an entry are weak.
enum class TableKind : uint8_t {
  kWeakKey,     ///< keys weak, values strong (while their key lives)
  kWeakValue,   ///< keys strong, values weak
  kDoublyWeak,  ///< both weak: the entry goes when either half dies
  kEphemeron,   ///< keys weak; a value is traced only while its key is otherwise alive
  kWeakSet,     ///< keys weak, no values
};

/// Key equality for content-keyed tables: `stored` is a key loaded from the table (strong now),
/// `probe` what the caller looks for. Must not allocate in the arena.
using KeyEqFn = bool (*)(const void* stored, const void* probe, void* ctx);

namespace raw {

/// Control bytes, one per slot, SwissTable style: a full slot holds 0x80 | the low 7 bits of the
/// hash. Empty is 0, so fresh arena memory (zeroed) is an all-empty control array as it is: a new
/// generation's control bytes are written, and their pages faulted in, only as entries arrive.
inline constexpr uint8_t kCtrlEmpty = 0x00;
inline constexpr uint8_t kCtrlDeleted = 0x01;
inline constexpr size_t kGroupWidth = 16;  ///< control bytes compared at once (SSE2)
inline constexpr size_t kMinCapacity = 16;
inline constexpr size_t kMaxCapacity = size_t{1} << 40;  ///< the most slots a table can have
inline constexpr size_t kNotFound = SIZE_MAX;

/// A slot's control byte is full iff its top bit is set.
inline bool ctrl_full(uint8_t c) noexcept {
  return (c & 0x80) != 0;
}

/// One table's storage. Every pointer is an ordinary heap object (a runtime holding a Slots in
/// its own heap object traces keys, values, ctrl and hashes as exact references).
struct Slots {
  WeakArray* keys = nullptr;    ///< the key array
  WeakArray* values = nullptr;  ///< null for a set
  uint8_t* ctrl = nullptr;      ///< capacity control bytes (a leaf object: never protected)
  uint64_t* hashes = nullptr;   ///< capacity full hashes (a leaf object), or null (identity keys)
  size_t capacity = 0;          ///< a power of two, >= kMinCapacity
};

/// The rank of the key and value arrays of a table kind.
WEAKGC_API Rank key_rank(TableKind kind) noexcept;
WEAKGC_API Rank value_rank(TableKind kind) noexcept;

/// Smallest capacity that holds n entries below the maximum load (7/8); for an n that no table
/// can hold, 2 × kMaxCapacity (which alloc_slots refuses).
WEAKGC_API size_t capacity_for(size_t n) noexcept;
/// Whether a table of `capacity` slots (a power of two, at least kMinCapacity) with `occupied`
/// non-empty control bytes (full + deleted) must grow or compact before one more insertion:
/// whether occupied + 1 would pass 7/8 of the capacity (computed without overflow).
inline bool needs_room(size_t capacity, size_t occupied) noexcept {
  return occupied >= capacity - capacity / 8;
}

/// Allocates the arrays for `capacity` slots (rounded up to a power of two, at least
/// kMinCapacity): keys and values at the kind's ranks, each the other's dependent; all control
/// bytes empty; with `content`, a full-hash array. Each allocation may run collector work: the
/// arrays are reachable only through *out, so keep *out reachable (e.g. in a root) — the
/// function stores each array into *out as soon as it exists. Fails with kNoMemory.
WEAKGC_API Status alloc_slots(Arena& arena, TableKind kind, size_t capacity, bool content,
                              Slots* out) noexcept;

/// Sets `array`'s graveyard: an exact-rank weak array of the same length that receives, when the
/// collector splats slot i of `array`, the surviving half of entry i (if it is still alive).
WEAKGC_API Status set_graveyard(Arena& arena, WeakArray* array, WeakArray* graveyard) noexcept;

/// The address hash of an identity key (objects never move: .inv.no-move). MurmurHash3's
/// finaliser: objects are 16-byte aligned, so every input bit must reach the tag and the index.
inline uint64_t identity_hash(const void* key) noexcept {
  uint64_t x = reinterpret_cast<uintptr_t>(key);
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdULL;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ULL;
  x ^= x >> 33;
  return x;
}

/// The control byte of a full slot for `hash`: the top bit and the hash's low 7 bits.
inline uint8_t tag_of(uint64_t hash) noexcept {
  return static_cast<uint8_t>(0x80 | (hash & 0x7f));
}

/// A hash's home slot: probing starts at its group, and an insertion takes the first free slot
/// at or after it within the group, so that at moderate load an entry sits in its home slot's
/// cache line (a lookup can prefetch that line before the control bytes arrive).
/// .inv.home: a key whose home slot's control byte is empty is absent (an empty byte was empty
/// when the key was inserted, so the insertion would have taken it).
inline size_t home_slot(uint64_t hash, size_t capacity) noexcept {
  return static_cast<size_t>(hash >> 7) & (capacity - 1);
}

/// The probe sequence over groups of kGroupWidth control bytes: triangular steps visit every
/// group of a power-of-two table, so a probe ends at the latest after one pass (.inv.room keeps
/// at least one empty slot).
struct Probe {
  size_t mask;      ///< groups − 1
  size_t group;     ///< the current group
  size_t step = 0;  ///< groups advanced so far
  /// Starts at the group of `hash`'s home slot.
  Probe(uint64_t hash, size_t capacity) noexcept
      : mask(capacity / kGroupWidth - 1), group(home_slot(hash, capacity) / kGroupWidth) {}
  /// The first slot of the current group.
  size_t offset() const noexcept { return group * kGroupWidth; }
  /// Moves to the next group; false once every group was visited.
  bool advance() noexcept {
    ++step;
    group = (group + step) & mask;
    return step <= mask;
  }
};

/// Bit i set iff control byte i of the group at ctrl + offset equals b.
inline unsigned match_byte(const uint8_t* ctrl, size_t offset, uint8_t b) noexcept {
  __m128i g = _mm_loadu_si128(reinterpret_cast<const __m128i*>(ctrl + offset));
  return static_cast<unsigned>(
      _mm_movemask_epi8(_mm_cmpeq_epi8(g, _mm_set1_epi8(static_cast<char>(b)))));
}

/// Bit i set iff control byte i of the group at ctrl + offset is empty or deleted (both have
/// the top bit clear; full bytes have it set).
inline unsigned match_free(const uint8_t* ctrl, size_t offset) noexcept {
  __m128i g = _mm_loadu_si128(reinterpret_cast<const __m128i*>(ctrl + offset));
  return ~static_cast<unsigned>(_mm_movemask_epi8(g)) & 0xffffu;
}

/// Of the free slots `free_mask` of the group at `offset`, the one an insertion of `hash`
/// takes: the first at or after the home slot, else the group's first.
inline size_t pick_free(uint64_t hash, size_t capacity, size_t offset,
                        unsigned free_mask) noexcept {
  unsigned from = static_cast<unsigned>(home_slot(hash, capacity) & (kGroupWidth - 1));
  unsigned after = free_mask & (~0u << from);
  return offset + static_cast<size_t>(__builtin_ctz(after != 0 ? after : free_mask));
}

/// Index of the slot holding `key` (compared in memory, never loaded: .inv.probe), or
/// kNotFound. `hash` is identity_hash(key). With `view_offset` (the arena's collector view
/// offset, ArenaPublished) the key slots are compared through the collector's view: no barrier
/// fault during a collection.
WEAKGC_API size_t find_identity(const Slots& s, uint64_t hash, const void* key,
                                ptrdiff_t view_offset = 0) noexcept;
/// Loads a key slot for find_content (e.g. guarding it first); ctx is find_content's load_ctx.
using SlotLoadFn = uintptr_t (*)(const uintptr_t* slot, void* ctx);
/// Index of the slot whose key equals `probe` by `eq`, or kNotFound. Loads (keeps alive) a
/// stored key only when its full hash equals `hash`, with `load` if given (else a plain slot
/// load); the matching key goes to *key if non-null.
WEAKGC_API size_t find_content(const Slots& s, uint64_t hash, const void* probe, KeyEqFn eq,
                               void* ctx, uintptr_t* key = nullptr, SlotLoadFn load = nullptr,
                               void* load_ctx = nullptr) noexcept;
/// Index of an empty or deleted slot on `hash`'s probe path: in the first group that has one,
/// as pick_free chooses (the table must have room).
WEAKGC_API size_t find_free(const Slots& s, uint64_t hash) noexcept;

/// Fills slot i (control byte, hash, key, value). `value` is ignored for sets.
WEAKGC_API void store(const Slots& s, size_t i, uint64_t hash, const void* key,
                      const void* value) noexcept;
/// Replaces the value of slot i.
WEAKGC_API void store_value(const Slots& s, size_t i, const void* value) noexcept;
/// Deletes slot i: both halves become kDeleted and the control byte deleted.
WEAKGC_API void erase(const Slots& s, size_t i) noexcept;
/// Marks slot i's control byte deleted (the collector already splatted its halves).
inline void forget(const Slots& s, size_t i) noexcept {
  s.ctrl[i] = kCtrlDeleted;
}

/// Loads slot i's key / value: the result is strong (the barrier keeps it alive). Either may be
/// kDeleted if the collector splatted the entry.
WEAKGC_API uintptr_t load_key(const Slots& s, size_t i) noexcept;
WEAKGC_API uintptr_t load_value(const Slots& s, size_t i) noexcept;
/// Whether the collector splatted slot i's entry (compares in memory: loads nothing). For kinds
/// with weak values, touching the value slot first makes the weak phase settle its page too.
WEAKGC_API bool splatted(const Slots& s, size_t i) noexcept;
/// Whether slot i's value slot holds kDeleted (compares in memory: loads nothing).
WEAKGC_API bool value_splatted(const Slots& s, size_t i) noexcept;
/// Entries the collector has splatted in these arrays since they were allocated (the sum of the
/// arrays' `splatted` counters).
WEAKGC_API uint64_t splat_count(const Slots& s) noexcept;

}  // namespace raw

/// A dead-entry notification: the surviving half of an entry the collector splatted. Exactly
/// one of key and value is non-null (the one that was still alive).
struct DeadEntry {
  void* key = nullptr;    ///< the surviving key, or null
  void* value = nullptr;  ///< the surviving value, or null
};

/// Counters of one table, for tests and tools.
struct TableStats {
  size_t capacity = 0;          ///< slots over all generations
  size_t generations = 0;       ///< arrays sets (more than one only while a move is deferred)
  size_t occupied = 0;          ///< full control bytes (live entries + splats not yet noticed)
  size_t tombstones = 0;        ///< deleted control bytes (removals and noticed splats)
  uint64_t splats_noticed = 0;  ///< splatted entries the table has turned into tombstones
  uint64_t rebuilds = 0;        ///< compactions / growths that moved entries
  uint64_t deferred_moves = 0;  ///< growths during marking that added a generation instead
};

/// An untyped weak table: keys and values are void* to arena objects (or, for non-weak halves,
/// any word other than kEmpty and kDeleted). Identity keys by default; content keys with a hash
/// and an equality function.
///
/// Valid call sequence: construct; any operations; destroy (before or after the arena: roots
/// outliving the arena are detached). Iteration must not be interleaved with put, remove,
/// clear or reserve on the same table.
class WEAKGC_API WeakTable {
 public:
  /// Content keys: hash(key) and eq(stored, probe); both called with arena objects.
  struct ContentKeys {
    uint64_t (*hash)(const void* key, void* ctx) = nullptr;  ///< content hash of a key
    KeyEqFn eq = nullptr;                                    ///< content equality
    void* ctx = nullptr;                                     ///< passed to hash and eq
  };

  /// A table of `kind` keyed by identity (address), with room for `capacity` entries (its
  /// arrays allocated now if capacity > 0). Throws std::bad_alloc if the arena is exhausted,
  /// std::length_error if `capacity` entries need more than raw::kMaxCapacity slots.
  explicit WeakTable(Arena& arena, TableKind kind, size_t capacity = 0);
  /// A table of `kind` keyed by content (hash and eq must be set, else std::invalid_argument);
  /// capacity as above.
  WeakTable(Arena& arena, TableKind kind, const ContentKeys& content, size_t capacity = 0);
  /// Drops the table (its arrays become garbage); safe after the arena is gone.
  ~WeakTable();
  WeakTable(const WeakTable&) = delete;
  WeakTable& operator=(const WeakTable&) = delete;

  /// The value stored for `key` (strong: the caller holds it), or nullptr. For a set: `key`'s
  /// stored equal, or nullptr.
  void* get(const void* key) {
    if (fast_.ctrl == nullptr || key == nullptr) [[unlikely]]
      return get_moving(key);
    // Inline only while no collection is in progress: nothing is protected or pending then.
    // During one, get_collecting compares keys through the collector's view and guards loads.
    const uint64_t s0 = published_.state->load(std::memory_order_acquire);
    if (static_cast<Phase>(s0 & 3) != Phase::kIdle) [[unlikely]]
      return get_collecting(key, static_cast<Phase>(s0 & 3));
    size_t i = find_fast(fast_, key, raw::identity_hash(key), nullptr, Phase::kIdle);
    if (i == raw::kNotFound) return nullptr;
    return fast_.values == nullptr ? const_cast<void*>(key) : load_fast_value(&fast_.values[i], s0);
  }
  /// Whether an entry for `key` is present. Identity tables load nothing (keep nothing alive);
  /// content tables load the one stored key whose full hash matches, to compare it.
  bool contains(const void* key) {
    if (fast_.ctrl == nullptr || key == nullptr || fast_.weak_values) return contains_slow(key);
    return find_fast(key, raw::identity_hash(key), nullptr) != raw::kNotFound;
  }
  /// Stores key -> value (value ignored for sets; must not be null otherwise); true if it made
  /// a new entry, false if it replaced a value (or, for sets, the key was present). The replaced
  /// value is not loaded, so not kept alive — except in ephemeron tables, where it stays alive
  /// until the current cycle ends. Throws std::bad_alloc if the table must grow and the arena is
  /// exhausted; the table is then unchanged. Throws std::invalid_argument if key is null or
  /// kDeleted, or (kinds with values) value is.
  bool put(void* key, void* value) {
    if (fast_.ctrl != nullptr && reinterpret_cast<uintptr_t>(key) > kDeleted &&
        (fast_.values == nullptr || reinterpret_cast<uintptr_t>(value) > kDeleted) &&
        !raw::needs_room(fast_.capacity, *fast_.used + *fast_.tombstones) && settled()) {
      uint64_t h = raw::identity_hash(key);
      size_t free_slot = raw::home_slot(h, fast_.capacity);
      __builtin_prefetch(&fast_.keys[free_slot], 1);  // for writing: most entries go home
      if (fast_.values != nullptr) __builtin_prefetch(&fast_.values[free_slot], 1);
      // An empty home slot means the key is absent (.inv.home), and gives a store address that
      // does not wait for the control bytes.
      if (fast_.ctrl[free_slot] == raw::kCtrlEmpty ||
          find_fast(key, h, &free_slot) == raw::kNotFound) {
        // A new entry (the common case); replacing a value goes the long way.
        if (fast_.ctrl[free_slot] == raw::kCtrlDeleted) --*fast_.tombstones;
        detail::slot_store(&fast_.keys[free_slot], reinterpret_cast<uintptr_t>(key));
        if (fast_.values != nullptr)
          detail::slot_store(&fast_.values[free_slot], reinterpret_cast<uintptr_t>(value));
        fast_.ctrl[free_slot] = raw::tag_of(h);
        ++*fast_.used;
        return true;
      }
    }
    return put_impl(key, value, nullptr);
  }
  /// Removes `key`'s entry; true if there was one. Keeps the removed value alive only in
  /// ephemeron tables (until the current cycle ends), as put does.
  bool remove(const void* key);
  /// Like put, but returns the value replaced (loaded: strong, kept alive) or nullptr if the
  /// entry is new; for sets, the equal key already present.
  void* exchange(void* key, void* value);
  /// Like remove, but returns the removed value (loaded: strong) or nullptr; for sets, the
  /// stored key.
  void* take(const void* key);
  /// Removes every entry (no notifications for them). Deaths before the call are still
  /// reported by take_dead. Needs no arena memory.
  void clear();
  /// Makes room for n entries without further growth, and finishes a move under way (outside
  /// marking; O(size)): a table that grew and is then only read may call reserve(0) to get back
  /// to one generation. Throws std::bad_alloc (table unchanged), or std::length_error if n
  /// entries need more than raw::kMaxCapacity slots.
  void reserve(size_t n);
  /// Number of entries. May count entries that died in the last collection until the table
  /// notices (it reconciles with the arrays' splat counters, which are exact once the
  /// collector's weak phase has finished): an upper bound during a collection.
  size_t size();

  /// Content lookup with a probe that is not a key: `eq(stored, probe, ctx)` decides, `hash` must
  /// equal the content hash of the key sought. Returns the stored key (strong) or nullptr; sets
  /// *value (strong) if non-null.
  void* find_by(uint64_t hash, const void* probe, KeyEqFn eq, void* ctx, void** value = nullptr);

  /// Inserts key -> value with its content `hash` (identity tables: ignored), for a key the
  /// caller has just looked up and not found (find_by) — no second lookup. Throws std::bad_alloc;
  /// std::invalid_argument for a key or value that put refuses.
  void put_new(uint64_t hash, void* key, void* value);

  /// Turns on dead-entry notification: from now on, the surviving half of every entry the
  /// collector splats is queued (kept alive) until take_dead() returns it. Not for sets.
  Status enable_notification();
  /// Takes a dead-entry notification (the oldest queued first), if any. Call from the table's
  /// thread at any time. Needs no arena memory: in an exhausted arena it still hands over every
  /// survivor, once.
  bool take_dead(DeadEntry* out);

  /// Calls f(key, value) for every entry that is present (never a splatted one; value is null
  /// for sets). Both are strong while f runs (iterating during marking keeps the entries it
  /// visits alive for the cycle). f must not modify the table; it may allocate.
  template <class F>
  void for_each(F&& f) {
    Cursor c;
    void* k;
    void* v;
    while (next(&c, &k, &v)) f(k, v);
  }

  /// Iteration primitive: position before the first entry.
  struct Cursor {
    size_t gen = 0;   ///< generation of arrays
    size_t slot = 0;  ///< next slot in it
  };
  /// Advances to the next present entry; false at the end.
  bool next(Cursor* c, void** key, void** value);

  /// Counters (does not reconcile).
  TableStats stats() const;
  /// The table's kind.
  TableKind kind() const noexcept { return kind_; }
  /// The arena the table lives in.
  Arena& arena() const noexcept { return arena_; }

 private:
  struct Gen;
  struct Found {
    Gen* gen = nullptr;
    size_t slot = 0;
  };

  // The inline paths (get, contains, put of a new key) serve identity tables with one
  // generation of arrays, and fall back to the out-of-line operations for everything else
  // (content keys, a deferred move, replacing a value, a table that must grow or reconcile).
  // refresh_fast() rebuilds this after anything that changes the generations or reconciles.
  struct Fast {
    uint8_t* ctrl = nullptr;  ///< null: every operation takes the out-of-line path
    uintptr_t* keys = nullptr;
    uintptr_t* values = nullptr;  ///< null for sets
    size_t capacity = 0;
    size_t* used = nullptr;  ///< the generation's counters
    size_t* tombstones = nullptr;
    uint64_t clean_epoch = ~uint64_t{0};  ///< even epoch at which every splat was noticed
    bool weak_values = false;
  };
  // Idle lookups (get only) of an identity table while a move is under way: the two
  // generations' arrays (ctrl, keys, values, capacity of each) and how far the move has come.
  // An entry whose home slot in the oldest generation lies behind the cursor has most likely
  // been moved; a probe that misses in the likelier generation falls back to get_slow.
  struct Moving {
    Fast old;          ///< ctrl null: no move under way (or not an identity table)
    Fast cur;          ///< the newest generation
    size_t moved = 0;  ///< move_cursor_
  };

  // get() of an identity table with a move under way (two generations), while idle: probes
  // the likelier generation inline (.inv.move: an entry is in exactly one; a miss there falls
  // back to get_slow, which probes both). Anything else goes to get_slow.
  [[gnu::noinline]] void* get_moving(const void* key) {
    if (moving_.old.ctrl == nullptr || key == nullptr) return get_slow(key);
    const uint64_t s0 = published_.state->load(std::memory_order_acquire);
    if (static_cast<Phase>(s0 & 3) != Phase::kIdle) return get_slow(key);
    const uint64_t h = raw::identity_hash(key);
    const Fast& f =
        raw::home_slot(h, moving_.old.capacity) < moving_.moved ? moving_.cur : moving_.old;
    size_t i = find_fast(f, key, h, nullptr, Phase::kIdle);
    if (i == raw::kNotFound) return get_slow(key);
    return f.values == nullptr ? const_cast<void*>(key) : load_fast_value(&f.values[i], s0);
  }
  // The value at vs, found while the arena's state word read s0 (idle): a flip since (another
  // thread's collector work can flip at any instruction) may have made the value's page pending
  // before the load, so then it is loaded again, guarded.
  void* load_fast_value(const uintptr_t* vs, uint64_t s0) noexcept {
    uintptr_t v = detail::slot_load(vs);
    std::atomic_signal_fence(std::memory_order_seq_cst);
    if (published_.state->load(std::memory_order_acquire) != s0) [[unlikely]]
      v = load_slot(vs);
    return v == kDeleted ? nullptr : reinterpret_cast<void*>(v);
  }

  // Slot of `key` in the single generation, or kNotFound; with `free_slot`, also the slot an
  // insertion of `key` would take. Probes the control bytes and compares (never loads) a key
  // slot only on a tag match (.inv.probe). While a collection is in progress the key array's
  // pages may be protected: the compare reads the slot through the collector's view, the same
  // memory never protected, which keeps nothing alive either and costs no barrier fault.
  size_t find_fast(const void* key, uint64_t h, size_t* free_slot) const noexcept {
    return find_fast(fast_, key, h, free_slot, published_.phase->load(std::memory_order_relaxed));
  }
  // As above, in the arrays of `f` (fast_, or one of moving_'s generations), with the phase
  // already read.
  size_t find_fast(const Fast& f, const void* key, uint64_t h, size_t* free_slot,
                   Phase ph) const noexcept {
    const uintptr_t* keys = f.keys;
    if (published_.view_probes && ph != Phase::kIdle)
      keys = reinterpret_cast<const uintptr_t*>(reinterpret_cast<const char*>(keys) +
                                                published_.view_offset);
    const uintptr_t k = reinterpret_cast<uintptr_t>(key);
    const size_t home = raw::home_slot(h, f.capacity);
    // The entry is most likely in its home slot's line: fetch it (and the value's) while the
    // control bytes arrive. A prefetch never faults.
    __builtin_prefetch(keys + home);
    if (f.values != nullptr) __builtin_prefetch(f.values + home);
    const uint8_t tag = raw::tag_of(h);
    // Most entries sit in their home slot. Testing it first, tag then key, gives the processor
    // addresses that do not wait for the control bytes: it can fetch the key and value slots
    // while the tag is still in flight (speculation and prefetches never fault or grey).
    if (f.ctrl[home] == tag && detail::slot_equals(&keys[home], k)) return home;
    bool want_free = free_slot != nullptr;
    raw::Probe p(h, f.capacity);
    do {
      size_t off = p.offset();
      for (unsigned m = raw::match_byte(f.ctrl, off, tag); m != 0; m &= m - 1) {
        size_t i = off + static_cast<size_t>(__builtin_ctz(m));
        if (detail::slot_equals(&keys[i], k)) return i;
      }
      if (want_free) {
        unsigned free_mask = raw::match_free(f.ctrl, off);
        if (free_mask != 0) {
          *free_slot = raw::pick_free(h, f.capacity, off, free_mask);
          want_free = false;
        }
      }
      if (raw::match_byte(f.ctrl, off, raw::kCtrlEmpty) != 0) return raw::kNotFound;
    } while (p.advance());
    return raw::kNotFound;
  }
  // Whether insertions need no reconciling first: the splats of the last cycle were noticed,
  // or marking is under way (when nothing is reconciled).
  bool settled() const noexcept {
    uint64_t e = published_.epoch->load(std::memory_order_acquire);
    return e == fast_.clean_epoch ||
           published_.phase->load(std::memory_order_relaxed) == Phase::kMark;
  }
  // Whether the slot at p lies on a pending page (.inv.pending in core/arena_impl.hpp): the
  // table's arrays may be left unprotected at a flip, and every load from them must then be
  // guarded in software (load_slot). Nonzero only while marking.
  bool pending(const uintptr_t* p) const noexcept { return detail::on_pending_page(published_, p); }
  // Loads a slot of this table's arrays (strong): guards a pending page first, and loads again
  // if a flip came between the guard and the load (what was loaded was held by nobody then).
  uintptr_t load_slot(const uintptr_t* p) noexcept;
  static uintptr_t load_slot_fn(const uintptr_t* p, void* self) noexcept {
    return static_cast<WeakTable*>(self)->load_slot(p);
  }
  uintptr_t load_key(const raw::Slots& s, size_t i) noexcept { return load_slot(&s.keys->slot[i]); }
  // Before overwriting slot i's halves (replace, remove): a pending page of an exact-rank array
  // is scanned first, so what the entry held at the flip is retained for the cycle exactly as
  // with protected arrays (a store to a protected exact-rank page scans it).
  void guard_overwrite(const raw::Slots& s, size_t i) noexcept;
  uintptr_t load_value(const raw::Slots& s, size_t i) noexcept {
    return s.values == nullptr ? kEmpty : load_slot(&s.values->slot[i]);
  }
  void refresh_fast();
  // get's single-generation path while a collection is in progress (ph: the phase get read):
  // the view probe and the guarded load, out of line so that the idle path stays short.
  void* get_collecting(const void* key, Phase ph) noexcept;
  void* get_slow(const void* key);
  bool contains_slow(const void* key);
  uint64_t hash_of(const void* key) const;
  Found find(uint64_t hash, const void* key);
  Found find_probe(uint64_t hash, const void* probe, KeyEqFn eq, void* ctx, uintptr_t* key);
  bool entry_died(const Found& f, uintptr_t* value);
  bool splat_raced(const Found& f, uint64_t e0);
  bool put_impl(void* key, void* value, uintptr_t* old);
  bool remove_impl(const void* key, uintptr_t* old);
  void insert(uint64_t hash, void* key, void* value);
  Gen* new_gen(size_t capacity);
  // The generation that takes `extra` new entries: the newest, grown or compacted first if it
  // must be; under exhaustion any generation with tombstones to reuse. Throws std::bad_alloc.
  Gen* room_for(size_t extra);
  // A new generation of at least `capacity` entries' room; the old ones move into it at once
  // (small tables, or `at_once`) or over later updates (.inv.move). `asked`: the program sized
  // the table (constructor, reserve), so the new control bytes' pages are faulted in now, as
  // std::unordered_map::reserve allocates its buckets, and not in the inserts that follow.
  void rebuild(size_t capacity, bool at_once = false, bool asked = false);
  // rebuild's copy of the first old_count generations' live entries into n.
  void move_entries(Gen* n, size_t old_count);
  // Moves up to `budget` slots of the oldest generations into the newest (outside marking).
  void migrate(size_t budget);
  void maintain();
  void reconcile(Gen* g);
  // Notices the splats of up to `budget` slots, resuming where the last call stopped; true once
  // every splat the counters show is noticed.
  bool reconcile_some(Gen* g, size_t budget);
  void drain_graveyards(Gen* g);
  uint64_t splat_count(Gen* g);
  void notice(Gen* g, size_t i);
  void queue_push(uintptr_t key, uintptr_t value);
  // Keeps the graveyards of the first `count` generations as orphans (all: those with any; else
  // those with a survivor left behind), unlinked from their arrays if `unlink`. Throws
  // std::bad_alloc (malloc) before changing anything.
  void orphan_graveyards(size_t count, bool all, bool unlink);
  // Hands over a survivor from an orphaned graveyard; drops orphans that can hold no more.
  bool take_orphaned(DeadEntry* out);
  bool moving_allowed() const;
  uint64_t epoch() const;
  size_t occupied_total() const;

  Arena& arena_;
  detail::ArenaPublished published_;
  Fast fast_;
  Moving moving_;
  TableKind kind_;
  bool content_ = false;
  ContentKeys keys_;
  std::vector<std::unique_ptr<Gen>> gens_;  ///< gens_.back() receives insertions
  size_t min_capacity_ = 0;
  bool notify_ = false;
  struct Queue;
  std::unique_ptr<Queue> queue_;
  struct Orphan;
  std::vector<std::unique_ptr<Orphan>> orphans_;  ///< graveyards of dropped generations
  uint64_t rebuilds_ = 0;
  uint64_t deferred_moves_ = 0;
  uint64_t noticed_total_ = 0;  ///< splats noticed in generations since dropped
  size_t move_cursor_ = 0;      ///< gens_.front()'s slots below it have been moved (migrate)
  bool direct_ = false;  ///< the queue could not grow: take_dead reads the graveyards directly
};

namespace detail {

/// Typed content-key hooks for WeakTable.
template <class K>
struct TypedContentKeys {
  uint64_t (*hash)(const K*);
  bool (*eq)(const K*, const K*);
  static uint64_t call_hash(const void* key, void* ctx) {
    return static_cast<TypedContentKeys*>(ctx)->hash(static_cast<const K*>(key));
  }
  static bool call_eq(const void* stored, const void* probe, void* ctx) {
    return static_cast<TypedContentKeys*>(ctx)->eq(static_cast<const K*>(stored),
                                                   static_cast<const K*>(probe));
  }
};

}  // namespace detail

/// Content hashing for typed tables: hash(key) and eq(stored, probe) on the key type.
template <class K>
struct ContentKeys {
  uint64_t (*hash)(const K*) = nullptr;      ///< content hash of a key
  bool (*eq)(const K*, const K*) = nullptr;  ///< content equality of two keys
};

/// The typed table of one kind. K and V are arena objects (pointers to their base); the table
/// holds them at the kind's strength. See WeakTable for the promises of each operation.
template <class K, class V, TableKind Kind>
class TypedWeakTable {
 public:
  /// A table keyed by identity (address).
  explicit TypedWeakTable(Arena& arena, size_t capacity = 0) : t_(arena, Kind, capacity) {}
  /// A table keyed by content.
  TypedWeakTable(Arena& arena, ContentKeys<K> content, size_t capacity = 0)
      : hooks_(std::make_unique<detail::TypedContentKeys<K>>(
            detail::TypedContentKeys<K>{content.hash, content.eq})),
        t_(arena, Kind, content_keys(hooks_.get()), capacity) {}

  /// The value for key (strong), or nullptr.
  V* get(const K* key) { return static_cast<V*>(t_.get(key)); }
  /// Whether key has an entry (keeps nothing alive).
  bool contains(const K* key) { return t_.contains(key); }
  /// Stores key -> value; true if it made a new entry, false if it replaced a value.
  bool put(K* key, V* value) { return t_.put(key, value); }
  /// Removes key's entry; true if there was one.
  bool remove(const K* key) { return t_.remove(key); }
  /// Stores key -> value; returns the replaced value (strong: kept alive) or nullptr.
  V* exchange(K* key, V* value) { return static_cast<V*>(t_.exchange(key, value)); }
  /// Removes key's entry; returns its value (strong) or nullptr.
  V* take(const K* key) { return static_cast<V*>(t_.take(key)); }
  /// Removes every entry.
  void clear() { t_.clear(); }
  /// Makes room for n entries.
  void reserve(size_t n) { t_.reserve(n); }
  /// Number of entries: exact whenever no weak phase is running, an upper bound during one.
  size_t size() { return t_.size(); }
  /// Calls f(K*, V*) for every present entry (never a splatted one).
  template <class F>
  void for_each(F&& f) {
    t_.for_each([&](void* k, void* v) { f(static_cast<K*>(k), static_cast<V*>(v)); });
  }
  /// Turns on dead-entry notification (see WeakTable::enable_notification).
  Status enable_notification() { return t_.enable_notification(); }
  /// Takes one notification: the surviving half (the other is null).
  bool take_dead(K** key, V** value) {
    DeadEntry d;
    if (!t_.take_dead(&d)) return false;
    *key = static_cast<K*>(d.key);
    *value = static_cast<V*>(d.value);
    return true;
  }
  /// Counters.
  TableStats stats() const { return t_.stats(); }
  /// The untyped table underneath.
  WeakTable& untyped() { return t_; }

 private:
  static WeakTable::ContentKeys content_keys(detail::TypedContentKeys<K>* h) {
    WeakTable::ContentKeys ck;
    ck.hash = &detail::TypedContentKeys<K>::call_hash;
    ck.eq = &detail::TypedContentKeys<K>::call_eq;
    ck.ctx = h;
    return ck;
  }
  std::unique_ptr<detail::TypedContentKeys<K>> hooks_;
  WeakTable t_;
};

/// Keys weak, values strong while their key lives (a value referring to its key keeps the entry:
/// use EphemeronTable for that).
template <class K, class V>
using WeakKeyTable = TypedWeakTable<K, V, TableKind::kWeakKey>;
/// Keys strong, values weak: the entry goes when its value dies.
template <class K, class V>
using WeakValueTable = TypedWeakTable<K, V, TableKind::kWeakValue>;
/// Both weak: the entry goes when either half dies.
template <class K, class V>
using DoublyWeakTable = TypedWeakTable<K, V, TableKind::kDoublyWeak>;
/// Keys weak, values traced only while their key is otherwise alive: a value that refers to its
/// own key does not keep the entry alive.
template <class K, class V>
using EphemeronTable = TypedWeakTable<K, V, TableKind::kEphemeron>;

/// A weak set: holds its elements weakly.
template <class K>
class WeakSet {
 public:
  /// An identity set.
  explicit WeakSet(Arena& arena, size_t capacity = 0) : t_(arena, TableKind::kWeakSet, capacity) {}
  /// Adds key; returns false if it was present.
  bool insert(K* key) { return t_.put(key, nullptr); }
  /// Whether key is present (keeps nothing alive).
  bool contains(const K* key) { return t_.contains(key); }
  /// Removes key; returns whether it was present.
  bool erase(const K* key) { return t_.remove(key); }
  /// Number of elements: exact whenever no weak phase is running, an upper bound during one.
  size_t size() { return t_.size(); }
  /// Removes every element.
  void clear() { t_.clear(); }
  /// Calls f(K*) for every present element.
  template <class F>
  void for_each(F&& f) {
    t_.for_each([&](void* k, void*) { f(static_cast<K*>(k)); });
  }
  /// The untyped table underneath.
  WeakTable& untyped() { return t_; }

 private:
  WeakTable t_;
};

}  // namespace weakgc
