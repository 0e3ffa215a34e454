// The collector: an incremental, non-moving mark-sweep with a black mutator behind a read
// barrier of page protection (DESIGN.md §4). One cycle:
//
//  1. Flip (flip): every segment is already swept (.inv.sweep). phase = kMark. Scan roots: exact
//     ranges, Root<T> handles, pending finalization messages, and the registered thread's stack
//     and registers (ambiguous). Their referents turn grey (mark_object: mark bit + grey bit +
//     grey_count of their pages + mark_stack). update_protection() then protects every page
//     with grey objects (.inv.barrier). From here on new objects are black (.inv.black-alloc).
//  2. Mark (work → drain): pop grey objects and scan them through the collector view. Grey
//     objects in AWL pools at weak or ephemeron rank are *not* scanned here: their fate waits for
//     the weak phase, and their pages stay protected so that a mutator reading them goes through
//     the fault handler (barrier/), which emulates the single access where it can. Each increment
//     ends with update_protection(): pages that gained grey objects are protected before pages
//     that lost them are unprotected, in coalesced runs.
//  3. Ephemerons (ephemeron_pass): for every grey ephemeron value array, trace the values whose
//     key (same index in the dependent weak array) is marked; drain; repeat until a pass marks
//     nothing. Each pass is bounded by the increment's deadline and resumes at eph_cursor.
//  4. Final (run_finalization): registered objects still white are marked (resurrected), traced
//     (back to 2 and 3), and queued as messages for the client's own thread.
//  5. Weak (weak_phase): every live object is now marked. Scan the grey AWL arrays at their rank:
//     a slot naming a white object is splatted to kSlotDeleted, and the same slot of the
//     dependent with it; ephemeron value arrays splat entries whose key is white. A fault on a
//     weak page in this phase scans the page at weak rank. Nothing is swept before this ends.
//  6. Sweep (sweep): per segment, allocation bits become the mark bits; empty segments go back to
//     the OS. Allocation sweeps a segment it needs first, so sweeping is lazy.
//
// Pacing: each allocated byte buys `pace` bytes of marking (maybe_collect_after_alloc); an
// increment never runs past options.pause_target_ms. collect() runs steps 1–6 to the end.
#include <pthread.h>
#include <setjmp.h>

#include <algorithm>
#include <cstring>

#include "core/arena_impl.hpp"
#include "core/events.hpp"

namespace weakgc::detail {

namespace {

inline bool bit(const uint64_t* bm, uint32_t i) {
  return (bm[i >> 6] >> (i & 63)) & 1;
}
inline void set_bit(uint64_t* bm, uint32_t i) {
  bm[i >> 6] |= uint64_t{1} << (i & 63);
}
inline void clear_bit(uint64_t* bm, uint32_t i) {
  bm[i >> 6] &= ~(uint64_t{1} << (i & 63));
}

// True for an AWL segment whose scanning waits for the weak phase.
inline bool deferred(const Segment& s) {
  return (s.awl || s.client_awl) && s.rank != Rank::kExact;
}

// Marks what an AWL array's header names: its dependent and its graveyard are strong references
// whatever the array's rank (.inv.header-strong), so a splat or a burial never writes into a
// freed array. Deferred arrays call this when drained, before their slots wait for the weak
// phase. signal-safe.
void mark_awl_header(ArenaImpl* a, uintptr_t obj) {
  size_t oseg;
  uint32_t ocell;
  uintptr_t ob;
  if (!a->resolve(obj, false, &oseg, &ocell, &ob) || !a->segs[oseg].awl)
    return;  // client: no header
  const AwlHeader* h = a->cview<AwlHeader>(obj);
  for (uintptr_t r : {h->dependent, h->graveyard}) {
    size_t seg;
    uint32_t cell;
    uintptr_t ref;
    if (a->resolve(r, false, &seg, &cell, &ref)) a->mark_object(seg, cell, ref);
  }
}

}  // namespace

// ------------------------------------------------------------------------------------ marking

void ArenaImpl::note_grey_change(size_t page) noexcept {
  // A pending page is never protected (.inv.pending): it joins the list when guarded.
  if (barrier_off || (page_flags[page] & kPageDirty) || is_pending(page)) return;
  if (!dirty.push(page)) {
    dirty_overflowed = true;
    return;
  }
  page_flags[page] |= kPageDirty;
}

void ArenaImpl::grey_pages(uintptr_t obj, size_t size, int delta) noexcept {
  size_t first = page_index(obj);
  size_t last = page_index(obj + size - 1);
  for (size_t p = first; p <= last; ++p) {
    uint32_t before = grey_count[p];
    grey_count[p] = static_cast<uint32_t>(static_cast<int64_t>(before) + delta);
    if ((before == 0) != (grey_count[p] == 0)) note_grey_change(p);
  }
}

void ArenaImpl::mark_object_slow(size_t seg, uint32_t cell, uintptr_t obj) noexcept {
  Segment& s = segs[seg];
  uint64_t m = uint64_t{1} << (cell & 63);
  s.mark[cell >> 6] |= m;  // unmarked: mark_object tested it
  size_t size = object_size(s);
  marked_this_cycle += size;
  if (!s.scanned) return;  // leaf objects are black at once
  s.grey[cell >> 6] |= m;
  if (s.kind == SegKind::kSmall && ((obj ^ (obj + size - 1)) >> kPageShift) == 0) {
    size_t page = page_index(obj);  // the common case: a small object within one page
    if (grey_count[page]++ == 0) note_grey_change(page);
  } else {
    grey_pages(obj, size, +1);
  }
  if (s.kind == SegKind::kLargeHead && s.awl) {
    s.grey_pages = static_cast<uint32_t>(page_index(obj + size - 1) - page_index(obj) + 1);
    s.scan_cursor = 0;
  }
  // Deferred AWL arrays too: drain marks their header (mark_awl_header), not their slots.
  mark_stack.push(obj);  // overflow is recovered by rescan_grey_bitmaps
}

void ArenaImpl::fix_ambiguous(uintptr_t v) noexcept {
  size_t seg;
  uint32_t cell;
  uintptr_t obj;
  if (resolve(v, true, &seg, &cell, &obj)) mark_object(seg, cell, obj);
}

}  // namespace weakgc::detail

namespace weakgc {

void ScanState::fix(void** slot) noexcept {
  using namespace detail;
  uintptr_t v = reinterpret_cast<uintptr_t>(*slot);
  ArenaImpl* a = arena_;
  if (!a->in_arena(v)) return;  // foreign address or integer: not ours
  size_t seg;
  uint32_t cell;
  uintptr_t obj;
  if (!a->resolve(v, false, &seg, &cell, &obj)) {
    // An arena address that is not an allocated object's base: a stale, interior or freed
    // reference in an exact slot. Never followed, so the heap cannot be corrupted by it.
    if (mode_ == Mode::kVerify) {
      ++dangling_;
      return;
    }
    if (mode_ == Mode::kWeak) {
      // MPS's AWL rule: a slot is a reference or a tagged (unaligned) word. An aligned arena
      // address that is no object breaks it; it is left alone.
      ++a->stats.bad_awl_slots;
      if constexpr (kDebug) {
        char buf[24];
        write_err("weakgc: AWL slot ");
        write_err(format_hex(reinterpret_cast<uintptr_t>(slot) - a->view_offset, buf));
        write_err(" holds an aligned word that is not a reference; tag non-references\n");
      }
      return;
    }
    ++a->stats.bad_exact_refs;
    if constexpr (kDebug) {
      char buf[24];
      write_err("weakgc: exact slot ");
      write_err(format_hex(reinterpret_cast<uintptr_t>(slot) - a->view_offset, buf));
      write_err(" holds ");
      write_err(format_hex(v, buf));
      write_err(", which is not an allocated object (ignored)\n");
    }
    return;
  }
  if (mode_ == Mode::kMark) {
    a->mark_object(seg, cell, obj);
    return;
  }
  if (mode_ != Mode::kWeak || ((a->segs[seg].mark[cell >> 6] >> (cell & 63)) & 1)) return;
  // Weak rank, referent dead: splat the slot, and the dependent's slot at the same offset.
  *slot = nullptr;
  ++a->stats.slots_splatted;
  uintptr_t off = reinterpret_cast<uintptr_t>(slot) - a->view_offset - weak_obj_;
  if (weak_dep_ != 0) {
    size_t dseg;
    uint32_t dcell;
    uintptr_t dbase;
    if (a->resolve(weak_dep_, false, &dseg, &dcell, &dbase) &&
        off + sizeof(void*) <= a->object_size(a->segs[dseg]))
      *a->cview<uintptr_t>(weak_dep_ + off) = 0;
  }
}

void ScanState::set_weak_object(uintptr_t obj, size_t size, uintptr_t dependent) noexcept {
  weak_obj_ = obj;
  weak_size_ = size;
  weak_dep_ = dependent;
}

void* ScanState::collector_view(const void* p) const noexcept {
  uintptr_t v = reinterpret_cast<uintptr_t>(p);
  if (!arena_->in_arena(v)) return const_cast<void*>(p);
  return reinterpret_cast<void*>(v + arena_->view_offset);
}

}  // namespace weakgc

namespace weakgc::detail {

// ------------------------------------------------------------------------------------ scanning

uintptr_t ArenaImpl::client_dependent(const Segment& s, uintptr_t obj) noexcept {
  if (s.pool->format.find_dependent == nullptr) return 0;
  uintptr_t d = reinterpret_cast<uintptr_t>(
      s.pool->format.find_dependent(cview<void>(obj), s.pool->format.closure));
  if (d == 0) return 0;
  size_t seg;
  uint32_t cell;
  uintptr_t b;
  if (!resolve(d, false, &seg, &cell, &b) || !segs[seg].client_awl) {
    // find_dependent returned garbage (a foreign address, an interior or freed address, or an
    // object outside a client AWL pool): never written to.
    ++stats.bad_dependents;
    if constexpr (kDebug) {
      char buf[24];
      write_err("weakgc: find_dependent of AWL object ");
      write_err(format_hex(obj, buf));
      write_err(" returned ");
      write_err(format_hex(d, buf));
      write_err(", which is not an object of a client AWL pool (ignored)\n");
    }
    return 0;
  }
  return d;
}

void ArenaImpl::bury(AwlHeader* h, size_t index, uintptr_t survivor) noexcept {
  uintptr_t g = h->graveyard;
  if (g == 0 || !in_arena(g) || survivor == kSlotEmpty || survivor == kSlotDeleted) return;
  size_t seg;
  uint32_t cell;
  uintptr_t obj;
  if (resolve(survivor, false, &seg, &cell, &obj) && !bit(segs[seg].mark, cell))
    return;  // both halves died: nothing survives to report
  if (!resolve(g, false, &seg, &cell, &obj) || !segs[seg].awl) return;
  AwlHeader* gh = cview<AwlHeader>(g);
  if (index >= gh->length) return;
  // The graveyard is exact rank and already scanned or black, and the survivor is marked (or not
  // a reference), so storing it creates no white reference (.inv.grey).
  *cview<uintptr_t>(g + kAwlHeaderBytes + index * 8) = survivor;
}

void ArenaImpl::scan_awl_slots(uintptr_t obj, uintptr_t from, uintptr_t to, Rank rank,
                               bool weak_phase) noexcept {
  AwlHeader* h = cview<AwlHeader>(obj);
  if (!weak_phase) mark_awl_header(this, obj);  // exact rank: the header is strong too
  uintptr_t dep = h->dependent;
  bool dep_ok = dep != 0 && in_arena(dep) && (dep & 7) == 0;
  size_t seg;
  uint32_t cell;
  uintptr_t ref;
  if (!weak_phase || rank == Rank::kWeak) {
    // Slots go a batch at a time: first the indexes of those that may name an arena object are
    // compacted without a branch (a table at its load factor is about half empty in no pattern:
    // a branch per slot on emptiness would mispredict about every other slot), then the
    // candidates are processed with their referents' segment descriptors prefetched 16
    // candidates ahead and mark words 8 ahead (by then the descriptor, which locates the word,
    // is cached).
    constexpr size_t kBatch = 256;
    constexpr size_t kDescAhead = 16, kWordAhead = 8;
    uint16_t cand[kBatch];
    for (uintptr_t base_sa = from; base_sa < to; base_sa += kBatch * sizeof(uintptr_t)) {
      uintptr_t* w = cview<uintptr_t>(base_sa);
      size_t len = std::min<uintptr_t>(kBatch, (to - base_sa) / sizeof(uintptr_t));
      size_t n = 0;
      for (size_t j = 0; j < len; ++j) {
        cand[n] = static_cast<uint16_t>(j);
        n += in_arena(w[j]) ? 1 : 0;
      }
      for (size_t i = 0; i < n && i < kDescAhead; ++i)
        __builtin_prefetch(&segs[seg_index(w[cand[i]])]);
      for (size_t i = 0; i < n && i < kWordAhead; ++i) prefetch_mark_word(w[cand[i]]);
      for (size_t i = 0; i < n; ++i) {
        if (i + kDescAhead < n) __builtin_prefetch(&segs[seg_index(w[cand[i + kDescAhead]])]);
        if (i + kWordAhead < n) prefetch_mark_word(w[cand[i + kWordAhead]]);
        uintptr_t* slot = &w[cand[i]];
        if (!resolve(*slot, false, &seg, &cell, &ref)) continue;
        if (!weak_phase) {
          // Exact rank (exact arrays, and the retention fallback for weak ones): keep all alive.
          mark_object(seg, cell, ref);
          continue;
        }
        if (bit(segs[seg].mark, cell)) continue;
        size_t index =
            (base_sa - obj - kAwlHeaderBytes) / sizeof(uintptr_t) + static_cast<size_t>(cand[i]);
        *slot = kSlotDeleted;
        if (dep_ok) {
          uintptr_t* dslot = cview<uintptr_t>(dep + kAwlHeaderBytes + index * 8);
          bury(h, index, *dslot);
          *dslot = kSlotDeleted;
        }
        ++h->splatted;
        ++stats.slots_splatted;
      }
    }
    return;
  }
  // The weak phase: exact arrays have nothing to do; ephemeron values below.
  if (rank != Rank::kEphemeron || !dep_ok) return;
  for (uintptr_t sa = from; sa < to; sa += sizeof(uintptr_t)) {
    // The key lives in the dependent's slot; its value here.
    uintptr_t* slot = cview<uintptr_t>(sa);
    size_t index = (sa - obj - kAwlHeaderBytes) / sizeof(uintptr_t);
    uintptr_t* dslot = cview<uintptr_t>(dep + kAwlHeaderBytes + index * 8);
    uintptr_t key = *dslot;
    if (!resolve(key, false, &seg, &cell, &ref)) continue;
    if (bit(segs[seg].mark, cell)) continue;
    // The key died. Its value survives only if something else holds it; then it goes to the
    // key array's graveyard, exactly as the key array's own weak scan would bury it (the two
    // scans run in either order, so both must report the same survivor).
    bury(cview<AwlHeader>(dep), index, *slot);
    *slot = kSlotDeleted;
    *dslot = kSlotDeleted;
    ++h->splatted;
    ++stats.slots_splatted;
  }
}

void ArenaImpl::scan_large_awl_page(size_t head, size_t page, bool weak_phase) noexcept {
  Segment& s = segs[head];
  if (grey_count[page] == 0) return;
  uintptr_t obj = seg_base(head);
  uint64_t length = cview<AwlHeader>(obj)->length;
  uintptr_t slots_lo = obj + kAwlHeaderBytes;
  uintptr_t slots_hi = slots_lo + length * sizeof(uintptr_t);
  if (slots_hi > obj + s.large_size) slots_hi = obj + s.large_size;
  uintptr_t lo = std::max(page_addr(page), slots_lo);
  uintptr_t hi = std::min(page_addr(page + 1), slots_hi);
  // Marks only: scanning at exact rank may grey referents but never this object's pages.
  grey_count[page] = 0;
  note_grey_change(page);
  if (lo < hi) scan_awl_slots(obj, lo, hi, s.rank, weak_phase);
  if (--s.grey_pages == 0) clear_bit(s.grey, 0);
}

void ArenaImpl::scan_object(size_t seg, uint32_t cell, uintptr_t obj, bool weak_phase) noexcept {
  Segment& s = segs[seg];
  if (!bit(s.grey, cell)) return;
  size_t size = object_size(s);
  if (s.kind == SegKind::kLargeHead && s.awl) {
    size_t first = page_index(obj), last = page_index(obj + size - 1);
    for (size_t p = first; p <= last; ++p) scan_large_awl_page(seg, p, weak_phase);
    return;
  }
  clear_bit(s.grey, cell);
  if (s.kind == SegKind::kSmall && ((obj ^ (obj + size - 1)) >> kPageShift) == 0) {
    size_t page = page_index(obj);  // as in mark_object_slow: one page
    if (--grey_count[page] == 0) note_grey_change(page);
  } else {
    grey_pages(obj, size, -1);
  }
  if (s.awl) {
    uint64_t length = cview<AwlHeader>(obj)->length;
    uintptr_t hi = obj + kAwlHeaderBytes + length * sizeof(uintptr_t);
    if (hi > obj + size) hi = obj + size;
    scan_awl_slots(obj, obj + kAwlHeaderBytes, hi, s.rank, weak_phase);
    return;
  }
  if (s.client_awl && weak_phase && s.rank == Rank::kWeak) {
    // A client's weak object at weak rank: its scan function fixes each slot; fix splats dead
    // referents (to 0, as MPS does) and the same slot of the dependent find_dependent names.
    ScanState ss(this, ScanState::Mode::kWeak);
    ss.set_weak_object(obj, size, client_dependent(s, obj));
    s.pool->format.scan(ss, cview<void>(obj), size, s.pool->format.closure);
    return;
  }
  ScanState ss(this, ScanState::Mode::kMark);
  s.pool->format.scan(ss, cview<void>(obj), size, s.pool->format.closure);
}

void ArenaImpl::scan_page(size_t page, bool weak_phase) noexcept {
  size_t si = page >> (kSegmentShift - kPageShift);
  Segment* s = &segs[si];
  if (s->kind == SegKind::kLargeTail) {
    si = s->head;
    s = &segs[si];
  }
  if (s->kind == SegKind::kLargeHead) {
    if (s->awl)
      scan_large_awl_page(si, page, weak_phase);
    else
      scan_object(si, 0, seg_base(si), weak_phase);
    return;
  }
  if (s->kind != SegKind::kSmall) return;
  uintptr_t sb = seg_base(si);
  uintptr_t lo = page_addr(page), hi = page_addr(page + 1);
  uint32_t first = static_cast<uint32_t>((lo - sb) / s->cell_size);
  uint32_t last = static_cast<uint32_t>((hi - 1 - sb) / s->cell_size);
  if (last >= s->cell_count) last = s->cell_count - 1;
  for (uint32_t c = first; c <= last && c < s->cell_count; ++c) {
    if (bit(s->grey, c)) scan_object(si, c, sb + uintptr_t{c} * s->cell_size, weak_phase);
  }
}

// ---------------------------------------------------------------------------------- protection

void ArenaImpl::update_protection() noexcept {
  if (barrier_off) return;  // no mutator can run until the collection ends
  bool weak = phase == Phase::kWeak;
  auto want = [&](size_t p) { return grey_count[p] > 0 && exposed[p] == 0 && !is_pending(p); };
  auto have = [&](size_t p) { return (page_flags[p] & kPageProtected) != 0; };
  for (;;) {
    if (dirty_overflowed) {
      // Too many changes to list: recompute every page of every segment in use.
      for (size_t i = 0; i < dirty.size; ++i)
        page_flags[dirty.data[i]] &= static_cast<uint8_t>(~kPageDirty);
      dirty.size = 0;
      dirty_overflowed = false;
      for (size_t i = 0; i < seg_limit && !dirty_overflowed; ++i) {
        if (segs[i].kind == SegKind::kFree) continue;
        for (size_t p = i * kPagesPerSegment; p < (i + 1) * kPagesPerSegment; ++p)
          if (want(p) != have(p)) note_grey_change(p);
      }
      if (dirty_overflowed) fatal("protection dirty list overflow");
    }
    // Exposed pages may not be protected: scan their grey objects now (which may grey more).
    for (bool again = true; again;) {
      again = false;
      for (size_t i = 0; i < dirty.size; ++i) {
        size_t p = dirty.data[i];
        if (grey_count[p] > 0 && exposed[p] > 0) {
          scan_page(p, weak);
          again = true;
        }
      }
    }
    size_t n = dirty.size;
    std::sort(dirty.data, dirty.data + n);
    // Protect first, then unprotect (.inv.barrier: DESIGN.md §4's "protect first" rule), each in
    // coalesced runs of consecutive pages.
    for (int pass = 0; pass < 2; ++pass) {
      bool protecting = pass == 0;
      size_t i = 0;
      while (i < n) {
        size_t p = dirty.data[i];
        if (want(p) == have(p) || want(p) != protecting) {
          ++i;
          continue;
        }
        size_t j = i + 1;
        while (j < n && dirty.data[j] == dirty.data[j - 1] + 1 &&
               want(dirty.data[j]) == protecting && want(dirty.data[j]) != have(dirty.data[j]))
          ++j;
        if (!set_protection(p, j - i, protecting)) {
          if (!protecting)
            fatal("cannot unprotect arena page (mprotect failed)", base + (p << kPageShift));
          // mprotect failed (ENOMEM: too many mappings). The pages cannot be guarded, so make
          // them need no guard: scan their grey objects now. Referents land on the dirty list.
          for (size_t k = i; k < j; ++k) {
            size_t q = dirty.data[k];
            while (grey_count[q] > 0) scan_page(q, weak);
          }
        }
        i = j;
      }
    }
    // Settle: pages handled above leave the list; any whose state changed again (a failed
    // protect scanned pages whose referents lie on pages handled earlier) go back on it.
    for (size_t i = 0; i < n; ++i) {
      size_t p = dirty.data[i];
      page_flags[p] &= static_cast<uint8_t>(~kPageDirty);
      if (want(p) != have(p)) note_grey_change(p);
    }
    size_t extra = dirty.size - n;
    memmove(dirty.data, dirty.data + n, extra * sizeof(uintptr_t));
    dirty.size = extra;
    if (dirty.size == 0 && !dirty_overflowed) break;
  }
}

void ArenaImpl::drop_barrier() noexcept {
  clear_pending();
  if (phase == Phase::kMark || phase == Phase::kWeak) unprotect_all();
  for (size_t i = 0; i < dirty.size; ++i)
    page_flags[dirty.data[i]] &= static_cast<uint8_t>(~kPageDirty);
  dirty.size = 0;
  dirty_overflowed = false;
  barrier_off = true;
}

// ------------------------------------------------------------------------- pending (.inv.pending)

void ArenaImpl::make_pending(uintptr_t obj) noexcept {
  if (barrier_off || !in_arena(obj)) return;
  size_t seg = seg_index(obj);
  Segment& s = segs[seg];
  // An unmarked large object: its root is about to grey it (its pages are its own).
  if (s.kind != SegKind::kLargeHead || !s.scanned || obj != seg_base(seg) || (s.mark[0] & 1))
    return;
  size_t first = page_index(obj), last = page_index(obj + s.large_size - 1);
  if (last - first + 1 < options.pending_min_pages) return;
  if (pending_ranges.size() == pending_ranges.capacity()) return;  // not reserved: protect it
  for (size_t p = first; p <= last; ++p)
    __atomic_store_n(&pending[p], uint8_t{1}, __ATOMIC_RELAXED);
  pending_ranges.emplace_back(first, last);
  stats.pages_pending += last - first + 1;
}

void ArenaImpl::guard_page(size_t page) noexcept {
  if (!is_pending(page)) return;
  __atomic_store_n(&pending[page], uint8_t{0}, __ATOMIC_RELAXED);
  if (grey_count[page] > 0) note_grey_change(page);  // protected by the next update_protection
}

bool ArenaImpl::guard_pending(uint64_t deadline) noexcept {
  constexpr size_t kChunk = 256;  // pages per mprotect run between clock checks (~40 µs here)
  uint64_t last = 0;              // the previous chunk's time: the next one is not begun late
  while (pending_front < pending_ranges.size()) {
    uint64_t t0 = now_ns();
    if (deadline != 0 && last != 0 && t0 + last > deadline) return false;
    auto& r = pending_ranges[pending_front];
    size_t end = std::min(r.second, r.first + kChunk - 1);
    for (size_t p = r.first; p <= end; ++p) guard_page(p);
    r.first = end + 1;
    if (r.first > r.second) ++pending_front;
    update_protection();
    last = now_ns() - t0;
  }
  pending_ranges.clear();
  pending_front = 0;
  return true;
}

void ArenaImpl::guard_for_mutator(uintptr_t addr) noexcept {
  LockGuard g(lock);
  if (!in_arena(addr) || !is_pending(page_index(addr))) return;
  // Single access in software: the slot's referent is greyed, as the emulator would on a
  // protected page; the page stays pending and the slot's neighbours unloaded. The caller
  // loads the slot next (and retries if a flip came between: it held nothing then).
  in_collector = true;
  fix_ambiguous(*cview<uintptr_t>(addr & ~uintptr_t{7}));
  update_protection();
  ++stats.pending_guards;
  in_collector = false;
}

void ArenaImpl::guard_page_for_mutator(uintptr_t addr) noexcept {
  LockGuard g(lock);
  if (!in_arena(addr)) return;
  size_t page = page_index(addr);
  if (!is_pending(page) || (page_flags[page] & kPageWeak)) return;
  in_collector = true;
  ++stats.pending_guards;
  while (grey_count[page] > 0) scan_page(page, false);
  __atomic_store_n(&pending[page], uint8_t{0}, __ATOMIC_RELAXED);
  note_grey_change(page);
  update_protection();
  in_collector = false;
}

void ArenaImpl::clear_pending() noexcept {
  for (size_t i = pending_front; i < pending_ranges.size(); ++i)
    for (size_t p = pending_ranges[i].first; p <= pending_ranges[i].second; ++p)
      __atomic_store_n(&pending[p], uint8_t{0}, __ATOMIC_RELAXED);
  pending_ranges.clear();
  pending_front = 0;
}

void ArenaImpl::unprotect_all() noexcept {
  size_t i = 0;
  size_t limit = seg_limit * kPagesPerSegment;  // no page above it was ever protected
  while (i < limit) {
    if (!(page_flags[i] & kPageProtected)) {
      ++i;
      continue;
    }
    size_t j = i + 1;
    while (j < limit && (page_flags[j] & kPageProtected)) ++j;
    if (!set_protection(i, j - i, false)) fatal("cannot unprotect arena pages", base + (i << 12));
    i = j;
  }
}

}  // namespace weakgc::detail

namespace weakgc::detail {

// ---------------------------------------------------------------------------------------- roots

namespace {

// Reads the words of [lo, hi) without ASan's view of stack redzones: conservative scanning
// looks at every word of the stack, including ones the compiler never wrote.

void fix_root(ArenaImpl* a, uintptr_t v) {
  if (!a->in_arena(v)) return;
  size_t seg;
  uint32_t cell;
  uintptr_t obj;
  if (a->resolve(v, false, &seg, &cell, &obj))
    a->mark_object(seg, cell, obj);
  else
    ++a->stats.bad_exact_refs;
}

}  // namespace

void ArenaImpl::scan_thread_stacks() noexcept {
  ThreadState* me = current_thread_state();
  if (me != nullptr && std::find(threads.begin(), threads.end(), me) != threads.end()) {
    // Only a registered thread's registers are roots: an arena with exact roots only
    // (register_thread = false) must not be pinned by whatever the collecting thread holds.
    // The mutator's part of this thread: the registers and frames at the outermost arena-lock
    // guard (LockGuard), not the collector's own frames below it.
    uintptr_t sp = lock.entry_sp;
    if (sp != 0 && lock.entry_regs != nullptr && sp >= me->stack_lo && sp < me->stack_hi) {
      for (int i = 0; i < 6; ++i) fix_ambiguous(lock.entry_regs[i]);
    } else {
      uintptr_t regs[6];
      spill_callee_saved(regs);
      for (uintptr_t r : regs) fix_ambiguous(r);
      asm volatile("mov %%rsp, %0" : "=r"(sp));
    }
    scan_ambiguous_range(this, sp, me->stack_hi);
  }
  scan_thread_roots(this);  // the other registered threads, stopped by the flip
}

void ArenaImpl::scan_roots() noexcept {
  for (const ExactRoot& r : roots) {
    // As scan_awl_slots: descriptors 16 roots ahead, mark words 8 ahead.
    for (size_t i = 0; i < r.count && i < 16; ++i)
      prefetch_segment(reinterpret_cast<uintptr_t>(r.base[i]));
    for (size_t i = 0; i < r.count; ++i) {
      if (i + 16 < r.count) prefetch_segment(reinterpret_cast<uintptr_t>(r.base[i + 16]));
      if (i + 8 < r.count) prefetch_mark_word(reinterpret_cast<uintptr_t>(r.base[i + 8]));
      fix_root(this, reinterpret_cast<uintptr_t>(r.base[i]));
    }
  }
  for (HandleNode* h = handles; h != nullptr; h = h->next) {
    // Pending first: greying the object then leaves its pages off the dirty list.
    if (h->owner_guarded && h->ptr != nullptr) make_pending(reinterpret_cast<uintptr_t>(h->ptr));
    fix_root(this, reinterpret_cast<uintptr_t>(h->ptr));
  }
  // The untaken finalization messages are roots too, but greyed by the first increments
  // (scan_final_queue), not here: a flip stays short however many the client has let pile up.
  final_scan_next = final_head;
  final_scan_end = final_queue.size();
  scan_thread_stacks();
}

// ---------------------------------------------------------------------------------------- cycle

void ArenaImpl::flip() noexcept {
  if (phase == Phase::kSweep) sweep(0);  // .inv.sweep: everything swept before a flip
  WEAKGC_CHECK(phase == Phase::kIdle);
  uint64_t t0 = now_ns();
  set_phase(Phase::kMark);
  mark_subphase = 0;
  final_done = false;
  final_cursor = 0;
  final_kept = 0;
  eph_cursor = 0;
  eph_cell = 0;
  eph_entry = 0;
  weak_cursor = 0;
  marked_this_cycle = 0;
  bytes_since_cycle = 0;
  for (size_t i = 0; i < seg_limit; ++i) {
    if (segs[i].kind != SegKind::kFree && deferred(segs[i]))
      memset(&single_access[i * kPagesPerSegment], 0, kPagesPerSegment * sizeof(uint16_t));
  }
  // make_pending runs with the world stopped, where nothing may allocate.
  size_t guarded = 0;
  for (HandleNode* h = handles; h != nullptr; h = h->next) guarded += h->owner_guarded ? 1 : 0;
  pending_ranges.reserve(guarded);
  stop_world(this);
  scan_roots();
  // After the pending pages are set: a guarded load that began before the flip retries.
  state.fetch_add(4, std::memory_order_release);
  update_protection();
  start_world(this);
  stats.flip_pauses.record(now_ns() - t0);
  event_flip(this, t0);
}

void ArenaImpl::rescan_grey_bitmaps() noexcept {
  mark_stack.overflowed = false;
  for (size_t i = 0; i < seg_limit; ++i) {
    Segment& s = segs[i];
    if (!s.scanned) continue;
    // Deferred arrays stay grey until the weak phase: pushing them would overflow again on every
    // rescan. Their headers are marked here instead (idempotent; what it greys is pushed).
    auto redo = [&](uintptr_t obj) {
      if (deferred(s))
        mark_awl_header(this, obj);
      else
        mark_stack.push(obj);
    };
    if (s.kind == SegKind::kLargeHead) {
      if (s.grey[0] & 1) redo(seg_base(i));
    } else if (s.kind == SegKind::kSmall) {
      for (uint32_t c = 0; c < s.cell_count; ++c)
        if (bit(s.grey, c)) redo(seg_base(i) + uintptr_t{c} * s.cell_size);
    }
  }
}

bool ArenaImpl::drain(uint64_t deadline) noexcept {
  // Objects popped from the mark stack wait in a small FIFO while their first cache line is
  // fetched (through the collector view), so scanning one overlaps the misses of the next ones.
  constexpr uint32_t kAhead = 16;
  uintptr_t ahead[kAhead];
  uint32_t head = 0, count = 0;
  uint32_t n = 0;
  uint64_t now_c = deadline != 0 ? now_ns() : 0;  // the clock, read every 16 objects
  for (;;) {
    uintptr_t obj;
    while (count < kAhead && mark_stack.pop(&obj)) {
      __builtin_prefetch(cview<char>(obj));
      ahead[(head + count++) % kAhead] = obj;
    }
    if (count == 0) {
      if (!mark_stack.overflowed) return true;
      rescan_grey_bitmaps();
      continue;
    }
    obj = ahead[head];
    head = (head + 1) % kAhead;
    --count;
    // Only mark_object pushes, and only allocated objects' bases, which stay allocated until
    // the sweep (the stack is empty by then): no resolve needed.
    size_t seg = seg_index(obj);
    const Segment& os = segs[seg];
    uint32_t cell = os.kind == SegKind::kSmall
                        ? static_cast<uint32_t>(((obj - seg_base(seg)) * os.cell_recip) >> 32)
                        : 0;
    if constexpr (kDebug) {
      size_t rs;
      uint32_t rc;
      uintptr_t rb;
      WEAKGC_CHECK(resolve(obj, false, &rs, &rc, &rb) && rs == seg && rc == cell);
    }
    if (deferred(os)) {
      mark_awl_header(this, obj);  // the slots wait for the weak phase (or a fault)
      continue;
    }
    Segment& sg = segs[seg];
    if (sg.kind == SegKind::kLargeHead && sg.awl) {
      // A large array is scanned a few pages at a time from its cursor: before each chunk it
      // goes back on the stack beneath what the chunk greys, so those objects are drained
      // first. The stack stays small, and one huge table cannot blow the pause: the clock is
      // read after every chunk. Pages below the cursor are scanned; pages above it that a fault
      // scanned have a zero grey count and are skipped by scan_large_awl_page.
      constexpr size_t kChunkPages = 4;  // 2,048 slots
      if (!(sg.grey[0] & 1)) continue;   // a duplicate entry of a finished array
      size_t first = page_index(obj), last = page_index(obj + sg.large_size - 1);
      size_t p = first + sg.scan_cursor;
      size_t end = std::min(last, p + kChunkPages - 1);
      if (end < last) mark_stack.push(obj);  // overflow: found again by rescan_grey_bitmaps
      for (; p <= end; ++p) scan_large_awl_page(seg, p, false);
      sg.scan_cursor = static_cast<uint32_t>(end + 1 - first);
      if (out_of_time(deadline)) {
        while (count > 0) mark_stack.push(ahead[(head + --count) % kAhead]);
        return false;
      }
    } else {
      scan_object(seg, cell, obj, false);
    }
    // The increment also owes the protection changes its marking caused (update_protection
    // runs after it): stop early enough to pay for them within the budget. The debt is checked
    // after every object (one object can grey several pages, each a separate mprotect of a few
    // µs here: 16 objects between checks could run up a millisecond), the clock every 16.
    if (deadline != 0) {
      if ((++n & 15) == 0) now_c = now_ns();
      if (now_c + protection_debt_ns() > deadline) {
        // Still grey: back on the stack (an overflow is recovered from the grey bitmaps).
        while (count > 0) mark_stack.push(ahead[(head + --count) % kAhead]);
        return false;
      }
    }
  }
}

bool ArenaImpl::ephemeron_pass(uint64_t deadline) noexcept {
  // One pass over every grey ephemeron value array, tracing values whose key is marked. The
  // arrays stay grey (their entries with white keys may yet come alive) until the weak phase.
  // An increment stops between chunks of entries and resumes at (eph_cursor, eph_cell,
  // eph_entry): a pass restarted from the beginning of a huge array would never finish.
  constexpr uint64_t kChunk = 512;  // entries between clock checks (one page of slots)
  for (; eph_cursor < seg_limit; ++eph_cursor, eph_cell = 0, eph_entry = 0) {
    Segment& s = segs[eph_cursor];
    if (!s.awl || s.rank != Rank::kEphemeron) continue;
    if (s.kind != SegKind::kSmall && s.kind != SegKind::kLargeHead) continue;
    for (; eph_cell < s.cell_count; ++eph_cell, eph_entry = 0) {
      uint32_t c = eph_cell;
      if (!bit(s.grey, c)) continue;
      uintptr_t obj = seg_base(eph_cursor) + uintptr_t{c} * s.cell_size;
      AwlHeader* h = cview<AwlHeader>(obj);
      uintptr_t dep = h->dependent;
      // No key array: no key can die, so every value is traced (as for a non-reference key);
      // skipping the array would leave its values pointing at swept objects.
      bool keyless = dep == 0 || !in_arena(dep) || (dep & 7) != 0;  // as scan_awl_slots' dep_ok
      uint64_t len = h->length;
      size_t cap = (object_size(s) - kAwlHeaderBytes) / 8;
      if (len > cap) len = cap;
      for (uint64_t i = eph_entry; i < len; ++i) {
        uintptr_t key = keyless ? kSlotEmpty : *cview<uintptr_t>(dep + kAwlHeaderBytes + i * 8);
        size_t kseg;
        uint32_t kcell;
        uintptr_t kobj;
        bool key_live =
            keyless || !resolve(key, false, &kseg, &kcell, &kobj) || bit(segs[kseg].mark, kcell);
        if (key_live) {
          uintptr_t v = *cview<uintptr_t>(obj + kAwlHeaderBytes + i * 8);
          size_t vseg;
          uint32_t vcell;
          uintptr_t vobj;
          if (resolve(v, false, &vseg, &vcell, &vobj)) mark_object(vseg, vcell, vobj);
        }
        if (deadline != 0 && (i + 1) % kChunk == 0 && i + 1 < len) {
          // Entries [0, i] are done in this pass; what they greyed is drained first.
          if (!drain(deadline) || out_of_time(deadline)) {
            eph_entry = i + 1;
            return false;
          }
        }
      }
      if (!drain(deadline)) {
        ++eph_cell;  // this array is done; the next increment resumes after it
        eph_entry = 0;
        return false;
      }
    }
    if (out_of_time(deadline)) {
      ++eph_cursor;
      eph_cell = 0;
      eph_entry = 0;
      return false;
    }
  }
  return true;
}

uint64_t* ArenaImpl::final_word(size_t seg, uint32_t cell, bool create) {
  // Registered objects come mostly in allocation order: the last segment's bitmap is cached (a
  // bitmap never moves or goes away, so the pointer stays valid).
  if (seg != final_cache_seg) {
    auto it = final_bits.find(seg);
    if (it == final_bits.end()) {
      if (!create) return nullptr;
      it = final_bits.emplace(seg, std::make_unique<uint64_t[]>(kBitmapWords)).first;
    }
    final_cache_seg = seg;
    final_cache_bits = it->second.get();
  }
  return &final_cache_bits[cell >> 6];
}

bool ArenaImpl::scan_final_queue(uint64_t deadline) noexcept {
  while (final_scan_next < final_scan_end) {
    fix_root(this, final_queue[final_scan_next++]);
    if ((final_scan_next & 255) == 0 && out_of_time(deadline)) return false;
  }
  return true;
}

void ArenaImpl::message_taken(size_t index) noexcept {
  if (index < final_scan_next || index >= final_scan_end) return;
  // The mutator is about to hold it: grey it now, and protect its page, as a guarded load would.
  in_collector = true;
  fix_root(this, final_queue[index]);
  update_protection();
  in_collector = false;
}

void ArenaImpl::final_queue_shifted(size_t by) noexcept {
  final_scan_next = final_scan_next > by ? final_scan_next - by : 0;
  final_scan_end = final_scan_end > by ? final_scan_end - by : 0;
}

bool ArenaImpl::run_finalization(uint64_t deadline) noexcept {
  // Objects registered between increments are appended and reached too: they are marked (the
  // mutator holds only marked objects once marking is done), so they stay registered.
  auto& v = final_registered;
  while (final_cursor < v.size()) {
    uintptr_t obj = v[final_cursor++];
    size_t seg;
    uint32_t cell;
    uintptr_t b;
    if (!resolve(obj, false, &seg, &cell, &b)) continue;  // cannot happen: registered objects live
    if (bit(segs[seg].mark, cell)) {
      v[final_kept++] = obj;
    } else {
      mark_object(seg, cell, obj);  // resurrected until the client takes the message
      uint64_t* w = final_word(seg, cell, false);
      if (w != nullptr) *w &= ~(uint64_t{1} << (cell & 63));
      WEAKGC_CHECK(final_queue.size() < final_queue.capacity());  // reserved by finalize
      final_queue.push_back(obj);
      ++stats.objects_finalized;
    }
    if ((final_cursor & 255) == 0 && out_of_time(deadline)) return false;
  }
  v.resize(final_kept);
  return true;
}

bool ArenaImpl::weak_phase(uint64_t deadline) noexcept {
  for (; weak_cursor < seg_limit; ++weak_cursor) {
    Segment& s = segs[weak_cursor];
    if (!deferred(s)) continue;
    if (s.kind == SegKind::kLargeHead && s.client_awl) {
      if (s.grey[0] & 1) scan_object(weak_cursor, 0, seg_base(weak_cursor), true);
    } else if (s.kind == SegKind::kLargeHead) {
      if (!(s.grey[0] & 1)) continue;
      uintptr_t obj = seg_base(weak_cursor);
      size_t first = page_index(obj), last = page_index(obj + s.large_size - 1);
      // A page at a time (512 slots): each scanned page also owes an unprotect, which the
      // clock check counts (out_of_time), so the increment stops with time left to pay it.
      for (size_t p = first; p <= last; ++p) {
        if (grey_count[p] == 0) continue;  // scanned by an earlier increment or a fault
        scan_large_awl_page(weak_cursor, p, true);
        if (p < last && out_of_time(deadline)) return false;
      }
    } else if (s.kind == SegKind::kSmall) {
      for (uint32_t c = 0; c < s.cell_count; ++c)
        if (bit(s.grey, c))
          scan_object(weak_cursor, c, seg_base(weak_cursor) + uintptr_t{c} * s.cell_size, true);
      if (out_of_time(deadline)) {
        ++weak_cursor;
        return false;
      }
    }
  }
  return true;
}

bool ArenaImpl::sweep(uint64_t deadline) noexcept {
  for (; sweep_cursor < seg_limit; ++sweep_cursor) {
    Segment& s = segs[sweep_cursor];
    if (s.needs_sweep) sweep_segment(sweep_cursor);
    if ((sweep_cursor & 7) == 0 && deadline != 0 && now_ns() > deadline) {
      ++sweep_cursor;
      return false;
    }
  }
  finish_cycle(deadline);
  return true;
}

void ArenaImpl::finish_cycle(uint64_t deadline) noexcept {
  ++stats.cycles;
  set_phase(Phase::kIdle);
  stats.bytes_marked += marked_this_cycle;
  live_after_sweep = stats.live_bytes;
  // Saturating: live data times a large factor may pass what 64 bits hold.
  const double want = static_cast<double>(live_after_sweep) * options.growth_factor;
  uint64_t next = want >= 1.8e19 ? UINT64_MAX : static_cast<uint64_t>(want);
  trigger = std::max<uint64_t>(options.trigger_bytes, next);
  // .req.return: resident memory follows live data (an increment may leave part of it to the
  // next increment, see work's kIdle case).
  (void)trim_free_segments(deadline);
  if constexpr (kDebug) verify();
}

bool ArenaImpl::work(uint64_t budget_ns) noexcept {
  WEAKGC_CHECK(!in_collector);
  in_collector = true;
  uint64_t t0 = now_ns();
  // Aim at 85% of the budget: the deadline is checked every few objects, and the protection
  // update at the end (estimated by protection_debt_ns) is only an estimate.
  uint64_t deadline = budget_ns != 0 ? t0 + budget_ns * 85 / 100 : 0;
  bool more = true;
  for (bool first = true; more; first = false) {
    // The first round always runs, so even a tiny budget makes progress.
    if (!first && out_of_time(deadline)) break;
    switch (phase) {
      case Phase::kIdle:
        // A cycle's end may have left memory to give back (trim_free_segments with a deadline).
        if (first) (void)trim_free_segments(deadline);
        more = false;
        break;
      case Phase::kMark:
        if (mark_subphase == 0) {
          if (!scan_final_queue(deadline)) goto out;
          if (!drain(deadline)) goto out;
          // .inv.pending: the weak phase settles weak pages on the mutator's first touch, which
          // needs them protected; pending pages are protected now, a chunk at a time, once the
          // marking has nothing else to do. Until this is done the mutator's guarded loads may
          // grey objects between increments, so each increment drains first; from here on
          // every page is guarded by protection, as without pending pages.
          if (!guard_pending(deadline)) goto out;
          mark_subphase = 1;
          eph_cursor = 0;
          eph_cell = 0;
          eph_entry = 0;
          eph_mark_start = marked_this_cycle;
        }
        if (mark_subphase == 1) {
          if (!ephemeron_pass(deadline)) goto out;
          if (!drain(deadline)) goto out;
          if (marked_this_cycle != eph_mark_start) {
            // Something was marked during the pass: another pass may find more live keys.
            eph_cursor = 0;
            eph_cell = 0;
            eph_entry = 0;
            eph_mark_start = marked_this_cycle;
            break;
          }
          mark_subphase = 2;
        }
        if (!final_done) {
          if (!run_finalization(deadline)) goto out;
          final_done = true;
          mark_subphase = 0;
          break;
        }
        set_phase(Phase::kWeak);
        weak_cursor = 0;
        break;
      case Phase::kWeak:
        if (!weak_phase(deadline)) goto out;
        update_protection();  // no grey object is left: every page comes unprotected
        for (size_t i = 0; i < seg_limit; ++i) {
          SegKind k = segs[i].kind;
          if (k == SegKind::kSmall || k == SegKind::kLargeHead) segs[i].needs_sweep = true;
        }
        set_phase(Phase::kSweep);
        sweep_cursor = 0;
        break;
      case Phase::kSweep:
        if (!sweep(deadline)) goto out;
        more = false;
        break;
    }
  }
out:
  if (phase == Phase::kMark || phase == Phase::kWeak) update_protection();
  in_collector = false;
  ++stats.increments;
  if (budget_ns != 0) stats.increment_pauses.record(now_ns() - t0);
  event_work(this, t0, budget_ns);
  return phase != Phase::kIdle;
}

void ArenaImpl::collect_full() noexcept {
  uint64_t t0 = now_ns();
  if (phase == Phase::kSweep) {
    in_collector = true;
    sweep(0);
    in_collector = false;
  }
  // The barrier guards mutators that run while a cycle marks. When no thread but this one is
  // registered, none can: this thread holds the lock until the cycle ends, and an unregistered
  // thread is no mutator (its stack is no root, so it may not hold references across a
  // collection). Then no page needs protecting, and a cycle already marking drops its
  // protection at once (a few coalesced mprotect calls instead of one per page it would
  // unprotect page by page). With other registered threads the cycle keeps the barrier: they run
  // between the flip and the end, outside the lock, until they touch a grey page.
  ThreadState* me = current_thread_state();
  if (threads.empty() || (threads.size() == 1 && threads[0] == me)) drop_barrier();
  if (phase == Phase::kIdle) {
    in_collector = true;
    flip();
    in_collector = false;
  }
  while (work(0)) {
  }
  barrier_off = false;  // idle: no grey object, no page protected
  ++stats.full_collections;
  stats.full_pauses.record(now_ns() - t0);
  event_full(this, t0);
}

void ArenaImpl::maybe_collect_before_alloc(size_t bytes) noexcept {
  bytes_since_cycle += bytes;
  if (phase == Phase::kIdle) {
    if (bytes_since_cycle < trigger) return;
    if (!incremental) {
      collect_full();
      return;
    }
    in_collector = true;
    flip();
    in_collector = false;
    work_credit = 0;
    return;
  }
  if (!incremental) return;
  // Each allocated byte buys `pace` bytes of collection work; work runs in increments bounded by
  // the pause target.
  double live = static_cast<double>(std::max<uint64_t>(live_after_sweep, options.trigger_bytes));
  double pace = std::max(2.0, 2.0 * live / static_cast<double>(std::max<uint64_t>(trigger, 1)));
  work_credit += static_cast<double>(bytes) * pace;
  if (work_credit < 256.0 * 1024) return;
  work_credit = 0;
  work(static_cast<uint64_t>(options.pause_target_ms * 1e6));
}

}  // namespace weakgc::detail
