// The weakgc demo: a document-indexing service under incremental collection.
//
// Documents stream in; the service keeps the most recent ones open and drops older ones. Around
// them, the four kinds of weak structure an application or runtime typically needs:
//   - interning: every token of every document is an interned Symbol (InternSet);
//   - a memo cache: analyze(doc) -> Summary, whose Summary refers back to its Doc, in an
//     EphemeronTable (a WeakKeyTable would keep every Doc alive through its own Summary);
//   - a metadata side table Doc -> Meta (WeakKeyTable);
//   - a doubly weak "last seen in" table Symbol -> Doc: the entry goes when either the word is
//     no longer used by any live document or the document closes.
// Collection is incremental and paced by allocation (the default); lookups in the tables happen
// all the time, including while the collector is marking — when the barrier emulates single
// accesses to the weak arrays instead of scanning (and retaining) whole pages.
//
// Printed: entries live and splatted, cycles, pause quantiles (increments, flips, barrier
// faults), faults emulated vs scanned, and retention: of the cache entries whose document was
// closed before a cycle began, the share that cycle cleared.
//
//   build/release/examples/demo [documents] [--pause-ms X] [--budget N] [--no-emulation]
//   (default 100000 documents: about 10 s optimised on 2 cores; scripts/demo.sh runs it)
#include <algorithm>
#include <chrono>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <random>
#include <set>
#include <string>

#include "weakgc/intern.hpp"
#include "weakgc/tables.hpp"

namespace {

using weakgc::Ref;
using weakgc::Symbol;

// A chunk of a document's text: eight interned tokens and the next chunk.
struct Chunk : weakgc::GcObject {
  Ref<Symbol> token[8];
  Ref<Chunk> next;
  void trace(weakgc::Visitor& v) const override {
    for (const auto& t : token) v.visit(t);
    v.visit(next);
  }
};

struct Doc : weakgc::GcObject {
  uint64_t id = 0;
  Ref<Chunk> text;
  void trace(weakgc::Visitor& v) const override { v.visit(text); }
};

// The memoized analysis of a document. Refers to its document.
struct Summary : weakgc::GcObject {
  Ref<Doc> doc;
  Ref<Symbol> top_word;
  uint64_t tokens = 0;
  void trace(weakgc::Visitor& v) const override {
    v.visit(doc);
    v.visit(top_word);
  }
};

struct Meta : weakgc::GcObject {
  uint64_t reads = 0;
};

constexpr size_t kOpen = 400;         // documents kept open
constexpr int kChunks = 6;            // chunks per document: 48 tokens
constexpr uint64_t kVocab = 60000;    // distinct words in the generator's vocabulary
constexpr uint64_t kStopwords = 100;  // the most frequent words: not indexed

struct Service {
  weakgc::Arena& arena;
  weakgc::InternSet words;
  weakgc::EphemeronTable<Doc, Summary> memo;
  weakgc::WeakKeyTable<Doc, Meta> meta;
  weakgc::DoublyWeakTable<Symbol, Doc> last_seen;
  std::deque<weakgc::Root<Doc>> open;  // ring of open documents (Root handles never move)
  std::mt19937_64 rng{12345};
  uint64_t hits = 0, misses = 0, lookups_marking = 0;

  explicit Service(weakgc::Arena& a) : arena(a), words(a), memo(a), meta(a), last_seen(a) {
    for (size_t i = 0; i < kOpen; ++i) open.emplace_back(a);
  }

  // A Zipf-like word: small ranks are common, large ones rare (and die with their documents).
  std::string word(uint64_t* rank) {
    double u = std::uniform_real_distribution<double>(0.0, 1.0)(rng);
    *rank = static_cast<uint64_t>(std::pow(static_cast<double>(kVocab), u));
    return "w" + std::to_string(*rank);
  }

  Doc* ingest(uint64_t id) {
    Doc* d = weakgc::make<Doc>(arena);
    d->id = id;
    open[id % kOpen] = d;  // opens it; the document it replaces is closed (dropped)
    for (int c = 0; c < kChunks; ++c) {
      Chunk* ch = weakgc::make<Chunk>(arena);
      ch->next = d->text.get();
      d->text = ch;
      for (auto& t : ch->token) {
        uint64_t rank;
        Symbol* s = words.intern(word(&rank));
        t = s;
        if (rank >= kStopwords) last_seen.put(s, d);  // an index skips its stopwords
      }
    }
    return d;
  }

  Summary* analyze(Doc* d) {
    if (arena.phase() == weakgc::Phase::kMark) ++lookups_marking;
    if (Summary* s = memo.get(d)) {
      ++hits;
      return s;
    }
    ++misses;
    Summary* s = weakgc::make<Summary>(arena);
    s->doc = d;
    for (Chunk* c = d->text.get(); c != nullptr; c = c->next.get()) {
      s->tokens += 8;
      if (!s->top_word) s->top_word = c->token[0].get();
    }
    memo.put(d, s);
    return s;
  }

  void touch(Doc* d) {
    Meta* m = meta.get(d);
    if (m == nullptr) {
      m = weakgc::make<Meta>(arena);
      meta.put(d, m);
    }
    ++m->reads;
  }
};

// Retention bookkeeping: which memoized documents are not yet known to be gone, by id.
struct Retention {
  std::set<uint64_t> memoized;  // ids with a memo entry that may still be present
  uint64_t flip_limit = 0;      // documents with id < flip_limit were closed before the flip
  uint64_t dead_at_flip = 0;
  uint64_t dead_total = 0, cleared_total = 0, cycles_measured = 0;
  bool armed = false;
};

double us(uint64_t ns) {
  return static_cast<double>(ns) / 1000.0;
}

void print_pauses(const char* name, const weakgc::PauseHistogram& h) {
  std::printf("  %-16s %9" PRIu64 " %10.1f %10.1f %10.1f %10.1f\n", name, h.count,
              us(h.quantile_ns(0.5)), us(h.quantile_ns(0.99)), us(h.max_ns),
              h.count ? us(h.total_ns) / 1000.0 : 0.0);
}

}  // namespace

int main(int argc, char** argv) {
  // demo [documents] [--pause-ms X] [--budget N] [--no-emulation]
  uint64_t documents = 100000;
  weakgc::ArenaOptions options;  // incremental, allocation-paced, pause target 1 ms
  options.trigger_bytes = 4 << 20;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--pause-ms" && i + 1 < argc) {
      options.pause_target_ms = std::atof(argv[++i]);
    } else if (a == "--budget" && i + 1 < argc) {
      options.single_access_budget = static_cast<uint32_t>(std::atoi(argv[++i]));
    } else if (a == "--no-emulation") {
      options.emulation = false;
    } else if (!a.empty() && a[0] != '-') {
      documents = std::strtoull(a.c_str(), nullptr, 10);
    } else {
      std::fprintf(stderr,
                   "usage: demo [documents] [--pause-ms X] [--budget N] [--no-emulation]\n");
      return 2;
    }
  }
  weakgc::Arena arena(options);
  Service svc(arena);
  Retention ret;
  auto t0 = std::chrono::steady_clock::now();

  std::printf("weakgc demo: %" PRIu64
              " documents, %zu open at a time, %d tokens each\n"
              "collection: %s, paced by allocation; pause target %.2f ms; single-access "
              "emulation %s (budget %s per weak page per cycle)\n\n",
              documents, kOpen, kChunks * 8, arena.incremental() ? "incremental" : "stop-the-world",
              options.pause_target_ms == 0 ? 1.0 : options.pause_target_ms,
              options.emulation ? "on" : "off",
              options.single_access_budget == 0
                  ? "256"
                  : std::to_string(options.single_access_budget).c_str());
  std::printf("%8s %6s | %7s %8s | %8s %8s | %7s %7s | %6s | %9s %9s\n", "docs", "cycles", "memo",
              "splatted", "symbols", "created", "meta", "seen", "p99 us", "emulated", "scanned");

  weakgc::Phase last_phase = arena.phase();
  uint64_t last_cycles = 0;
  for (uint64_t id = 0; id < documents; ++id) {
    svc.ingest(id);
    // Work on a few open documents: mostly memo hits, some misses (new or re-opened ones).
    for (int k = 0; k < 6; ++k) {
      Doc* d = svc.open[svc.rng() % kOpen].get();
      if (d == nullptr) continue;
      svc.analyze(d);
      svc.touch(d);
      ret.memoized.insert(d->id);
    }

    // Watch the collector's phase to measure retention per cycle.
    weakgc::Phase ph = arena.phase();
    uint64_t cycles = arena.stats().cycles;
    if (last_phase == weakgc::Phase::kIdle && ph != weakgc::Phase::kIdle) {
      // A flip happened during this document: every document closed before it started is dead
      // (the one this document replaced may still have been open at the flip).
      ret.flip_limit = id >= kOpen ? id - kOpen : 0;
      ret.dead_at_flip = static_cast<uint64_t>(
          std::distance(ret.memoized.begin(), ret.memoized.lower_bound(ret.flip_limit)));
      ret.armed = cycles == last_cycles;
    }
    if (cycles != last_cycles && ph == weakgc::Phase::kIdle) {
      if (ret.armed && cycles == last_cycles + 1) {
        std::set<uint64_t> present;
        svc.memo.for_each([&](Doc* d, Summary*) { present.insert(d->id); });
        uint64_t cleared = 0;
        for (auto it = ret.memoized.begin(); it != ret.memoized.end() && *it < ret.flip_limit;) {
          if (present.count(*it) == 0) {
            ++cleared;
            it = ret.memoized.erase(it);
          } else {
            ++it;
          }
        }
        ret.dead_total += ret.dead_at_flip;
        ret.cleared_total += std::min(cleared, ret.dead_at_flip);
        ++ret.cycles_measured;
      }
      ret.armed = false;
      last_cycles = cycles;
    }
    last_phase = ph;

    if ((id + 1) % (documents / 12 == 0 ? 1 : documents / 12) == 0) {
      weakgc::Stats s = arena.stats();
      std::printf("%8" PRIu64 " %6" PRIu64 " | %7zu %8" PRIu64 " | %8zu %8" PRIu64
                  " | %7zu %7zu | %6.0f | %9" PRIu64 " %9" PRIu64 "\n",
                  id + 1, s.cycles, svc.memo.size(), svc.memo.stats().splats_noticed,
                  svc.words.size(), svc.words.symbols_created(), svc.meta.size(),
                  svc.last_seen.size(), us(s.increment_pauses.quantile_ns(0.99)), s.faults_emulated,
                  s.faults_scanned + s.faults_declined + s.faults_budget);
    }
  }
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  weakgc::Stats s = arena.stats();

  std::printf("\nwork: %" PRIu64 " documents in %.1f s; memo hits %" PRIu64 ", misses %" PRIu64
              " (%" PRIu64 " lookups while the collector was marking)\n",
              documents, secs, svc.hits, svc.misses, svc.lookups_marking);
  std::printf("collector: %" PRIu64 " cycles (%" PRIu64 " full), %" PRIu64
              " increments, %.1f MiB allocated, %.1f MiB committed now\n",
              s.cycles, s.full_collections, s.increments,
              static_cast<double>(s.bytes_allocated) / (1 << 20),
              static_cast<double>(s.committed_bytes) / (1 << 20));
  std::printf("weak slots splatted by the collector: %" PRIu64 "\n\n", s.slots_splatted);
  std::printf("  %-16s %9s %10s %10s %10s %10s\n", "pauses (us)", "count", "p50", "p99", "max",
              "total ms");
  print_pauses("increments", s.increment_pauses);
  print_pauses("flips", s.flip_pauses);
  print_pauses("barrier faults", s.fault_pauses);
  print_pauses("full collections", s.full_pauses);
  std::printf(
      "\nbarrier faults: %" PRIu64 " emulated (single access, page stays protected), %" PRIu64
      " page scans, %" PRIu64 " declined, %" PRIu64 " over budget, %" PRIu64 " in the weak phase\n",
      s.faults_emulated, s.faults_scanned, s.faults_declined, s.faults_budget, s.faults_weak_phase);
  if (ret.dead_total > 0) {
    std::printf(
        "retention: of %" PRIu64
        " memo entries whose document was closed before a cycle "
        "began, %" PRIu64 " (%.2f%%) were cleared by that cycle (%" PRIu64 " cycles)\n",
        ret.dead_total, ret.cleared_total,
        100.0 * static_cast<double>(ret.cleared_total) / static_cast<double>(ret.dead_total),
        ret.cycles_measured);
  }
  return 0;
}
