// Address space: the memfd, its two views, segment claiming and release, page protection.
#include <fcntl.h>
#include <linux/falloc.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "core/arena_impl.hpp"

namespace weakgc::detail {

namespace {

void* map_side_table(size_t bytes) noexcept {
  void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  return p == MAP_FAILED ? nullptr : p;
}

size_t round_up(size_t v, size_t a) {
  return (v + a - 1) / a * a;
}

}  // namespace

Status ArenaImpl::init_vm(size_t reserve_bytes) noexcept {
  reserve = round_up(reserve_bytes, kSegmentSize);
  nsegs = reserve >> kSegmentShift;
  npages = reserve >> kPageShift;
  memfd = static_cast<int>(memfd_create("weakgc-arena", MFD_CLOEXEC));
  if (memfd < 0) return Status::kOsError;
  if (ftruncate(memfd, static_cast<off_t>(reserve)) != 0) return Status::kOsError;
  // Reserve one range for both views so they are a constant offset apart (.inv.views).
  void* range =
      mmap(nullptr, 2 * reserve, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (range == MAP_FAILED) return Status::kNoMemory;
  char* r = static_cast<char*>(range);
  void* m = mmap(r, reserve, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, memfd, 0);
  void* c = mmap(r + reserve, reserve, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, memfd, 0);
  if (m == MAP_FAILED || c == MAP_FAILED) {
    munmap(range, 2 * reserve);
    return Status::kNoMemory;
  }
  base = r;
  cbase = r + reserve;
  view_offset = cbase - base;
  segs = static_cast<Segment*>(map_side_table(nsegs * sizeof(Segment)));
  grey_count = static_cast<uint32_t*>(map_side_table(npages * sizeof(uint32_t)));
  page_flags = static_cast<uint8_t*>(map_side_table(npages));
  exposed = static_cast<uint16_t*>(map_side_table(npages * sizeof(uint16_t)));
  single_access = static_cast<uint16_t*>(map_side_table(npages * sizeof(uint16_t)));
  pending = static_cast<uint8_t*>(map_side_table(npages));
  constexpr size_t kStackWords = size_t{1} << 24;  // 128 MiB reserved, committed on use
  mark_stack.data = static_cast<uintptr_t*>(map_side_table(kStackWords * sizeof(uintptr_t)));
  mark_stack.capacity = kStackWords;
  dirty.data = static_cast<uintptr_t*>(map_side_table(kStackWords / 4 * sizeof(uintptr_t)));
  dirty.capacity = kStackWords / 4;
  if (!segs || !grey_count || !page_flags || !exposed || !single_access || !pending ||
      !mark_stack.data || !dirty.data)
    return Status::kNoMemory;
  return Status::kOk;
}

void ArenaImpl::destroy_vm() noexcept {
  auto unmap = [](void* p, size_t n) {
    if (p != nullptr) munmap(p, n);
  };
  if (base != nullptr) munmap(base, 2 * reserve);
  unmap(segs, nsegs * sizeof(Segment));
  unmap(grey_count, npages * sizeof(uint32_t));
  unmap(page_flags, npages);
  unmap(exposed, npages * sizeof(uint16_t));
  unmap(single_access, npages * sizeof(uint16_t));
  unmap(pending, npages);
  unmap(mark_stack.data, mark_stack.capacity * sizeof(uintptr_t));
  unmap(dirty.data, dirty.capacity * sizeof(uintptr_t));
  if (memfd >= 0) close(memfd);
  base = cbase = nullptr;
  memfd = -1;
}

size_t ArenaImpl::claim_segments(size_t n) noexcept {
  if (n == 0 || n > nsegs) return SIZE_MAX;
  // First fit from the hint, then from the start: segments are few (4 GiB = 65,536).
  for (int pass = 0; pass < 2; ++pass) {
    size_t start = pass == 0 ? seg_hint : 0;
    size_t limit = pass == 0 ? nsegs : seg_hint + n;
    if (limit > nsegs) limit = nsegs;
    size_t run = 0;
    for (size_t i = start; i < limit; ++i) {
      if (segs[i].kind != SegKind::kFree) {
        run = 0;
        continue;
      }
      if (++run == n) {
        size_t first = i + 1 - n;
        for (size_t k = first; k <= i; ++k)
          if (segs[k].dirty) --cached_segs;
        if (i + 1 > seg_limit) seg_limit = i + 1;
        seg_hint = static_cast<uint32_t>(i + 1 < nsegs ? i + 1 : 0);
        segs_in_use += n;
        stats.committed_bytes = segs_in_use * kSegmentSize;
        return first;
      }
    }
  }
  return SIZE_MAX;
}

void ArenaImpl::release_segments(size_t first, size_t n) noexcept {
  for (size_t i = first; i < first + n; ++i) {
    Segment& s = segs[i];
    if (s.on_partial) {
      // The pool's partial list drops stale entries lazily (see allocate_small).
      s.on_partial = false;
    }
    s.kind = SegKind::kFree;
    s.pool = nullptr;
    s.needs_sweep = false;
    s.dirty = true;  // holds old objects until trim_free_segments punches it
    for (size_t p = i * kPagesPerSegment; p < (i + 1) * kPagesPerSegment; ++p) {
      WEAKGC_DCHECK(grey_count[p] == 0);
      page_flags[p] &= static_cast<uint8_t>(~kPageWeak);
    }
  }
  // The memory stays committed for now: giving it back and faulting it in again on the next
  // allocation costs more than a GCBench-style workload's whole collection. trim_free_segments
  // returns what the cache holds beyond its bound at the end of every cycle (.req.return).
  cached_segs += n;
  segs_in_use -= n;
  stats.committed_bytes = segs_in_use * kSegmentSize;
  if (first < seg_hint) seg_hint = static_cast<uint32_t>(first);
}

bool ArenaImpl::trim_free_segments(uint64_t deadline) noexcept {
  // Keep at most max(4 MiB, a quarter of the live data, min(the allocation that starts the next
  // cycle, the live data)) of empty segments committed. The mutator refills them before that
  // cycle, so giving them back would only have them faulted in again (the peak stays live data +
  // trigger); the live-data cap makes a heap that just shrank give back what it no longer needs.
  size_t keep = std::max<size_t>(
      {kFreeCacheMinSegments, live_after_sweep / 4 / kSegmentSize,
       static_cast<size_t>(std::min<uint64_t>(trigger, live_after_sweep) / kSegmentSize)});
  if (cached_segs <= keep) return true;
  size_t excess = cached_segs - keep;
  // Inside an increment, punch at most 1 MiB per call and look at the clock between calls:
  // giving back a large dead heap costs milliseconds. What is left waits for the next
  // increment or cycle end (the cache only grows by that much meanwhile).
  size_t max_run = deadline != 0 ? 16 : SIZE_MAX;
  // Punch from the top of the arena down, in coalesced runs: the low segments are reused first.
  for (size_t i = seg_limit; i-- > 0 && excess > 0;) {
    if (segs[i].kind != SegKind::kFree || !segs[i].dirty) continue;
    size_t lo = i;
    while (lo > 0 && i + 1 - lo < excess && i + 1 - lo < max_run &&
           segs[lo - 1].kind == SegKind::kFree && segs[lo - 1].dirty)
      --lo;
    size_t n = i + 1 - lo;
    // Both views see the hole, and a hole reads as zero.
    int r =
        fallocate(memfd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                  static_cast<off_t>(lo << kSegmentShift), static_cast<off_t>(n << kSegmentShift));
    if (r != 0) memset(cbase + (lo << kSegmentShift), 0, n << kSegmentShift);
    for (size_t k = lo; k <= i; ++k) segs[k].dirty = false;
    cached_segs -= n;
    excess -= n;
    stats.segments_released += n;
    i = lo;
    if (excess > 0 && deadline != 0 && now_ns() > deadline) return false;
  }
  return true;
}

bool ArenaImpl::set_protection(size_t first_page, size_t n, bool protect) noexcept {
  int prot = protect ? PROT_NONE : (PROT_READ | PROT_WRITE);
  int saved = errno;
  ++stats.mprotect_calls;
  uint64_t t0 = now_ns();
  int r = (mprotect_fn != nullptr ? mprotect_fn : ::mprotect)(base + (first_page << kPageShift),
                                                              n << kPageShift, prot);
  mprotect_ns += (static_cast<double>(now_ns() - t0) - mprotect_ns) / 16;
  errno = saved;
  if (r != 0) {
    ++stats.mprotect_failures;
    return false;
  }
  for (size_t p = first_page; p < first_page + n; ++p) {
    if (protect)
      page_flags[p] |= kPageProtected;
    else
      page_flags[p] &= static_cast<uint8_t>(~kPageProtected);
  }
  if (protect)
    stats.pages_protected += n;
  else
    stats.pages_unprotected += n;
  return true;
}

}  // namespace weakgc::detail
