// WeakTable: the untyped weak hash table (docs/design/weak.md).
//
// A table is a list of generations; each generation is one raw::Slots (key array, value array,
// control bytes, hashes) held by Root handles, with its counters:
//   used        full control bytes: live entries plus splats not yet noticed
//   tombstones  deleted control bytes: removals plus noticed splats
//   noticed     splats turned into tombstones; noticed <= the arrays' splat counters (.inv.count)
// Insertions go to the last generation. There is more than one only after the table had to grow
// while the collector was marking (.inv.mark-copy): moving entries loads their keys, and a load
// during marking keeps a dead key alive, so the move waits until marking is over (phases sweep
// or idle, when every dead entry has been splatted).
//
// size() = Σ used − (splat counters − noticed): exact once the weak phase has finished, without
// scanning (.inv.count). reconcile() scans a generation's control bytes and turns splatted full
// slots into tombstones (compare-only accesses: it keeps nothing alive), moving graveyard
// survivors to the notification queue on the way.
#include <algorithm>
#include <cstring>
#include <new>
#include <stdexcept>
#include <utility>
#include <vector>

#include "core/arena_impl.hpp"
#include "weak/slot_access.hpp"
#include "weakgc/tables.hpp"

namespace weakgc {

using detail::slot_load;
using detail::slot_store;

namespace {

// The root of a key or value array. The table reads its arrays only through guarded loads
// (load_slot; raw::find_content is given it too), so their pages may be left unprotected at a
// flip (.inv.pending).
struct ArrayRoot : detail::HandleNode {
  explicit ArrayRoot(Arena& a) noexcept {
    owner_guarded = true;
    detail::link_handle(a.impl(), this);
  }
  ~ArrayRoot() { detail::unlink_handle(this); }
  ArrayRoot(const ArrayRoot&) = delete;
  ArrayRoot& operator=(const ArrayRoot&) = delete;
  WeakArray* get() const noexcept { return static_cast<WeakArray*>(ptr); }
  ArrayRoot& operator=(WeakArray* p) noexcept {
    ptr = p;
    return *this;
  }
};

}  // namespace

struct WeakTable::Gen {
  explicit Gen(Arena& a) : keys(a), values(a), ctrl(a), hashes(a), grave_k(a), grave_v(a) {}
  ArrayRoot keys;
  ArrayRoot values;
  Root<uint8_t> ctrl;
  Root<uint64_t> hashes;
  Root<WeakArray> grave_k;  // the key array's graveyard: receives surviving values
  Root<WeakArray> grave_v;  // the value array's graveyard: receives surviving keys
  raw::Slots s;
  size_t used = 0;
  size_t tombstones = 0;
  uint64_t noticed = 0;
  uint64_t drained = 0;       // splat count at the last complete graveyard drain
  uint64_t cached_count = 0;  // splat count read at cached_epoch
  uint64_t cached_epoch = ~uint64_t{0};
  size_t reconcile_cursor = 0;  // where reconcile_some resumes
  size_t grave_next = 0;        // where take_dead's direct hand-over resumes
};

// The notification queue: a ring of (key, value) pairs in an exact-rank weak array, so that the
// survivors it holds stay alive until the client takes them.
struct WeakTable::Queue {
  explicit Queue(Arena& a) : arr(a) {}
  Root<WeakArray> arr;
  size_t head = 0;   // pair index of the oldest entry
  size_t count = 0;  // pairs queued
  size_t cap = 0;    // pairs the array holds
};

// The graveyards of a generation dropped while survivors may still be in them (clear, or a move
// after the queue could not grow): they stay, rooted, until take_dead has handed over what they
// hold. Linked to their dropped arrays only if dropped during the weak phase, whose remaining
// splats in those arrays are deaths from before the drop (.inv.orphan).
struct WeakTable::Orphan {
  explicit Orphan(Arena& a) : grave_k(a), grave_v(a) {}
  Root<WeakArray> grave_k;
  Root<WeakArray> grave_v;
  size_t capacity = 0;
  size_t next = 0;     // next slot take_dead looks at
  uint64_t epoch = 0;  // the epoch it was dropped in
  bool linked = false;
  bool last_pass = false;  // the pass under way began after the last splat that could reach it
};

namespace {

// Gen::drained when a survivor was left in a graveyard because the queue could not grow: the
// next take_dead drains the graveyards whatever the splat counters say.
constexpr uint64_t kStale = ~uint64_t{0};

// Hands over the first survivor at or after slot *next of a pair of graveyards (either may be
// null), clearing its slot; advances *next past empty slots. False if there is none.
bool take_from_graveyards(WeakArray* gk, WeakArray* gv, size_t capacity, size_t* next,
                          DeadEntry* out) {
  for (; *next < capacity; ++*next) {
    size_t i = *next;
    if (gk != nullptr) {
      uintptr_t v = slot_load(&gk->slot[i]);
      if (v != kEmpty) {  // a value that outlived its key
        slot_store(&gk->slot[i], kEmpty);
        *out = DeadEntry{nullptr, reinterpret_cast<void*>(v)};
        return true;
      }
    }
    if (gv != nullptr) {
      uintptr_t k = slot_load(&gv->slot[i]);
      if (k != kEmpty) {  // a key that outlived its value
        slot_store(&gv->slot[i], kEmpty);
        *out = DeadEntry{reinterpret_cast<void*>(k), nullptr};
        return true;
      }
    }
  }
  return false;
}

[[noreturn]] void out_of_memory() {
  throw std::bad_alloc();
}

WeakArray* must_alloc_array(Arena& arena, size_t len, Rank rank) {
  WeakArray* a = nullptr;
  if (alloc_weak_array(arena, len, rank, nullptr, &a) != Status::kOk) out_of_memory();
  return a;
}

void* must_alloc_leaf(Arena& arena, size_t bytes) {
  void* p = nullptr;
  if (arena.alloc(detail::leaf_pool(arena), bytes, &p) != Status::kOk) out_of_memory();
  return p;
}

// Refuses what no slot can hold as a key or value: null (an empty slot) and kDeleted (a splat).
void check_entry(const void* key, const void* value, bool values) {
  if (key == nullptr || reinterpret_cast<uintptr_t>(key) == kDeleted)
    throw std::invalid_argument("weakgc: a table key must not be null or kDeleted");
  if (values && (value == nullptr || reinterpret_cast<uintptr_t>(value) == kDeleted))
    throw std::invalid_argument("weakgc: a table value must not be null or kDeleted");
}

bool has_values(TableKind k) {
  return k != TableKind::kWeakSet;
}
bool weak_values(TableKind k) {
  return k == TableKind::kWeakValue || k == TableKind::kDoublyWeak;
}

}  // namespace

WeakTable::WeakTable(Arena& arena, TableKind kind, size_t capacity)
    : arena_(arena),
      published_(arena.published()),
      kind_(kind),
      min_capacity_(raw::capacity_for(capacity)) {
  if (capacity > 0) rebuild(capacity, false, true);  // sized up front, as reserve() would
}

WeakTable::WeakTable(Arena& arena, TableKind kind, const ContentKeys& content, size_t capacity)
    : arena_(arena),
      published_(arena.published()),
      kind_(kind),
      content_(true),
      keys_(content),
      min_capacity_(raw::capacity_for(capacity)) {
  if (content.hash == nullptr || content.eq == nullptr)
    throw std::invalid_argument("weakgc: a content-keyed table needs both hash and eq");
  if (capacity > 0) rebuild(capacity, false, true);  // sized up front, as reserve() would
}

WeakTable::~WeakTable() = default;

// ------------------------------------------------------------------------------ generations

uint64_t WeakTable::epoch() const {
  // Splat counters change only in the weak phase: within one even epoch (idle, then the next
  // cycle's marking) a counter read stays valid.
  // Published by the collector under its lock; read without it (another registered thread
  // may be running collector work).
  return arena_.impl()->epoch.load(std::memory_order_acquire);
}

bool WeakTable::moving_allowed() const {
  Phase ph = arena_.phase();
  return ph == Phase::kIdle || ph == Phase::kSweep;
}

uint64_t WeakTable::splat_count(Gen* g) {
  uint64_t e = epoch();
  if ((e & 1) == 0 && g->cached_epoch == e) return g->cached_count;
  g->cached_count = raw::splat_count(g->s);
  g->cached_epoch = e;
  return g->cached_count;
}

WeakTable::Gen* WeakTable::new_gen(size_t capacity) {
  // Each array goes into its root as soon as it exists: the next allocation may flip.
  auto g = std::make_unique<Gen>(arena_);
  raw::Slots& s = g->s;
  s.capacity = raw::capacity_for(0);
  while (s.capacity < capacity) s.capacity *= 2;
  s.keys = must_alloc_array(arena_, s.capacity, raw::key_rank(kind_));
  g->keys = s.keys;
  if (has_values(kind_)) {
    s.values = must_alloc_array(arena_, s.capacity, raw::value_rank(kind_));
    g->values = s.values;
    WEAKGC_CHECK(link_dependents(arena_, s.keys, s.values) == Status::kOk);
  }
  s.ctrl = static_cast<uint8_t*>(must_alloc_leaf(arena_, s.capacity));
  g->ctrl = s.ctrl;  // zeroed: every byte kCtrlEmpty, written only as entries arrive
  if (content_) {
    s.hashes = static_cast<uint64_t*>(must_alloc_leaf(arena_, s.capacity * sizeof(uint64_t)));
    g->hashes = s.hashes;
  }
  if (notify_) {
    if (kind_ != TableKind::kWeakValue) {
      g->grave_k = must_alloc_array(arena_, s.capacity, Rank::kExact);
      WEAKGC_CHECK(raw::set_graveyard(arena_, s.keys, g->grave_k.get()) == Status::kOk);
    }
    if (weak_values(kind_)) {
      g->grave_v = must_alloc_array(arena_, s.capacity, Rank::kExact);
      WEAKGC_CHECK(raw::set_graveyard(arena_, s.values, g->grave_v.get()) == Status::kOk);
    }
  }
  Gen* raw_g = g.get();
  gens_.push_back(std::move(g));
  refresh_fast();
  return raw_g;
}

void WeakTable::refresh_fast() {
  fast_ = Fast{};
  moving_ = Moving{};
  if (!content_ && gens_.size() == 2) {
    for (Fast* f : {&moving_.old, &moving_.cur}) {
      const raw::Slots& s = (f == &moving_.old ? gens_.front() : gens_.back())->s;
      f->keys = s.keys->slot;
      f->values = s.values != nullptr ? s.values->slot : nullptr;
      f->capacity = s.capacity;
      f->ctrl = s.ctrl;
    }
    moving_.moved = move_cursor_;
  }
  if (content_ || gens_.size() != 1) return;
  Gen* g = gens_.back().get();
  fast_.keys = g->s.keys->slot;
  fast_.values = g->s.values != nullptr ? g->s.values->slot : nullptr;
  fast_.capacity = g->s.capacity;
  fast_.used = &g->used;
  fast_.tombstones = &g->tombstones;
  fast_.weak_values = weak_values(kind_);
  uint64_t e = epoch();
  if ((e & 1) == 0 && splat_count(g) <= g->noticed) fast_.clean_epoch = e;
  fast_.ctrl = g->s.ctrl;  // last: the fast paths are on
}

size_t WeakTable::occupied_total() const {
  size_t n = 0;
  for (const auto& g : gens_) n += g->used;
  return n;
}

void WeakTable::rebuild(size_t want, bool at_once, bool asked) {
  if (raw::capacity_for(want) > raw::kMaxCapacity)  // before anything changes
    throw std::length_error("weakgc: a table cannot have more than 2^40 slots");
  // A small table moves at once; a large one a bounded number of slots per later update
  // (migrate), and is sized from the counters instead of scanning every slot first.
  const size_t step = arena_.impl()->options.table_move_slots;
  size_t old_slots = 0;
  for (const auto& g : gens_) old_slots += g->s.capacity;
  at_once = at_once || old_slots <= step;
  // Splats noticed first, so that the move below copies live entries only.
  if (at_once && moving_allowed())
    for (auto& g : gens_) reconcile(g.get());
  size_t live = at_once ? occupied_total() : size();
  // Room for 7/4 of the live entries: at the maximum load (7/8) that is a capacity of at least
  // twice the live count, so a full table doubles (load 7/16 after the move), not quadruples.
  size_t cap = std::max(raw::capacity_for(std::max(want, live + live / 4 * 3)), min_capacity_);
  if (cap > raw::kMaxCapacity)
    throw std::length_error("weakgc: a table cannot have more than 2^40 slots");
  size_t old_count = gens_.size();
  Gen* n = new_gen(cap);  // appended last: insertions go there from now on
  if (asked) memset(n->s.ctrl, raw::kCtrlEmpty, n->s.capacity);  // already so: faults pages in
  if (old_count == 0) return;
  // The allocation may have run collector work: settle again, then move only if no marking is
  // under way (.inv.mark-copy). reconcile() may allocate (the queue), so check after it.
  if (at_once && moving_allowed())
    for (size_t k = 0; k < old_count; ++k) reconcile(gens_[k].get());
  if (!moving_allowed()) {
    ++deferred_moves_;
    return;
  }
  if (!at_once) {
    migrate(step);
    return;
  }
  // The copy allocates nothing, so this thread runs no collector work during it: every full slot
  // of the old generations is a live entry (reconciled), and loading it keeps nothing extra
  // alive. Only afterwards may the notification queue grow, for an entry another thread's
  // collector work splatted meanwhile. If anything throws, the new generation goes and the old
  // ones stay whole (they lose only dead entries), so no entry is ever in two generations.
  try {
    move_entries(n, old_count);
    // Survivors the queue had no room for stay in the old generations' graveyards: those go on
    // as orphans, unlinked (every live entry now has its copy in n).
    if (notify_) orphan_graveyards(old_count, false, true);
  } catch (...) {
    gens_.pop_back();
    refresh_fast();
    throw;
  }
  for (size_t k = 0; k < old_count; ++k) noticed_total_ += gens_[k]->noticed;
  gens_.erase(gens_.begin(), gens_.begin() + static_cast<ptrdiff_t>(old_count));
  move_cursor_ = 0;
  ++rebuilds_;
  refresh_fast();
}

void WeakTable::migrate(size_t budget) {
  // Moves the oldest generation's entries, from move_cursor_ on, into the newest one: each live
  // entry is copied and erased where it was (so it is never found twice), each splatted one is
  // noticed. Outside marking only (.inv.mark-copy), like every move; nothing here allocates
  // except the notification queue (notice never throws).
  Gen* target = gens_.back().get();
  for (size_t done = 0; gens_.size() > 1 && done < budget;) {
    Gen* g = gens_.front().get();
    for (; move_cursor_ < g->s.capacity && done < budget; ++move_cursor_, ++done) {
      size_t i = move_cursor_;
      if (!raw::ctrl_full(g->s.ctrl[i])) continue;
      if (raw::splatted(g->s, i)) {
        notice(g, i);
        continue;
      }
      // Moved entries may take the newest generation's tombstones: only its live entries (and
      // splats not yet noticed) must leave room.
      if (raw::needs_room(target->s.capacity, target->used)) return;
      uintptr_t key = load_key(g->s, i);
      uintptr_t value = load_value(g->s, i);
      if (key == kDeleted || key == kEmpty || value == kDeleted) {
        notice(g, i);  // splatted by another thread's collector work since the compare
        continue;
      }
      uint64_t h = content_ ? g->s.hashes[i] : raw::identity_hash(reinterpret_cast<void*>(key));
      size_t j = raw::find_free(target->s, h);
      WEAKGC_CHECK(j != raw::kNotFound);
      if (target->s.ctrl[j] == raw::kCtrlDeleted) --target->tombstones;
      raw::store(target->s, j, h, reinterpret_cast<void*>(key), reinterpret_cast<void*>(value));
      ++target->used;
      raw::erase(g->s, i);
      --g->used;
      ++g->tombstones;
    }
    if (move_cursor_ < g->s.capacity) return;
    // The generation is empty (nothing is inserted into the oldest of several: room_for):
    // survivors the queue had no room for go on as an orphan.
    WEAKGC_CHECK(g->used == 0);
    if (notify_) orphan_graveyards(1, false, true);
    noticed_total_ += g->noticed;
    gens_.erase(gens_.begin());
    move_cursor_ = 0;
    if (gens_.size() == 1) ++rebuilds_;
  }
}

void WeakTable::move_entries(Gen* n, size_t old_count) {
  std::vector<std::pair<Gen*, size_t>> died;
  for (size_t k = 0; k < old_count; ++k) {
    Gen* g = gens_[k].get();
    for (size_t i = 0; i < g->s.capacity; ++i) {
      if (!raw::ctrl_full(g->s.ctrl[i])) continue;
      uintptr_t key = load_key(g->s, i);
      uintptr_t value = load_value(g->s, i);
      if (key == kDeleted || key == kEmpty || value == kDeleted) {
        // Splatted since the reconcile: only collector work run by another thread does that
        // (this one allocates nothing here). The entry died; its survivor, if any, is queued
        // once the copy is done, since queueing may allocate.
        if (notify_ && key != kEmpty) died.emplace_back(g, i);
        continue;
      }
      uint64_t h = content_ ? g->s.hashes[i] : raw::identity_hash(reinterpret_cast<void*>(key));
      size_t j = raw::find_free(n->s, h);
      WEAKGC_CHECK(j != raw::kNotFound);
      raw::store(n->s, j, h, reinterpret_cast<void*>(key), reinterpret_cast<void*>(value));
      ++n->used;
    }
  }
  for (const auto& [g, i] : died) notice(g, i);
}

WeakTable::Gen* WeakTable::room_for(size_t extra) {
  if (!gens_.empty()) {
    Gen* cur = gens_.back().get();
    if (!raw::needs_room(cur->s.capacity, cur->used + cur->tombstones + extra - 1)) return cur;
  }
  size_t n = occupied_total() + extra;
  try {
    rebuild(n + n / 4 * 3);
  } catch (const std::bad_alloc&) {
    // The arena is exhausted. A generation whose live entries leave room for the new ones, and
    // that only its tombstones fill up, takes them in place of tombstones: the table keeps
    // working (with longer probes) until memory allows the compaction. Lookups and updates
    // search every generation, so the entries may go to any of them — but the oldest of
    // several once a move has begun emptying it (.inv.move): its slots behind the move's
    // cursor are not looked at again.
    const size_t lowest = gens_.size() > 1 && move_cursor_ > 0 ? 1 : 0;
    for (size_t k = gens_.size(); k-- > lowest;) {
      Gen* g = gens_[k].get();
      if (g->tombstones >= extra && !raw::needs_room(g->s.capacity, g->used + extra - 1)) return g;
    }
    throw;
  }
  return gens_.back().get();
}

void WeakTable::maintain() {
  if (!moving_allowed() || gens_.empty()) return;
  // Housekeeping: the deferred move, noticing splats. What it cannot do for lack of memory (new
  // arrays, a longer notification queue) is left for a later call; the operation goes on.
  try {
    const size_t step = arena_.impl()->options.table_move_slots;
    reconcile_some(gens_.back().get(), step);
    if (gens_.size() > 1) migrate(step);  // a move begun or deferred earlier
  } catch (const std::bad_alloc&) {
  }
  refresh_fast();
}

// ------------------------------------------------------------------------------ noticing splats

void WeakTable::queue_push(uintptr_t key, uintptr_t value) {
  Queue& q = *queue_;
  if (q.count == q.cap) {
    size_t ncap = std::max<size_t>(16, q.cap * 2);
    WeakArray* na = must_alloc_array(arena_, ncap * 2, Rank::kExact);
    WeakArray* oa = q.arr.get();
    for (size_t k = 0; k < q.count; ++k) {
      size_t from = (q.head + k) % q.cap;
      slot_store(&na->slot[2 * k], slot_load(&oa->slot[2 * from]));
      slot_store(&na->slot[2 * k + 1], slot_load(&oa->slot[2 * from + 1]));
    }
    q.arr = na;
    q.head = 0;
    q.cap = ncap;
  }
  size_t at = (q.head + q.count) % q.cap;
  WeakArray* a = q.arr.get();
  slot_store(&a->slot[2 * at], key);
  slot_store(&a->slot[2 * at + 1], value);
  ++q.count;
}

void WeakTable::notice(Gen* g, size_t i) {
  // Survivors move to the queue before the graveyard slot is cleared: queue_push may allocate,
  // and until then the graveyard keeps the survivor alive. If the queue cannot grow, the
  // survivor stays in the graveyard and take_dead drains it from there later (kStale).
  // The key array's graveyard holds surviving values, the value array's surviving keys.
  auto move_survivor = [&](WeakArray* grave, bool is_value) {
    if (grave == nullptr) return;
    uintptr_t* gs = &grave->slot[i];
    uintptr_t survivor = slot_load(gs);
    if (survivor == kEmpty) return;
    queue_push(is_value ? kEmpty : survivor, is_value ? survivor : kEmpty);
    slot_store(gs, kEmpty);
  };
  try {
    move_survivor(g->grave_k.get(), true);
    move_survivor(g->grave_v.get(), false);
  } catch (const std::bad_alloc&) {
    g->drained = kStale;
  }
  raw::forget(g->s, i);
  --g->used;
  ++g->tombstones;
  ++g->noticed;
}

void WeakTable::orphan_graveyards(size_t count, bool all, bool unlink) {
  auto wanted = [&](const Gen* g) {
    return (g->grave_k.get() != nullptr || g->grave_v.get() != nullptr) &&
           (all || g->drained == kStale);
  };
  // Everything that may throw first (malloc), so that a throw changes nothing.
  std::vector<std::unique_ptr<Orphan>> made;
  for (size_t k = 0; k < count; ++k)
    if (wanted(gens_[k].get())) made.push_back(std::make_unique<Orphan>(arena_));
  orphans_.reserve(orphans_.size() + made.size());
  size_t m = 0;
  for (size_t k = 0; k < count; ++k) {
    Gen* g = gens_[k].get();
    if (!wanted(g)) continue;
    Orphan& o = *made[m++];
    o.grave_k = g->grave_k.get();
    o.grave_v = g->grave_v.get();
    o.capacity = g->s.capacity;
    o.epoch = epoch();
    o.linked = !unlink;
    if (unlink && g->grave_k.get() != nullptr)
      WEAKGC_CHECK(raw::set_graveyard(arena_, g->s.keys, nullptr) == Status::kOk);
    if (unlink && g->grave_v.get() != nullptr)
      WEAKGC_CHECK(raw::set_graveyard(arena_, g->s.values, nullptr) == Status::kOk);
    g->grave_k = nullptr;
    g->grave_v = nullptr;
  }
  for (auto& o : made) orphans_.push_back(std::move(o));
}

bool WeakTable::take_orphaned(DeadEntry* out) {
  for (size_t k = 0; k < orphans_.size();) {
    Orphan& o = *orphans_[k];
    // A linked orphan receives splats until the weak phase it was dropped in is over, behind the
    // pass as well as ahead of it: only a pass that begins after that weak phase is the last.
    bool over = !o.linked || epoch() != o.epoch;
    if (o.next == 0) o.last_pass = over;
    if (take_from_graveyards(o.grave_k.get(), o.grave_v.get(), o.capacity, &o.next, out))
      return true;
    o.next = 0;
    if (o.last_pass)
      orphans_.erase(orphans_.begin() + static_cast<ptrdiff_t>(k));
    else if (!over)
      ++k;  // look again later
    // else: the weak phase ended during this pass; the next, from the start, is the last
  }
  return false;
}

void WeakTable::reconcile(Gen* g) {
  for (;;) {
    const uint64_t before = g->noticed;
    g->reconcile_cursor = 0;  // whole passes
    if (reconcile_some(g, SIZE_MAX)) return;
    if (g->noticed == before) return;  // counters ahead of the slots: cannot happen (.inv.count)
  }
}

bool WeakTable::reconcile_some(Gen* g, size_t budget) {
  // Outside the weak phase the counters are final (.inv.count): once noticed reaches them, the
  // rest of the slots hold no splat, and the pass stops early.
  const uint64_t count = splat_count(g);
  if (count <= g->noticed) {
    g->reconcile_cursor = 0;
    return true;
  }
  // Compare-only accesses: a splatted slot holds kDeleted; nothing is loaded or kept alive.
  const size_t from = g->reconcile_cursor;
  const size_t end = g->s.capacity - from > budget ? from + budget : g->s.capacity;
  for (size_t i = from; i < end && g->noticed < count; ++i)
    if (raw::ctrl_full(g->s.ctrl[i]) && raw::splatted(g->s, i)) notice(g, i);
  if (g->noticed >= count) {
    g->drained = std::max(g->drained, count);
    g->reconcile_cursor = 0;
    return true;
  }
  // A pass ends without reaching the counters only while another thread's weak phase is still
  // splatting: the next pass starts over.
  g->reconcile_cursor = end == g->s.capacity ? 0 : end;
  return false;
}

void WeakTable::drain_graveyards(Gen* g) {
  uint64_t count = splat_count(g);
  WeakArray* gk = g->grave_k.get();
  WeakArray* gv = g->grave_v.get();
  for (size_t i = 0; i < g->s.capacity; ++i) {
    if (gk != nullptr) {
      uintptr_t v = slot_load(&gk->slot[i]);
      if (v != kEmpty) {
        queue_push(kEmpty, v);
        slot_store(&gk->slot[i], kEmpty);
      }
    }
    if (gv != nullptr) {
      uintptr_t k = slot_load(&gv->slot[i]);
      if (k != kEmpty) {
        queue_push(k, kEmpty);
        slot_store(&gv->slot[i], kEmpty);
      }
    }
  }
  g->drained = count;
}

// ------------------------------------------------------------------------------ lookups

uintptr_t WeakTable::load_slot(const uintptr_t* p) noexcept {
  return detail::guarded_load(arena_, published_, p, false);
}

uint64_t WeakTable::hash_of(const void* key) const {
  return content_ ? keys_.hash(key, keys_.ctx) : raw::identity_hash(key);
}

WeakTable::Found WeakTable::find(uint64_t hash, const void* key) {
  // As find_fast: during a collection, compare identity keys through the collector's view.
  ptrdiff_t view =
      published_.view_probes && arena_.phase() != Phase::kIdle ? published_.view_offset : 0;
  if (gens_.size() == 2 && !content_) {
    // A move under way (or a growth deferred by marking, cursor 0). Each entry is in exactly one
    // generation (.inv.move), so the order of the probes is free: the likelier one goes first,
    // with its home lines fetched while the control bytes arrive. An entry whose home slot in
    // the oldest generation lies behind the move's cursor has most likely moved already.
    Gen* old = gens_.front().get();
    Gen* cur = gens_.back().get();
    if (raw::home_slot(hash, old->s.capacity) < move_cursor_) std::swap(old, cur);
    const size_t home = raw::home_slot(hash, old->s.capacity);
    __builtin_prefetch(&old->s.keys->slot[home]);
    if (old->s.values != nullptr) __builtin_prefetch(&old->s.values->slot[home]);
    size_t i = raw::find_identity(old->s, hash, key, view);
    if (i != raw::kNotFound) return Found{old, i};
    i = raw::find_identity(cur->s, hash, key, view);
    return i != raw::kNotFound ? Found{cur, i} : Found{};
  }
  for (size_t k = gens_.size(); k-- > 0;) {
    Gen* g = gens_[k].get();
    size_t i = content_ ? raw::find_content(g->s, hash, key, keys_.eq, keys_.ctx, nullptr,
                                            &load_slot_fn, this)
                        : raw::find_identity(g->s, hash, key, view);
    if (i != raw::kNotFound) return Found{g, i};
  }
  return Found{};
}

WeakTable::Found WeakTable::find_probe(uint64_t hash, const void* probe, KeyEqFn eq, void* ctx,
                                       uintptr_t* key) {
  for (size_t k = gens_.size(); k-- > 0;) {
    Gen* g = gens_[k].get();
    size_t i = raw::find_content(g->s, hash, probe, eq, ctx, key, &load_slot_fn, this);
    if (i != raw::kNotFound) return Found{g, i};
  }
  return Found{};
}

void* WeakTable::get_collecting(const void* key, Phase ph) noexcept {
  size_t i = find_fast(fast_, key, raw::identity_hash(key), nullptr, ph);
  if (i == raw::kNotFound) return nullptr;
  if (fast_.values == nullptr) return const_cast<void*>(key);
  // The guarded load reads the state word itself: a flip after the probe is caught there.
  uintptr_t v = load_slot(&fast_.values[i]);
  return v == kDeleted ? nullptr : reinterpret_cast<void*>(v);
}

void* WeakTable::get_slow(const void* key) {
  if (key == nullptr || gens_.empty()) return nullptr;
  uint64_t h = hash_of(key);
  if (content_) {
    uintptr_t stored = kEmpty;
    Found f = find_probe(h, key, keys_.eq, keys_.ctx, &stored);
    if (f.gen == nullptr) return nullptr;
    if (!has_values(kind_)) return reinterpret_cast<void*>(stored);
    uintptr_t v = load_value(f.gen->s, f.slot);
    return v == kDeleted ? nullptr : reinterpret_cast<void*>(v);
  }
  Found f = find(h, key);
  if (f.gen == nullptr) return nullptr;
  if (!has_values(kind_)) return const_cast<void*>(key);
  uintptr_t v = load_value(f.gen->s, f.slot);
  return v == kDeleted ? nullptr : reinterpret_cast<void*>(v);
}

bool WeakTable::contains_slow(const void* key) {
  if (key == nullptr || gens_.empty()) return false;
  Found f = find(hash_of(key), key);
  if (f.gen == nullptr) return false;
  // A weak value may have died with the entry splatted in this very access (weak phase only:
  // elsewhere a matched key means an intact entry).
  if (!weak_values(kind_) || arena_.phase() != Phase::kWeak) return true;
  return !raw::value_splatted(f.gen->s, f.slot);
}

void* WeakTable::find_by(uint64_t hash, const void* probe, KeyEqFn eq, void* ctx, void** value) {
  if (value != nullptr) *value = nullptr;
  WEAKGC_CHECK(content_);
  uintptr_t stored = kEmpty;
  Found f = find_probe(hash, probe, eq, ctx, &stored);
  if (f.gen == nullptr) return nullptr;
  if (has_values(kind_)) {
    uintptr_t v = load_value(f.gen->s, f.slot);
    if (v == kDeleted) return nullptr;
    if (value != nullptr) *value = reinterpret_cast<void*>(v);
  }
  return reinterpret_cast<void*>(stored);
}

// ------------------------------------------------------------------------------ updates

void WeakTable::guard_overwrite(const raw::Slots& s, size_t i) noexcept {
  detail::guard_store(arena_, published_, &s.keys->slot[i]);
  if (s.values != nullptr) detail::guard_store(arena_, published_, &s.values->slot[i]);
}

bool WeakTable::entry_died(const Found& f, uintptr_t* value) {
  // The entry was found by its key, so the key is alive; in the weak phase, touching the value
  // may settle its page and splat the entry (a dead weak value). Unless the caller wants the
  // value (exchange, take), weak values are compared, not loaded (.inv.probe): an overwritten or
  // removed value is not kept alive. Ephemeron values are always loaded: a value replaced or
  // removed during marking stays alive until the cycle ends, as if it had been traced through
  // its live key, whether or not the ephemeron pass had run yet (deterministic collection).
  if (value != nullptr || kind_ == TableKind::kEphemeron) {
    uintptr_t v = load_value(f.gen->s, f.slot);
    if (value != nullptr) *value = v;
    return v == kDeleted;
  }
  // Outside the weak phase a matched key means an intact entry: the collector splats both
  // halves in one scan, and only the weak phase splats. Saves a fault per update while marking.
  if (arena_.phase() != Phase::kWeak) return false;
  return raw::value_splatted(f.gen->s, f.slot);
}

bool WeakTable::splat_raced(const Found& f, uint64_t e0) {
  // entry_died decides from the phase and one compare; a collector step on another thread can
  // then splat the entry (its weak value dead) before the caller's store. Only a weak phase
  // splats, so that needs epoch e0 (read before the lookup) odd or passed. The caller has just
  // stored into the value slot (a live value, or kDeleted), after which nothing can splat the
  // entry: a deleted key slot now means a splat before the store. Compared, not loaded.
  if ((e0 & 1) == 0 && epoch() == e0) return false;
  return detail::slot_is_deleted(&f.gen->s.keys->slot[f.slot]);
}

void WeakTable::insert(uint64_t hash, void* key, void* value) {
  Gen* cur = room_for(1);
  size_t j = raw::find_free(cur->s, hash);
  WEAKGC_CHECK(j != raw::kNotFound);
  if (cur->s.ctrl[j] == raw::kCtrlDeleted) --cur->tombstones;
  raw::store(cur->s, j, hash, key, value);
  ++cur->used;
}

bool WeakTable::put_impl(void* key, void* value, uintptr_t* old) {
  check_entry(key, value, has_values(kind_));
  maintain();
  uint64_t h = hash_of(key);
  if (!gens_.empty()) {
    uint64_t e0 = weak_values(kind_) ? epoch() : 0;
    uintptr_t stored = reinterpret_cast<uintptr_t>(key);
    Found f = content_ ? find_probe(h, key, keys_.eq, keys_.ctx, &stored) : find(h, key);
    if (f.gen != nullptr) {
      if (!has_values(kind_)) {
        if (old != nullptr) *old = stored;
        return false;
      }
      uintptr_t prev = kEmpty;
      if (!entry_died(f, old != nullptr ? &prev : nullptr)) {
        guard_overwrite(f.gen->s, f.slot);
        raw::store_value(f.gen->s, f.slot, value);
        if (!splat_raced(f, e0)) {
          if (old != nullptr) *old = prev;
          return false;
        }
        // The store landed beside a splatted key: undo it and insert anew.
        raw::store_value(f.gen->s, f.slot, reinterpret_cast<void*>(kDeleted));
      }
      // The value died and the entry was splatted by this very access: insert anew.
    }
  }
  insert(h, key, value);
  return true;
}

void* WeakTable::exchange(void* key, void* value) {
  uintptr_t old = kEmpty;
  put_impl(key, value, &old);
  return reinterpret_cast<void*>(old);
}

void WeakTable::put_new(uint64_t hash, void* key, void* value) {
  check_entry(key, value, has_values(kind_));
  if (!content_) hash = raw::identity_hash(key);
  maintain();
  insert(hash, key, value);
}

bool WeakTable::remove_impl(const void* key, uintptr_t* old) {
  if (key == nullptr || gens_.empty()) return false;
  maintain();  // a move under way advances on every update
  uint64_t e0 = weak_values(kind_) ? epoch() : 0;
  uint64_t h = hash_of(key);
  uintptr_t stored = reinterpret_cast<uintptr_t>(key);
  Found f = content_ ? find_probe(h, key, keys_.eq, keys_.ctx, &stored) : find(h, key);
  if (f.gen == nullptr) return false;
  uintptr_t prev = stored;
  if (has_values(kind_) && entry_died(f, old != nullptr ? &prev : nullptr)) {
    notice(f.gen, f.slot);  // splatted by this very access (weak phase): a death, not a removal
    return false;
  }
  guard_overwrite(f.gen->s, f.slot);
  if (weak_values(kind_)) {
    // Value first: once it holds kDeleted nothing can splat the entry, so a key found deleted
    // after that was splatted before — a death, not a removal.
    raw::store_value(f.gen->s, f.slot, reinterpret_cast<void*>(kDeleted));
    if (splat_raced(f, e0)) {
      notice(f.gen, f.slot);
      return false;
    }
  }
  raw::erase(f.gen->s, f.slot);
  --f.gen->used;
  ++f.gen->tombstones;
  if (old != nullptr) *old = prev;
  return true;
}

bool WeakTable::remove(const void* key) {
  return remove_impl(key, nullptr);
}

void* WeakTable::take(const void* key) {
  uintptr_t old = kEmpty;
  return remove_impl(key, &old) ? reinterpret_cast<void*>(old) : nullptr;
}

void WeakTable::clear() {
  // Splats from earlier cycles are still notified: the generations' graveyards outlive them as
  // orphans, and take_dead hands over what they hold (nothing here needs arena memory). In the
  // weak phase they stay linked to the dropped arrays: the collector has yet to splat some of
  // this cycle's deaths there (the arrays were marked), and those deaths came before the clear.
  // Otherwise they are unlinked: during marking, a cleared entry whose key dies in this cycle is
  // not a death to report, and outside a collection nothing more can reach them.
  if (notify_) orphan_graveyards(gens_.size(), true, arena_.phase() != Phase::kWeak);
  for (auto& g : gens_) noticed_total_ += g->noticed;
  gens_.clear();
  move_cursor_ = 0;
  refresh_fast();
}

void WeakTable::reserve(size_t n) {
  if (gens_.size() == 1 && raw::capacity_for(n) <= gens_.back()->s.capacity) return;
  // Several generations outside marking: a move under way, finished here at once (asked for).
  rebuild(n, gens_.size() > 1 && moving_allowed(), true);
}

size_t WeakTable::size() {
  size_t n = 0;
  for (auto& g : gens_) {
    uint64_t count = splat_count(g.get());
    uint64_t pending = count > g->noticed ? count - g->noticed : 0;
    n += g->used - static_cast<size_t>(std::min<uint64_t>(pending, g->used));
  }
  return n;
}

// ------------------------------------------------------------------------------ notification

Status WeakTable::enable_notification() {
  if (kind_ == TableKind::kWeakSet) return Status::kBadParam;
  if (notify_) return Status::kOk;
  queue_ = std::make_unique<Queue>(arena_);
  notify_ = true;
  for (auto& g : gens_) {
    // Splats already made are not reported: only deaths from now on.
    if (kind_ != TableKind::kWeakValue && g->grave_k.get() == nullptr) {
      g->grave_k = must_alloc_array(arena_, g->s.capacity, Rank::kExact);
      WEAKGC_CHECK(raw::set_graveyard(arena_, g->s.keys, g->grave_k.get()) == Status::kOk);
    }
    if (weak_values(kind_) && g->grave_v.get() == nullptr) {
      g->grave_v = must_alloc_array(arena_, g->s.capacity, Rank::kExact);
      WEAKGC_CHECK(raw::set_graveyard(arena_, g->s.values, g->grave_v.get()) == Status::kOk);
    }
  }
  return Status::kOk;
}

bool WeakTable::take_dead(DeadEntry* out) {
  if (!notify_ || out == nullptr) return false;
  Queue& q = *queue_;
  if (q.count == 0 && take_orphaned(out)) return true;
  if (q.count == 0) {
    if (!direct_) {
      try {
        for (auto& g : gens_)
          if (splat_count(g.get()) != g->drained) drain_graveyards(g.get());
      } catch (const std::bad_alloc&) {
        direct_ = true;  // the queue cannot grow
      }
    }
    if (direct_ && q.count == 0) {
      // Survivors go straight from the graveyards, each scan resuming where the last one
      // stopped (and wrapping around once), until the graveyards are empty.
      for (auto& g : gens_) {
        size_t start = g->grave_next;
        WeakArray* gk = g->grave_k.get();
        WeakArray* gv = g->grave_v.get();
        if (take_from_graveyards(gk, gv, g->s.capacity, &g->grave_next, out)) return true;
        g->grave_next = 0;
        if (take_from_graveyards(gk, gv, start, &g->grave_next, out)) return true;
        g->grave_next = 0;
      }
      direct_ = false;  // all empty: the next call drains into the queue again
      return false;
    }
    if (q.count == 0) return false;
  }
  WeakArray* a = q.arr.get();
  uintptr_t* ks = &a->slot[2 * q.head];
  uintptr_t* vs = &a->slot[2 * q.head + 1];
  out->key = reinterpret_cast<void*>(slot_load(ks));
  out->value = reinterpret_cast<void*>(slot_load(vs));
  slot_store(ks, kEmpty);
  slot_store(vs, kEmpty);
  q.head = (q.head + 1) % q.cap;
  --q.count;
  return true;
}

// ------------------------------------------------------------------------------ iteration

bool WeakTable::next(Cursor* c, void** key, void** value) {
  while (c->gen < gens_.size()) {
    Gen* g = gens_[c->gen].get();
    while (c->slot < g->s.capacity) {
      size_t i = c->slot++;
      if (!raw::ctrl_full(g->s.ctrl[i])) continue;
      // Key first, then value: each load settles its page in the weak phase, and a value found
      // splatted (its death splats the key too) means the entry is gone.
      uintptr_t k = load_key(g->s, i);
      if (k == kDeleted || k == kEmpty) continue;
      uintptr_t v = load_value(g->s, i);
      if (has_values(kind_) && v == kDeleted) continue;
      *key = reinterpret_cast<void*>(k);
      *value = has_values(kind_) ? reinterpret_cast<void*>(v) : nullptr;
      return true;
    }
    ++c->gen;
    c->slot = 0;
  }
  return false;
}

TableStats WeakTable::stats() const {
  TableStats st;
  st.generations = gens_.size();
  st.splats_noticed = noticed_total_;
  for (const auto& g : gens_) {
    st.capacity += g->s.capacity;
    st.occupied += g->used;
    st.tombstones += g->tombstones;
    st.splats_noticed += g->noticed;
  }
  st.rebuilds = rebuilds_;
  st.deferred_moves = deferred_moves_;
  return st;
}

}  // namespace weakgc
