// Memory layout constants and size classes (DESIGN.md §3).
//
// Glossary:
//   page     4 KiB, the unit of protection (the barrier's granularity)
//   segment  64 KiB = 16 pages, the unit the arena hands to pools; holds cells of one size class
//            or (a run of segments) one large object
//   cell     a slot for one small object; cell i of a segment is at seg_base + i * cell_size
//   grain    16 bytes, the alignment of every object and the smallest cell
#pragma once

#include <cstddef>
#include <cstdint>

namespace weakgc::detail {

inline constexpr size_t kPageShift = 12;
inline constexpr size_t kPageSize = size_t{1} << kPageShift;  // 4 KiB
inline constexpr size_t kSegmentShift = 16;
inline constexpr size_t kSegmentSize = size_t{1} << kSegmentShift;    // 64 KiB
inline constexpr size_t kPagesPerSegment = kSegmentSize / kPageSize;  // 16
inline constexpr size_t kGrain = 16;
inline constexpr size_t kMaxCells = kSegmentSize / kGrain;  // 4096
inline constexpr size_t kBitmapWords = kMaxCells / 64;      // 64
inline constexpr size_t kLargeThreshold = 16 * 1024;        // above: own segment run
inline constexpr size_t kDefaultReserve = size_t{4} << 30;  // 4 GiB of address space
inline constexpr size_t kMaxReserve = size_t{1} << 40;      // 1 TiB
// Empty segments kept committed for reuse after a cycle: max(this, live bytes / 4).
inline constexpr size_t kFreeCacheMinSegments = 64;  // 4 MiB

static_assert(kSegmentSize % kPageSize == 0);
static_assert(kMaxCells % 64 == 0);

// Size classes: multiples of 16 up to 128, then four steps per power of two up to 16 KiB.
inline constexpr uint32_t kSizeClasses[] = {
    16,   32,   48,   64,   80,   96,   112,  128,  160,   192,   224,   256,
    320,  384,  448,  512,  640,  768,  896,  1024, 1280,  1536,  1792,  2048,
    2560, 3072, 3584, 4096, 5120, 6144, 7168, 8192, 10240, 12288, 14336, 16384};
inline constexpr size_t kNumSizeClasses = sizeof(kSizeClasses) / sizeof(kSizeClasses[0]);
static_assert(kSizeClasses[kNumSizeClasses - 1] == kLargeThreshold);

// Returns the index of the smallest size class holding `size` bytes (size <= kLargeThreshold).
inline uint32_t size_class_of(size_t size) noexcept {
  if (size <= 128) return static_cast<uint32_t>((size + 15) / 16 - (size != 0 ? 1 : 0));
  uint32_t lo = 8, hi = kNumSizeClasses - 1;
  while (lo < hi) {
    uint32_t mid = (lo + hi) / 2;
    if (kSizeClasses[mid] >= size)
      hi = mid;
    else
      lo = mid + 1;
  }
  return lo;
}

// Tagged non-pointer markers held by weak-array slots (DESIGN.md §7). Never aligned to 8, so
// never mistaken for a reference.
inline constexpr uintptr_t kSlotEmpty = 0;
inline constexpr uintptr_t kSlotDeleted = 0x5;

}  // namespace weakgc::detail

namespace weakgc::detail {

// Layout of every object in an AWL pool (the library owns it, so clients have no tagging rule):
//   word 0  length      number of slots
//   word 1  dependent   mutator address of the dependent array (same layout) or 0
//   word 2  splatted    slots this array's weak scans splatted (with their dependent slot)
//   word 3  graveyard   0, or an exact-rank AWL array of the same length: when this array's weak
//                       scan splats slot i, the dependent's slot i, if it still names a live
//                       object (or holds a non-reference), is moved there first, so a table can
//                       report the surviving half of a dead entry (dead-entry notification)
//   word 4+ slot[0 .. length)
struct AwlHeader {
  uint64_t length;
  uintptr_t dependent;
  uint64_t splatted;
  uintptr_t graveyard;
};
inline constexpr size_t kAwlHeaderBytes = sizeof(AwlHeader);  // 32
static_assert(kAwlHeaderBytes == 32);

}  // namespace weakgc::detail
