// The raw table layer: one table's arrays and the probing operations on them
// (docs/design/weak.md, "Probing"). Every access to a key or value slot goes through
// the primitives of weakgc/weak_array.hpp, in a form the barrier emulates.
#include <cstring>

#include "core/arena_impl.hpp"
#include "weak/slot_access.hpp"
#include "weakgc/tables.hpp"

namespace weakgc::raw {

using detail::slot_equals;
using detail::slot_is_deleted;
using detail::slot_load;
using detail::slot_store;

namespace {

Status alloc_leaf(Arena& arena, size_t bytes, void** out) {
  return arena.alloc(detail::leaf_pool(arena), bytes, out);
}

}  // namespace

Rank key_rank(TableKind kind) noexcept {
  return kind == TableKind::kWeakValue ? Rank::kExact : Rank::kWeak;
}

Rank value_rank(TableKind kind) noexcept {
  switch (kind) {
    case TableKind::kWeakKey:
      return Rank::kExact;
    case TableKind::kEphemeron:
      return Rank::kEphemeron;
    default:
      return Rank::kWeak;
  }
}

size_t capacity_for(size_t n) noexcept {
  size_t cap = kMinCapacity;
  while (cap <= kMaxCapacity && needs_room(cap, n == 0 ? 0 : n - 1)) cap *= 2;
  return cap;
}

Status alloc_slots(Arena& arena, TableKind kind, size_t capacity, bool content,
                   Slots* out) noexcept {
  if (out == nullptr) return Status::kBadParam;
  size_t cap = kMinCapacity;
  while (cap < capacity) {
    if (cap >= kMaxCapacity) return Status::kBadParam;
    cap *= 2;
  }
  *out = Slots{};
  out->capacity = cap;
  Status st = alloc_weak_array(arena, cap, key_rank(kind), nullptr, &out->keys);
  if (st != Status::kOk) return st;
  if (kind != TableKind::kWeakSet) {
    st = alloc_weak_array(arena, cap, value_rank(kind), nullptr, &out->values);
    if (st != Status::kOk) return st;
    st = link_dependents(arena, out->keys, out->values);
    if (st != Status::kOk) return st;
  }
  void* mem;
  st = alloc_leaf(arena, cap, &mem);
  if (st != Status::kOk) return st;
  out->ctrl = static_cast<uint8_t*>(mem);  // zeroed: every byte kCtrlEmpty
  if (content) {
    st = alloc_leaf(arena, cap * sizeof(uint64_t), &mem);
    if (st != Status::kOk) return st;
    out->hashes = static_cast<uint64_t*>(mem);
  }
  return Status::kOk;
}

Status set_graveyard(Arena& arena, WeakArray* array, WeakArray* graveyard) noexcept {
  detail::ArenaImpl* a = arena.impl();
  detail::LockGuard g(a->lock);
  auto awl = [&](const void* p) {
    size_t s;
    uint32_t c;
    uintptr_t b;
    return p != nullptr && a->resolve(reinterpret_cast<uintptr_t>(p), false, &s, &c, &b) &&
           a->segs[s].awl;
  };
  if (!awl(array) || (graveyard != nullptr && !awl(graveyard))) return Status::kBadParam;
  auto* h = a->cview<detail::AwlHeader>(reinterpret_cast<uintptr_t>(array));
  if (graveyard != nullptr) {
    auto* gh = a->cview<detail::AwlHeader>(reinterpret_cast<uintptr_t>(graveyard));
    if (gh->length != h->length) return Status::kBadParam;
    size_t s;
    uint32_t c;
    uintptr_t b;
    a->resolve(reinterpret_cast<uintptr_t>(graveyard), false, &s, &c, &b);
    if (a->segs[s].rank != Rank::kExact) return Status::kBadParam;
  }
  // Through the collector view, like link_dependents: whatever the page's protection. The
  // graveyard is reachable from the caller, which holds it (the mutator is black).
  h->graveyard = reinterpret_cast<uintptr_t>(graveyard);
  return Status::kOk;
}

size_t find_identity(const Slots& s, uint64_t hash, const void* key,
                     ptrdiff_t view_offset) noexcept {
  uint8_t tag = tag_of(hash);
  uintptr_t k = reinterpret_cast<uintptr_t>(key);
  const uintptr_t* keys =
      reinterpret_cast<const uintptr_t*>(reinterpret_cast<const char*>(s.keys->slot) + view_offset);
  // Most entries sit in their home slot (.inv.home): testing it first gives the processor the
  // key's address without waiting for the control bytes.
  const size_t home = home_slot(hash, s.capacity);
  if (s.ctrl[home] == tag && slot_equals(&keys[home], k)) return home;
  Probe p(hash, s.capacity);
  do {
    for (unsigned m = match_byte(s.ctrl, p.offset(), tag); m != 0; m &= m - 1) {
      size_t i = p.offset() + static_cast<size_t>(__builtin_ctz(m));
      if (slot_equals(&keys[i], k)) return i;  // .inv.probe: compared, not loaded
    }
    if (match_byte(s.ctrl, p.offset(), kCtrlEmpty) != 0) return kNotFound;
  } while (p.advance());
  return kNotFound;
}

size_t find_content(const Slots& s, uint64_t hash, const void* probe, KeyEqFn eq, void* ctx,
                    uintptr_t* key, SlotLoadFn load, void* load_ctx) noexcept {
  uint8_t tag = tag_of(hash);
  // Most entries sit in their home slot (.inv.home): fetch its hash and key lines while the
  // control bytes arrive, so the three misses overlap. A prefetch never faults or greys.
  const size_t home = home_slot(hash, s.capacity);
  __builtin_prefetch(&s.hashes[home]);
  __builtin_prefetch(&s.keys->slot[home]);
  Probe p(hash, s.capacity);
  do {
    for (unsigned m = match_byte(s.ctrl, p.offset(), tag); m != 0; m &= m - 1) {
      size_t i = p.offset() + static_cast<size_t>(__builtin_ctz(m));
      if (s.hashes[i] != hash) continue;  // a leaf array: no fault, nothing kept alive
      const uintptr_t* ks = &s.keys->slot[i];
      uintptr_t k = load != nullptr ? load(ks, load_ctx) : slot_load(ks);
      if (k == kDeleted || k == kEmpty) continue;
      if (eq(reinterpret_cast<const void*>(k), probe, ctx)) {
        if (key != nullptr) *key = k;
        return i;
      }
    }
    if (match_byte(s.ctrl, p.offset(), kCtrlEmpty) != 0) return kNotFound;
  } while (p.advance());
  return kNotFound;
}

size_t find_free(const Slots& s, uint64_t hash) noexcept {
  Probe p(hash, s.capacity);
  do {
    unsigned m = match_free(s.ctrl, p.offset());
    if (m != 0) return pick_free(hash, s.capacity, p.offset(), m);
  } while (p.advance());
  return kNotFound;
}

void store(const Slots& s, size_t i, uint64_t hash, const void* key, const void* value) noexcept {
  slot_store(&s.keys->slot[i], reinterpret_cast<uintptr_t>(key));
  if (s.values != nullptr) slot_store(&s.values->slot[i], reinterpret_cast<uintptr_t>(value));
  if (s.hashes != nullptr) s.hashes[i] = hash;
  s.ctrl[i] = tag_of(hash);
}

void store_value(const Slots& s, size_t i, const void* value) noexcept {
  slot_store(&s.values->slot[i], reinterpret_cast<uintptr_t>(value));
}

void erase(const Slots& s, size_t i) noexcept {
  slot_store(&s.keys->slot[i], kDeleted);
  if (s.values != nullptr) slot_store(&s.values->slot[i], kDeleted);
  s.ctrl[i] = kCtrlDeleted;
}

uintptr_t load_key(const Slots& s, size_t i) noexcept {
  return slot_load(&s.keys->slot[i]);
}

uintptr_t load_value(const Slots& s, size_t i) noexcept {
  return s.values == nullptr ? kEmpty : slot_load(&s.values->slot[i]);
}

bool splatted(const Slots& s, size_t i) noexcept {
  // The collector splats both halves in one scan (.inv.entry), but in its weak phase a page is
  // settled when first touched: touch the value too, so that a splat decided by the value
  // array's scan is seen.
  if (s.values != nullptr && slot_is_deleted(&s.values->slot[i])) return true;
  return slot_is_deleted(&s.keys->slot[i]);
}

bool value_splatted(const Slots& s, size_t i) noexcept {
  return s.values != nullptr && slot_is_deleted(&s.values->slot[i]);
}

uint64_t splat_count(const Slots& s) noexcept {
  uint64_t n = detail::header_splatted(s.keys);
  if (s.values != nullptr) n += detail::header_splatted(s.values);
  return n;
}

}  // namespace weakgc::raw
