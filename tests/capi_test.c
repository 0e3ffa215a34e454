/* End-to-end test of the C interface (include/weakgc/weakgc.h), compiled as C99.
 *
 * The collector's answers are checked against the test's own oracle: a shadow copy of the object
 * graph (indices, in malloc'd memory the collector never sees) from which reachability is
 * computed by a plain graph search. A weak array names every object, so "the collector freed
 * exactly the unreachable objects" reads as "exactly the oracle's unreachable slots were
 * splatted". The arena is created with WEAKGC_KEY_REGISTER_THREAD = 0 so that no stack is scanned
 * ambiguously and the oracle is exact; objects are built in noinline functions so that no stale
 * pointer is left in the driver's callee-saved registers.
 *
 * Seeded: WEAKGC_TEST_SEED=<n> reproduces a run; the seed is printed on failure. Not a benchmark.
 */
#define _DEFAULT_SOURCE 1 /* mkstemp, setenv */
#include <errno.h>
#include <math.h> /* NAN, INFINITY */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "weakgc/weakgc.h"

static unsigned long long g_seed;
static int g_checks;

#define CHECK(cond)                                                                             \
  do {                                                                                          \
    ++g_checks;                                                                                 \
    if (!(cond)) {                                                                              \
      fprintf(stderr, "capi_test: %s:%d: CHECK(%s) failed (WEAKGC_TEST_SEED=%llu)\n", __FILE__, \
              __LINE__, #cond, g_seed);                                                         \
      exit(1);                                                                                  \
    }                                                                                           \
  } while (0)
#define CHECK_RES(expr, want)                                                           \
  do {                                                                                  \
    weakgc_res_t r_ = (expr);                                                           \
    if (r_ != (want))                                                                   \
      fprintf(stderr, "capi_test: %s gave %s, wanted %s\n", #expr, weakgc_res_name(r_), \
              weakgc_res_name(want));                                                   \
    CHECK(r_ == (want));                                                                \
  } while (0)
#define NOINLINE __attribute__((noinline))

static uint64_t g_rng;
static uint64_t rnd(void) { /* xorshift64* */
  g_rng ^= g_rng >> 12;
  g_rng ^= g_rng << 25;
  g_rng ^= g_rng >> 27;
  return g_rng * 2685821657736338717ULL;
}
static size_t rnd_below(size_t n) {
  return (size_t)(rnd() % n);
}

/* ----------------------------------------------------------------------------- client objects */

enum { kRefs = 4, kNodes = 3000, kRoots = 24 };
#define TAG(id) (0x5eed000000000000ULL ^ ((uint64_t)(id)*0x9e3779b97f4a7c15ULL))

typedef struct node {
  uint64_t id;
  uint64_t tag;
  struct node* ref[kRefs];
} node;

static int g_scans; /* scan calls (only counted; the scanner must not do more) */

static void scan_node(weakgc_ss_t ss, void* obj, size_t size, void* closure) {
  node* n = (node*)obj;
  int k;
  (void)size;
  CHECK(closure == (void*)&g_scans); /* the format's closure is passed through */
  ++g_scans;
  for (k = 0; k < kRefs; ++k) weakgc_fix(ss, (void**)&n->ref[k]);
}

/* ------------------------------------------------------------------------------------ oracle */

static int g_adj[kNodes][kRefs]; /* target id or -1 */
static int g_root_ids[kRoots];   /* id named by root slot r, or -1 */

static void oracle_reach(char* out) {
  static int stack[kNodes];
  int sp = 0, r, k;
  memset(out, 0, kNodes);
  for (r = 0; r < kRoots; ++r)
    if (g_root_ids[r] >= 0 && !out[g_root_ids[r]]) {
      out[g_root_ids[r]] = 1;
      stack[sp++] = g_root_ids[r];
    }
  while (sp > 0) {
    int v = stack[--sp];
    for (k = 0; k < kRefs; ++k) {
      int t = g_adj[v][k];
      if (t >= 0 && !out[t]) {
        out[t] = 1;
        stack[sp++] = t;
      }
    }
  }
}

/* ---------------------------------------------------------------------------- the graph test */

static weakgc_arena_t g_arena;
static weakgc_pool_t g_ams, g_lo;
static node* g_roots[kRoots];           /* registered exact root */
static weakgc_weak_array_s* g_wroot[1]; /* registered exact root: the weak array of all nodes */

/* Builds kNodes nodes with random edges; every node in weak slot id; roots name random nodes. */
static NOINLINE void build_graph(void) {
  static node* tmp[kNodes];
  int i, k, r;
  weakgc_weak_array_s* w = NULL;
  CHECK_RES(weakgc_weak_array_alloc(&w, g_arena, kNodes, WEAKGC_RANK_WEAK, NULL), WEAKGC_RES_OK);
  CHECK(w->length == kNodes && w->dependent == NULL && w->splatted == 0);
  g_wroot[0] = w;
  for (i = 0; i < kNodes; ++i) {
    void* p = NULL;
    CHECK_RES(weakgc_alloc(&p, g_ams, sizeof(node)), WEAKGC_RES_OK);
    CHECK(weakgc_object_base(g_arena, (char*)p + 8) == p); /* interior address -> base */
    CHECK(weakgc_object_size(g_arena, p) >= sizeof(node));
    tmp[i] = (node*)p;
    tmp[i]->id = (uint64_t)i;
    tmp[i]->tag = TAG(i);
    w->slot[i] = (uintptr_t)p;
  }
  /* Sparse random edges (mostly towards higher ids, so plenty is unreachable). */
  for (i = 0; i < kNodes; ++i)
    for (k = 0; k < kRefs; ++k) {
      int t = -1;
      if (rnd_below(3) == 0) t = (int)rnd_below(kNodes);
      g_adj[i][k] = t;
      tmp[i]->ref[k] = t >= 0 ? tmp[t] : NULL;
    }
  for (r = 0; r < kRoots; ++r) {
    g_root_ids[r] = (int)rnd_below(kNodes);
    g_roots[r] = tmp[g_root_ids[r]];
  }
  memset(tmp, 0, sizeof tmp);
}

/* After a complete cycle: reachable nodes intact; with `exact`, unreachable ones splatted too.
 * `must_die` (may be NULL) names nodes that must be splatted whatever `exact` says. */
static void check_graph(const char* live, int exact, const char* must_die) {
  weakgc_weak_array_s* w = g_wroot[0];
  int i, k;
  for (i = 0; i < kNodes; ++i) {
    uintptr_t s = w->slot[i];
    if (live[i]) {
      node* n = (node*)s;
      CHECK(s != WEAKGC_SLOT_DELETED);
      CHECK(n->id == (uint64_t)i && n->tag == TAG(i));
      CHECK(weakgc_object_base(g_arena, n) == n);
      for (k = 0; k < kRefs; ++k) {
        int t = g_adj[i][k];
        CHECK(t < 0 ? n->ref[k] == NULL : (n->ref[k] != NULL && n->ref[k]->id == (uint64_t)t));
      }
    } else if (exact || (must_die != NULL && must_die[i])) {
      CHECK(s == WEAKGC_SLOT_DELETED);
    }
  }
}

static size_t count_dead(const char* live) {
  size_t n = 0;
  int i;
  for (i = 0; i < kNodes; ++i) n += !live[i];
  return n;
}

/* During marking: walks from roots (every load goes through the barrier) and rewires edges
 * a->ref[j] = b->ref[k] among reachable nodes, keeping the oracle in step. */
static NOINLINE void mutate_while_marking(int mutations) {
  int m;
  for (m = 0; m < mutations; ++m) {
    node* ab[2];
    int e;
    for (e = 0; e < 2; ++e) {
      int r = (int)rnd_below(kRoots), depth = (int)rnd_below(5);
      node* n = g_roots[r];
      while (n != NULL && depth-- > 0) {
        node* next = n->ref[rnd_below(kRefs)];
        if (next == NULL) break;
        n = next;
      }
      ab[e] = n;
    }
    if (ab[0] == NULL || ab[1] == NULL) continue;
    {
      int j = (int)rnd_below(kRefs), k = (int)rnd_below(kRefs);
      node* v = ab[1]->ref[k];
      ab[0]->ref[j] = v;
      g_adj[ab[0]->id][j] = g_adj[ab[1]->id][k];
    }
    if (rnd_below(8) == 0) { /* drop a root now and then */
      int r = (int)rnd_below(kRoots);
      g_roots[r] = NULL;
      g_root_ids[r] = -1;
    }
  }
}

static void test_graph(void) {
  static char live0[kNodes], live1[kNodes];
  weakgc_stats_s before, after;
  weakgc_root_t roots_id = 0, wroot_id = 0, dup = 0;
  int r, steps = 0;

  CHECK_RES(weakgc_root_register(&roots_id, g_arena, (void**)g_roots, kRoots), WEAKGC_RES_OK);
  CHECK_RES(weakgc_root_register(&wroot_id, g_arena, (void**)g_wroot, 1), WEAKGC_RES_OK);
  CHECK(roots_id != 0 && wroot_id != 0 && roots_id != wroot_id);
  CHECK_RES(weakgc_root_register(&dup, g_arena, (void**)g_roots, kRoots), WEAKGC_RES_ALREADY);
  build_graph();

  /* 1. A full collection frees exactly the unreachable nodes. */
  oracle_reach(live0);
  CHECK(count_dead(live0) > 0 && count_dead(live0) < kNodes); /* the seed made a real test */
  CHECK_RES(weakgc_arena_stats(g_arena, &before), WEAKGC_RES_OK);
  weakgc_arena_collect(g_arena);
  CHECK_RES(weakgc_arena_stats(g_arena, &after), WEAKGC_RES_OK);
  CHECK(after.cycles == before.cycles + 1 && after.full_collections == before.full_collections + 1);
  CHECK(after.slots_splatted - before.slots_splatted == count_dead(live0));
  CHECK(g_wroot[0]->splatted == count_dead(live0));
  CHECK(g_scans > 0);
  check_graph(live0, 1, NULL);

  /* 2. Drop half the roots; an incremental cycle driven by steps frees exactly the rest. */
  for (r = 0; r < kRoots; r += 2) {
    g_roots[r] = NULL;
    g_root_ids[r] = -1;
  }
  oracle_reach(live1);
  weakgc_arena_start_collect(g_arena);
  CHECK(weakgc_arena_phase(g_arena) == WEAKGC_PHASE_MARK);
  while (weakgc_arena_step(g_arena, 50000)) ++steps;
  CHECK(weakgc_arena_phase(g_arena) == WEAKGC_PHASE_IDLE);
  check_graph(live1, 1, NULL);

  /* 3. Mutation during marking (black mutator behind the read barrier): everything reachable at
   * the end survives; everything unreachable at the flip dies; the rest may float. */
  oracle_reach(live0);
  weakgc_arena_start_collect(g_arena);
  (void)weakgc_arena_step(g_arena, 20000);
  mutate_while_marking(400);
  while (weakgc_arena_step(g_arena, 50000)) ++steps;
  oracle_reach(live1);
  {
    static char dead0[kNodes];
    int i;
    for (i = 0; i < kNodes; ++i) dead0[i] = !live0[i];
    check_graph(live1, 0, dead0);
  }
  /* A second cycle collects the floating garbage exactly. */
  weakgc_arena_collect(g_arena);
  check_graph(live1, 1, NULL);

  CHECK_RES(weakgc_root_remove(g_arena, roots_id), WEAKGC_RES_OK);
  CHECK_RES(weakgc_root_remove(g_arena, roots_id), WEAKGC_RES_NOT_FOUND);
  (void)wroot_id; /* the weak array stays rooted for the event-log test */
}

/* ------------------------------------------------------------ dependents and the graveyard */

enum { kPairs = 300 };
static void** g_pair_roots;           /* malloc'd: key i at [i], value i at [kPairs + i] */
static weakgc_weak_array_s* g_kvg[3]; /* keys, values, graveyard (rooted) */

/* Entry i's halves: a node key (id i, tag TAG(i)) and a 32-byte leaf value starting with TAG(i). */
static void make_pair_halves(int i, void** key, void** val) {
  CHECK_RES(weakgc_alloc(key, g_ams, sizeof(node)), WEAKGC_RES_OK);
  CHECK_RES(weakgc_alloc(val, g_lo, 32), WEAKGC_RES_OK);
  ((node*)*key)->id = (uint64_t)i;
  ((node*)*key)->tag = TAG(i);
  ((uint64_t*)*val)[0] = TAG(i);
}

static NOINLINE void build_pairs(void) {
  weakgc_weak_array_s *k = NULL, *v = NULL, *g = NULL;
  int i;
  CHECK_RES(weakgc_weak_array_alloc(&k, g_arena, kPairs, WEAKGC_RANK_WEAK, NULL), WEAKGC_RES_OK);
  CHECK_RES(weakgc_weak_array_alloc(&v, g_arena, kPairs, WEAKGC_RANK_WEAK, k), WEAKGC_RES_OK);
  CHECK_RES(weakgc_weak_array_alloc(&g, g_arena, kPairs, WEAKGC_RANK_EXACT, NULL), WEAKGC_RES_OK);
  CHECK_RES(weakgc_weak_array_link(g_arena, k, v), WEAKGC_RES_OK);
  CHECK(k->dependent == v && v->dependent == k);
  /* A weak-rank graveyard or one of another length is refused. */
  CHECK_RES(weakgc_weak_array_set_graveyard(g_arena, k, v), WEAKGC_RES_BAD_PARAM);
  CHECK_RES(weakgc_weak_array_set_graveyard(g_arena, k, g_wroot[0]), WEAKGC_RES_BAD_PARAM);
  CHECK_RES(weakgc_weak_array_set_graveyard(g_arena, k, g), WEAKGC_RES_OK);
  CHECK(k->graveyard == g);
  g_kvg[0] = k;
  g_kvg[1] = v;
  g_kvg[2] = g;
  for (i = 0; i < kPairs; ++i) {
    void *key = NULL, *val = NULL;
    make_pair_halves(i, &key, &val);
    k->slot[i] = (uintptr_t)key;
    v->slot[i] = (uintptr_t)val;
    /* i % 3 == 0: both halves rooted; 1: only the value; 2: only the key. */
    g_pair_roots[i] = i % 3 != 1 ? key : NULL;
    g_pair_roots[kPairs + i] = i % 3 != 2 ? val : NULL;
  }
}

static void test_dependents(void) {
  weakgc_root_t r1 = 0, r2 = 0;
  int i;
  g_pair_roots = (void**)calloc(2 * kPairs, sizeof(void*));
  CHECK(g_pair_roots != NULL);
  CHECK_RES(weakgc_root_register(&r1, g_arena, g_pair_roots, 2 * kPairs), WEAKGC_RES_OK);
  CHECK_RES(weakgc_root_register(&r2, g_arena, (void**)g_kvg, 3), WEAKGC_RES_OK);
  build_pairs();
  weakgc_arena_collect(g_arena);
  for (i = 0; i < kPairs; ++i) {
    uintptr_t k = g_kvg[0]->slot[i], v = g_kvg[1]->slot[i], g = g_kvg[2]->slot[i];
    if (i % 3 == 0) {
      CHECK(k == (uintptr_t)g_pair_roots[i] && v == (uintptr_t)g_pair_roots[kPairs + i]);
      CHECK(g == WEAKGC_SLOT_EMPTY);
    } else if (i % 3 == 1) { /* key died: both slots splatted, the live value buried */
      CHECK(k == WEAKGC_SLOT_DELETED && v == WEAKGC_SLOT_DELETED);
      CHECK(g == (uintptr_t)g_pair_roots[kPairs + i]);
      CHECK(((uint64_t*)g)[0] == TAG(i));
    } else { /* value died: both slots splatted; the values array has no graveyard */
      CHECK(k == WEAKGC_SLOT_DELETED && v == WEAKGC_SLOT_DELETED);
      CHECK(g == WEAKGC_SLOT_EMPTY);
    }
  }
  CHECK(g_kvg[0]->splatted + g_kvg[1]->splatted == (uint64_t)(kPairs - (kPairs + 2) / 3));
  CHECK_RES(weakgc_root_remove(g_arena, r1), WEAKGC_RES_OK);
  CHECK_RES(weakgc_root_remove(g_arena, r2), WEAKGC_RES_OK);
  free(g_pair_roots);
}

/* ------------------------------------------------------------------- weak tables, intern set */

enum { kEntries = 240 };
static void** g_table_roots;   /* malloc'd: key i at [i] if rooted, value i at [kEntries + i] */
static node* g_keys[kEntries]; /* not scanned: only read back for entries the oracle keeps */

static int key_rooted(int i) {
  return i % 4 == 0 || i % 4 == 1;
}
static int value_rooted(int i) {
  return i % 4 == 0 || i % 4 == 2;
}
static int value_refers_to_key(int i) {
  return i % 8 < 4;
}

/* The oracle: whether entry i survives a collection in a table of `kind`, and whether its key and
 * value are alive (with no other references than the roots and value -> key). */
static int key_alive(int kind, int i) {
  int kr = key_rooted(i), vr = value_rooted(i), vk = value_refers_to_key(i);
  switch (kind) {
    case WEAKGC_TABLE_WEAK_KEY:
      return kr || vk; /* the table holds the value strongly */
    case WEAKGC_TABLE_WEAK_VALUE:
      return 1; /* keys are strong while the entry lives */
    default:
      return kr || (vr && vk); /* ephemeron, doubly weak */
  }
}
static int entry_survives(int kind, int i) {
  switch (kind) {
    case WEAKGC_TABLE_WEAK_KEY:
      return key_alive(kind, i);
    case WEAKGC_TABLE_WEAK_VALUE:
      return value_rooted(i);
    case WEAKGC_TABLE_EPHEMERON:
      return key_alive(kind, i);
    default:
      return value_rooted(i) && key_alive(kind, i);
  }
}

static NOINLINE void fill_table(weakgc_table_t t) {
  int i;
  for (i = 0; i < kEntries; ++i) {
    void *k = NULL, *v = NULL, *old = (void*)1;
    CHECK_RES(weakgc_alloc(&k, g_ams, sizeof(node)), WEAKGC_RES_OK);
    CHECK_RES(weakgc_alloc(&v, g_ams, sizeof(node)), WEAKGC_RES_OK);
    ((node*)k)->id = (uint64_t)i;
    ((node*)v)->id = (uint64_t)(kEntries + i);
    if (value_refers_to_key(i)) ((node*)v)->ref[0] = (node*)k;
    CHECK_RES(weakgc_table_put(t, k, v, &old), WEAKGC_RES_OK);
    CHECK(old == NULL);
    g_keys[i] = (node*)k;
    g_table_roots[i] = key_rooted(i) ? k : NULL;
    g_table_roots[kEntries + i] = value_rooted(i) ? v : NULL;
  }
  CHECK(weakgc_table_size(t) == kEntries);
  CHECK(weakgc_table_get(t, g_keys[7]) != NULL && weakgc_table_contains(t, g_keys[7]));
  CHECK_RES(weakgc_table_put(t, g_keys[7], NULL, NULL), WEAKGC_RES_BAD_PARAM);
}

static void test_table_kind(weakgc_table_kind_t kind) {
  weakgc_table_t t = NULL;
  weakgc_table_cursor_s c = WEAKGC_TABLE_CURSOR_INIT;
  weakgc_table_stats_s ts;
  static char seen[kEntries];
  void *k, *v;
  size_t expected = 0, notes = 0, expected_notes = 0;
  int i;
  weakgc_arg_s args[] = {weakgc_arg_size(WEAKGC_KEY_TABLE_CAPACITY, 64), WEAKGC_ARG_END};
  CHECK_RES(weakgc_table_create(&t, g_arena, kind, args), WEAKGC_RES_OK);
  CHECK(weakgc_table_kind(t) == kind);
  if (kind == WEAKGC_TABLE_DOUBLY_WEAK)
    CHECK_RES(weakgc_table_enable_notification(t), WEAKGC_RES_OK);
  fill_table(t);
  weakgc_arena_collect(g_arena);
  for (i = 0; i < kEntries; ++i) {
    expected += entry_survives(kind, i);
    if (kind == WEAKGC_TABLE_DOUBLY_WEAK && !entry_survives(kind, i))
      expected_notes += key_alive(kind, i) != value_rooted(i); /* exactly one half survived */
  }
  CHECK(weakgc_table_size(t) == expected);
  memset(seen, 0, sizeof seen);
  while (weakgc_table_next(t, &c, &k, &v)) { /* exactly the oracle's entries, intact */
    uint64_t id = ((node*)k)->id;
    CHECK(id < kEntries && !seen[id] && entry_survives(kind, (int)id));
    seen[id] = 1;
    CHECK(((node*)v)->id == kEntries + id);
    CHECK(weakgc_table_get(t, k) == v);
  }
  for (i = 0; i < kEntries; ++i) CHECK(seen[i] == entry_survives(kind, i));
  while (weakgc_table_take_dead(t, &k, &v)) {
    CHECK((k == NULL) != (v == NULL));
    if (k != NULL) CHECK(((node*)k)->id < kEntries && !value_rooted((int)((node*)k)->id));
    if (v != NULL) CHECK(!key_alive(kind, (int)(((node*)v)->id - kEntries)));
    ++notes;
  }
  CHECK(notes == expected_notes);
  CHECK_RES(weakgc_table_stats(t, &ts), WEAKGC_RES_OK);
  CHECK(ts.capacity >= expected && ts.generations >= 1);
  /* remove and clear */
  c.gen = c.slot = 0;
  if (weakgc_table_next(t, &c, &k, &v)) {
    CHECK(weakgc_table_remove(t, k) == v);
    CHECK(!weakgc_table_contains(t, k) && weakgc_table_get(t, k) == NULL);
  }
  weakgc_table_clear(t);
  CHECK(weakgc_table_size(t) == 0);
  weakgc_table_destroy(t);
}

static uint64_t name_hash(const void* key, void* closure) {
  CHECK(closure == (void*)&g_checks);
  return ((const node*)key)->tag;
}
static int name_eq(const void* stored, const void* probe, void* closure) {
  (void)closure;
  return ((const node*)stored)->tag == ((const node*)probe)->tag;
}
static int tag_eq(const void* stored, const void* probe, void* closure) {
  (void)closure;
  return ((const node*)stored)->tag == *(const uint64_t*)probe;
}

static void test_content_table(void) {
  weakgc_table_t t = NULL;
  weakgc_arg_s half[] = {weakgc_arg_hash(WEAKGC_KEY_TABLE_HASH, name_hash), WEAKGC_ARG_END};
  weakgc_arg_s args[] = {weakgc_arg_hash(WEAKGC_KEY_TABLE_HASH, name_hash),
                         weakgc_arg_eq(WEAKGC_KEY_TABLE_EQ, name_eq),
                         weakgc_arg_pointer(WEAKGC_KEY_TABLE_CLOSURE, &g_checks), WEAKGC_ARG_END};
  void *a = NULL, *b = NULL, *v = NULL, *old = NULL, *found_v = NULL;
  uint64_t tag = TAG(3);
  void* keep[4] = {NULL, NULL, NULL, NULL};
  weakgc_root_t id;
  CHECK_RES(weakgc_table_create(&t, g_arena, WEAKGC_TABLE_WEAK_SET, half), WEAKGC_RES_BAD_PARAM);
  CHECK_RES(weakgc_table_create(&t, g_arena, (weakgc_table_kind_t)9, NULL), WEAKGC_RES_BAD_PARAM);
  CHECK_RES(weakgc_table_create(&t, g_arena, WEAKGC_TABLE_WEAK_KEY, args), WEAKGC_RES_OK);
  CHECK_RES(weakgc_root_register(&id, g_arena, keep, 4), WEAKGC_RES_OK);
  CHECK_RES(weakgc_alloc(&a, g_ams, sizeof(node)), WEAKGC_RES_OK);
  CHECK_RES(weakgc_alloc(&b, g_ams, sizeof(node)), WEAKGC_RES_OK);
  CHECK_RES(weakgc_alloc(&v, g_lo, 32), WEAKGC_RES_OK);
  keep[0] = a;
  keep[1] = b;
  keep[2] = v;
  ((node*)a)->tag = ((node*)b)->tag = tag; /* two objects, one content */
  CHECK_RES(weakgc_table_put(t, a, v, &old), WEAKGC_RES_OK);
  CHECK(old == NULL);
  CHECK(weakgc_table_get(t, b) == v); /* found by content */
  CHECK(weakgc_table_find_by(t, tag, &tag, tag_eq, NULL, &found_v) == a && found_v == v);
  CHECK(weakgc_table_find_by(t, tag + 1, &tag, tag_eq, NULL, NULL) == NULL);
  {
    void* c = NULL;
    CHECK_RES(weakgc_alloc(&c, g_ams, sizeof(node)), WEAKGC_RES_OK);
    keep[3] = c;
    ((node*)c)->tag = TAG(4);
    CHECK(weakgc_table_find_by(t, TAG(4), &((node*)c)->tag, tag_eq, NULL, NULL) == NULL);
    CHECK_RES(weakgc_table_put_new(t, TAG(4), c, v), WEAKGC_RES_OK);
    CHECK(weakgc_table_get(t, c) == v && weakgc_table_size(t) == 2);
  }
  weakgc_arena_collect(g_arena); /* all rooted: both entries stay */
  CHECK(weakgc_table_size(t) == 2 && weakgc_table_get(t, b) == v);
  weakgc_table_destroy(t);
  CHECK_RES(weakgc_root_remove(g_arena, id), WEAKGC_RES_OK);
}

static NOINLINE void intern_garbage(weakgc_intern_set_t set) {
  weakgc_symbol_s* s = NULL;
  CHECK_RES(weakgc_intern(set, "beta\0x", 6, &s), WEAKGC_RES_OK);
  CHECK(s->length == 6 && memcmp(s->bytes, "beta\0x", 7) == 0);
}

static void test_intern(void) {
  weakgc_intern_set_t set = NULL;
  weakgc_symbol_s *a = NULL, *again = NULL, *it = NULL;
  weakgc_table_cursor_s c = WEAKGC_TABLE_CURSOR_INIT;
  void* keep[1] = {NULL};
  weakgc_root_t id;
  int n = 0;
  CHECK_RES(weakgc_intern_set_create(&set, g_arena, 0), WEAKGC_RES_OK);
  CHECK_RES(weakgc_root_register(&id, g_arena, keep, 1), WEAKGC_RES_OK);
  CHECK_RES(weakgc_intern(set, "alpha", 5, &a), WEAKGC_RES_OK);
  keep[0] = a;
  CHECK(a->length == 5 && strcmp(a->bytes, "alpha") == 0 &&
        a->hash == weakgc_intern_hash("alpha", 5));
  CHECK_RES(weakgc_intern(set, "alpha", 5, &again), WEAKGC_RES_OK);
  CHECK(again == a && weakgc_intern_find(set, "alpha", 5) == a);
  CHECK(weakgc_intern_find(set, "alph", 4) == NULL);
  CHECK_RES(weakgc_intern(set, NULL, 3, &again), WEAKGC_RES_BAD_PARAM);
  intern_garbage(set);
  CHECK(weakgc_intern_symbols_created(set) == 2 && weakgc_intern_set_size(set) == 2);
  weakgc_arena_collect(g_arena);
  CHECK(weakgc_intern_find(set, "beta\0x", 6) == NULL); /* nothing referred to it: it died */
  CHECK(weakgc_intern_find(set, "alpha", 5) == a);
  CHECK(weakgc_intern_set_size(set) == 1);
  while (weakgc_intern_set_next(set, &c, &it)) {
    CHECK(it == a);
    ++n;
  }
  CHECK(n == 1);
  intern_garbage(set); /* a new symbol for the name whose old one died */
  CHECK(weakgc_intern_symbols_created(set) == 3);
  weakgc_intern_set_destroy(set);
  CHECK_RES(weakgc_root_remove(g_arena, id), WEAKGC_RES_OK);
}

static void test_tables(void) {
  weakgc_root_t id;
  g_table_roots = (void**)calloc(2 * kEntries, sizeof(void*));
  CHECK(g_table_roots != NULL);
  CHECK_RES(weakgc_root_register(&id, g_arena, g_table_roots, 2 * kEntries), WEAKGC_RES_OK);
  test_table_kind(WEAKGC_TABLE_WEAK_KEY);
  test_table_kind(WEAKGC_TABLE_WEAK_VALUE);
  test_table_kind(WEAKGC_TABLE_DOUBLY_WEAK);
  test_table_kind(WEAKGC_TABLE_EPHEMERON);
  CHECK_RES(weakgc_root_remove(g_arena, id), WEAKGC_RES_OK);
  free(g_table_roots);
  test_content_table();
  test_intern();
}

/* --------------------------------------------------------------------------- guarded arrays */

enum { kGuarded = 20000 };               /* 157 KiB of slots: left pending at the flip */
static weakgc_weak_array_s* g_gwatch[1]; /* registered exact root: a weak array of every object */

/* Leaf objects tagged with their index, each in slot i of the array and of the weak watch. */
static NOINLINE void fill_guarded(weakgc_guarded_array_t a) {
  size_t i;
  CHECK_RES(weakgc_weak_array_alloc(&g_gwatch[0], g_arena, kGuarded, WEAKGC_RANK_WEAK, NULL),
            WEAKGC_RES_OK);
  for (i = 0; i < kGuarded; ++i) {
    uint64_t* o = NULL;
    CHECK_RES(weakgc_alloc((void**)&o, g_lo, 16), WEAKGC_RES_OK);
    o[0] = TAG(i);
    CHECK_RES(weakgc_guarded_array_set(a, i, o), WEAKGC_RES_OK);
    g_gwatch[0]->slot[i] = (uintptr_t)o;
  }
}

/* During marking: every third slot is dropped, and a sample of the others read back. */
static NOINLINE void mutate_guarded(weakgc_guarded_array_t a) {
  size_t i;
  for (i = 0; i < kGuarded; ++i) {
    void* v = NULL;
    if (i % 3 == 0) {
      CHECK_RES(weakgc_guarded_array_set(a, i, NULL), WEAKGC_RES_OK);
    } else if (i % 7 == 1) {
      CHECK_RES(weakgc_guarded_array_get(a, i, &v), WEAKGC_RES_OK);
      CHECK(v != NULL && ((uint64_t*)v)[0] == TAG(i));
    }
  }
}

static void test_guarded_array(void) {
  weakgc_guarded_array_t a = NULL;
  weakgc_root_t id;
  weakgc_stats_s before, after;
  void* v = NULL;
  size_t i, wrong = 0;
  CHECK_RES(weakgc_guarded_array_create(NULL, g_arena, 4), WEAKGC_RES_BAD_PARAM);
  CHECK_RES(weakgc_guarded_array_create(&a, g_arena, SIZE_MAX / 4), WEAKGC_RES_BAD_PARAM);
  CHECK_RES(weakgc_guarded_array_create(&a, g_arena, kGuarded), WEAKGC_RES_OK);
  CHECK(weakgc_guarded_array_length(a) == kGuarded);
  CHECK_RES(weakgc_guarded_array_get(a, 0, &v), WEAKGC_RES_OK);
  CHECK(v == NULL);
  CHECK_RES(weakgc_guarded_array_get(a, kGuarded, &v), WEAKGC_RES_BAD_PARAM);
  CHECK_RES(weakgc_guarded_array_set(a, kGuarded, NULL), WEAKGC_RES_BAD_PARAM);
  CHECK_RES(weakgc_root_register(&id, g_arena, (void**)g_gwatch, 1), WEAKGC_RES_OK);
  fill_guarded(a);
  CHECK_RES(weakgc_arena_stats(g_arena, &before), WEAKGC_RES_OK);
  weakgc_arena_start_collect(g_arena);
  CHECK_RES(weakgc_arena_stats(g_arena, &after), WEAKGC_RES_OK);
  CHECK(after.pages_pending - before.pages_pending >= kGuarded * 8 / 4096);
  mutate_guarded(a);
  while (weakgc_arena_step(g_arena, 50000)) {
  }
  weakgc_arena_collect(g_arena); /* a dropped object may have been retained by the first */
  for (i = 0; i < kGuarded; ++i) {
    int dropped = i % 3 == 0;
    CHECK_RES(weakgc_guarded_array_get(a, i, &v), WEAKGC_RES_OK);
    wrong += dropped ? v != NULL : (v == NULL || ((uint64_t*)v)[0] != TAG(i));
    wrong += (g_gwatch[0]->slot[i] == WEAKGC_SLOT_DELETED) != dropped;
  }
  CHECK(wrong == 0);
  /* A range read gives what the slot reads gave; a range store writes them back unchanged. A bad
   * range is refused and touches nothing. */
  {
    void** buf = calloc(kGuarded, sizeof(void*));
    CHECK(buf != NULL);
    CHECK_RES(weakgc_guarded_array_get_range(a, 0, kGuarded, buf), WEAKGC_RES_OK);
    for (i = 0; i < kGuarded; ++i) {
      CHECK_RES(weakgc_guarded_array_get(a, i, &v), WEAKGC_RES_OK);
      wrong += buf[i] != v;
    }
    CHECK(wrong == 0);
    CHECK_RES(weakgc_guarded_array_set_range(a, 0, kGuarded, buf), WEAKGC_RES_OK);
    buf[0] = buf[1] = (void*)1;
    CHECK_RES(weakgc_guarded_array_get_range(a, kGuarded - 1, 2, buf), WEAKGC_RES_BAD_PARAM);
    CHECK_RES(weakgc_guarded_array_get_range(a, 0, 1, NULL), WEAKGC_RES_BAD_PARAM);
    CHECK_RES(weakgc_guarded_array_get_range(NULL, 0, 1, buf), WEAKGC_RES_BAD_PARAM);
    CHECK(buf[0] == (void*)1 && buf[1] == (void*)1);
    CHECK_RES(weakgc_guarded_array_set_range(a, kGuarded, 1, buf), WEAKGC_RES_BAD_PARAM);
    CHECK_RES(weakgc_guarded_array_set_range(a, 0, 1, NULL), WEAKGC_RES_BAD_PARAM);
    CHECK_RES(weakgc_guarded_array_get_range(a, kGuarded, 0, NULL), WEAKGC_RES_OK);
    free(buf);
  }
  /* Shrinking drops what lay beyond; growing adds NULL slots and keeps the rest. */
  CHECK_RES(weakgc_guarded_array_resize(a, SIZE_MAX / 4), WEAKGC_RES_BAD_PARAM);
  CHECK(weakgc_guarded_array_length(a) == kGuarded);
  CHECK_RES(weakgc_guarded_array_resize(a, kGuarded / 2), WEAKGC_RES_OK);
  CHECK_RES(weakgc_guarded_array_resize(a, kGuarded), WEAKGC_RES_OK);
  CHECK(weakgc_guarded_array_length(a) == kGuarded);
  weakgc_arena_collect(g_arena);
  for (i = 0; i < kGuarded; ++i) {
    int held = i < kGuarded / 2 && i % 3 != 0;
    CHECK_RES(weakgc_guarded_array_get(a, i, &v), WEAKGC_RES_OK);
    wrong += held ? (v == NULL || ((uint64_t*)v)[0] != TAG(i)) : v != NULL;
    wrong += (g_gwatch[0]->slot[i] != WEAKGC_SLOT_DELETED) != held;
  }
  CHECK(wrong == 0);
  weakgc_guarded_array_destroy(a);
  weakgc_arena_collect(g_arena); /* nothing holds the objects now */
  for (i = 0; i < kGuarded; ++i) wrong += g_gwatch[0]->slot[i] != WEAKGC_SLOT_DELETED;
  CHECK(wrong == 0);
  weakgc_guarded_array_destroy(NULL);
  CHECK_RES(weakgc_root_remove(g_arena, id), WEAKGC_RES_OK);
}

/* ---------------------------------------------------------------------------- finalization */

static NOINLINE uintptr_t make_finalizable(void) {
  void* p = NULL;
  int local = 0;
  CHECK_RES(weakgc_alloc(&p, g_ams, sizeof(node)), WEAKGC_RES_OK);
  ((node*)p)->id = 77;
  ((node*)p)->tag = TAG(77);
  CHECK_RES(weakgc_finalize(g_arena, p), WEAKGC_RES_OK);
  CHECK_RES(weakgc_finalize(g_arena, p), WEAKGC_RES_ALREADY);
  CHECK_RES(weakgc_finalize(g_arena, &local), WEAKGC_RES_BAD_PARAM);
  return (uintptr_t)p ^ 0xffffu; /* hidden, in case this register is looked at */
}

/* --------------------------------------------------------------- client AWL objects (MPS style) */

/* The runtime's own weak half of a table, as in MPS's AWL example: a tagged length (never looks
 * like a reference), the dependent, the slots. */
typedef struct client_weak {
  uintptr_t tagged_length; /* length * 2 + 1 */
  struct client_weak* dependent;
  void* slot[1];
} client_weak;

enum { kClientSlots = 240 };
static void** g_client_roots; /* malloc'd: [0], [1] the two arrays; then key i, value i */
static int g_client_scans, g_client_dependents;

static void scan_client_weak(weakgc_ss_t ss, void* obj, size_t size, void* closure) {
  client_weak* a = (client_weak*)obj;
  size_t i, n = (size_t)(a->tagged_length >> 1);
  (void)size;
  CHECK(closure == (void*)&g_client_roots);
  ++g_client_scans;
  for (i = 0; i < n; ++i) weakgc_fix(ss, &a->slot[i]);
}

static void* client_dependent(void* obj, void* closure) {
  CHECK(closure == (void*)&g_client_roots);
  ++g_client_dependents;
  return ((client_weak*)obj)->dependent;
}

static NOINLINE void build_client_pairs(weakgc_pool_t awl) {
  size_t bytes = sizeof(client_weak) + (kClientSlots - 1) * sizeof(void*);
  void *k = NULL, *v = NULL;
  int i;
  CHECK_RES(weakgc_alloc_rank(&k, awl, bytes, WEAKGC_RANK_WEAK), WEAKGC_RES_OK);
  g_client_roots[0] = k;
  CHECK_RES(weakgc_alloc_rank(&v, awl, bytes, WEAKGC_RANK_WEAK), WEAKGC_RES_OK);
  g_client_roots[1] = v;
  ((client_weak*)k)->tagged_length = kClientSlots * 2 + 1;
  ((client_weak*)v)->tagged_length = kClientSlots * 2 + 1;
  ((client_weak*)k)->dependent = (client_weak*)v;
  ((client_weak*)v)->dependent = (client_weak*)k;
  for (i = 0; i < kClientSlots; ++i) {
    void *key = NULL, *val = NULL;
    make_pair_halves(i, &key, &val);
    ((client_weak*)k)->slot[i] = key;
    ((client_weak*)v)->slot[i] = val;
    /* i % 3 == 0: both halves held elsewhere; 1: only the value; 2: only the key. */
    g_client_roots[2 + 2 * i] = i % 3 != 1 ? key : NULL;
    g_client_roots[3 + 2 * i] = i % 3 != 2 ? val : NULL;
  }
}

static void test_client_awl(void) {
  weakgc_fmt_t wfmt = NULL;
  weakgc_pool_t awl = NULL, bad = NULL;
  weakgc_root_t rid = 0;
  weakgc_stats_s before, after;
  client_weak *k, *v;
  int i, splats = 0;
  weakgc_arg_s fargs[] = {weakgc_arg_scan(WEAKGC_KEY_FMT_SCAN, scan_client_weak),
                          weakgc_arg_dependent(WEAKGC_KEY_FMT_DEPENDENT, client_dependent),
                          weakgc_arg_pointer(WEAKGC_KEY_FMT_CLOSURE, &g_client_roots),
                          WEAKGC_ARG_END};
  CHECK_RES(weakgc_fmt_create(&wfmt, g_arena, fargs), WEAKGC_RES_OK);
  /* A dependent function means nothing to AMS, a format nothing to LO. */
  CHECK_RES(weakgc_pool_create(&bad, g_arena, WEAKGC_POOL_AMS, wfmt), WEAKGC_RES_BAD_PARAM);
  CHECK_RES(weakgc_pool_create(&bad, g_arena, WEAKGC_POOL_LO, wfmt), WEAKGC_RES_BAD_PARAM);
  CHECK_RES(weakgc_pool_create(&awl, g_arena, WEAKGC_POOL_AWL, wfmt), WEAKGC_RES_OK);

  g_client_roots = (void**)calloc(2 + 2 * kClientSlots, sizeof(void*));
  CHECK(g_client_roots != NULL);
  CHECK_RES(weakgc_root_register(&rid, g_arena, g_client_roots, 2 + 2 * kClientSlots),
            WEAKGC_RES_OK);
  build_client_pairs(awl);
  CHECK_RES(weakgc_arena_stats(g_arena, &before), WEAKGC_RES_OK);
  weakgc_arena_collect(g_arena);
  CHECK_RES(weakgc_arena_stats(g_arena, &after), WEAKGC_RES_OK);
  k = (client_weak*)g_client_roots[0];
  v = (client_weak*)g_client_roots[1];
  /* The oracle: an entry survives iff both halves are held elsewhere; otherwise both of its
   * slots are 0, whichever half died (the dependent's slot goes with it). */
  for (i = 0; i < kClientSlots; ++i) {
    if (i % 3 == 0) {
      CHECK(k->slot[i] == g_client_roots[2 + 2 * i] && ((node*)k->slot[i])->tag == TAG(i));
      CHECK(v->slot[i] == g_client_roots[3 + 2 * i] && ((uint64_t*)v->slot[i])[0] == TAG(i));
    } else {
      CHECK(k->slot[i] == NULL && v->slot[i] == NULL);
      ++splats;
    }
  }
  CHECK(after.slots_splatted - before.slots_splatted == (uint64_t)splats);
  CHECK(g_client_scans > 0 && g_client_dependents > 0); /* the format was the one used */
  CHECK(k->tagged_length == kClientSlots * 2 + 1 && k->dependent == v && v->dependent == k);
  /* A slot holding an aligned arena word that is no object's base breaks MPS's AWL rule: the
   * collector leaves it alone and counts it, and C sees the count. */
  CHECK(after.bad_awl_slots == before.bad_awl_slots && k->slot[1] == NULL);
  k->slot[1] = (char*)k + 16;
  weakgc_arena_collect(g_arena);
  CHECK_RES(weakgc_arena_stats(g_arena, &before), WEAKGC_RES_OK);
  CHECK(before.bad_awl_slots > after.bad_awl_slots);
  CHECK(k->slot[1] == (char*)k + 16); /* left alone, not splatted */
  k->slot[1] = NULL;
  CHECK_RES(weakgc_root_remove(g_arena, rid), WEAKGC_RES_OK);
  free(g_client_roots);
  g_client_roots = NULL;
}

static void test_finalization(void) {
  uintptr_t hidden = make_finalizable();
  void* got = NULL;
  CHECK(weakgc_finalization_take(g_arena, &got) == 0); /* nothing died yet */
  weakgc_arena_collect(g_arena);
  CHECK(weakgc_finalization_take(g_arena, &got) == 1);
  CHECK((uintptr_t)got == (hidden ^ 0xffffu));
  CHECK(((node*)got)->tag == TAG(77));                 /* kept alive for its message */
  CHECK(weakgc_finalization_take(g_arena, &got) == 0); /* posted once */
}

/* ----------------------------------------------------------------------------------- expose */

static void test_expose(void) {
  void* p = NULL;
  void* keep[1];
  weakgc_root_t id;
  int local = 0;
  CHECK_RES(weakgc_alloc(&p, g_ams, sizeof(node)), WEAKGC_RES_OK);
  ((node*)p)->tag = TAG(5);
  keep[0] = p;
  CHECK_RES(weakgc_root_register(&id, g_arena, keep, 1), WEAKGC_RES_OK);
  weakgc_arena_start_collect(g_arena);
  CHECK_RES(weakgc_expose(g_arena, p, sizeof(node)), WEAKGC_RES_OK);
  CHECK(((node*)p)->tag == TAG(5));
  weakgc_unexpose(g_arena, p, sizeof(node));
  CHECK_RES(weakgc_expose(g_arena, &local, sizeof local), WEAKGC_RES_BAD_PARAM);
  weakgc_arena_collect(g_arena);
  CHECK(((node*)keep[0])->tag == TAG(5));
  CHECK_RES(weakgc_root_remove(g_arena, id), WEAKGC_RES_OK);
}

/* -------------------------------------------------------------------------------- event log */

typedef struct {
  char magic[8];
  uint32_t version, record_size;
  uint64_t records, lost, arena_serial, start_ns, pid, reserved;
} chunk_header;
typedef struct {
  uint64_t time_ns, duration_ns, value, value2;
  uint16_t kind;
  uint8_t phase, detail;
  uint16_t reason, mnemonic;
} event_record;
enum { kEvFlip = 1, kEvIncrement = 2, kEvFull = 3, kEvFault = 4, kEvSplat = 5, kEvSweep = 6 };

typedef struct {
  uint64_t by_kind[8];
  uint64_t by_outcome[8];
  uint64_t splats, lost, chunks, nested_flips;
  int ordered;
} log_summary;

static void read_log(int fd, log_summary* s) {
  chunk_header h;
  uint64_t last = 0;
  memset(s, 0, sizeof *s);
  s->ordered = 1;
  CHECK(lseek(fd, 0, SEEK_SET) == 0);
  while (read(fd, &h, sizeof h) == (ssize_t)sizeof h) {
    uint64_t i;
    CHECK(memcmp(h.magic, "WGCEVLOG", 8) == 0 && h.version == 1);
    CHECK(h.record_size == sizeof(event_record));
    ++s->chunks;
    s->lost += h.lost;
    for (i = 0; i < h.records; ++i) {
      event_record r;
      CHECK(read(fd, &r, sizeof r) == (ssize_t)sizeof r);
      CHECK(r.kind >= 1 && r.kind <= 6);
      CHECK(r.time_ns >= h.start_ns);
      if (r.kind <= kEvFault) { /* pauses are recorded in the order they end */
        if (r.time_ns + r.duration_ns < last) s->ordered = 0;
        last = r.time_ns + r.duration_ns;
      }
      if (r.kind == kEvFlip && r.detail == 1) ++s->nested_flips;
      ++s->by_kind[r.kind];
      if (r.kind == kEvFault) ++s->by_outcome[r.detail < 8 ? r.detail : 7];
      if (r.kind == kEvSplat) s->splats += r.value;
    }
  }
}

static uint64_t faults(const weakgc_stats_s* s) {
  return s->faults_scanned + s->faults_emulated + s->faults_declined + s->faults_budget +
         s->faults_weak_phase;
}

/* Refills the weak array's splatted slots with fresh nodes that nothing else references. */
static NOINLINE int refill_weak_array(void) {
  weakgc_weak_array_s* w = g_wroot[0];
  int i, n = 0;
  for (i = 0; i < kNodes; ++i) {
    void* p = NULL;
    if (w->slot[i] != WEAKGC_SLOT_DELETED) continue;
    CHECK_RES(weakgc_alloc(&p, g_ams, sizeof(node)), WEAKGC_RES_OK);
    ((node*)p)->id = (uint64_t)i;
    w->slot[i] = (uintptr_t)p;
    ++n;
  }
  return n;
}

static NOINLINE void read_weak_slots(int n) {
  volatile uintptr_t* slot = g_wroot[0]->slot;
  uintptr_t sum = 0;
  int i;
  for (i = 0; i < n; ++i) sum += slot[rnd_below(kNodes)]; /* loads on a protected weak page */
  CHECK(sum != 1);
}

static void test_event_log(void) {
  char path[] = "/tmp/weakgc_capi_eventsXXXXXX";
  int fd = mkstemp(path);
  weakgc_stats_s before, after;
  log_summary s;
  uint64_t steps = 0;
  CHECK(fd >= 0);
  unlink(path);
  CHECK_RES(weakgc_event_log_flush(g_arena), WEAKGC_RES_NOT_FOUND);
  CHECK_RES(weakgc_event_log_start(g_arena, NULL, -1, 0), WEAKGC_RES_BAD_PARAM);
  CHECK_RES(weakgc_event_log_start(g_arena, NULL, fd, 1024), WEAKGC_RES_OK);
  CHECK_RES(weakgc_event_log_start(g_arena, NULL, fd, 1024), WEAKGC_RES_ALREADY);
  CHECK(refill_weak_array() > kNodes / 2);
  CHECK_RES(weakgc_arena_stats(g_arena, &before), WEAKGC_RES_OK);
  /* Cycle 1: incremental, with emulated loads from the weak array while marking. */
  weakgc_arena_start_collect(g_arena);
  read_weak_slots(64);
  do ++steps;
  while (weakgc_arena_step(g_arena, 30000));
  CHECK_RES(weakgc_event_log_flush(g_arena), WEAKGC_RES_OK); /* two chunks: flush mid-way */
  /* Cycle 2: a full collection frees the nodes the emulated loads kept alive in cycle 1. */
  weakgc_arena_collect(g_arena);
  CHECK_RES(weakgc_arena_stats(g_arena, &after), WEAKGC_RES_OK);
  CHECK_RES(weakgc_event_log_stop(g_arena), WEAKGC_RES_OK);
  CHECK_RES(weakgc_event_log_stop(g_arena), WEAKGC_RES_NOT_FOUND);
  read_log(fd, &s);
  close(fd);
  CHECK(s.chunks >= 2);
  CHECK(s.lost == 0);
  CHECK(s.ordered);
  CHECK(s.by_kind[kEvFlip] == 2 && s.nested_flips == 1); /* the full collection's flip */
  CHECK(s.by_kind[kEvIncrement] == steps);
  CHECK(s.by_kind[kEvFull] == 1);
  CHECK(s.by_kind[kEvFault] == faults(&after) - faults(&before));
  CHECK(s.by_outcome[0] == after.faults_scanned - before.faults_scanned);
  CHECK(s.by_outcome[1] == after.faults_emulated - before.faults_emulated);
  CHECK(s.by_outcome[2] == after.faults_declined - before.faults_declined);
  CHECK(s.by_outcome[1] > 0); /* the weak-slot loads were emulated */
  CHECK(s.splats == after.slots_splatted - before.slots_splatted && s.splats > 0);
  CHECK(s.by_kind[kEvSweep] > 0);
}

/* Starts a log through the environment and checks that arena destruction writes it. */
static void test_event_log_env(void) {
  char path[] = "/tmp/weakgc_capi_envlogXXXXXX";
  int fd = mkstemp(path);
  weakgc_arena_t a = NULL;
  log_summary s;
  CHECK(fd >= 0);
  CHECK(setenv("WEAKGC_EVENT_LOG", path, 1) == 0);
  CHECK_RES(weakgc_arena_create(&a, NULL), WEAKGC_RES_OK);
  CHECK(unsetenv("WEAKGC_EVENT_LOG") == 0);
  weakgc_arena_collect(a);
  weakgc_arena_collect(a);
  CHECK_RES(weakgc_event_log_start(a, NULL, fd, 0), WEAKGC_RES_ALREADY);
  weakgc_arena_destroy(a);
  read_log(fd, &s);
  close(fd);
  unlink(path);
  CHECK(s.chunks == 1 && s.by_kind[kEvFlip] == 2 && s.by_kind[kEvFull] == 2);
}

/* ---------------------------------------------------------------------------------- threads */

static weakgc_res_t g_other_res;
static weakgc_res_t g_other_dereg;
static weakgc_thread_t g_main_thread;
static weakgc_res_t g_cross_dereg;

static void* other_thread(void* arg) {
  weakgc_arena_t a = (weakgc_arena_t)arg;
  weakgc_thread_t t = NULL;
  g_cross_dereg = weakgc_thread_deregister(g_main_thread); /* not this thread's registration */
  g_other_res = weakgc_thread_register(&t, a);
  g_other_dereg = g_other_res == WEAKGC_RES_OK ? weakgc_thread_deregister(t) : WEAKGC_RES_OK;
  return NULL;
}

static void test_threads(void) {
  weakgc_arena_t a = NULL;
  pthread_t th;
  CHECK_RES(weakgc_arena_create(&a, NULL), WEAKGC_RES_OK);
  CHECK_RES(weakgc_thread_register(&g_main_thread, a), WEAKGC_RES_OK); /* the creator */
  CHECK(pthread_create(&th, NULL, other_thread, a) == 0);
  CHECK(pthread_join(th, NULL) == 0);
  CHECK(g_cross_dereg == WEAKGC_RES_BAD_PARAM);
  /* Another thread: supported (OK) or, in builds without several mutators, UNIMPLEMENTED. */
  CHECK(g_other_res == WEAKGC_RES_OK || g_other_res == WEAKGC_RES_UNIMPLEMENTED);
  CHECK(g_other_dereg == WEAKGC_RES_OK);
  CHECK_RES(weakgc_thread_deregister(g_main_thread), WEAKGC_RES_OK);
  weakgc_arena_destroy(a);
}

/* ------------------------------------------------------------------------ arguments, results */

static void test_arguments(void) {
  weakgc_arena_t a = NULL;
  weakgc_fmt_t f = NULL;
  weakgc_pool_t p = NULL;
  weakgc_stats_s st;
  weakgc_arg_s bad_key[] = {weakgc_arg_scan(WEAKGC_KEY_FMT_SCAN, scan_node), WEAKGC_ARG_END};
  weakgc_arg_s bad_reserve[] = {weakgc_arg_size(WEAKGC_KEY_RESERVE_BYTES, 4096), WEAKGC_ARG_END};
  weakgc_arg_s bad_incr[] = {weakgc_arg_int(WEAKGC_KEY_INCREMENTAL, 7), WEAKGC_ARG_END};
  weakgc_arg_s off[] = {weakgc_arg_int(WEAKGC_KEY_INCREMENTAL, 0),
                        weakgc_arg_int(WEAKGC_KEY_EMULATION, 0),
                        weakgc_arg_int(WEAKGC_KEY_VIEW_PROBES, 0),
                        weakgc_arg_size(WEAKGC_KEY_PENDING_MIN_PAGES, SIZE_MAX), WEAKGC_ARG_END};
  weakgc_arg_s no_scan[] = {weakgc_arg_pointer(WEAKGC_KEY_FMT_CLOSURE, NULL), WEAKGC_ARG_END};
  weakgc_arg_s arena_key[] = {weakgc_arg_double(WEAKGC_KEY_PAUSE_TARGET_MS, 1), WEAKGC_ARG_END};

  CHECK(strcmp(weakgc_version(), WEAKGC_VERSION_STRING) == 0);
  CHECK(weakgc_version_number() == WEAKGC_VERSION_NUMBER);
  CHECK(strcmp(weakgc_res_name(WEAKGC_RES_OK), "ok") == 0);
  CHECK(strcmp(weakgc_res_name(WEAKGC_RES_UNIMPLEMENTED), "unimplemented") == 0);
  CHECK(strcmp(weakgc_res_name(WEAKGC_RES_FAIL), weakgc_res_name(WEAKGC_RES_OK)) != 0);
  CHECK(strcmp(weakgc_res_name((weakgc_res_t)55), "unknown result") == 0);

  CHECK_RES(weakgc_arena_create(NULL, NULL), WEAKGC_RES_BAD_PARAM);
  CHECK_RES(weakgc_arena_create(&a, bad_key), WEAKGC_RES_BAD_PARAM);
  CHECK_RES(weakgc_arena_create(&a, bad_reserve), WEAKGC_RES_BAD_PARAM);
  CHECK_RES(weakgc_arena_create(&a, bad_incr), WEAKGC_RES_BAD_PARAM);
  CHECK(a == NULL); /* untouched on failure */
  CHECK_RES(weakgc_arena_create(&a, off), WEAKGC_RES_OK);
  CHECK(weakgc_arena_incremental(a) == 0);
  CHECK(weakgc_arena_phase(a) == WEAKGC_PHASE_IDLE);
  CHECK_RES(weakgc_fmt_create(&f, a, no_scan), WEAKGC_RES_BAD_PARAM);
  CHECK_RES(weakgc_fmt_create(&f, a, arena_key), WEAKGC_RES_BAD_PARAM);
  CHECK_RES(weakgc_pool_create(&p, a, WEAKGC_POOL_AMS, NULL), WEAKGC_RES_BAD_PARAM);
  CHECK_RES(weakgc_pool_create(&p, a, (weakgc_pool_class_t)9, NULL), WEAKGC_RES_BAD_PARAM);
  CHECK_RES(weakgc_pool_create(&p, a, WEAKGC_POOL_LO, NULL), WEAKGC_RES_OK);
  {
    void* mem = NULL;
    CHECK_RES(weakgc_alloc(&mem, p, 0), WEAKGC_RES_BAD_PARAM);
    CHECK_RES(weakgc_alloc_rank(&mem, p, 16, (weakgc_rank_t)3), WEAKGC_RES_BAD_PARAM);
    CHECK_RES(weakgc_alloc(&mem, p, 100), WEAKGC_RES_OK);
    CHECK(weakgc_arena_contains(a, mem) == 1 && weakgc_arena_contains(a, &mem) == 0);
  }
  CHECK_RES(weakgc_arena_stats(a, NULL), WEAKGC_RES_BAD_PARAM);
  weakgc_arena_collect(a);
  CHECK_RES(weakgc_arena_stats(a, &st), WEAKGC_RES_OK);
  CHECK(st.cycles == 1 && st.full_collections == 1 && st.full_pauses.count == 1);
  CHECK(weakgc_pause_quantile_ns(&st.full_pauses, 1.0) == st.full_pauses.max_ns);
  weakgc_arena_destroy(a);
  weakgc_arena_destroy(NULL);
}

/* Misuse a C caller can make and the interface refuses (each once crashed, hung or was
 * accepted): NULL handles, impossible capacities, words no slot can hold, a format of another
 * arena, root ranges over the heap or past the end of memory, NaN options, an unmatched
 * unexpose. Each answer is checked, and then that nothing changed. */
static void test_misuse(void) {
  weakgc_arena_t a = NULL, b = NULL;
  weakgc_fmt_t fb = NULL;
  weakgc_pool_t lo = NULL, p = NULL;
  weakgc_table_t t = NULL;
  weakgc_intern_set_t s = NULL;
  weakgc_root_t id = 0;
  weakgc_table_cursor_s cur;
  void *obj = NULL, *val = NULL, *k = NULL, *v = NULL;
  void* slots[2];
  const double bad_doubles[] = {NAN, INFINITY, -INFINITY, -1.0};
  const weakgc_key_t double_keys[] = {WEAKGC_KEY_PAUSE_TARGET_MS, WEAKGC_KEY_GROWTH_FACTOR};
  const size_t huge[] = {SIZE_MAX, SIZE_MAX / 2, (size_t)1 << 62, (size_t)1 << 45};
  weakgc_arg_s fmt_args[] = {weakgc_arg_scan(WEAKGC_KEY_FMT_SCAN, scan_node), WEAKGC_ARG_END};
  size_t i, j;

  /* NULL handles: nothing happens, and the neutral answer comes back. */
  CHECK(weakgc_object_base(NULL, &obj) == NULL && weakgc_object_size(NULL, &obj) == 0);
  CHECK(weakgc_arena_committed(NULL) == 0 && weakgc_arena_step(NULL, 1000) == 0);
  CHECK(weakgc_arena_phase(NULL) == WEAKGC_PHASE_ENUM_MAX && weakgc_arena_incremental(NULL) == 0);
  weakgc_arena_verify(NULL);
  weakgc_arena_collect(NULL);
  weakgc_arena_start_collect(NULL);
  CHECK_RES(weakgc_unexpose(NULL, &obj, 8), WEAKGC_RES_BAD_PARAM);
  CHECK(weakgc_table_kind(NULL) == WEAKGC_TABLE_ENUM_MAX);
  CHECK(weakgc_table_get(NULL, &obj) == NULL && weakgc_table_contains(NULL, &obj) == 0);
  CHECK(weakgc_table_remove(NULL, &obj) == NULL && weakgc_table_size(NULL) == 0);
  weakgc_table_clear(NULL);
  CHECK(weakgc_intern_set_size(NULL) == 0 && weakgc_intern_symbols_created(NULL) == 0);

  /* Options that are not numbers, or are infinite. */
  for (i = 0; i < 2; ++i) {
    for (j = 0; j < sizeof bad_doubles / sizeof bad_doubles[0]; ++j) {
      weakgc_arg_s args[] = {weakgc_arg_double(double_keys[i], bad_doubles[j]), WEAKGC_ARG_END};
      CHECK_RES(weakgc_arena_create(&a, args), WEAKGC_RES_BAD_PARAM);
      CHECK(a == NULL);
    }
  }

  CHECK_RES(weakgc_arena_create(&a, NULL), WEAKGC_RES_OK);
  CHECK_RES(weakgc_arena_create(&b, NULL), WEAKGC_RES_OK);
  CHECK_RES(weakgc_pool_create(&lo, a, WEAKGC_POOL_LO, NULL), WEAKGC_RES_OK);
  CHECK_RES(weakgc_alloc(&obj, lo, 64), WEAKGC_RES_OK);
  CHECK_RES(weakgc_alloc(&val, lo, 64), WEAKGC_RES_OK);
  slots[0] = obj;
  slots[1] = val;
  CHECK_RES(weakgc_root_register(&id, a, slots, 2), WEAKGC_RES_OK);

  /* A format belongs to its arena: a pool of another arena would outlive it. */
  CHECK_RES(weakgc_fmt_create(&fb, b, fmt_args), WEAKGC_RES_OK);
  p = NULL;
  CHECK_RES(weakgc_pool_create(&p, a, WEAKGC_POOL_AMS, fb), WEAKGC_RES_BAD_PARAM);
  CHECK(p == NULL);
  weakgc_arena_destroy(b);
  weakgc_arena_collect(a); /* once used the freed format */

  /* Capacities no table can have: refused at once (these once looped forever or wrapped to a
   * tiny table). */
  for (i = 0; i < sizeof huge / sizeof huge[0]; ++i) {
    weakgc_arg_s args[] = {weakgc_arg_size(WEAKGC_KEY_TABLE_CAPACITY, huge[i]), WEAKGC_ARG_END};
    t = NULL;
    CHECK_RES(weakgc_table_create(&t, a, WEAKGC_TABLE_WEAK_KEY, args), WEAKGC_RES_BAD_PARAM);
    CHECK(t == NULL);
    CHECK_RES(weakgc_intern_set_create(&s, a, huge[i]), WEAKGC_RES_BAD_PARAM);
    CHECK(s == NULL);
  }
  CHECK_RES(weakgc_table_create(&t, a, WEAKGC_TABLE_WEAK_KEY, NULL), WEAKGC_RES_OK);
  for (i = 0; i < sizeof huge / sizeof huge[0]; ++i)
    CHECK_RES(weakgc_table_reserve(t, huge[i]), WEAKGC_RES_BAD_PARAM);

  /* Words no slot can hold, as key or value: refused, and the table stays empty. */
  CHECK_RES(weakgc_table_put(t, NULL, val, NULL), WEAKGC_RES_BAD_PARAM);
  CHECK_RES(weakgc_table_put(t, (void*)WEAKGC_SLOT_DELETED, val, NULL), WEAKGC_RES_BAD_PARAM);
  CHECK_RES(weakgc_table_put(t, obj, (void*)WEAKGC_SLOT_DELETED, NULL), WEAKGC_RES_BAD_PARAM);
  CHECK_RES(weakgc_table_put_new(t, 0, NULL, val), WEAKGC_RES_BAD_PARAM);
  CHECK_RES(weakgc_table_put_new(t, 0, obj, (void*)WEAKGC_SLOT_DELETED), WEAKGC_RES_BAD_PARAM);
  /* An interior address is neither a reference nor a plain word (it once made the verifier
   * report a collector bug after its object died). */
  CHECK_RES(weakgc_table_put(t, (char*)obj + 8, val, NULL), WEAKGC_RES_BAD_PARAM);
  CHECK_RES(weakgc_table_put(t, obj, (char*)val + 16, NULL), WEAKGC_RES_BAD_PARAM);
  CHECK_RES(weakgc_table_put_new(t, 0, (char*)obj + 8, val), WEAKGC_RES_BAD_PARAM);
  CHECK(weakgc_table_size(t) == 0 && weakgc_table_contains(t, obj) == 0);
  memset(&cur, 0, sizeof cur);
  CHECK(weakgc_table_next(t, &cur, &k, &v) == 0);
  CHECK_RES(weakgc_table_put(t, obj, val, NULL), WEAKGC_RES_OK); /* still a working table */
  CHECK(weakgc_table_get(t, obj) == val && weakgc_table_size(t) == 1);

  /* Root ranges: past the end of memory, misaligned, or running into the heap. */
  CHECK_RES(weakgc_root_register(&id, a, slots, SIZE_MAX), WEAKGC_RES_BAD_PARAM);
  CHECK_RES(weakgc_root_register(&id, a, slots, ((size_t)1 << 61) + 2), WEAKGC_RES_BAD_PARAM);
  CHECK_RES(weakgc_root_register(&id, a, (void**)((char*)slots + 1), 1), WEAKGC_RES_BAD_PARAM);
  {
    /* A range that runs from mapped memory into a hole (the count was wrong). */
    long pg = sysconf(_SC_PAGESIZE);
    char* m =
        mmap(NULL, (size_t)pg * 2, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(m != MAP_FAILED);
    CHECK(munmap(m + pg, (size_t)pg) == 0);
    CHECK_RES(weakgc_root_register(&id, a, (void**)m, (size_t)pg / sizeof(void*) + 1),
              WEAKGC_RES_BAD_PARAM);
    CHECK_RES(weakgc_root_register(&id, a, (void**)m, (size_t)pg / sizeof(void*)), WEAKGC_RES_OK);
    CHECK_RES(weakgc_root_remove(a, id), WEAKGC_RES_OK);
    CHECK(munmap(m, (size_t)pg) == 0);
  }
  {
    /* From 1 GiB below an object to just past it: starts outside the heap, ends inside. */
    uintptr_t below = (uintptr_t)obj - ((uintptr_t)1 << 30);
    CHECK_RES(weakgc_root_register(&id, a, (void**)below, ((size_t)1 << 27) + 1),
              WEAKGC_RES_BAD_PARAM);
  }
  weakgc_arena_collect(a); /* no bad range was kept: this once scanned them */
  CHECK(weakgc_table_get(t, obj) == val);

  /* unexpose without a matching expose: refused, and the exposure count is not corrupted. */
  CHECK_RES(weakgc_unexpose(a, obj, 64), WEAKGC_RES_BAD_PARAM);
  CHECK_RES(weakgc_expose(a, obj, 64), WEAKGC_RES_OK);
  CHECK_RES(weakgc_unexpose(a, obj, 64), WEAKGC_RES_OK);
  CHECK_RES(weakgc_unexpose(a, obj, 64), WEAKGC_RES_BAD_PARAM);
  CHECK_RES(weakgc_unexpose(a, &slots, 8), WEAKGC_RES_BAD_PARAM);

  weakgc_arena_verify(a);
  weakgc_table_destroy(t);
  weakgc_arena_destroy(a);
}

int main(void) {
  const char* e = getenv("WEAKGC_TEST_SEED");
  weakgc_fmt_t fmt = NULL;
  weakgc_arg_s args[] = {
      weakgc_arg_size(WEAKGC_KEY_RESERVE_BYTES, (size_t)256 << 20),
      weakgc_arg_size(WEAKGC_KEY_TRIGGER_BYTES, (size_t)256 << 20), /* no automatic cycles */
      weakgc_arg_double(WEAKGC_KEY_PAUSE_TARGET_MS, 0.5),
      weakgc_arg_int(WEAKGC_KEY_INCREMENTAL, 1),
      weakgc_arg_int(WEAKGC_KEY_REGISTER_THREAD, 0), /* exact roots only: an exact oracle */
      weakgc_arg_unsigned(WEAKGC_KEY_SINGLE_ACCESS_BUDGET, 100000),
      weakgc_arg_int(WEAKGC_KEY_EMULATION, 1),
      WEAKGC_ARG_END};
  weakgc_arg_s fmt_args[] = {weakgc_arg_scan(WEAKGC_KEY_FMT_SCAN, scan_node),
                             weakgc_arg_pointer(WEAKGC_KEY_FMT_CLOSURE, &g_scans), WEAKGC_ARG_END};

  g_seed = e != NULL ? strtoull(e, NULL, 10) : 20240601ULL;
  g_rng = g_seed * 2 + 1;
  test_arguments();
  test_misuse();

  CHECK_RES(weakgc_arena_create(&g_arena, args), WEAKGC_RES_OK);
  CHECK_RES(weakgc_fmt_create(&fmt, g_arena, fmt_args), WEAKGC_RES_OK);
  CHECK_RES(weakgc_pool_create(&g_ams, g_arena, WEAKGC_POOL_AMS, fmt), WEAKGC_RES_OK);
  CHECK_RES(weakgc_pool_create(&g_lo, g_arena, WEAKGC_POOL_LO, NULL), WEAKGC_RES_OK);
  test_graph();
  test_dependents();
  test_client_awl();
  test_tables();
  test_guarded_array();
  test_finalization();
  test_expose();
  test_event_log();
  weakgc_arena_verify(g_arena);
  weakgc_arena_destroy(g_arena);

  test_event_log_env();
  test_threads();
  printf("capi_test: %d checks passed (seed %llu)\n", g_checks, g_seed);
  return 0;
}
