// Shared helpers for the weak/ tests.
//
// Exact arenas: the tests compare the heap against an oracle, so nothing may be kept alive by
// accident. exact_options() turns off the conservative roots (the test thread is not
// registered: its stack and registers are not scanned), the allocation-triggered collections
// (cycles start and advance only in start_cycle/step/collect) and the single-access budget (a
// weak page scanned at exact rank would retain its dead slots). Test objects are then held in
// malloc'd memory that is not a root, or in Root handles / registered root arrays.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <random>

#include "weakgc/gc.hpp"
#include "weakgc/tables.hpp"

namespace weakgc::test {

// A heap object with an identity, a content class and two strong fields.
struct Obj : GcObject {
  uint64_t id = 0;
  uint64_t cls = 0;
  Ref<Obj> ref[2];
  void trace(Visitor& v) const override {
    v.visit(ref[0]);
    v.visit(ref[1]);
  }
};

inline ArenaOptions exact_options() {
  ArenaOptions o;
  o.register_thread = false;
  o.incremental = 0;
  o.trigger_bytes = size_t{1} << 40;  // never reached: only explicit collections
  o.single_access_budget = 60000;     // below the 16-bit per-page counter's limit
  return o;
}

// A table kind's name, usable in a test name.
inline const char* kind_name(TableKind k) {
  switch (k) {
    case TableKind::kWeakKey:
      return "WeakKey";
    case TableKind::kWeakValue:
      return "WeakValue";
    case TableKind::kDoublyWeak:
      return "DoublyWeak";
    case TableKind::kEphemeron:
      return "Ephemeron";
    case TableKind::kWeakSet:
      return "WeakSet";
  }
  return "?";
}

// The seed of a randomised test: WEAKGC_TEST_SEED if set, else `fallback`.
inline uint64_t test_seed(uint64_t fallback) {
  const char* s = std::getenv("WEAKGC_TEST_SEED");
  return s != nullptr ? std::strtoull(s, nullptr, 0) : fallback;
}

// Runs the cycle in progress (or a new one) to its end.
inline void finish_cycle(Arena& arena) {
  if (arena.phase() == Phase::kIdle) arena.start_cycle();
  while (arena.step(1000000)) {
  }
}

// A registered root array in malloc'd memory: slot i is an exact root.
class RootArray {
 public:
  RootArray(Arena& arena, size_t n) : arena_(arena), n_(n) {
    slots_ = static_cast<void**>(std::calloc(n, sizeof(void*)));
    if (arena.register_root(slots_, n, &id_) != Status::kOk) std::abort();
  }
  ~RootArray() {
    (void)arena_.remove_root(id_);
    std::free(slots_);
  }
  RootArray(const RootArray&) = delete;
  RootArray& operator=(const RootArray&) = delete;
  void*& operator[](size_t i) { return slots_[i]; }
  size_t size() const { return n_; }

 private:
  Arena& arena_;
  size_t n_;
  void** slots_;
  RootId id_;
};

}  // namespace weakgc::test
