// AWL oracle runs at stress size (label stress): more seeds, rounds, nodes and tables than
// awl_test, whole and incremental cycles. Not a benchmark. AWL_SEED=<n> sets the first seed;
// AWL_SEEDS=<k> the number of seeds (default 12).
#include <gtest/gtest.h>

#include <cstdlib>

#include "tests/awl_shadow.hpp"

namespace awltest {
namespace {

uint64_t seed_count() {
  const char* e = getenv("AWL_SEEDS");
  return e != nullptr ? strtoull(e, nullptr, 0) : 12;
}

void stress(RandomRun::Mode mode, uint64_t first) {
  for (uint64_t s = first; s < first + seed_count(); ++s) {
    weakgc::Arena arena(test_options());
    World w(arena, s);
    RandomRun run(w, s, mode);
    run.build(/*nodes=*/6000, /*small_tables=*/24, /*large_tables=*/6);
    for (int round = 0; round < 8; ++round) run.round(round);
    if (::testing::Test::HasFailure()) return;
  }
}

TEST(AwlStress, WholeCycles) {
  stress(RandomRun::kWhole, seed_from_env(0x5100));
}

TEST(AwlStress, IncrementalCyclesWithMutatorLoads) {
  stress(RandomRun::kIncremental, seed_from_env(0x5200));
}

}  // namespace
}  // namespace awltest
