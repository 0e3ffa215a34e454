// Collector statistics: what happened, counted. Read with Arena::stats().
#pragma once

#include <cstddef>
#include <cstdint>

#include "weakgc/export.hpp"

namespace weakgc {

/// A pause histogram: log2 buckets of nanoseconds, with exact max and count.
struct WEAKGC_API PauseHistogram {
  static constexpr int kBuckets = 40;  ///< buckets: pauses up to 2^40 ns (18 minutes)
  uint64_t count = 0;                  ///< pauses recorded
  uint64_t total_ns = 0;               ///< their sum
  uint64_t max_ns = 0;                 ///< the longest
  uint64_t bucket[kBuckets] = {};      ///< bucket b counts pauses in [2^b, 2^(b+1)) ns
  /// Returns an upper bound of the q-quantile (0 < q <= 1) from the buckets, capped at max_ns.
  uint64_t quantile_ns(double q) const noexcept;
  /// Counts one pause of `ns` nanoseconds.
  void record(uint64_t ns) noexcept;
};

/// The collector's counters (a snapshot from Arena::stats()); sums since the arena was created.
struct Stats {
  uint64_t cycles = 0;            ///< completed collection cycles
  uint64_t full_collections = 0;  ///< cycles run to completion by collect() or exhaustion
  uint64_t increments = 0;        ///< incremental marking/sweeping steps
  // Barrier faults by outcome (each fault counts once).
  uint64_t faults_scanned = 0;     ///< page scanned and unprotected
  uint64_t faults_emulated = 0;    ///< single access emulated, page left protected
  uint64_t faults_declined = 0;    ///< emulation declined: page scanned at exact rank
  uint64_t faults_budget = 0;      ///< page's single-access budget used up: scanned at exact rank
  uint64_t faults_weak_phase = 0;  ///< weak page faulted in the weak phase: scanned at weak rank
  uint64_t faults_concurrent = 0;  ///< faults taken while another thread was in the fault path
  uint64_t declined_by_reason[16] = {};  ///< indexed by emu::Decline
  uint64_t pages_protected = 0;          ///< pages made inaccessible to the mutator (the barrier)
  uint64_t pages_unprotected = 0;        ///< pages made accessible again
  uint64_t mprotect_calls = 0;           ///< mprotect system calls (coalesced runs of pages)
  uint64_t mprotect_failures = 0;        ///< mprotect calls that failed
  uint64_t pages_pending =
      0;  ///< owner-guarded array pages (tables, GuardedArray) left unprotected at flips
  uint64_t pending_guards =
      0;  ///< accesses to pending pages guarded in software (a slot greyed, or the page scanned)
  uint64_t bytes_allocated = 0;     ///< bytes allocated, summed
  uint64_t bytes_marked = 0;        ///< bytes of objects marked, summed over cycles
  uint64_t bytes_swept = 0;         ///< bytes freed by sweeping, summed over cycles
  uint64_t segments_released = 0;   ///< segments whose memory went back to the OS
  uint64_t slots_splatted = 0;      ///< weak slots (and dependents) splatted
  uint64_t objects_finalized = 0;   ///< finalization messages posted
  uint64_t bad_exact_refs = 0;      ///< exact slots naming arena memory that is not an object
  uint64_t bad_awl_slots = 0;       ///< client AWL slots breaking MPS's rule (aligned non-refs)
  uint64_t bad_dependents = 0;      ///< find_dependent results that were not client AWL objects
  uint64_t live_bytes = 0;          ///< bytes in use after the last sweep (plus allocation since)
  uint64_t committed_bytes = 0;     ///< bytes of arena memory in segments currently in use
  PauseHistogram flip_pauses;       ///< flips (roots scanned, mutator stopped)
  PauseHistogram increment_pauses;  ///< incremental steps (pacing and Arena::step)
  PauseHistogram fault_pauses;      ///< barrier faults, from the handler's entry to its return
  PauseHistogram full_pauses;       ///< whole stop-the-world collections
};

}  // namespace weakgc
