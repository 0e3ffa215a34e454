// The event log: a per-arena record of what the collector did and when, for pictures and
// post-mortems (tools/plot_events.py). Off by default; when off, every hook is one predictable
// branch on `ArenaImpl::events == nullptr`.
//
// Invariants:
//  .inv.ev.prealloc  the ring of records is mapped when the log starts; recording never calls
//                    malloc, takes no lock of its own and does no I/O, so the fault handler may
//                    record (signal-safe). Records are written with the arena lock held (every
//                    hook runs inside the collector, the fault handler or allocation, .inv.lock),
//                    so one arena's records are totally ordered.
//  .inv.ev.ring      the ring keeps the newest `capacity` records: when full, the oldest record is
//                    dropped and counted in `lost`, which the next chunk's header reports.
//  .inv.ev.io        records reach the file only in event_log_flush() (explicit flush, stop, or
//                    arena destruction): never from the fault handler or inside an increment.
//
// File format (little-endian, what tools/plot_events.py reads; docs/design/capi.md): a sequence
// of chunks, each a 64-byte EventChunkHeader followed by `records` EventRecords of 40 bytes.
// Several arenas of one process may append chunks to one file; arena_serial tells them apart.
//
// Who may call: event_log_start/flush/stop from any thread registered with the arena, never from
// a signal handler (they take the arena lock and do I/O). The event_* hooks are internal.
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/arena_impl.hpp"

namespace weakgc::detail {

// What a record describes. The numbers are part of the file format.
enum class EventKind : uint16_t {
  kFlip = 1,  // a flip pause: value = bytes marked from the roots; detail = 1 if the flip
              // was part of a full collection (its pause is inside the kFull record's)
  kIncrement =
      2,       // an incremental step (step(), allocation pacing): value = bytes marked this cycle
  kFull = 3,   // a stop-the-world collection (collect(), or exhaustion): value = bytes marked
  kFault = 4,  // a barrier fault: value = fault address, detail = FaultOutcome
  kSplat = 5,  // weak slots splatted inside the preceding pause: value = count; detail =
               // the EventKind of that pause
  kSweep = 6,  // segments swept: value = bytes freed, value2 = segments; detail = 0 inside a
               // collector pause (reported after it), 1 lazily by allocation
};

// How a barrier fault was resolved (the numbers are part of the file format).
enum class FaultOutcome : uint8_t {
  kScanned = 0,    // an exact page: its grey objects scanned, the page unprotected
  kEmulated = 1,   // the single access emulated; the weak page stays protected
  kDeclined = 2,   // emulation declined (reason, mnemonic): the page scanned at exact rank
  kBudget = 3,     // the page's single-access budget was used up: scanned at exact rank
  kWeakPhase = 4,  // a weak page in the weak phase: scanned at weak rank
};

// One record (40 bytes). time_ns is CLOCK_MONOTONIC at the start of the event. Records are in
// the order events ended: a flip nested in a full collection precedes the kFull record that
// started before it, and the kSplat/kSweep records of a pause follow it with the pause's time.
struct EventRecord {
  uint64_t time_ns;
  uint64_t duration_ns;  // pauses (flip, increment, full, fault); 0 otherwise
  uint64_t value;        // per kind, see EventKind
  uint64_t value2;       // the cycle number (1-based) unless EventKind says otherwise
  uint16_t kind;         // EventKind
  uint8_t phase;         // weakgc::Phase at the end of the event
  uint8_t detail;        // per kind, see EventKind
  uint16_t reason;       // fault declined: emu::Decline; 0xffff if emulation is off; else 0
  uint16_t mnemonic;     // fault declined: Capstone instruction id (0 if not decoded)
};
static_assert(sizeof(EventRecord) == 40);

// Header of one chunk of records in the file (64 bytes).
struct EventChunkHeader {
  char magic[8];          // "WGCEVLOG"
  uint32_t version;       // 1
  uint32_t record_size;   // sizeof(EventRecord)
  uint64_t records;       // records that follow
  uint64_t lost;          // records dropped by the ring since the previous chunk (.inv.ev.ring)
  uint64_t arena_serial;  // which arena of the process wrote the chunk
  uint64_t start_ns;      // CLOCK_MONOTONIC when the log started: the time origin of pictures
  uint64_t pid;
  uint64_t reserved;
};
static_assert(sizeof(EventChunkHeader) == 64);

inline constexpr size_t kDefaultEventCapacity = size_t{1} << 16;  // 65,536 records = 2.5 MiB

// Starts logging `a`'s events into a ring of `capacity` records (0: the default). Records go to
// `path` (created or truncated) if it is not null, else to the open descriptor `fd`, which the
// log does not close. kAlready if a log is running, kBadParam for no destination, kOsError if
// the file cannot be opened, kNoMemory if the ring cannot be mapped.
Status event_log_start(ArenaImpl* a, const char* path, int fd, size_t capacity) noexcept;
// Starts the log named by the environment (WEAKGC_EVENT_LOG=<path>, optional
// WEAKGC_EVENT_LOG_CAPACITY=<records>) if it is set; the first arena of the process truncates
// the file, later ones append. Called once by Arena::create.
void event_log_from_env(ArenaImpl* a) noexcept;
// Writes the records collected so far as one chunk and empties the ring. kNotFound if no log
// is running, kOsError if writing failed (the records are dropped and counted as lost).
Status event_log_flush(ArenaImpl* a) noexcept;
// Flushes and ends the log (closing a file it opened). kNotFound if no log is running. Called by
// ~Arena, so a log started from the environment is written at arena destruction.
Status event_log_stop(ArenaImpl* a) noexcept;

// ------------------------------------------------------------------ hooks (arena lock held)

void event_flip_slow(ArenaImpl* a, uint64_t t0) noexcept;
void event_work_slow(ArenaImpl* a, uint64_t t0, uint64_t budget_ns) noexcept;
void event_full_slow(ArenaImpl* a, uint64_t t0) noexcept;
void event_sweep_slow(ArenaImpl* a, size_t freed) noexcept;

// After a flip that started at t0. signal-safe.
inline void event_flip(ArenaImpl* a, uint64_t t0) noexcept {
  if (__builtin_expect(a->events != nullptr, 0)) event_flip_slow(a, t0);
}
// After work(budget_ns) that started at t0 (budget 0: part of a full collection, not logged on
// its own). signal-safe.
inline void event_work(ArenaImpl* a, uint64_t t0, uint64_t budget_ns) noexcept {
  if (__builtin_expect(a->events != nullptr, 0)) event_work_slow(a, t0, budget_ns);
}
// After a full collection that started at t0. signal-safe.
inline void event_full(ArenaImpl* a, uint64_t t0) noexcept {
  if (__builtin_expect(a->events != nullptr, 0)) event_full_slow(a, t0);
}
// After sweep_segment freed `freed` bytes. signal-safe.
inline void event_sweep(ArenaImpl* a, size_t freed) noexcept {
  if (__builtin_expect(a->events != nullptr, 0)) event_sweep_slow(a, freed);
}

// Records one barrier fault: construct it when the handler starts working on a protected page
// (lock held), tell it about a declined emulation, and its destructor records the outcome
// (read from the fault counters in Stats, so the handler needs no other change). signal-safe.
class FaultEvent {
 public:
  FaultEvent(ArenaImpl* a, uintptr_t addr, uint64_t t0) noexcept : a_(a) {
    if (__builtin_expect(a->events != nullptr, 0)) begin(addr, t0);
  }
  ~FaultEvent() {
    if (__builtin_expect(active_, 0)) end();
  }
  FaultEvent(const FaultEvent&) = delete;
  FaultEvent& operator=(const FaultEvent&) = delete;
  // Notes why emulation was declined and which instruction it was.
  void declined(uint8_t reason, uint16_t mnemonic) noexcept {
    reason_ = reason;
    mnemonic_ = mnemonic;
  }

 private:
  void begin(uintptr_t addr, uint64_t t0) noexcept;
  void end() noexcept;
  ArenaImpl* a_;
  bool active_ = false;
  uint16_t reason_ = 0xffff;
  uint16_t mnemonic_ = 0;
  uintptr_t addr_ = 0;
  uint64_t t0_ = 0;
  uint64_t emulated_ = 0, declined_ = 0, budget_ = 0, weak_phase_ = 0;
};

}  // namespace weakgc::detail
