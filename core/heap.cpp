// Segments and cells: resolving addresses, allocation, sweeping (.inv.sweep).
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

}  // namespace

bool ArenaImpl::resolve_slow(uintptr_t p, bool interior, size_t* seg, uint32_t* cell,
                             uintptr_t* obj_base) const noexcept {
  if (!in_arena(p)) return false;
  size_t si = seg_index(p);
  const Segment* s = &segs[si];
  switch (s->kind) {
    case SegKind::kFree:
      return false;
    case SegKind::kLargeTail:
      if (!interior) return false;
      si = s->head;
      s = &segs[si];
      [[fallthrough]];
    case SegKind::kLargeHead: {
      uintptr_t obj = seg_base(si);
      if (!interior && p != obj) return false;
      if (p >= obj + s->large_size) return false;
      if (!bit(s->alloc, 0)) return false;
      *seg = si;
      *cell = 0;
      *obj_base = obj;
      return true;
    }
    case SegKind::kSmall: {
      uintptr_t sb = seg_base(si);
      uint32_t c = static_cast<uint32_t>(((p - sb) * uint64_t{s->cell_recip}) >> 32);
      if (c >= s->cell_count) return false;
      uintptr_t obj = sb + uintptr_t{c} * s->cell_size;
      if (!interior && obj != p) return false;
      if (!bit(s->alloc, c)) return false;
      *seg = si;
      *cell = c;
      *obj_base = obj;
      return true;
    }
  }
  return false;
}

void ArenaImpl::init_segment(size_t idx, Pool* pool, Rank rank, uint32_t sc) noexcept {
  Segment& s = segs[idx];
  s.kind = SegKind::kSmall;
  s.dirty = false;  // cells are zeroed one by one as they are allocated
  s.rank = rank;
  s.size_class = static_cast<uint8_t>(sc);
  s.needs_sweep = false;
  s.scanned = pool->cls != PoolClass::kLO;
  s.awl = pool->cls == PoolClass::kAWL && !pool->client_awl;
  s.client_awl = pool->client_awl;
  s.on_partial = false;
  s.cell_size = kSizeClasses[sc];
  s.cell_count = static_cast<uint32_t>(kSegmentSize / s.cell_size);
  s.cell_recip = static_cast<uint32_t>(((uint64_t{1} << 32) + s.cell_size - 1) / s.cell_size);
  s.live_cells = 0;
  s.alloc_hint = 0;
  s.nsegs = 1;
  s.head = 0;
  s.large_size = 0;
  s.grey_pages = 0;
  s.scan_cursor = 0;
  s.pool = pool;
  memset(s.alloc, 0, sizeof s.alloc);
  memset(s.mark, 0, sizeof s.mark);
  memset(s.grey, 0, sizeof s.grey);
  if ((s.awl || s.client_awl) && rank != Rank::kExact) {
    for (size_t p = idx * kPagesPerSegment; p < (idx + 1) * kPagesPerSegment; ++p)
      page_flags[p] |= kPageWeak;
  }
}

namespace {

// Whether objects of `pool` may have `rank`: one of the three; weak ranks only in AWL pools;
// ephemeron only for the library's own arrays (a client format's object at that rank would be
// scanned late, in the weak phase, and what it greys there would never be drained).
bool rank_allowed(const Pool* pool, Rank rank) noexcept {
  if (static_cast<unsigned>(rank) > static_cast<unsigned>(Rank::kWeak)) return false;
  if (pool->cls != PoolClass::kAWL && rank != Rank::kExact) return false;
  return !(pool->client_awl && rank == Rank::kEphemeron);
}

}  // namespace

Status ArenaImpl::allocate(Pool* pool, size_t size, Rank rank, void** out) noexcept {
  if (pool == nullptr || out == nullptr) return Status::kBadParam;
  if (size == 0 || size > reserve) return Status::kBadParam;
  if (!rank_allowed(pool, rank) || pool->arena != this) return Status::kBadParam;
  // Collection work happens before the allocation, so the new object is never at risk: it is
  // black if a cycle is marking (.inv.black-alloc), and not yet visible to a flip otherwise.
  maybe_collect_before_alloc(size);
  Status st = size <= kLargeThreshold ? allocate_small(pool, size_class_of(size), rank, out)
                                      : allocate_large(pool, size, rank, out);
  if (st == Status::kNoMemory) {
    // Exhaustion: finish (or run) a whole cycle, sweep everything, and try once more.
    collect_full();
    st = size <= kLargeThreshold ? allocate_small(pool, size_class_of(size), rank, out)
                                 : allocate_large(pool, size, rank, out);
  }
  if (st != Status::kOk) return st;
  size_t bytes = size <= kLargeThreshold ? kSizeClasses[size_class_of(size)] : size;
  stats.bytes_allocated += bytes;
  stats.live_bytes += bytes;
  return Status::kOk;
}

Status ArenaImpl::refill_tlab(ThreadState* t, TlabBin* b, Pool* pool, Rank rank, uint32_t sc,
                              size_t size, void** out) noexcept {
  // Anything the buffers do not serve goes the general way, which also refuses what is wrong.
  if (pool->arena != this || !rank_allowed(pool, rank) ||
      std::find(threads.begin(), threads.end(), t) == threads.end())
    return allocate(pool, size, rank, out);
  uint32_t cell = kSizeClasses[sc];
  uint32_t want = std::clamp<uint32_t>(16384 / cell, 1, 64);
  // Pacing and triggers see the whole refill at once; the work happens before the cells are
  // reserved, so the cells are black if a cycle is now marking.
  maybe_collect_before_alloc(size_t{cell} * want);
  uintptr_t base;
  uint64_t mask;
  Status st = reserve_cells(pool, sc, rank, want, &base, &mask);
  if (st == Status::kNoMemory) {
    collect_full();  // exhaustion: collect once, as allocate() does
    st = reserve_cells(pool, sc, rank, want, &base, &mask);
  }
  if (st != Status::kOk) return st;
  size_t bytes = size_t{cell} * static_cast<size_t>(__builtin_popcountll(mask));
  stats.bytes_allocated += bytes;
  stats.live_bytes += bytes;
  // Whatever the bin held for another key is dropped: garbage at the next cycle.
  b->arena = this;
  b->pool = pool;
  b->rank = static_cast<uint8_t>(rank);
  b->size_class = static_cast<uint8_t>(sc);
  b->cell_size = cell;
  b->base = base;
  unsigned i = static_cast<unsigned>(__builtin_ctzll(mask));
  b->mask = mask & (mask - 1);
  *out = reinterpret_cast<void*>(base + uintptr_t{cell} * i);
  return Status::kOk;
}

Status ArenaImpl::allocate_small(Pool* pool, uint32_t sc, Rank rank, void** out) noexcept {
  uintptr_t base;
  uint64_t mask;
  Status st = reserve_cells(pool, sc, rank, 1, &base, &mask);
  if (st != Status::kOk) return st;
  *out = reinterpret_cast<void*>(base + uintptr_t{kSizeClasses[sc]} *
                                            static_cast<unsigned>(__builtin_ctzll(mask)));
  return Status::kOk;
}

Status ArenaImpl::reserve_cells(Pool* pool, uint32_t sc, Rank rank, uint32_t max_cells,
                                uintptr_t* word_base, uint64_t* mask) noexcept {
  int r = static_cast<int>(rank);
  for (;;) {
    uint32_t cur = pool->current[r][sc];
    if (cur != UINT32_MAX) {
      Segment& s = segs[cur];
      if (s.needs_sweep) sweep_segment(cur);
      if (s.live_cells < s.cell_count) {
        uint32_t words = (s.cell_count + 63) / 64;
        for (uint32_t w = s.alloc_hint; w < words; ++w) {
          uint64_t free_bits = ~s.alloc[w];
          if (w == words - 1 && (s.cell_count & 63) != 0)
            free_bits &= (uint64_t{1} << (s.cell_count & 63)) - 1;
          if (free_bits == 0) continue;
          // Take up to max_cells free cells of this word, lowest first.
          uint64_t take = 0;
          for (uint32_t k = 0; k < max_cells && free_bits != 0; ++k) {
            take |= free_bits & (~free_bits + 1);
            free_bits &= free_bits - 1;
          }
          s.alloc[w] |= take;
          // .inv.black-alloc: objects allocated during marking are black.
          if (phase == Phase::kMark || phase == Phase::kWeak) s.mark[w] |= take;
          s.live_cells += static_cast<uint32_t>(__builtin_popcountll(take));
          s.alloc_hint = w;
          uintptr_t wb = seg_base(cur) + uintptr_t{w} * 64 * s.cell_size;
          // Zero the reserved cells, a contiguous run at a time (the segment may hold old data).
          for (uint64_t m = take; m != 0;) {
            unsigned lo = static_cast<unsigned>(__builtin_ctzll(m));
            uint64_t gaps = ~(m >> lo);  // zero only if every bit from lo up is taken
            unsigned run = gaps == 0 ? 64 - lo : static_cast<unsigned>(__builtin_ctzll(gaps));
            memset(cview<char>(wb + uintptr_t{lo} * s.cell_size), 0, size_t{run} * s.cell_size);
            m &= run >= 64 - lo ? 0 : ~(((uint64_t{1} << run) - 1) << lo);
          }
          *word_base = wb;
          *mask = take;
          return Status::kOk;
        }
        s.alloc_hint = words;
      }
      pool->current[r][sc] = UINT32_MAX;
    }
    // Next: a partially free segment of this pool and class (stale entries are skipped).
    auto& list = pool->partial[r][sc];
    while (!list.empty()) {
      uint32_t idx = list.back();
      list.pop_back();
      Segment& s = segs[idx];
      if (!s.on_partial || s.pool != pool || s.kind != SegKind::kSmall || s.size_class != sc ||
          s.rank != rank)
        continue;
      s.on_partial = false;
      s.alloc_hint = 0;
      pool->current[r][sc] = idx;
      break;
    }
    if (pool->current[r][sc] != UINT32_MAX) continue;
    size_t idx = claim_segments(1);
    if (idx == SIZE_MAX) return Status::kNoMemory;
    init_segment(idx, pool, rank, sc);
    pool->current[r][sc] = static_cast<uint32_t>(idx);
  }
}

Status ArenaImpl::allocate_large(Pool* pool, size_t size, Rank rank, void** out) noexcept {
  size_t n = (size + kSegmentSize - 1) >> kSegmentShift;
  size_t first = claim_segments(n);
  if (first == SIZE_MAX) return Status::kNoMemory;
  // Punched segments read as zero; cached ones still hold old objects.
  for (size_t i = first; i < first + n; ++i) {
    if (segs[i].dirty) memset(cview<char>(seg_base(i)), 0, kSegmentSize);
    segs[i].dirty = false;
  }
  init_segment(first, pool, rank, 0);
  Segment& h = segs[first];
  h.kind = SegKind::kLargeHead;
  h.cell_size = 0;
  h.cell_count = 1;
  h.live_cells = 1;
  h.nsegs = static_cast<uint32_t>(n);
  h.large_size = (size + kGrain - 1) & ~(kGrain - 1);
  set_bit(h.alloc, 0);
  if (phase == Phase::kMark || phase == Phase::kWeak) set_bit(h.mark, 0);  // .inv.black-alloc
  for (size_t i = first + 1; i < first + n; ++i) {
    Segment& t = segs[i];
    t.kind = SegKind::kLargeTail;
    t.head = static_cast<uint32_t>(first);
    t.pool = pool;
    t.rank = rank;
    t.awl = h.awl;
    t.client_awl = h.client_awl;
    t.scanned = h.scanned;
    t.needs_sweep = false;
    if ((h.awl || h.client_awl) && rank != Rank::kExact) {
      for (size_t p = i * kPagesPerSegment; p < (i + 1) * kPagesPerSegment; ++p)
        page_flags[p] |= kPageWeak;
    }
  }

  *out = reinterpret_cast<void*>(seg_base(first));
  return Status::kOk;
}

size_t ArenaImpl::sweep_segment(size_t idx) noexcept {
  Segment& s = segs[idx];
  if (!s.needs_sweep) return 0;
  s.needs_sweep = false;
  size_t freed = 0;
  if (s.kind == SegKind::kLargeHead) {
    WEAKGC_DCHECK((s.grey[0] & 1) == 0);
    if ((s.mark[0] & 1) == 0) {
      freed = s.large_size;
      release_segments(idx, s.nsegs);
    } else {
      s.mark[0] = 0;
    }
  } else if (s.kind == SegKind::kSmall) {
    uint32_t live = 0;
    for (size_t w = 0; w < kBitmapWords; ++w) {
      WEAKGC_DCHECK(s.grey[w] == 0);
      uint64_t dead = s.alloc[w] & ~s.mark[w];
      freed += static_cast<size_t>(__builtin_popcountll(dead)) * s.cell_size;
      s.alloc[w] &= s.mark[w];
      s.mark[w] = 0;
      live += static_cast<uint32_t>(__builtin_popcountll(s.alloc[w]));
    }
    s.live_cells = live;
    s.alloc_hint = 0;
    int r = static_cast<int>(s.rank);
    bool is_current = s.pool->current[r][s.size_class] == idx;
    if (live == 0 && !is_current) {
      release_segments(idx, 1);
    } else if (freed > 0 && !is_current && !s.on_partial) {
      s.on_partial = true;
      s.pool->partial[r][s.size_class].push_back(static_cast<uint32_t>(idx));
    }
  }
  stats.bytes_swept += freed;
  event_sweep(this, freed);
  stats.live_bytes -= freed < stats.live_bytes ? freed : stats.live_bytes;
  return freed;
}

}  // namespace weakgc::detail
