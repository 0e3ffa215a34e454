// Model-based test of the weak tables: seeded random sequences of table operations, reference
// changes and collection increments, against an oracle (a std::map of entries plus a shadow
// reachability graph that predicts exactly what the collector marks).
//
// The oracle's rules (docs/design/weak.md, "Testing"):
//  - an object survives a cycle iff it is in M, the least set that contains the roots at the flip
//    (root slots and pending dead-entry notifications), the objects allocated during marking, and
//    the objects the mutator loaded during marking (values returned by get/exchange/take,
//    values replaced or removed in an ephemeron table, iteration, the stored key of a content
//    lookup), closed under
//      * object fields that existed at the flip or were stored during marking (the barrier
//        scans an object before the mutator can overwrite a field: snapshot at the beginning),
//      * weak-key tables: every value present during marking (the value array is exact),
//      * weak-value tables: every key present during marking (the key array is exact),
//      * ephemeron tables: the value of every entry present during marking whose key is in M;
//  - at the end of marking, an entry whose weak half is not in M is gone, and its surviving
//    half (if in M) is a pending notification;
//  - identity lookups compare in memory and keep nothing alive.
// The arena is exact (weak_test_util.hpp): nothing else can keep an object alive, and nothing
// else may be used by the test during marking than objects of M (a mutator holds only marked
// objects).
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <random>
#include <set>
#include <string>
#include <unordered_set>
#include <vector>

#include "weak_test_util.hpp"
#include "weakgc/tables.hpp"

namespace weakgc {
namespace {

using test::Obj;

uint64_t mix(uint64_t x) {
  x ^= x >> 31;
  x *= 0x9E3779B97F4A7C15ull;
  x ^= x >> 29;
  return x;
}
uint64_t content_hash(const Obj* o) {
  return mix(o->cls + 1);
}
bool content_eq(const Obj* a, const Obj* b) {
  return a->cls == b->cls;
}

using test::kind_name;

struct Config {
  TableKind kind;
  bool content;
  int seeds;
  int ops;
};

// Odd seeds leave the table's arrays unprotected at every flip (pending: each load the table
// makes is guarded in software); even seeds protect them (each load goes through the barrier).
// Seeds ≡ 0, 1 (mod 4) move a grown table's entries a few slots per operation (16: moves are
// under way most of the time), the others all at once.
ArenaOptions model_options(uint64_t seed) {
  ArenaOptions o = test::exact_options();
  o.pending_min_pages = (seed & 1) != 0 ? 1 : SIZE_MAX;
  o.table_move_slots = (seed & 2) == 0 ? 16 : SIZE_MAX;
  return o;
}

class Model {
 public:
  Model(uint64_t seed, TableKind kind, bool content)
      : seed_(seed),
        rng_(seed),
        kind_(kind),
        content_(content),
        arena_(model_options(seed)),
        roots_(arena_, kRoots),
        root_ids_(kRoots, -1) {
    WeakTable::ContentKeys ck;
    ck.hash = [](const void* k, void*) { return content_hash(static_cast<const Obj*>(k)); };
    ck.eq = [](const void* a, const void* b, void*) {
      return content_eq(static_cast<const Obj*>(a), static_cast<const Obj*>(b));
    };
    size_t cap = coin(0.5) ? 0 : rng_() % 200;
    notify_ = kind != TableKind::kWeakSet && coin(0.7);
    // Pending needs large arrays (own segments, > 16 KiB): odd seeds start big. (Big tables also
    // found clear() dropping arrays the weak phase had not settled yet, losing notifications.)
    if ((seed & 1) != 0) cap = 3000 + rng_() % 2000;
    table_ = content ? std::make_unique<WeakTable>(arena_, kind, ck, cap)
                     : std::make_unique<WeakTable>(arena_, kind, cap);
    if (notify_) {
      EXPECT_EQ(table_->enable_notification(), Status::kOk);
    }
  }

  void run(int ops) {
    for (op_ = 0; op_ < ops && !::testing::Test::HasFailure(); ++op_) step_once();
    finish();
  }

 private:
  static constexpr size_t kRoots = 48;
  static constexpr uint64_t kClasses = 96;

  struct MObj {
    Obj* p;
    bool alive;
    int ref[2];
    uint64_t cls;
    uint64_t died_cycle;
  };
  struct Entry {
    int key;
    int value;  // -1 for sets
  };

  bool has_values() const { return kind_ != TableKind::kWeakSet; }
  bool coin(double p) { return std::uniform_real_distribution<double>(0, 1)(rng_) < p; }
  size_t below(size_t n) { return static_cast<size_t>(rng_() % n); }
  std::string where() const {
    return "seed " + std::to_string(seed_) + " op " + std::to_string(op_) + " kind " +
           kind_name(kind_) + (content_ ? " content" : " identity") + (notify_ ? " notify" : "") +
           " phase " + std::to_string(static_cast<int>(arena_.phase()));
  }
  Obj* ptr(int id) const { return id < 0 ? nullptr : objs_[static_cast<size_t>(id)].p; }
  int id_of(const void* p) const {
    if (p == nullptr) return -1;
    return static_cast<int>(static_cast<const Obj*>(p)->id);
  }
  uint64_t token(int key) const {
    return content_ ? objs_[static_cast<size_t>(key)].cls : static_cast<uint64_t>(key);
  }
  void load(int id) {
    if (id >= 0 && marking_) loaded_.push_back(id);
  }

  // ------------------------------------------------------------------ reachability

  // M: what the collector marks in this cycle given everything the mutator did so far.
  std::vector<char> closure(std::vector<std::string>* why = nullptr) const {
    std::vector<char> in(objs_.size(), 0);
    std::vector<int> work;
    auto add = [&](int x, const std::string& reason) {
      if (x >= 0 && !in[static_cast<size_t>(x)]) {
        in[static_cast<size_t>(x)] = 1;
        work.push_back(x);
        if (why != nullptr) (*why)[static_cast<size_t>(x)] = reason;
      }
    };
    if (why != nullptr) why->assign(objs_.size(), std::string());
    for (int x : flip_roots_) add(x, "root at flip");
    for (int x : allocated_) add(x, "allocated while marking");
    for (int x : loaded_) add(x, "loaded while marking");
    for (bool changed = true; changed;) {
      while (!work.empty()) {
        int x = work.back();
        work.pop_back();
        for (int e : snap_refs_[static_cast<size_t>(x)]) add(e, "field of " + std::to_string(x));
      }
      for (const Entry& e : ever_) {
        std::string r = "entry (" + std::to_string(e.key) + ", " + std::to_string(e.value) + ")";
        if (kind_ == TableKind::kWeakKey) add(e.value, r);
        if (kind_ == TableKind::kWeakValue) add(e.key, r);
        if (kind_ == TableKind::kEphemeron && in[static_cast<size_t>(e.key)]) add(e.value, r);
      }
      changed = !work.empty();
    }
    return in;
  }

  // The objects the test may use now. During marking, a mutator holds only grey or black
  // objects (it reaches an object by loading it, and loads grey it): so the test uses objects
  // the collector has already marked — which the oracle must also have in M. (Writing into an
  // object the collector has not reached would overwrite a field behind the barrier's back.)
  // Otherwise every live object.
  const std::vector<int>& safe() {
    if (!safe_dirty_) return safe_;
    safe_.clear();
    if (marking_) {
      std::vector<char> in = closure();
      for (size_t i = 0; i < in.size(); ++i) {
        if (!objs_[i].alive || !arena_.is_marked(objs_[i].p)) continue;
        EXPECT_TRUE(in[i]) << "marked but not in the oracle's M: " << where()
                           << describe(static_cast<int>(i));
        safe_.push_back(static_cast<int>(i));
      }
    } else {
      for (size_t i = 0; i < objs_.size(); ++i)
        if (objs_[i].alive) safe_.push_back(static_cast<int>(i));
    }
    safe_dirty_ = false;
    return safe_;
  }
  int pick() {
    const auto& s = safe();
    return s.empty() ? -1 : s[below(s.size())];
  }

  // ------------------------------------------------------------------ the collector

  void flip() {
    flip_roots_.clear();
    for (int r : root_ids_)
      if (r >= 0) flip_roots_.push_back(r);
    for (const Entry& e : pending_) flip_roots_.push_back(e.key >= 0 ? e.key : e.value);
    snap_refs_.assign(objs_.size(), {});
    for (size_t i = 0; i < objs_.size(); ++i)
      for (int r : objs_[i].ref)
        if (r >= 0) snap_refs_[i].push_back(r);
    ever_.clear();
    for (auto& [t, e] : entries_) ever_.push_back(e);
    allocated_.clear();
    loaded_.clear();
    marking_ = true;
    in_cycle_ = true;
    safe_dirty_ = true;
    arena_.start_cycle();
    ASSERT_EQ(arena_.phase(), Phase::kMark) << where();
  }

  void mark_end() {
    std::vector<char> in = closure(&why_);
    for (size_t i = 0; i < objs_.size(); ++i) {
      if (objs_[i].alive && !in[i]) {
        objs_[i].alive = false;
        objs_[i].died_cycle = cycles_ + 1;
      }
    }
    auto live = [&](int x) { return x < 0 || in[static_cast<size_t>(x)]; };
    for (auto it = entries_.begin(); it != entries_.end();) {
      const Entry& e = it->second;
      bool key_ok = kind_ == TableKind::kWeakValue || live(e.key);
      bool value_ok =
          !(kind_ == TableKind::kWeakValue || kind_ == TableKind::kDoublyWeak) || live(e.value);
      if (key_ok && value_ok) {
        ++it;
        continue;
      }
      if (notify_) {
        if (!key_ok && value_ok && e.value >= 0 && live(e.value)) pending_.push_back({-1, e.value});
        if (key_ok && !value_ok) pending_.push_back({e.key, -1});
      }
      it = entries_.erase(it);
    }
    marking_ = false;
    allocated_.clear();
    loaded_.clear();
    ever_.clear();
    safe_dirty_ = true;
  }

  void cycle_end() {
    in_cycle_ = false;
    ++cycles_;
    check_entries();
    if (::testing::Test::HasFailure()) return;
    EXPECT_EQ(table_->size(), entries_.size()) << where();
    // Every live object is intact; every object that died in this cycle was freed (or its
    // cell now holds a live object): nothing was retained that the oracle says is dead.
    std::unordered_set<const void*> live_ptrs;
    for (size_t i = 0; i < objs_.size(); ++i) {
      const MObj& o = objs_[i];
      if (!o.alive) continue;
      live_ptrs.insert(o.p);
      ASSERT_EQ(o.p->id, i) << where();
      ASSERT_EQ(arena_.object_base(o.p), o.p) << where() << describe(static_cast<int>(i));
    }
    for (const MObj& o : objs_) {
      if (o.alive || o.died_cycle != cycles_) continue;
      if (arena_.object_base(o.p) != nullptr) {
        ASSERT_TRUE(live_ptrs.count(o.p)) << "a dead object was retained: " << where();
      }
    }
    if (notify_ && coin(0.5)) drain_all();
  }

  void sync() {
    Phase ph = arena_.phase();
    if (marking_ && ph != Phase::kMark) mark_end();
    if (in_cycle_ && ph == Phase::kIdle) cycle_end();
  }

  // ------------------------------------------------------------------ checks

  // How the model reaches object x (for failure messages).
  std::string describe(int x) const {
    std::string d = " | object " + std::to_string(x) + " cls " +
                    std::to_string(objs_[static_cast<size_t>(x)].cls);
    for (size_t r = 0; r < root_ids_.size(); ++r)
      if (root_ids_[r] == x) d += " rooted(" + std::to_string(r) + ")";
    for (size_t i = 0; i < objs_.size(); ++i)
      for (int j = 0; j < 2; ++j)
        if (objs_[i].ref[j] == x)
          d += " field-of(" + std::to_string(i) + (objs_[i].alive ? "" : " dead") + ")";
    for (auto& [t, e] : entries_) {
      if (e.key == x) d += " key-of-entry(value " + std::to_string(e.value) + ")";
      if (e.value == x) d += " value-of-entry(key " + std::to_string(e.key) + ")";
    }
    for (const Entry& e : pending_)
      if (e.key == x || e.value == x) d += " pending";
    if (static_cast<size_t>(x) < why_.size()) d += " | marked as: " + why_[static_cast<size_t>(x)];
    return d;
  }

  void check_entries() {
    std::multiset<std::pair<int, int>> got, want;
    table_->for_each([&](void* k, void* v) {
      got.insert({id_of(k), has_values() ? id_of(v) : -1});
      load(id_of(k));
      load(id_of(v));
    });
    for (auto& [t, e] : entries_) want.insert({e.key, e.value});
    ASSERT_EQ(got, want) << where();
    safe_dirty_ = true;
  }

  void drain_all() {
    DeadEntry d;
    while (table_->take_dead(&d)) take_one(d);
    EXPECT_TRUE(pending_.empty()) << pending_.size() << " notifications missing: " << where();
  }

  void take_one(const DeadEntry& d) {
    int k = id_of(d.key), v = id_of(d.value);
    auto it = std::find_if(pending_.begin(), pending_.end(),
                           [&](const Entry& e) { return e.key == k && e.value == v; });
    ASSERT_TRUE(it != pending_.end())
        << "unexpected notification (" << k << ", " << v << ") " << where();
    pending_.erase(it);
    int got = k >= 0 ? k : v;
    load(got);
    if (coin(0.3)) set_root(below(kRoots), got);
    safe_dirty_ = true;
  }

  // ------------------------------------------------------------------ operations

  void set_root(size_t slot, int id) {
    roots_[slot] = ptr(id);
    root_ids_[slot] = id;
    safe_dirty_ = true;
  }

  void op_new() {
    Obj* o = make<Obj>(arena_);
    int id = static_cast<int>(objs_.size());
    o->id = static_cast<uint64_t>(id);
    o->cls = below(kClasses);
    objs_.push_back(MObj{o, true, {-1, -1}, o->cls, 0});
    if (marking_) allocated_.push_back(id);
    if (in_cycle_) snap_refs_.emplace_back();
    safe_dirty_ = true;
    if (coin(0.5)) set_root(below(kRoots), id);
  }

  void op_field() {
    int a = pick();
    if (a < 0) return;
    int b = coin(0.2) ? -1 : pick();
    int j = static_cast<int>(below(2));
    objs_[static_cast<size_t>(a)].p->ref[j] = ptr(b);
    objs_[static_cast<size_t>(a)].ref[j] = b;
    if (in_cycle_ && b >= 0) snap_refs_[static_cast<size_t>(a)].push_back(b);
    safe_dirty_ = true;
  }

  void op_put() {
    int k = pick(), v = has_values() ? pick() : -1;
    if (k < 0 || (has_values() && v < 0)) return;
    auto it = entries_.find(token(k));
    bool want_old = coin(0.3);  // exchange (returns and loads the old value) or put
    void* r = nullptr;
    bool inserted = false;
    if (want_old)
      r = table_->exchange(ptr(k), ptr(v));
    else
      inserted = table_->put(ptr(k), ptr(v));
    if (it != entries_.end()) {
      int old = has_values() ? it->second.value : it->second.key;
      if (want_old) {
        ASSERT_EQ(id_of(r), old) << "exchange returned the wrong old value: " << where();
      } else {
        ASSERT_FALSE(inserted) << "put made a second entry: " << where();
      }
      // The old value is loaded by exchange, and by put in an ephemeron table.
      if (want_old || kind_ == TableKind::kEphemeron) load(old);
      if (content_) load(it->second.key);
      if (has_values()) it->second.value = v;
      if (marking_) ever_.push_back(it->second);
    } else {
      if (want_old) {
        ASSERT_EQ(r, nullptr) << "exchange found an absent key: " << where();
      } else {
        ASSERT_TRUE(inserted) << "put found an absent key: " << where();
      }
      entries_[token(k)] = Entry{k, v};
      if (marking_) ever_.push_back(Entry{k, v});
    }
    safe_dirty_ = true;
  }

  void op_get() {
    int k = pick();
    if (k < 0) return;
    auto it = entries_.find(token(k));
    void* r = table_->get(ptr(k));
    if (it == entries_.end()) {
      ASSERT_EQ(r, nullptr) << "get found an absent key " << k << ": " << where();
      return;
    }
    int expect = has_values() ? it->second.value : it->second.key;
    ASSERT_EQ(id_of(r), expect) << "get: " << where();
    load(expect);
    if (content_) load(it->second.key);
    safe_dirty_ = true;
  }

  void op_contains() {
    int k = pick();
    if (k < 0) return;
    auto it = entries_.find(token(k));
    ASSERT_EQ(table_->contains(ptr(k)), it != entries_.end()) << "contains: " << where();
    if (content_ && it != entries_.end()) {
      load(it->second.key);
      safe_dirty_ = true;
    }
  }

  void op_remove() {
    int k = pick();
    if (k < 0) return;
    auto it = entries_.find(token(k));
    bool want_old = coin(0.3);  // take (returns and loads the value) or remove
    void* r = nullptr;
    bool removed = false;
    if (want_old)
      r = table_->take(ptr(k));
    else
      removed = table_->remove(ptr(k));
    if (it == entries_.end()) {
      ASSERT_TRUE(r == nullptr && !removed) << "removed an absent key: " << where();
      return;
    }
    int old = has_values() ? it->second.value : it->second.key;
    if (want_old) {
      ASSERT_EQ(id_of(r), old) << "take: " << where();
    } else {
      ASSERT_TRUE(removed) << "remove: " << where();
    }
    if (want_old || kind_ == TableKind::kEphemeron) load(old);
    if (content_) load(it->second.key);
    entries_.erase(it);
    safe_dirty_ = true;
  }

  void op_size() {
    size_t n = table_->size();
    Phase ph = arena_.phase();
    if (ph == Phase::kWeak) {
      ASSERT_GE(n, entries_.size()) << where();
    } else {
      ASSERT_EQ(n, entries_.size()) << where();
    }
  }

  void op_take() {
    if (!notify_) return;
    Phase ph = arena_.phase();
    if (ph != Phase::kWeak && coin(0.5)) {
      drain_all();
      return;
    }
    DeadEntry d;
    if (table_->take_dead(&d)) take_one(d);
  }

  void step_once() {
    if (!in_cycle_) {
      if (coin(0.02)) {
        flip();
        return;
      }
    } else if (coin(0.25)) {
      uint64_t budget = uint64_t{1000} << below(8);  // 1 µs .. 128 µs
      arena_.step(budget);
      safe_dirty_ = true;
      sync();
      return;
    } else if (coin(0.003)) {
      test::finish_cycle(arena_);
      sync();
      return;
    }
    double r = std::uniform_real_distribution<double>(0, 1)(rng_);
    if ((r -= 0.14) < 0) return op_new();
    if ((r -= 0.08) < 0) return set_root(below(kRoots), -1);
    if ((r -= 0.05) < 0) return set_root(below(kRoots), pick());
    if ((r -= 0.08) < 0) return op_field();
    if ((r -= 0.22) < 0) return op_put();
    if ((r -= 0.16) < 0) return op_get();
    if ((r -= 0.06) < 0) return op_contains();
    if ((r -= 0.08) < 0) return op_remove();
    if ((r -= 0.04) < 0) return op_size();
    if ((r -= 0.04) < 0) return op_take();
    if ((r -= 0.01) < 0) return check_entries();
    if ((r -= 0.004) < 0) {
      entries_.clear();
      table_->clear();
      return;
    }
    if ((r -= 0.004) < 0) return table_->reserve(below(600));
  }

  void finish() {
    if (::testing::Test::HasFailure()) return;
    if (!in_cycle_) flip();
    test::finish_cycle(arena_);
    sync();
    // One more cycle with every root dropped: everything the table held weakly dies.
    for (size_t i = 0; i < kRoots; ++i) set_root(i, -1);
    if (notify_) drain_all();
    flip();
    test::finish_cycle(arena_);
    sync();
    Stats s = arena_.stats();
    // Exactness needs every weak-page fault during marking to be emulated: a declined or
    // over-budget fault scans the page at exact rank and keeps its dead slots (DESIGN.md §4).
    EXPECT_EQ(s.faults_declined, 0u) << where();
    EXPECT_EQ(s.faults_budget, 0u) << where();
    total_emulated += s.faults_emulated;
    total_guards += s.pending_guards;
  }

 public:
  static inline uint64_t total_emulated = 0;
  static inline uint64_t total_guards = 0;  // loads from pending pages (odd seeds)

 private:
  uint64_t seed_;
  std::mt19937_64 rng_;
  TableKind kind_;
  bool content_;
  bool notify_ = false;
  Arena arena_;
  test::RootArray roots_;
  std::vector<int> root_ids_;
  std::unique_ptr<WeakTable> table_;
  std::vector<MObj> objs_;
  std::map<uint64_t, Entry> entries_;
  std::vector<Entry> pending_;  // expected notifications not yet taken
  // Cycle state.
  bool in_cycle_ = false;
  bool marking_ = false;
  uint64_t cycles_ = 0;
  std::vector<int> flip_roots_;
  std::vector<std::vector<int>> snap_refs_;  // fields at the flip plus fields stored since
  std::vector<Entry> ever_;                  // entries present at any time during marking
  std::vector<int> allocated_;
  std::vector<int> loaded_;
  std::vector<int> safe_;
  std::vector<std::string> why_;  // per object: why the last mark_end put it in M
  bool safe_dirty_ = true;
  int op_ = 0;
};

class WeakModelTest : public ::testing::TestWithParam<Config> {};

// The stress build (weak_model_stress_test, label stress) runs many more seeds.
#ifndef WEAK_MODEL_SCALE
#define WEAK_MODEL_SCALE 1
#endif

TEST_P(WeakModelTest, TableHoldsExactlyTheEntriesTheModelSaysAreAlive) {
  const Config& c = GetParam();
  Model::total_emulated = 0;  // this configuration's runs only
  Model::total_guards = 0;
  uint64_t base =
      test::test_seed(0x5eed0000u + static_cast<uint64_t>(c.kind) * 1000 + (c.content ? 500 : 0));
  for (int i = 0; i < c.seeds * WEAK_MODEL_SCALE && !HasFailure(); ++i) {
    uint64_t seed = base + static_cast<uint64_t>(i);
    SCOPED_TRACE("seed " + std::to_string(seed) +
                 " (rerun with WEAKGC_TEST_SEED=" + std::to_string(seed) + ")");
    Model m(seed, c.kind, c.content);
    m.run(c.ops);
  }
  // The runs went through the barrier: marking-phase table accesses were emulated (even seeds);
  // and through the software guard of pending pages (odd seeds).
  EXPECT_GT(Model::total_emulated, 0u);
  EXPECT_GT(Model::total_guards, 0u);
}

std::string config_name(const ::testing::TestParamInfo<Config>& info) {
  return std::string(kind_name(info.param.kind)) + (info.param.content ? "Content" : "Identity");
}

INSTANTIATE_TEST_SUITE_P(Kinds, WeakModelTest,
                         ::testing::Values(Config{TableKind::kWeakKey, false, 6, 2500},
                                           Config{TableKind::kWeakValue, false, 6, 2500},
                                           Config{TableKind::kDoublyWeak, false, 6, 2500},
                                           Config{TableKind::kEphemeron, false, 6, 2500},
                                           Config{TableKind::kWeakSet, false, 6, 2500},
                                           Config{TableKind::kWeakKey, true, 4, 2500},
                                           Config{TableKind::kDoublyWeak, true, 4, 2500},
                                           Config{TableKind::kEphemeron, true, 4, 2500}),
                         config_name);

}  // namespace
}  // namespace weakgc
