// intern_bench: weakgc's intern set against std::unordered_set<std::string>, side by side in one
// process (docs/benchmarks/tables.md, "Interning").
//
// Names are identifiers as a compiler or a runtime meets them: a random lowercase stem of 2-16
// characters, '_', and the name's index in base 36 (so every name is distinct; 4-21 bytes, mean
// about 12). For each size (10,000: cache-resident; 1,000,000: not) and repetition, both sets are
// grown from empty and measured per operation:
//   create  interning every name once, in order (weakgc: a new Symbol each, held by the caller
//           in an exact-rank array behind one Root, as a runtime holds its symbols)
//   hit     interning every name again, in random order (returns the existing symbol)
//   miss    find() of as many names that were never interned (creates nothing)
// The baseline is a strong set: std::unordered_set<std::string> emplace / find. The arena never
// collects while this runs (trigger 1 GiB): this measures the table, not the collector.
//
// Usage: intern_bench [repetitions]  (default 3): prints each run, then medians and ratios.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <random>
#include <string>
#include <unordered_set>
#include <vector>

#include "weakgc/gc.hpp"
#include "weakgc/intern.hpp"
#include "weakgc/weak_array.hpp"

namespace {

uint64_t now_ns() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                   std::chrono::steady_clock::now().time_since_epoch())
                                   .count());
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

// Names first..first+n-1 of the scheme above (deterministic).
std::vector<std::string> make_names(size_t first, size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<std::string> names;
  names.reserve(n);
  for (size_t i = first; i < first + n; ++i) {
    std::string s;
    size_t stem = 2 + rng() % 15;
    for (size_t j = 0; j < stem; ++j) s += static_cast<char>('a' + rng() % 26);
    s += '_';
    size_t x = i;
    do {
      s += "0123456789abcdefghijklmnopqrstuvwxyz"[x % 36];
      x /= 36;
    } while (x != 0);
    names.push_back(std::move(s));
  }
  return names;
}

std::vector<uint32_t> permutation(size_t n, uint64_t seed) {
  std::vector<uint32_t> p(n);
  for (size_t i = 0; i < n; ++i) p[i] = static_cast<uint32_t>(i);
  std::shuffle(p.begin(), p.end(), std::mt19937_64(seed));
  return p;
}

struct Result {
  double create = 0, hit = 0, miss = 0;  // ns/op
};

// Times the three phases over n names: create(i), hit(i) and miss(i) each return a number
// added to *check (so that nothing is optimised away, and the two sets can be compared).
template <class Create, class Hit, class Miss>
Result time_phases(size_t n, uint64_t* check, Create create, Hit hit, Miss miss) {
  auto per_op = [n](uint64_t t0, uint64_t t1) {
    return static_cast<double>(t1 - t0) / static_cast<double>(n);
  };
  uint64_t sum = 0;
  uint64_t t0 = now_ns();
  for (size_t i = 0; i < n; ++i) sum += create(i);
  uint64_t t1 = now_ns();
  for (size_t i = 0; i < n; ++i) sum += hit(i);
  uint64_t t2 = now_ns();
  for (size_t i = 0; i < n; ++i) sum += miss(i);
  uint64_t t3 = now_ns();
  *check += sum;
  return Result{per_op(t0, t1), per_op(t1, t2), per_op(t2, t3)};
}

Result run_weakgc(const std::vector<std::string>& names, const std::vector<std::string>& absent,
                  const std::vector<uint32_t>& perm, uint64_t* check) {
  weakgc::ArenaOptions o;
  o.trigger_bytes = size_t{1} << 30;
  weakgc::Arena arena(o);
  const size_t n = names.size();
  weakgc::WeakArray* held = nullptr;
  if (weakgc::alloc_weak_array(arena, n, weakgc::Rank::kExact, nullptr, &held) !=
      weakgc::Status::kOk)
    std::abort();
  weakgc::Root<weakgc::WeakArray> root(arena, held);
  weakgc::InternSet set(arena);
  Result r = time_phases(
      n, check,
      [&](size_t i) -> uint64_t {
        weakgc::Symbol* s = set.intern(names[i]);
        held->slot[i] = reinterpret_cast<uintptr_t>(s);
        return 0;
      },
      [&](size_t i) -> uint64_t { return set.intern(names[perm[i]])->length; },
      [&](size_t i) -> uint64_t { return set.find(absent[i]) != nullptr ? 1 : 0; });
  if (set.symbols_created() != n) std::printf("  weakgc: %zu symbols expected\n", n);
  return r;
}

Result run_std(const std::vector<std::string>& names, const std::vector<std::string>& absent,
               const std::vector<uint32_t>& perm, uint64_t* check) {
  std::unordered_set<std::string> set;
  const size_t n = names.size();
  Result r = time_phases(
      n, check,
      [&](size_t i) -> uint64_t {
        set.emplace(names[i]);
        return 0;
      },
      [&](size_t i) -> uint64_t { return set.find(names[perm[i]])->size(); },
      [&](size_t i) -> uint64_t { return set.find(absent[i]) != set.end() ? 1 : 0; });
  if (set.size() != n) std::printf("  std: %zu names expected\n", n);
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  int reps = argc > 1 ? std::max(1, atoi(argv[1])) : 3;
  for (size_t n : {size_t{10000}, size_t{1000000}}) {
    std::vector<std::string> names = make_names(0, n, 0x1e7e5);
    std::vector<std::string> absent = make_names(n, n, 0xab5e);
    std::vector<uint32_t> perm = permutation(n, 0x9e2);
    size_t bytes = 0;
    for (const auto& s : names) bytes += s.size();
    std::printf("intern_bench: %zu names (mean %.1f bytes), %d repetitions\n", n,
                static_cast<double>(bytes) / static_cast<double>(n), reps);
    std::vector<double> wc, wh, wm, sc, sh, sm;
    uint64_t wsum = 0, ssum = 0;
    for (int rep = 0; rep < reps; ++rep) {
      // Alternate which set runs first.
      Result w, s;
      if (rep % 2 == 0) {
        w = run_weakgc(names, absent, perm, &wsum);
        s = run_std(names, absent, perm, &ssum);
      } else {
        s = run_std(names, absent, perm, &ssum);
        w = run_weakgc(names, absent, perm, &wsum);
      }
      std::printf("  weakgc InternSet        create %6.1f  hit %6.1f  miss %6.1f ns/op\n", w.create,
                  w.hit, w.miss);
      std::printf("  unordered_set<string>   create %6.1f  hit %6.1f  miss %6.1f ns/op\n", s.create,
                  s.hit, s.miss);
      wc.push_back(w.create);
      wh.push_back(w.hit);
      wm.push_back(w.miss);
      sc.push_back(s.create);
      sh.push_back(s.hit);
      sm.push_back(s.miss);
    }
    if (wsum != ssum)
      std::printf("  checksums differ: %llu vs %llu\n", static_cast<unsigned long long>(wsum),
                  static_cast<unsigned long long>(ssum));
    std::printf(
        "RESULT %zu names: weakgc/std create %.2fx (%.1f / %.1f ns)  hit %.2fx (%.1f / %.1f ns)  "
        "miss %.2fx (%.1f / %.1f ns)\n",
        n, median(wc) / median(sc), median(wc), median(sc), median(wh) / median(sh), median(wh),
        median(sh), median(wm) / median(sm), median(wm), median(sm));
  }
  return 0;
}
