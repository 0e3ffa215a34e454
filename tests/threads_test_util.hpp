// Shared helpers for the multi-threaded tests.
#pragma once

#include <time.h>

#include <atomic>
#include <cstdint>

#include "core/threads.hpp"

namespace weakgc::test {

// A reusable barrier whose waits poll for the flip's suspend request (detail::poll_suspend).
// Under ThreadSanitizer a thread blocked in a wait the sanitizer does not treat as blocking
// (std::barrier's futex, a pthread mutex held by a thread the flip stopped) takes the suspend
// signal only when the wait ends: a flip while it waits would never finish. Spinning with short
// sleeps and polling keeps every waiting thread stoppable.
class Rendezvous {
 public:
  explicit Rendezvous(int n) : n_(n) {}
  void arrive_and_wait() {
    uint32_t gen = gen_.load(std::memory_order_acquire);
    if (arrived_.fetch_add(1, std::memory_order_acq_rel) + 1 == n_) {
      arrived_.store(0, std::memory_order_relaxed);
      gen_.fetch_add(1, std::memory_order_release);
      return;
    }
    while (gen_.load(std::memory_order_acquire) == gen) {
      detail::poll_suspend();
      timespec ts{0, 20'000};
      nanosleep(&ts, nullptr);
    }
  }

 private:
  const int n_;
  std::atomic<int> arrived_{0};
  std::atomic<uint32_t> gen_{0};
};

}  // namespace weakgc::test
