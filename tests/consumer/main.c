/* Consumer check (C99): an installed weakgc used through weakgc.h only. Exit 0 on success. */
#include <stdio.h>
#include <string.h>

#include <weakgc/weakgc.h>

typedef struct cell {
  struct cell* next;
  long value;
} cell;

static void scan_cell(weakgc_ss_t ss, void* obj, size_t size, void* closure) {
  (void)size;
  (void)closure;
  weakgc_fix(ss, (void**)&((cell*)obj)->next);
}

/* Fills w with 8 cells; roots[1] names cell 3. Not inlined, so that no cell pointer is left in
 * main's callee-saved registers (which the collector scans conservatively). */
static __attribute__((noinline)) int fill(weakgc_pool_t pool, weakgc_weak_array_s* w,
                                          void** roots) {
  int i;
  for (i = 0; i < 8; ++i) {
    void* p = NULL;
    if (weakgc_alloc(&p, pool, sizeof(cell)) != WEAKGC_RES_OK) return 0;
    ((cell*)p)->value = i;
    w->slot[i] = (uintptr_t)p;
    if (i == 3) roots[1] = p;
  }
  return 1;
}

#define FAIL(msg)                             \
  do {                                        \
    fprintf(stderr, "consumer_c: %s\n", msg); \
    return 1;                                 \
  } while (0)

int main(void) {
  weakgc_arena_t arena = NULL;
  weakgc_fmt_t fmt = NULL;
  weakgc_pool_t pool = NULL;
  weakgc_weak_array_s* w = NULL;
  static void* roots[2];
  weakgc_root_t root = 0;
  weakgc_stats_s st;
  weakgc_arg_s args[] = {weakgc_arg_int(WEAKGC_KEY_REGISTER_THREAD, 0),
                         weakgc_arg_size(WEAKGC_KEY_RESERVE_BYTES, (size_t)64 << 20),
                         WEAKGC_ARG_END};
  weakgc_arg_s fargs[] = {weakgc_arg_scan(WEAKGC_KEY_FMT_SCAN, scan_cell), WEAKGC_ARG_END};
  int i;

  if (strcmp(weakgc_version(), WEAKGC_VERSION_STRING) != 0)
    FAIL("header and library versions differ");
  if (weakgc_arena_create(&arena, args) != WEAKGC_RES_OK) FAIL("arena");
  if (weakgc_fmt_create(&fmt, arena, fargs) != WEAKGC_RES_OK) FAIL("format");
  if (weakgc_pool_create(&pool, arena, WEAKGC_POOL_AMS, fmt) != WEAKGC_RES_OK) FAIL("pool");
  if (weakgc_weak_array_alloc(&w, arena, 8, WEAKGC_RANK_WEAK, NULL) != WEAKGC_RES_OK) FAIL("weak");
  roots[0] = w;
  if (weakgc_root_register(&root, arena, roots, 2) != WEAKGC_RES_OK) FAIL("root");
  if (!fill(pool, w, roots)) FAIL("alloc"); /* only cell 3 is rooted */
  weakgc_arena_collect(arena);
  for (i = 0; i < 8; ++i)
    if ((w->slot[i] == WEAKGC_SLOT_DELETED) != (i != 3)) FAIL("wrong weak slots splatted");
  if (((cell*)roots[1])->value != 3) FAIL("rooted cell damaged");
  if (weakgc_arena_stats(arena, &st) != WEAKGC_RES_OK || st.slots_splatted != 7) FAIL("stats");
  weakgc_arena_destroy(arena);
  printf("consumer_c: weakgc %s OK\n", weakgc_version());
  return 0;
}
