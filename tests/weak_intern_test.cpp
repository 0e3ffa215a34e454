// Interning (weakgc/intern.hpp): one live symbol per name, a fresh one after death, content
// hashing with XXH3-64 over arbitrary bytes. The oracle for the hash is XXH3 called directly;
// the oracle for identity is a per-name model of which symbol must be alive.
#include <gtest/gtest.h>
#include <xxhash.h>

#include <map>
#include <random>
#include <string>
#include <vector>

#include "weak_test_util.hpp"
#include "weakgc/intern.hpp"

namespace weakgc {
namespace {

using test::RootArray;

class InternTest : public ::testing::Test {
 protected:
  Arena arena{test::exact_options()};
  InternSet set{arena};
};

TEST_F(InternTest, InterningTheSameBytesReturnsTheSameSymbolWhileItLives) {
  Root<Symbol> foo(arena, set.intern("foo"));
  Root<Symbol> bar(arena, set.intern("bar"));
  EXPECT_NE(foo.get(), bar.get());
  EXPECT_EQ(set.intern(std::string("f") + "oo"), foo.get());
  EXPECT_EQ(set.find("foo"), foo.get());
  EXPECT_EQ(foo->view(), "foo");
  EXPECT_STREQ(foo->c_str(), "foo");
  test::finish_cycle(arena);
  EXPECT_EQ(set.intern("foo"), foo.get());
  EXPECT_EQ(set.symbols_created(), 2u);
  EXPECT_EQ(set.size(), 2u);
}

TEST_F(InternTest, ASymbolNoOneHoldsDiesAndANewOneIsMadeLater) {
  Root<Symbol> keep(arena, set.intern("kept"));
  (void)set.intern("transient");
  EXPECT_EQ(set.symbols_created(), 2u);
  test::finish_cycle(arena);
  EXPECT_EQ(set.size(), 1u);
  EXPECT_EQ(set.find("transient"), nullptr);
  Symbol* again = set.intern("transient");
  EXPECT_EQ(set.symbols_created(), 3u);  // a new object, whatever address it got
  EXPECT_EQ(again->view(), "transient");
  EXPECT_EQ(set.find("kept"), keep.get());
}

TEST_F(InternTest, EmbeddedNulsAreBytesLikeAnyOther) {
  const std::string names[] = {std::string("a\0b", 3), std::string("a\0c", 3), std::string("a"),
                               std::string("a\0", 2),  std::string("\0", 1),   std::string()};
  RootArray roots(arena, 6);
  for (size_t i = 0; i < 6; ++i) roots[i] = set.intern(names[i]);
  for (size_t i = 0; i < 6; ++i) {
    auto* s = static_cast<Symbol*>(roots[i]);
    EXPECT_EQ(s->view(), names[i]) << i;
    EXPECT_EQ(s->length, names[i].size());
    EXPECT_EQ(s->bytes[s->length], '\0');
    EXPECT_EQ(s->hash, XXH3_64bits(names[i].data(), names[i].size()));
    for (size_t j = 0; j < 6; ++j) EXPECT_EQ(roots[i] == roots[j], i == j);
    EXPECT_EQ(set.intern(names[i]), roots[i]);
  }
  EXPECT_EQ(set.size(), 6u);
}

TEST_F(InternTest, LongStringsAreHashedAndComparedWhole) {
  std::string big(1 << 20, 'x');
  for (size_t i = 0; i < big.size(); i += 4097) big[i] = static_cast<char>('a' + i % 26);
  std::string big2 = big;
  big2.back() = 'y';  // differs in the last byte only
  Root<Symbol> a(arena, set.intern(big));
  Root<Symbol> b(arena, set.intern(big2));
  EXPECT_NE(a.get(), b.get());
  EXPECT_EQ(a->hash, XXH3_64bits(big.data(), big.size()));
  EXPECT_EQ(a->view(), big);
  EXPECT_EQ(b->view(), big2);
  EXPECT_EQ(set.intern(std::string(big)), a.get());
  test::finish_cycle(arena);
  EXPECT_EQ(set.find(big2), b.get());
}

TEST_F(InternTest, RandomInterningAgreesWithAPerNameModel) {
  // Names from a pool; each name's symbol is rooted or not at random. The model says which
  // symbol is alive: a rooted one, or any symbol during the cycle in which it became garbage
  // until the end of that cycle's marking (a lookup during marking returns it, alive again).
  uint64_t seed = test::test_seed(20240611);
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937_64 rng(seed);
  constexpr size_t kNames = 300;
  std::vector<std::string> names;
  for (size_t i = 0; i < kNames; ++i) {
    std::string n = "sym" + std::to_string(i);
    if (i % 7 == 0) n += std::string(1, '\0') + "tail";
    if (i % 11 == 0) n += std::string(5000 + i, 'z');
    names.push_back(n);
  }
  RootArray roots(arena, kNames);
  std::vector<Symbol*> current(kNames, nullptr);  // the model's live symbol per name
  std::vector<bool> rooted(kNames, false), used_in_mark(kNames, false),
      rooted_at_flip(kNames, false);
  bool marking = false, in_cycle = false;
  auto mark_end = [&] {
    for (size_t i = 0; i < kNames; ++i)
      if (current[i] != nullptr && !rooted_at_flip[i] && !used_in_mark[i]) current[i] = nullptr;
    marking = false;
  };
  for (int op = 0; op < 6000; ++op) {
    size_t i = rng() % kNames;
    int r = static_cast<int>(rng() % 100);
    if (r < 45) {
      uint64_t created = set.symbols_created();
      Symbol* s = set.intern(names[i]);
      ASSERT_EQ(s->view(), names[i]);
      if (current[i] != nullptr) {
        ASSERT_EQ(s, current[i]) << "op " << op << ": not the live symbol";
        ASSERT_EQ(set.symbols_created(), created);
      } else {
        ASSERT_EQ(set.symbols_created(), created + 1) << "op " << op << ": expected a new one";
        current[i] = s;
      }
      if (marking) used_in_mark[i] = true;
      if (rng() % 2) {
        roots[i] = s;
        rooted[i] = true;
      }
    } else if (r < 60) {
      Symbol* s = set.find(names[i]);
      ASSERT_EQ(s, current[i]) << "op " << op;
      if (marking && s != nullptr) used_in_mark[i] = true;
    } else if (r < 75) {
      roots[i] = nullptr;
      rooted[i] = false;
    } else if (!in_cycle && r < 78) {
      rooted_at_flip = rooted;
      used_in_mark.assign(kNames, false);
      arena.start_cycle();
      marking = in_cycle = true;
    } else if (in_cycle && r < 95) {
      arena.step(uint64_t{1000} << (rng() % 8));
      if (marking && arena.phase() != Phase::kMark) mark_end();
      if (arena.phase() == Phase::kIdle) {
        in_cycle = false;
        size_t live = 0;
        for (Symbol* s : current) live += s != nullptr;
        ASSERT_EQ(set.size(), live) << "op " << op;
      }
    }
  }
  EXPECT_EQ(arena.stats().faults_declined, 0u);
  EXPECT_GT(arena.stats().cycles, 5u);
}

TEST(InternHash, IsXxh3OfTheBytes) {
  const std::string s("hello\0world", 11);
  EXPECT_EQ(InternSet::hash(s), XXH3_64bits(s.data(), s.size()));
  EXPECT_NE(InternSet::hash("hello"), InternSet::hash(s));
}

}  // namespace
}  // namespace weakgc
