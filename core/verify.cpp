// The heap verifier: side tables, protection, and that no reference from an allocated object
// leads to freed memory. Expensive; runs after every cycle in debug builds.
#include "core/arena_impl.hpp"

namespace weakgc::detail {

namespace {
inline bool bit(const uint64_t* bm, uint32_t i) {
  return (bm[i >> 6] >> (i & 63)) & 1;
}

[[noreturn]] void fail(const char* what, uintptr_t where) {
  fatal(what, reinterpret_cast<const void*>(where));
}
}  // namespace

void ArenaImpl::verify() noexcept {
  bool idle = phase == Phase::kIdle;
  size_t dangling = 0;
  size_t in_use = 0;
  for (size_t i = 0; i < nsegs; ++i) {
    Segment& s = segs[i];
    if (s.kind == SegKind::kFree) continue;
    ++in_use;
    if (s.kind == SegKind::kLargeTail) {
      if (segs[s.head].kind != SegKind::kLargeHead)
        fail("verify: large tail without head", seg_base(i));
      continue;
    }
    uint32_t live = 0;
    for (size_t w = 0; w < kBitmapWords; ++w) {
      if (idle && s.grey[w] != 0) fail("verify: grey object while idle", seg_base(i));
      if (s.grey[w] & ~s.mark[w]) fail("verify: grey bit without mark bit", seg_base(i));
      if (idle && !s.needs_sweep && (s.mark[w] & ~s.alloc[w]))
        fail("verify: mark bit on a free cell", seg_base(i));
      live += static_cast<uint32_t>(__builtin_popcountll(s.alloc[w]));
    }
    if (s.kind == SegKind::kSmall && !s.needs_sweep && live != s.live_cells)
      fail("verify: live cell count disagrees with allocation bits", seg_base(i));
    // References out of every allocated object must lead to allocated objects.
    if (!s.scanned) continue;
    for (uint32_t c = 0; c < s.cell_count; ++c) {
      if (!bit(s.alloc, c)) continue;
      if (s.needs_sweep && !bit(s.mark, c)) continue;  // dead, awaiting sweep
      uintptr_t obj = seg_base(i) + uintptr_t{c} * s.cell_size;
      size_t size = object_size(s);
      if (s.awl) {
        const AwlHeader* h = cview<AwlHeader>(obj);
        uint64_t n = h->length;
        if (kAwlHeaderBytes + n * 8 > size) fail("verify: AWL array longer than its cell", obj);
        // .inv.header-strong: the dependent and the graveyard are allocated while the array is.
        for (uintptr_t r : {h->dependent, h->graveyard}) {
          size_t sg;
          uint32_t cl;
          uintptr_t b;
          if (in_arena(r) && !resolve(r, false, &sg, &cl, &b))
            fail("verify: AWL header names a freed or interior address", obj);
        }
        for (uint64_t k = 0; k < n; ++k) {
          uintptr_t v = *cview<uintptr_t>(obj + kAwlHeaderBytes + k * 8);
          size_t sg;
          uint32_t cl;
          uintptr_t b;
          if (in_arena(v) && (v & 7) == 0 && !resolve(v, false, &sg, &cl, &b)) ++dangling;
        }
      } else {
        ScanState ss(this, ScanState::Mode::kVerify);
        s.pool->format.scan(ss, cview<void>(obj), size, s.pool->format.closure);
        dangling += ss.dangling();
      }
    }
  }
  if (in_use != segs_in_use) fail("verify: segment count disagrees", 0);
  if (idle) {
    for (size_t p = 0; p < npages; p += 1) {
      if (grey_count[p] != 0) fail("verify: grey count on a page while idle", page_addr(p));
      if (page_flags[p] & kPageProtected) fail("verify: page protected while idle", page_addr(p));
      if (is_pending(p)) fail("verify: page pending while idle", page_addr(p));
      if ((p & (kPagesPerSegment - 1)) == 0 && segs[p / kPagesPerSegment].kind == SegKind::kFree) {
        p += kPagesPerSegment - 1;  // free segments: nothing to check
      }
    }
  } else if (phase == Phase::kMark || phase == Phase::kWeak) {
    // .inv.barrier: every page with grey objects is protected (unless exposed).
    for (size_t p = 0; p < npages; ++p) {
      if (grey_count[p] > 0 && exposed[p] == 0 && !(page_flags[p] & kPageProtected) &&
          !(is_pending(p) && phase == Phase::kMark))
        fail("verify: grey page not protected", page_addr(p));
    }
  }
  // A dangling reference is a collector bug unless the client already stored bad references.
  if (dangling > 0 && stats.bad_exact_refs == 0 && stats.bad_awl_slots == 0)
    fail("verify: reference to freed memory found in a live object", 0);
}

}  // namespace weakgc::detail
