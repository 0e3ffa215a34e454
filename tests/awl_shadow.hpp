// Test support for the AWL tests (issue 5): a shadow graph of heap objects and weak tables, the
// reachability oracle computed from it, and plain one-instruction loads and stores of slots.
//
// The oracle never asks the collector anything: reachability is computed from the test's own
// record of roots, edges and slot contents (the shadow), so a test compares the collector's
// result against an independent answer. Arenas are created with register_thread = false, so
// the test thread's stack and registers are no roots and the oracle is exact.
//
// Not a benchmark. Everything random is seeded; tests print the seed on failure.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "weakgc/gc.hpp"
#include "weakgc/weak_array.hpp"

namespace awltest {

using weakgc::WeakArray;

// A heap object of the shadow graph: an id and up to two strong edges.
struct Node : weakgc::GcObject {
  explicit Node(uint64_t i) : id(i) {}
  uint64_t id;
  weakgc::Ref<Node> edge[2];
  void trace(weakgc::Visitor& v) const override {
    v.visit(edge[0]);
    v.visit(edge[1]);
  }
};

// One plain 8-byte load of a slot (`mov reg, [base + index*8 + 32]`): volatile, not inlined,
// so the compiler can neither drop, merge nor widen it. This is the access the barrier sees.
__attribute__((noinline)) inline uintptr_t load_slot(const WeakArray* a, size_t i) {
  return *static_cast<const volatile uintptr_t*>(&a->slot[i]);
}

// One plain 8-byte store of a slot.
__attribute__((noinline)) inline void store_slot(WeakArray* a, size_t i, uintptr_t v) {
  *static_cast<volatile uintptr_t*>(&a->slot[i]) = v;
}

// Reads the seed from AWL_SEED or uses the default.
inline uint64_t seed_from_env(uint64_t dflt) {
  const char* e = getenv("AWL_SEED");
  return e != nullptr ? strtoull(e, nullptr, 0) : dflt;
}

inline weakgc::ArenaOptions test_options(bool emulation = true, uint32_t budget = 0) {
  weakgc::ArenaOptions o;
  o.register_thread = false;  // no ambiguous roots: the oracle is exact
  o.incremental = 1;
  o.trigger_bytes = size_t{1} << 30;  // cycles only when the test asks
  o.emulation = emulation;
  o.single_access_budget = budget;
  return o;
}

// A fixed block of exact roots outside the heap (malloc'd, registered once, never resized).
class RootBlock {
 public:
  RootBlock(weakgc::Arena& arena, size_t capacity) : slots_(capacity, nullptr) {
    EXPECT_EQ(arena.register_root(slots_.data(), capacity, &id_), weakgc::Status::kOk);
  }
  size_t size() const { return slots_.size(); }
  void*& operator[](size_t i) { return slots_[i]; }
  // Puts p in a free slot; returns its index.
  size_t add(void* p) {
    for (size_t i = 0; i < slots_.size(); ++i) {
      if (slots_[i] == nullptr) {
        slots_[i] = p;
        return i;
      }
    }
    ADD_FAILURE() << "root block full";
    return SIZE_MAX;
  }

 private:
  std::vector<void*> slots_;
  weakgc::RootId id_;
};

// The kinds of table the oracle knows (DESIGN.md §7).
enum class Kind { kWeakKey, kDoublyWeak, kEphemeron };

inline const char* kind_name(Kind k) {
  switch (k) {
    case Kind::kWeakKey:
      return "weak-key";
    case Kind::kDoublyWeak:
      return "doubly-weak";
    case Kind::kEphemeron:
      return "ephemeron";
  }
  return "?";
}

// A table: a key array and a value array, each the other's dependent, and optionally a
// graveyard (exact) on the key array. k, v, g shadow the slots' contents.
struct Table {
  Kind kind = Kind::kWeakKey;
  WeakArray* keys = nullptr;
  WeakArray* values = nullptr;
  WeakArray* grave = nullptr;
  std::vector<uintptr_t> k, v, g;
  uint64_t splatted_seen = 0;  // keys->splatted + values->splatted at the last check
  size_t length() const { return k.size(); }
  bool value_weak() const { return kind != Kind::kWeakKey; }
};

// The shadow world: nodes, their edges, roots, tables, and the reachability oracle.
class World {
 public:
  explicit World(weakgc::Arena& arena, uint64_t seed, size_t root_capacity = 1 << 16)
      : arena_(arena), roots_(arena, root_capacity), rng_(seed) {}

  std::mt19937_64& rng() { return rng_; }
  weakgc::Arena& arena() { return arena_; }
  std::vector<Table>& tables() { return tables_; }
  size_t node_count() const { return nodes_.size(); }

  bool is_node(uintptr_t p) const { return nodes_.count(p) != 0; }

  // Allocates a node (unrooted) and records it.
  uintptr_t new_node() {
    Node* n = weakgc::make<Node>(arena_, next_id_++);
    uintptr_t p = reinterpret_cast<uintptr_t>(n);
    nodes_[p] = Shadow{n->id, {0, 0}, SIZE_MAX};
    return p;
  }
  uint64_t id_of(uintptr_t p) const { return nodes_.at(p).id; }

  // Sets edge j of node `from` to `to` (0 for none). Only while the collector is idle.
  void set_edge(uintptr_t from, int j, uintptr_t to) {
    reinterpret_cast<Node*>(from)->edge[j] = reinterpret_cast<Node*>(to);
    nodes_.at(from).edge[j] = to;
  }
  void root(uintptr_t p) {
    Shadow& s = nodes_.at(p);
    if (s.root_index == SIZE_MAX) s.root_index = roots_.add(reinterpret_cast<void*>(p));
  }
  void unroot(uintptr_t p) {
    Shadow& s = nodes_.at(p);
    if (s.root_index == SIZE_MAX) return;
    roots_[s.root_index] = nullptr;
    s.root_index = SIZE_MAX;
  }
  bool rooted(uintptr_t p) const { return nodes_.at(p).root_index != SIZE_MAX; }
  // Roots an arbitrary heap object that is not part of the shadow graph (arrays).
  void root_object(void* p) { roots_.add(p); }

  // A random slot value: mostly nodes, sometimes empty, an odd integer or a foreign pointer.
  uintptr_t random_slot_value(const std::vector<uintptr_t>& pool) {
    uint64_t r = rng_() % 100;
    if (r < 8 || pool.empty()) return weakgc::kEmpty;
    if (r < 12) return ((rng_() % 1000000) << 4) | 1;  // ≡ 1 mod 16: never kDeleted, never aligned
    if (r < 14) return reinterpret_cast<uintptr_t>(&foreign_[rng_() % 4]);
    return pool[rng_() % pool.size()];
  }

  // Creates a table of `kind` with `length` slots filled from `pool`, rooted.
  Table& add_table(Kind kind, size_t length, const std::vector<uintptr_t>& pool,
                   bool graveyard = false) {
    Table t;
    t.kind = kind;
    weakgc::Rank vr = kind == Kind::kWeakKey      ? weakgc::Rank::kExact
                      : kind == Kind::kDoublyWeak ? weakgc::Rank::kWeak
                                                  : weakgc::Rank::kEphemeron;
    // Either array first: segment order decides which array the weak phase scans first, and
    // both orders must give the same result.
    if (rng_() % 2 == 0) {
      EXPECT_EQ(weakgc::alloc_weak_array(arena_, length, weakgc::Rank::kWeak, nullptr, &t.keys),
                weakgc::Status::kOk);
      EXPECT_EQ(weakgc::alloc_weak_array(arena_, length, vr, t.keys, &t.values),
                weakgc::Status::kOk);
    } else {
      EXPECT_EQ(weakgc::alloc_weak_array(arena_, length, vr, nullptr, &t.values),
                weakgc::Status::kOk);
      EXPECT_EQ(weakgc::alloc_weak_array(arena_, length, weakgc::Rank::kWeak, t.values, &t.keys),
                weakgc::Status::kOk);
    }
    EXPECT_EQ(weakgc::link_dependents(arena_, t.keys, t.values), weakgc::Status::kOk);
    root_object(t.keys);
    root_object(t.values);
    if (graveyard) {
      EXPECT_EQ(weakgc::alloc_weak_array(arena_, length, weakgc::Rank::kExact, nullptr, &t.grave),
                weakgc::Status::kOk);
      root_object(t.grave);
      t.keys->graveyard = t.grave;  // idle: the page is not protected
    }
    t.k.assign(length, weakgc::kEmpty);
    t.v.assign(length, weakgc::kEmpty);
    t.g.assign(length, weakgc::kEmpty);
    for (size_t i = 0; i < length; ++i) put(t, i, random_slot_value(pool), random_slot_value(pool));
    tables_.push_back(std::move(t));
    return tables_.back();
  }

  // Writes entry i (only while the collector is idle: plain stores, no barrier involved).
  static void put(Table& t, size_t i, uintptr_t key, uintptr_t value) {
    t.keys->slot[i] = key;
    t.values->slot[i] = value;
    t.k[i] = key;
    t.v[i] = value;
  }

  // The oracle: every node reachable from the roots, from `extra` (references the mutator
  // holds because it loaded them during marking), from the slots of exact arrays, and — to a
  // fixpoint — from ephemeron values whose key is a non-reference or reachable.
  std::unordered_set<uintptr_t> reachable(const std::vector<uintptr_t>& extra) const {
    std::unordered_set<uintptr_t> live;
    std::vector<uintptr_t> work;
    auto reach = [&](uintptr_t p) {
      if (is_node(p) && live.insert(p).second) work.push_back(p);
    };
    auto close = [&] {
      while (!work.empty()) {
        uintptr_t p = work.back();
        work.pop_back();
        for (uintptr_t e : nodes_.at(p).edge) reach(e);
      }
    };
    for (const auto& [p, s] : nodes_)
      if (s.root_index != SIZE_MAX) reach(p);
    for (uintptr_t p : extra) reach(p);
    for (const Table& t : tables_) {
      if (t.kind == Kind::kWeakKey)
        for (uintptr_t v : t.v) reach(v);
      for (uintptr_t g : t.g) reach(g);
    }
    close();
    for (bool changed = true; changed;) {
      changed = false;
      for (const Table& t : tables_) {
        if (t.kind != Kind::kEphemeron) continue;
        for (size_t i = 0; i < t.length(); ++i) {
          bool key_live = !is_node(t.k[i]) || live.count(t.k[i]) != 0;
          if (key_live && is_node(t.v[i]) && live.count(t.v[i]) == 0) {
            reach(t.v[i]);
            changed = true;
          }
        }
      }
      close();
    }
    return live;
  }

  // Whether entry i of t is dead under `live`: a weak half names an unreachable node.
  bool entry_dead(const Table& t, size_t i, const std::unordered_set<uintptr_t>& live) const {
    auto dead = [&](uintptr_t p) { return is_node(p) && live.count(p) == 0; };
    if (dead(t.k[i])) return true;
    return t.kind == Kind::kDoublyWeak && dead(t.v[i]);
  }

  // Result of checking one cycle against the oracle.
  struct CheckResult {
    size_t newly_dead = 0;  // entries the oracle says died in this cycle
    size_t failures = 0;
  };

  // Compares every slot of every table with the oracle after a completed cycle, updates the
  // shadow (dead entries become kDeleted, buried survivors appear in graveyards) and forgets
  // the nodes that died. `label` prefixes every failure message (it carries the seed).
  CheckResult check_cycle(const std::vector<uintptr_t>& extra, const std::string& label) {
    CheckResult r;
    std::unordered_set<uintptr_t> live = reachable(extra);
    for (size_t ti = 0; ti < tables_.size(); ++ti) {
      Table& t = tables_[ti];
      size_t table_dead = 0;
      for (size_t i = 0; i < t.length(); ++i) {
        uintptr_t gk = t.keys->slot[i], gv = t.values->slot[i];
        bool dead = entry_dead(t, i, live);
        uintptr_t want_k = dead ? weakgc::kDeleted : t.k[i];
        uintptr_t want_v = dead ? weakgc::kDeleted : t.v[i];
        if (gk != want_k || gv != want_v) {
          if (++r.failures <= 10)
            ADD_FAILURE() << label << ": table " << ti << " (" << kind_name(t.kind) << ", length "
                          << t.length() << ") entry " << i << ": key " << std::hex << t.k[i]
                          << (is_node(t.k[i]) ? (live.count(t.k[i]) ? " live" : " dead") : "")
                          << " value " << t.v[i]
                          << (is_node(t.v[i]) ? (live.count(t.v[i]) ? " live" : " dead") : "")
                          << ": expected (" << want_k << ", " << want_v << ") got (" << gk << ", "
                          << gv << ")" << std::dec;
        }
        if (t.grave != nullptr) {
          // The surviving value of an entry whose key died is buried, whichever array is
          // scanned first (every kind).
          uintptr_t want_g = t.g[i];
          bool key_dead = is_node(t.k[i]) && live.count(t.k[i]) == 0;
          uintptr_t val = t.v[i];
          bool val_survives = val != weakgc::kEmpty && val != weakgc::kDeleted &&
                              (!is_node(val) || live.count(val) != 0);
          if (key_dead && val_survives) want_g = val;
          uintptr_t gg = t.grave->slot[i];
          if (gg != want_g && ++r.failures <= 10)
            ADD_FAILURE() << label << ": table " << ti << " graveyard slot " << i << ": expected "
                          << std::hex << want_g << " got " << gg << std::dec;
          t.g[i] = want_g;
        }
        if (dead && t.k[i] != weakgc::kDeleted) ++table_dead;
        if (dead) {
          t.k[i] = weakgc::kDeleted;
          t.v[i] = weakgc::kDeleted;
        }
      }
      // Each dead entry is splatted once, by whichever array's scan saw it first.
      uint64_t splatted = t.keys->splatted + t.values->splatted;
      if (splatted - t.splatted_seen != table_dead && ++r.failures <= 10)
        ADD_FAILURE() << label << ": table " << ti << " header splatted grew by "
                      << splatted - t.splatted_seen << ", oracle says " << table_dead
                      << " entries died";
      t.splatted_seen = splatted;
      r.newly_dead += table_dead;
    }
    // Nodes that died are gone (their cells may be reused): forget them.
    for (auto it = nodes_.begin(); it != nodes_.end();) {
      if (live.count(it->first) == 0) {
        if (it->second.root_index != SIZE_MAX) ADD_FAILURE() << "rooted node judged dead";
        it = nodes_.erase(it);
      } else {
        ++it;
      }
    }
    // Edges of live nodes lead to live nodes (closure), so no shadow edge dangles.
    return r;
  }

  // Every current node address.
  std::vector<uintptr_t> node_list() const {
    std::vector<uintptr_t> v;
    v.reserve(nodes_.size());
    for (const auto& [p, s] : nodes_) v.push_back(p);
    return v;
  }

 private:
  struct Shadow {
    uint64_t id;
    std::array<uintptr_t, 2> edge;
    size_t root_index;
  };
  weakgc::Arena& arena_;
  RootBlock roots_;
  std::mt19937_64 rng_;
  std::unordered_map<uintptr_t, Shadow> nodes_;
  std::vector<Table> tables_;
  uint64_t next_id_ = 1;
  uint64_t foreign_[4] = {};
};

// A seeded random run over a World: build a graph and tables, then rounds of (mutate, collect,
// compare with the oracle). In kIncremental mode each cycle is stepped with small budgets and
// the mutator loads random weak slots between steps: during marking each load is emulated and
// its referent joins the oracle's roots (the mutator holds it); during the weak phase a load
// must never return a dead referent.
class RandomRun {
 public:
  enum Mode { kWhole, kIncremental };
  RandomRun(World& w, uint64_t seed, Mode mode) : w_(w), seed_(seed), mode_(mode) {}

  void build(size_t nodes, size_t small_tables, size_t large_tables) {
    auto& rng = w_.rng();
    add_nodes(nodes);
    std::vector<uintptr_t> pool = w_.node_list();
    for (size_t i = 0; i < small_tables + large_tables; ++i) {
      Kind kind = static_cast<Kind>(rng() % 3);
      size_t len = i < small_tables ? 1 + rng() % 300 : 2100 + rng() % 3000;
      bool grave = rng() % 3 == 0;
      w_.add_table(kind, len, pool, grave);
    }
    link_ephemeron_chains(/*free_slots_only=*/false);
  }

  void round(int r) {
    auto& rng = w_.rng();
    std::string label = "AWL_SEED=" + std::to_string(seed_) + " round " + std::to_string(r) +
                        (mode_ == kWhole ? " (whole cycle)" : " (incremental)");
    if (r > 0) mutate();
    weakgc::Arena& arena = w_.arena();
    weakgc::Stats before = arena.stats();
    std::vector<uintptr_t> held;  // referents loaded during marking
    struct WeakRead {
      size_t table, index;
      bool value;
      uintptr_t got;
    };
    std::vector<WeakRead> weak_reads;
    size_t mark_reads = 0;
    if (mode_ == kWhole) {
      arena.collect();
    } else {
      static constexpr uint64_t kBudgets[] = {20000, 60000, 200000};
      arena.start_cycle();
      while (arena.phase() != weakgc::Phase::kIdle) {
        weakgc::Phase ph = arena.phase();
        if (ph == weakgc::Phase::kMark || ph == weakgc::Phase::kWeak) {
          int n = static_cast<int>(rng() % 4);
          for (int j = 0; j < n && mark_reads < 200; ++j) {
            size_t ti = rng() % w_.tables().size();
            Table& t = w_.tables()[ti];
            size_t i = rng() % t.length();
            bool value = t.value_weak() && rng() % 2 == 0;
            uintptr_t got = load_slot(value ? t.values : t.keys, i);
            if (ph == weakgc::Phase::kMark) {
              ++mark_reads;
              uintptr_t want = value ? t.v[i] : t.k[i];
              if (got != want)
                ADD_FAILURE() << label << ": marking-phase load of table " << ti << " slot " << i
                              << " returned " << std::hex << got << ", slot holds " << want;
              if (w_.is_node(got)) held.push_back(got);
            } else {
              weak_reads.push_back({ti, i, value, got});
            }
          }
        }
        arena.step(kBudgets[rng() % 3]);
      }
    }
    // Loads in the weak phase: a dead referent never reaches the mutator.
    std::unordered_set<uintptr_t> live = w_.reachable(held);
    for (const WeakRead& wr : weak_reads) {
      const Table& t = w_.tables()[wr.table];
      uintptr_t own = wr.value ? t.v[wr.index] : t.k[wr.index];
      bool own_dead = w_.is_node(own) && live.count(own) == 0;
      bool entry_dead = w_.entry_dead(t, wr.index, live);
      bool must_delete = own_dead || (entry_dead && wr.value && t.kind == Kind::kEphemeron);
      bool ok = must_delete ? wr.got == weakgc::kDeleted
                            : (wr.got == own || (entry_dead && wr.got == weakgc::kDeleted));
      if (!ok)
        ADD_FAILURE() << label << ": weak-phase load of table " << wr.table << " ("
                      << kind_name(t.kind) << ") " << (wr.value ? "value" : "key") << " slot "
                      << wr.index << " returned " << std::hex << wr.got << ", slot held " << own
                      << (own_dead ? " (dead)" : "") << (entry_dead ? ", entry dead" : "");
    }
    World::CheckResult res = w_.check_cycle(held, label);
    weakgc::Stats after = arena.stats();
    EXPECT_EQ(after.slots_splatted - before.slots_splatted, res.newly_dead) << label;
    EXPECT_EQ(after.faults_emulated - before.faults_emulated, mark_reads) << label;
    EXPECT_EQ(after.faults_declined - before.faults_declined, 0u) << label;
    EXPECT_EQ(after.faults_budget - before.faults_budget, 0u) << label;
    EXPECT_EQ(after.cycles - before.cycles, 1u) << label;
    arena.verify();
  }

 private:
  void add_nodes(size_t n) {
    auto& rng = w_.rng();
    std::vector<uintptr_t> fresh;
    for (size_t i = 0; i < n; ++i) fresh.push_back(w_.new_node());
    std::vector<uintptr_t> all = w_.node_list();
    for (uintptr_t p : fresh) {
      for (int j = 0; j < 2; ++j)
        if (rng() % 100 < 35) w_.set_edge(p, j, all[rng() % all.size()]);
      if (rng() % 100 < 12) w_.root(p);
    }
  }

  // Fills some ephemeron slots (any slot at build time, free ones later) with fresh key/value
  // pairs chained value -> next key in random slot order, the chain's head key rooted or not:
  // keys reachable only through values, which the collector resolves only by repeating its
  // ephemeron passes to a fixpoint. Some values also refer to their own key.
  void link_ephemeron_chains(bool free_slots_only) {
    auto& rng = w_.rng();
    std::vector<std::pair<Table*, size_t>> slots;
    for (Table& t : w_.tables()) {
      if (t.kind != Kind::kEphemeron) continue;
      for (size_t i = 0; i < t.length(); ++i) {
        bool free_slot = t.k[i] == weakgc::kDeleted || t.k[i] == weakgc::kEmpty;
        if ((free_slot || !free_slots_only) && rng() % 100 < 30) slots.emplace_back(&t, i);
      }
    }
    std::shuffle(slots.begin(), slots.end(), rng);
    for (size_t j = 0; j < slots.size();) {
      size_t len = 1 + rng() % 6;
      uintptr_t prev_value = 0;
      for (size_t c = 0; c < len && j < slots.size(); ++c, ++j) {
        uintptr_t k = w_.new_node(), v = w_.new_node();
        if (c == 0 && rng() % 2 == 0) w_.root(k);
        if (c > 0) w_.set_edge(prev_value, 0, k);
        if (rng() % 4 == 0) w_.set_edge(v, 1, k);
        World::put(*slots[j].first, slots[j].second, k, v);
        prev_value = v;
      }
    }
  }

  // Between cycles (the collector is idle): roots come and go, edges move, new nodes appear,
  // and free table slots (empty or deleted) get new entries.
  void mutate() {
    auto& rng = w_.rng();
    std::vector<uintptr_t> all = w_.node_list();
    for (uintptr_t p : all) {
      uint64_t r = rng() % 100;
      if (r < 4)
        w_.unroot(p);
      else if (r < 8)
        w_.root(p);
      else if (r < 12)
        w_.set_edge(p, static_cast<int>(rng() % 2), all[rng() % all.size()]);
      else if (r < 14)
        w_.set_edge(p, static_cast<int>(rng() % 2), 0);
    }
    add_nodes(100 + rng() % 200);
    link_ephemeron_chains(/*free_slots_only=*/true);
    std::vector<uintptr_t> pool = w_.node_list();
    for (Table& t : w_.tables()) {
      for (size_t i = 0; i < t.length(); ++i) {
        bool free_slot = t.k[i] == weakgc::kDeleted || t.k[i] == weakgc::kEmpty;
        if (free_slot && rng() % 100 < 40)
          World::put(t, i, w_.random_slot_value(pool), w_.random_slot_value(pool));
      }
    }
  }

  World& w_;
  uint64_t seed_;
  Mode mode_;
};

}  // namespace awltest
