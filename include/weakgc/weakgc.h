/* weakgc's C interface to the low-level layer (valid C99 and C++), in the style of MPS's mps.h.
 *
 * What it is: arenas, object formats with a C scan callback, pools (AMS, LO, AWL), allocation,
 * exact roots, thread registration, collection control, statistics, weak arrays, finalization
 * messages, expose/unexpose, weak hash tables of every kind, the intern set and the event log,
 * each a thin wrapper of the C++ API in include/weakgc/ (arena.hpp, format.hpp, weak_array.hpp,
 * stats.hpp, tables.hpp, intern.hpp).
 *
 * Rules (docs/design/capi.md):
 *  - Functions that can fail return a weakgc_res_t and write their result through a pointer
 *    ending in _o, which is left untouched on failure. No C++ exception crosses this interface:
 *    every entry point catches everything, answering WEAKGC_RES_NO_MEMORY for an exhausted
 *    arena, WEAKGC_RES_BAD_PARAM for a bad argument and WEAKGC_RES_FAIL for anything else
 *    (functions without a result code return their 0 or NULL).
 *  - Bad arguments are refused, not trusted: a NULL handle, an unknown enum value, a key or
 *    value no slot can hold, a format from another arena, a root range in the heap — functions
 *    returning a weakgc_res_t answer WEAKGC_RES_BAD_PARAM and change nothing; the others do
 *    nothing and return 0, NULL or (for an enum) its _ENUM_MAX, which names no value.
 *  - Options are keyword arguments: an array of weakgc_arg_s terminated by WEAKGC_ARG_END, as
 *    with MPS's mps_arg_s. An unknown key is WEAKGC_RES_BAD_PARAM.
 *  - Threads: call from a thread registered with the arena (the creating thread is registered
 *    automatically). Nothing here may be called from a signal handler except weakgc_fix and
 *    weakgc_ss_collector_view inside a scan function, and weakgc_arena_contains.
 *  - Scan functions run inside the collector, possibly inside the SIGSEGV handler, on the
 *    collector-view alias of the object: they may only call weakgc_fix and
 *    weakgc_ss_collector_view. No malloc, no locks, no I/O, no reading other heap objects
 *    through their ordinary addresses (format.hpp).
 *  - Objects never move: an object's address is stable for its lifetime. */
#ifndef WEAKGC_WEAKGC_H
#define WEAKGC_WEAKGC_H

#include <stddef.h>
#include <stdint.h>

#include "weakgc/barrier.h"
#include "weakgc/export.hpp"
#include "weakgc/version.hpp"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------------ result codes */

/** Result codes; the values mirror weakgc::Status, plus WEAKGC_RES_FAIL for an unexpected
 *  C++ exception caught at the boundary. */
typedef enum weakgc_res_e {
  WEAKGC_RES_OK = 0,               /**< success */
  WEAKGC_RES_NO_MEMORY = 1,        /**< the arena (or the OS) has no memory left for the request */
  WEAKGC_RES_LIMIT = 2,            /**< a fixed internal limit was reached */
  WEAKGC_RES_BAD_PARAM = 3,        /**< an argument was invalid */
  WEAKGC_RES_NOT_FOUND = 4,        /**< the thing named is not known */
  WEAKGC_RES_ALREADY = 5,          /**< the thing is already registered or running */
  WEAKGC_RES_OS_ERROR = 6,         /**< a system call failed; errno tells more */
  WEAKGC_RES_UNIMPLEMENTED = 7,    /**< not supported (yet): an ordinary answer, not a bug */
  WEAKGC_RES_FAIL = 100,           /**< an unexpected internal failure (exception) */
  WEAKGC_RES_ENUM_MAX = 0x7fffffff /**< not a value: makes every int value a valid one */
} weakgc_res_t;

/** Returns a static, human-readable name for a result code ("ok", "no memory", ...). */
WEAKGC_API const char* weakgc_res_name(weakgc_res_t res);

/* ------------------------------------------------------------------------------ handles */

/** An arena: one garbage-collected heap. */
typedef struct weakgc_arena_s* weakgc_arena_t;
/** An object format (how the collector finds references in client objects). */
typedef struct weakgc_fmt_s* weakgc_fmt_t;
/** A pool: an allocation point of one class and format. */
typedef struct weakgc_pool_s* weakgc_pool_t;
/** A registered mutator thread. */
typedef struct weakgc_thread_s* weakgc_thread_t;
/** The scan state handed to a format's scan function. */
typedef struct weakgc_ss_s* weakgc_ss_t;
/** Identifies a registered exact root range (never 0 once registered). */
typedef uint64_t weakgc_root_t;

/* ------------------------------------------------------------------------------ keyword args */

/** A format's scan function: call weakgc_fix(ss, slot) on every reference slot of the object at
 *  `obj` (collector view), whose cell is `size` bytes (bytes not written are zero). */
typedef void (*weakgc_scan_fn)(weakgc_ss_t ss, void* obj, size_t size, void* closure);

/** An AWL format's dependent function: the mutator address of the object whose slots are
 *  splatted with those of `obj` (collector view), or NULL. Called inside the collector, with the
 *  same restrictions as a scan function. */
typedef void* (*weakgc_dependent_fn)(void* obj, void* closure);

/** A content hash for a table's keys (called with keys that are arena objects). */
typedef uint64_t (*weakgc_hash_fn)(const void* key, void* closure);
/** Content equality for a table's keys: non-zero if the stored key equals the probe. Must not
 *  allocate in the arena. */
typedef int (*weakgc_eq_fn)(const void* stored, const void* probe, void* closure);

/** Keys of keyword arguments; each documents the union member it reads. */
typedef enum weakgc_key_e {
  WEAKGC_KEY_ARGS_END = 0,        /**< terminates an argument array */
  WEAKGC_KEY_RESERVE_BYTES = 1,   /**< arena: address space to reserve (.val.size); 4 GiB */
  WEAKGC_KEY_PAUSE_TARGET_MS = 2, /**< arena: bound on incremental pauses (.val.d); 1 ms;
                                       0.001 to 10^6 */
  WEAKGC_KEY_TRIGGER_BYTES = 3,   /**< arena: allocation starting the first cycle (.val.size) */
  WEAKGC_KEY_GROWTH_FACTOR = 4,   /**< arena: next trigger = live * factor (.val.d); 1.0;
                                       up to 10^6 */
  WEAKGC_KEY_INCREMENTAL = 5,     /**< arena: 0 off, 1 on, -1 from WEAKGC_INCREMENTAL (.val.i) */
  WEAKGC_KEY_REGISTER_THREAD = 6, /**< arena: register the creating thread (.val.b); 1 */
  WEAKGC_KEY_SINGLE_ACCESS_BUDGET = 7, /**< arena: emulated accesses per weak page per cycle
                                          (.val.u); 256; at most 65535 */
  WEAKGC_KEY_EMULATION = 8,   /**< arena: emulate single accesses on weak pages (.val.b); 1 */
  WEAKGC_KEY_VIEW_PROBES = 9, /**< arena: identity-table probes compare key slots without a
                                   barrier fault during a collection (.val.b); 1 */
  WEAKGC_KEY_PENDING_MIN_PAGES = 10, /**< arena: table key and value arrays of at least this many
                                          pages are not protected at the flip (.val.size); 32,
                                          SIZE_MAX: always protected */
  WEAKGC_KEY_TABLE_MOVE_SLOTS = 11,  /**< arena: slots of a grown table's old arrays each later
                                          update moves (.val.size); 4,096, SIZE_MAX: at once */
  WEAKGC_KEY_FMT_SCAN = 20,          /**< format: the scan function (.val.scan); required */
  WEAKGC_KEY_FMT_CLOSURE = 21,       /**< format: passed to the scan function (.val.p); NULL */
  WEAKGC_KEY_FMT_DEPENDENT = 22,     /**< format, AWL pools: each object's dependent
                                          (.val.dependent); none if absent */
  WEAKGC_KEY_TABLE_CAPACITY = 30,    /**< table: entries to make room for (.val.size); 0 */
  WEAKGC_KEY_TABLE_HASH = 31,        /**< table: content keys' hash (.val.hash); identity if
                                          absent */
  WEAKGC_KEY_TABLE_EQ = 32,          /**< table: content keys' equality (.val.eq); with HASH */
  WEAKGC_KEY_TABLE_CLOSURE = 33,     /**< table: passed to hash and eq (.val.p); NULL */
  WEAKGC_KEY_ENUM_MAX = 0x7fffffff   /**< not a value: makes every int value a valid one */
} weakgc_key_t;

/** One keyword argument: a key and the value in the union member the key documents. */
typedef struct weakgc_arg_s {
  weakgc_key_t key; /**< which option */
  union {
    size_t size;                   /**< byte counts */
    double d;                      /**< times, factors */
    int i;                         /**< tri-state integers */
    int b;                         /**< booleans (0 or 1) */
    unsigned u;                    /**< counts */
    void* p;                       /**< client pointers */
    weakgc_scan_fn scan;           /**< scan functions */
    weakgc_hash_fn hash;           /**< hash functions */
    weakgc_eq_fn eq;               /**< equality functions */
    weakgc_dependent_fn dependent; /**< dependent functions */
  } val;                           /**< the value */
} weakgc_arg_s;

/** The terminator of a keyword argument array. */
#define WEAKGC_ARG_END     \
  {                        \
    WEAKGC_KEY_ARGS_END, { \
      0                    \
    }                      \
  }

/** Returns a keyword argument holding a byte count. */
static inline weakgc_arg_s weakgc_arg_size(weakgc_key_t key, size_t v) {
  weakgc_arg_s a;
  a.key = key;
  a.val.size = v;
  return a;
}
/** Returns a keyword argument holding a double. */
static inline weakgc_arg_s weakgc_arg_double(weakgc_key_t key, double v) {
  weakgc_arg_s a;
  a.key = key;
  a.val.d = v;
  return a;
}
/** Returns a keyword argument holding an int (tri-states and booleans). */
static inline weakgc_arg_s weakgc_arg_int(weakgc_key_t key, int v) {
  weakgc_arg_s a;
  a.key = key;
  a.val.i = v;
  return a;
}
/** Returns a keyword argument holding an unsigned count. */
static inline weakgc_arg_s weakgc_arg_unsigned(weakgc_key_t key, unsigned v) {
  weakgc_arg_s a;
  a.key = key;
  a.val.u = v;
  return a;
}
/** Returns a keyword argument holding a client pointer. */
static inline weakgc_arg_s weakgc_arg_pointer(weakgc_key_t key, void* v) {
  weakgc_arg_s a;
  a.key = key;
  a.val.p = v;
  return a;
}
/** Returns a keyword argument holding a scan function. */
static inline weakgc_arg_s weakgc_arg_scan(weakgc_key_t key, weakgc_scan_fn v) {
  weakgc_arg_s a;
  a.key = key;
  a.val.scan = v;
  return a;
}
/** Returns a keyword argument holding a dependent function. */
static inline weakgc_arg_s weakgc_arg_dependent(weakgc_key_t key, weakgc_dependent_fn v) {
  weakgc_arg_s a;
  a.key = key;
  a.val.dependent = v;
  return a;
}

/** Returns a keyword argument holding a hash function. */
static inline weakgc_arg_s weakgc_arg_hash(weakgc_key_t key, weakgc_hash_fn v) {
  weakgc_arg_s a;
  a.key = key;
  a.val.hash = v;
  return a;
}
/** Returns a keyword argument holding an equality function. */
static inline weakgc_arg_s weakgc_arg_eq(weakgc_key_t key, weakgc_eq_fn v) {
  weakgc_arg_s a;
  a.key = key;
  a.val.eq = v;
  return a;
}

/* ------------------------------------------------------------------------------ arenas */

/** Creates an arena with the options in `args` (NULL or WEAKGC_ARG_END alone: defaults). The
 *  calling thread is registered with it unless WEAKGC_KEY_REGISTER_THREAD is 0. */
WEAKGC_API weakgc_res_t weakgc_arena_create(weakgc_arena_t* arena_o, const weakgc_arg_s* args);
/** Destroys an arena and everything in it (pools, formats, objects); writes its event log.
 *  NULL is ignored. */
WEAKGC_API void weakgc_arena_destroy(weakgc_arena_t arena);
/** Returns 1 if `p` lies in the arena's heap (mutator view), else 0. Async-signal-safe. */
WEAKGC_API int weakgc_arena_contains(weakgc_arena_t arena, const void* p);
/** Returns the base of the allocated object containing `p`, or NULL. */
WEAKGC_API void* weakgc_object_base(weakgc_arena_t arena, const void* p);
/** Returns the size of the cell of the object at `base` (at least the size allocated), or 0. */
WEAKGC_API size_t weakgc_object_size(weakgc_arena_t arena, const void* base);
/** Returns the bytes of memory currently committed by the arena's segments. */
WEAKGC_API size_t weakgc_arena_committed(weakgc_arena_t arena);
/** Checks every heap invariant; aborts with a message on a violation. */
WEAKGC_API void weakgc_arena_verify(weakgc_arena_t arena);

/* ------------------------------------------------------------------------------ formats */

/** Creates a format from keyword arguments (WEAKGC_KEY_FMT_SCAN required,
 *  WEAKGC_KEY_FMT_CLOSURE and, for AWL pools, WEAKGC_KEY_FMT_DEPENDENT optional). A format lives
 *  until its arena is destroyed. */
WEAKGC_API weakgc_res_t weakgc_fmt_create(weakgc_fmt_t* fmt_o, weakgc_arena_t arena,
                                          const weakgc_arg_s* args);
/** Fixes one exact reference slot (collector-view address) during a scan: greys the referent if
 *  it is a heap object; foreign addresses and integers are ignored. Async-signal-safe. */
WEAKGC_API void weakgc_fix(weakgc_ss_t ss, void** slot);
/** Translates a heap address to its collector-view alias, so a scan function can read another
 *  object without touching a protected page; other addresses are returned unchanged.
 *  Async-signal-safe. */
WEAKGC_API void* weakgc_ss_collector_view(weakgc_ss_t ss, const void* p);

/* ------------------------------------------------------------------------------ pools */

/** Pool classes. */
typedef enum weakgc_pool_class_e {
  WEAKGC_POOL_AMS = 0, /**< automatic mark-sweep: exact references found by a format */
  WEAKGC_POOL_LO = 1,  /**< leaf objects: no references, never scanned */
  WEAKGC_POOL_AWL = 2, /**< automatic weak linked: weak arrays (the library's layout), or with a
                            format the client's own weak objects: its scan fixes each slot, and
                            at weak rank a slot whose referent died is set to 0 together with
                            the dependent's slot at the same offset */
  WEAKGC_POOL_ENUM_MAX = 0x7fffffff /**< not a value: makes every int value a valid one */
} weakgc_pool_class_t;

/** Reference ranks (weakgc::Rank). */
typedef enum weakgc_rank_e {
  WEAKGC_RANK_EXACT = 0,     /**< strong references */
  WEAKGC_RANK_EPHEMERON = 1, /**< values traced only while the dependent key array's key lives */
  WEAKGC_RANK_WEAK = 2,      /**< splatted when the referent dies */
  WEAKGC_RANK_ENUM_MAX = 0x7fffffff /**< not a value: makes every int value a valid one */
} weakgc_rank_t;

/** Creates a pool of class `cls` on the arena; `fmt` is required for AMS, optional for AWL (none:
 *  the library's weak arrays), and must be NULL for LO. */
WEAKGC_API weakgc_res_t weakgc_pool_create(weakgc_pool_t* pool_o, weakgc_arena_t arena,
                                           weakgc_pool_class_t cls, weakgc_fmt_t fmt);
/** Allocates `size` zeroed bytes at exact rank in `pool`. Initialise the object before the next
 *  allocation or collection step. WEAKGC_RES_NO_MEMORY after collecting, BAD_PARAM for a zero or
 *  absurd size. */
WEAKGC_API weakgc_res_t weakgc_alloc(void** p_o, weakgc_pool_t pool, size_t size);
/** Allocates like weakgc_alloc at the given rank (meaningful for AWL pools). */
WEAKGC_API weakgc_res_t weakgc_alloc_rank(void** p_o, weakgc_pool_t pool, size_t size,
                                          weakgc_rank_t rank);

/* ------------------------------------------------------------------------------ roots */

/** Registers `count` words at `base` (outside the heap) as exact roots. BAD_PARAM for a range
 *  that overlaps the heap, is not word-aligned, wraps the address space or is not all mapped. */
WEAKGC_API weakgc_res_t weakgc_root_register(weakgc_root_t* root_o, weakgc_arena_t arena,
                                             void** base, size_t count);
/** Removes a root registered with weakgc_root_register; NOT_FOUND if unknown. */
WEAKGC_API weakgc_res_t weakgc_root_remove(weakgc_arena_t arena, weakgc_root_t root);
/** Keeps `p` (and the object it points into) reachable up to this point of the program. */
static inline void weakgc_keep_alive(const void* p) {
  __asm__ __volatile__("" : : "r"(p) : "memory");
}

/* ------------------------------------------------------------------------------ threads */

/** Registers the calling thread with the arena: its stack and registers become ambiguous roots.
 *  Registering the thread that created the arena answers OK (it is registered at creation
 *  unless WEAKGC_KEY_REGISTER_THREAD was 0). Other threads: OK when the library supports
 *  several mutator threads (weakgc::Arena::register_thread), WEAKGC_RES_UNIMPLEMENTED in
 *  builds that do not. */
WEAKGC_API weakgc_res_t weakgc_thread_register(weakgc_thread_t* thread_o, weakgc_arena_t arena);
/** Ends a registration made with weakgc_thread_register on the same thread. */
WEAKGC_API weakgc_res_t weakgc_thread_deregister(weakgc_thread_t thread);

/* ------------------------------------------------------------------------------ collection */

/** Phases of a collection cycle (weakgc::Phase). */
typedef enum weakgc_phase_e {
  WEAKGC_PHASE_IDLE = 0,             /**< no cycle in progress */
  WEAKGC_PHASE_MARK = 1,             /**< marking (incremental) */
  WEAKGC_PHASE_WEAK = 2,             /**< splatting dead weak references */
  WEAKGC_PHASE_SWEEP = 3,            /**< freeing dead objects */
  WEAKGC_PHASE_ENUM_MAX = 0x7fffffff /**< not a value: makes every int value a valid one */
} weakgc_phase_t;

/** Collects now, stop-the-world: every object unreachable at the call is reclaimed. */
WEAKGC_API void weakgc_arena_collect(weakgc_arena_t arena);
/** Starts a cycle (the flip) if none is in progress, without marking further. */
WEAKGC_API void weakgc_arena_start_collect(weakgc_arena_t arena);
/** Does up to `budget_ns` of collection work; returns 1 while a cycle remains in progress. */
WEAKGC_API int weakgc_arena_step(weakgc_arena_t arena, uint64_t budget_ns);
/** Returns the current phase. */
WEAKGC_API weakgc_phase_t weakgc_arena_phase(weakgc_arena_t arena);
/** Returns 1 if incremental collection is on. */
WEAKGC_API int weakgc_arena_incremental(weakgc_arena_t arena);

/* ------------------------------------------------------------------------------ statistics */

/** A pause histogram: log2 buckets of nanoseconds, with exact count, total and max. */
typedef struct weakgc_pause_histogram_s {
  uint64_t count;      /**< pauses recorded */
  uint64_t total_ns;   /**< their sum */
  uint64_t max_ns;     /**< the longest */
  uint64_t bucket[40]; /**< bucket b counts pauses in [2^b, 2^(b+1)) ns */
} weakgc_pause_histogram_s;

/** A copy of the collector's statistics (weakgc::Stats, field for field). */
typedef struct weakgc_stats_s {
  uint64_t cycles;                 /**< completed collection cycles */
  uint64_t full_collections;       /**< cycles run to completion by collect() or exhaustion */
  uint64_t increments;             /**< incremental steps */
  uint64_t faults_scanned;         /**< barrier faults: page scanned and unprotected */
  uint64_t faults_emulated;        /**< barrier faults: single access emulated */
  uint64_t faults_declined;        /**< barrier faults: emulation declined, page scanned */
  uint64_t faults_budget;          /**< barrier faults: single-access budget used up */
  uint64_t faults_weak_phase;      /**< barrier faults: weak page scanned in the weak phase */
  uint64_t faults_concurrent;      /**< faults taken while another thread was in the handler */
  uint64_t declined_by_reason[16]; /**< declined faults by reason (emulate/emulate.hpp) */
  uint64_t pages_protected;        /**< pages protected */
  uint64_t pages_unprotected;      /**< pages unprotected */
  uint64_t mprotect_calls;         /**< mprotect system calls */
  uint64_t mprotect_failures;      /**< failed mprotect calls */
  uint64_t bytes_allocated;        /**< bytes allocated */
  uint64_t bytes_marked;           /**< bytes marked, summed over cycles */
  uint64_t bytes_swept;            /**< bytes freed by sweeping, summed over cycles */
  uint64_t segments_released;      /**< segments returned to the OS */
  uint64_t slots_splatted;         /**< weak slots (and dependents) splatted */
  uint64_t objects_finalized;      /**< finalization messages posted */
  uint64_t bad_exact_refs;         /**< exact slots naming arena memory that is not an object */
  uint64_t live_bytes;             /**< bytes in use after the last sweep plus allocation since */
  uint64_t committed_bytes;        /**< bytes of arena memory in segments in use */
  weakgc_pause_histogram_s flip_pauses;      /**< flip pauses */
  weakgc_pause_histogram_s increment_pauses; /**< incremental step pauses */
  weakgc_pause_histogram_s fault_pauses;     /**< barrier fault pauses */
  weakgc_pause_histogram_s full_pauses;      /**< stop-the-world collections */
  uint64_t pages_pending;  /**< owner-guarded array pages left unprotected at flips */
  uint64_t pending_guards; /**< accesses to pending pages guarded in software */
  uint64_t bad_awl_slots;  /**< client AWL slots holding an aligned arena word that is no object */
  uint64_t bad_dependents; /**< find_dependent results that were not client AWL objects */
} weakgc_stats_s;

/** Copies a snapshot of the arena's statistics into *stats_o. */
WEAKGC_API weakgc_res_t weakgc_arena_stats(weakgc_arena_t arena, weakgc_stats_s* stats_o);
/** Returns an upper bound of the q-quantile (0 < q <= 1) of a pause histogram, capped at its
 *  max; 0 for an empty histogram. */
WEAKGC_API uint64_t weakgc_pause_quantile_ns(const weakgc_pause_histogram_s* h, double q);

/* ------------------------------------------------------------------------------ weak arrays */

/** A slot never used. */
#define WEAKGC_SLOT_EMPTY ((uintptr_t)0)
/** A slot splatted by the collector (or removed by the client). */
#define WEAKGC_SLOT_DELETED ((uintptr_t)5)

/** The in-memory layout of a weak array (weakgc::WeakArray); slots are read and written with
 *  ordinary loads and stores, which the barrier handles during a collection. */
typedef struct weakgc_weak_array_s {
  uint64_t length;                       /**< number of slots */
  struct weakgc_weak_array_s* dependent; /**< the array splatted with this one, or NULL */
  uint64_t splatted;                     /**< slots this array's weak scans splatted */
  struct weakgc_weak_array_s* graveyard; /**< receives the surviving half of splatted entries */
  uintptr_t slot[];                      /**< `length` slots */
} weakgc_weak_array_s;

/** Allocates a weak array of `length` slots (all empty) at `rank`, naming `dependent` (NULL, or
 *  a weak array in the same arena). */
WEAKGC_API weakgc_res_t weakgc_weak_array_alloc(weakgc_weak_array_s** array_o, weakgc_arena_t arena,
                                                size_t length, weakgc_rank_t rank,
                                                weakgc_weak_array_s* dependent);
/** Makes `a` and `b` (weak arrays of the same length) each other's dependent. */
WEAKGC_API weakgc_res_t weakgc_weak_array_link(weakgc_arena_t arena, weakgc_weak_array_s* a,
                                               weakgc_weak_array_s* b);
/** Sets `array`'s graveyard: an exact-rank weak array of the same length (or NULL for none) that
 *  receives, at index i, the surviving half of each entry i that array's weak scans splat. */
WEAKGC_API weakgc_res_t weakgc_weak_array_set_graveyard(weakgc_arena_t arena,
                                                        weakgc_weak_array_s* array,
                                                        weakgc_weak_array_s* graveyard);

/* ------------------------------------------------------------------------------ finalization */

/** Registers `obj` (an object's base) for finalization: when only this registration keeps it, it
 *  is kept alive and a message naming it is posted, once. ALREADY for a duplicate. */
WEAKGC_API weakgc_res_t weakgc_finalize(weakgc_arena_t arena, void* obj);
/** Takes the oldest finalization message: returns 1 and sets *obj_o (alive again until the
 *  client drops it), or returns 0 if there is none. Never blocks. */
WEAKGC_API int weakgc_finalization_take(weakgc_arena_t arena, void** obj_o);

/* ------------------------------------------------------------------------------ expose */

/** Makes the pages of [p, p+size) accessible (scanning them now) until weakgc_unexpose, for
 *  passing heap memory to a system call or foreign code; nesting counts. */
WEAKGC_API weakgc_res_t weakgc_expose(weakgc_arena_t arena, const void* p, size_t size);
/** Ends one weakgc_expose of the same range. BAD_PARAM (and nothing changes) if some page of it
 *  is not exposed, or the range is not in the arena. */
WEAKGC_API weakgc_res_t weakgc_unexpose(weakgc_arena_t arena, const void* p, size_t size);

/* ------------------------------------------------------------------------------ weak tables */

/** A weak hash table (weakgc::WeakTable): keys and values are arena objects (or, for a half that
 *  is not weak, any word other than WEAKGC_SLOT_EMPTY and WEAKGC_SLOT_DELETED). One thread at a
 *  time; destroy every table before its arena. */
typedef struct weakgc_table_s* weakgc_table_t;

/** Which halves of a table's entries are weak (weakgc::TableKind). */
typedef enum weakgc_table_kind_e {
  WEAKGC_TABLE_WEAK_KEY = 0,         /**< keys weak, values strong while their key lives */
  WEAKGC_TABLE_WEAK_VALUE = 1,       /**< keys strong, values weak */
  WEAKGC_TABLE_DOUBLY_WEAK = 2,      /**< both weak: the entry goes when either half dies */
  WEAKGC_TABLE_EPHEMERON = 3,        /**< keys weak; a value is traced only while its key lives */
  WEAKGC_TABLE_WEAK_SET = 4,         /**< keys weak, no values */
  WEAKGC_TABLE_ENUM_MAX = 0x7fffffff /**< not a value: makes every int value a valid one */
} weakgc_table_kind_t;

/** An iteration position; start with WEAKGC_TABLE_CURSOR_INIT. */
typedef struct weakgc_table_cursor_s {
  size_t gen;  /**< internal */
  size_t slot; /**< internal */
} weakgc_table_cursor_s;
/** The position before a table's first entry. */
#define WEAKGC_TABLE_CURSOR_INIT \
  { 0, 0 }

/** Counters of one table (weakgc::TableStats). */
typedef struct weakgc_table_stats_s {
  size_t capacity;         /**< slots over all generations */
  size_t generations;      /**< array sets (more than one only while a move is deferred) */
  size_t occupied;         /**< full control bytes (live entries and splats not yet noticed) */
  size_t tombstones;       /**< deleted control bytes */
  uint64_t splats_noticed; /**< splatted entries turned into tombstones */
  uint64_t rebuilds;       /**< compactions and growths that moved entries */
  uint64_t deferred_moves; /**< growths during marking that added a generation instead */
} weakgc_table_stats_s;

/** Creates a table of `kind` with keyword arguments (WEAKGC_KEY_TABLE_*; NULL for an identity
 *  table of default capacity). Content keys need both HASH and EQ. */
WEAKGC_API weakgc_res_t weakgc_table_create(weakgc_table_t* table_o, weakgc_arena_t arena,
                                            weakgc_table_kind_t kind, const weakgc_arg_s* args);
/** Destroys a table (its arrays become garbage). NULL is ignored. */
WEAKGC_API void weakgc_table_destroy(weakgc_table_t table);
/** Returns the table's kind. */
WEAKGC_API weakgc_table_kind_t weakgc_table_kind(weakgc_table_t table);
/** Returns the value stored for `key` (strong: the caller holds it now), or NULL; for a set, the
 *  stored key equal to `key`, or NULL. */
WEAKGC_API void* weakgc_table_get(weakgc_table_t table, const void* key);
/** Returns 1 if `key` has an entry, else 0. Identity tables load nothing (keep nothing alive);
 *  content tables load the one stored key whose full hash matches, to compare it. */
WEAKGC_API int weakgc_table_contains(weakgc_table_t table, const void* key);
/** Stores key -> value (value ignored for sets, must not be NULL otherwise). BAD_PARAM for a
 *  NULL or WEAKGC_SLOT_DELETED key or value, or one inside the heap that is not an allocated
 *  object's base (an interior or freed address). *old_o (may be
 *  NULL) receives the value replaced (for sets, the equal key already present) or NULL.
 *  NO_MEMORY if the arena is exhausted. */
WEAKGC_API weakgc_res_t weakgc_table_put(weakgc_table_t table, void* key, void* value,
                                         void** old_o);
/** Removes `key`'s entry; returns its value (for sets, the stored key), or NULL. */
WEAKGC_API void* weakgc_table_remove(weakgc_table_t table, const void* key);
/** Removes every entry (without dead-entry notifications). */
WEAKGC_API void weakgc_table_clear(weakgc_table_t table);
/** Makes room for `n` entries without further growth. NO_MEMORY if the arena is exhausted;
 *  BAD_PARAM if no table can hold `n` entries (more than 2^40 slots). */
WEAKGC_API weakgc_res_t weakgc_table_reserve(weakgc_table_t table, size_t n);
/** Returns the number of entries: exact between cycles, an upper bound during a collection. */
WEAKGC_API size_t weakgc_table_size(weakgc_table_t table);
/** Content lookup with a probe that is not a key: returns the stored key for which
 *  eq(stored, probe, closure) holds among keys of content hash `hash` (strong), or NULL; sets
 *  *value_o (may be NULL) to its value. */
WEAKGC_API void* weakgc_table_find_by(weakgc_table_t table, uint64_t hash, const void* probe,
                                      weakgc_eq_fn eq, void* closure, void** value_o);
/** Inserts key -> value with content hash `hash` (ignored by identity tables) for a key just
 *  looked up and not found. NO_MEMORY if the arena is exhausted; BAD_PARAM as for put. */
WEAKGC_API weakgc_res_t weakgc_table_put_new(weakgc_table_t table, uint64_t hash, void* key,
                                             void* value);
/** Turns on dead-entry notification: the surviving half of every entry the collector splats
 *  from now on is queued, alive, until taken. BAD_PARAM for sets. */
WEAKGC_API weakgc_res_t weakgc_table_enable_notification(weakgc_table_t table);
/** Takes the oldest dead-entry notification: returns 1 and sets *key_o and *value_o (exactly one
 *  non-NULL: the half that survived), or returns 0 if there is none. */
WEAKGC_API int weakgc_table_take_dead(weakgc_table_t table, void** key_o, void** value_o);
/** Advances `cursor` to the next present entry (never a splatted one): returns 1 and sets
 *  *key_o and *value_o (NULL for sets; both strong now), or 0 at the end. Do not put, remove,
 *  clear or reserve while iterating. */
WEAKGC_API int weakgc_table_next(weakgc_table_t table, weakgc_table_cursor_s* cursor, void** key_o,
                                 void** value_o);
/** Copies the table's counters into *stats_o. */
WEAKGC_API weakgc_res_t weakgc_table_stats(weakgc_table_t table, weakgc_table_stats_s* stats_o);

/* ------------------------------------------------------------------------------ intern set */

/** A weak set of symbols hashed by content (weakgc::InternSet). One thread at a time; destroy it
 *  before its arena. */
typedef struct weakgc_intern_set_s* weakgc_intern_set_t;

/** An interned string (weakgc::Symbol): a leaf object in the arena. Never modify it. */
typedef struct weakgc_symbol_s {
  uint64_t hash;   /**< XXH3-64 of the bytes */
  uint64_t length; /**< bytes, not counting the terminating NUL */
  char bytes[];    /**< `length` bytes (may contain NULs), then a NUL */
} weakgc_symbol_s;

/** Creates an empty intern set with room for `capacity` symbols (0: a default); BAD_PARAM for a
 *  capacity no table can hold. */
WEAKGC_API weakgc_res_t weakgc_intern_set_create(weakgc_intern_set_t* set_o, weakgc_arena_t arena,
                                                 size_t capacity);
/** Destroys an intern set (its symbols live on while referenced). NULL is ignored. */
WEAKGC_API void weakgc_intern_set_destroy(weakgc_intern_set_t set);
/** Sets *symbol_o to the one live symbol with these `length` bytes, creating it if none is
 *  alive. NO_MEMORY if the arena is exhausted. */
WEAKGC_API weakgc_res_t weakgc_intern(weakgc_intern_set_t set, const char* bytes, size_t length,
                                      weakgc_symbol_s** symbol_o);
/** Returns the live symbol with these bytes, or NULL (creates nothing). */
WEAKGC_API weakgc_symbol_s* weakgc_intern_find(weakgc_intern_set_t set, const char* bytes,
                                               size_t length);
/** Returns the number of symbols: exact whenever no weak phase is running, else an upper bound. */
WEAKGC_API size_t weakgc_intern_set_size(weakgc_intern_set_t set);
/** Returns the number of symbols created since the set was made. */
WEAKGC_API uint64_t weakgc_intern_symbols_created(weakgc_intern_set_t set);
/** Advances `cursor` to the next symbol present: returns 1 and sets *symbol_o, or 0 at the end. */
WEAKGC_API int weakgc_intern_set_next(weakgc_intern_set_t set, weakgc_table_cursor_s* cursor,
                                      weakgc_symbol_s** symbol_o);
/** Returns the content hash interning uses (XXH3-64 of the bytes). */
WEAKGC_API uint64_t weakgc_intern_hash(const char* bytes, size_t length);

/* ------------------------------------------------------------------------- guarded arrays */

/** A root array of references (weakgc::RawGuardedArray) read and written only through the calls
 *  below: what it holds stays alive, and an array of ArenaOptions::pending_min_pages pages or
 *  more is left unprotected at the flip and scanned incrementally, so a large root set does not
 *  lengthen the flip (a registered root range is scanned whole there). */
typedef struct weakgc_guarded_array_s* weakgc_guarded_array_t;

/** Creates an array of `length` NULL slots. BAD_PARAM for a length no array can have, NO_MEMORY
 *  if the arena is exhausted. */
WEAKGC_API weakgc_res_t weakgc_guarded_array_create(weakgc_guarded_array_t* array_o,
                                                    weakgc_arena_t arena, size_t length);
/** Destroys an array (it no longer keeps what it held alive). NULL is ignored. */
WEAKGC_API void weakgc_guarded_array_destroy(weakgc_guarded_array_t array);
/** Returns the number of slots (0 for NULL). */
WEAKGC_API size_t weakgc_guarded_array_length(weakgc_guarded_array_t array);
/** Changes the number of slots to `length` (slots below both lengths keep their values, new ones
 *  are NULL). BAD_PARAM for a length no array can have, NO_MEMORY if the arena is exhausted: the
 *  array is unchanged then. */
WEAKGC_API weakgc_res_t weakgc_guarded_array_resize(weakgc_guarded_array_t array, size_t length);
/** Sets *value_o to slot i (strong: the caller holds it now). BAD_PARAM if i is out of range. */
WEAKGC_API weakgc_res_t weakgc_guarded_array_get(weakgc_guarded_array_t array, size_t i,
                                                 void** value_o);
/** Stores `value` (an object's base address, or NULL) in slot i. BAD_PARAM if i is out of
 *  range. */
WEAKGC_API weakgc_res_t weakgc_guarded_array_set(weakgc_guarded_array_t array, size_t i,
                                                 void* value);
/** Copies slots [first, first + n) to out[0, n), as n gets would (guarding once a page, not once
 *  a slot). BAD_PARAM (nothing copied) if the range exceeds the length or out is NULL with n > 0.
 */
WEAKGC_API weakgc_res_t weakgc_guarded_array_get_range(weakgc_guarded_array_t array, size_t first,
                                                       size_t n, void** out);
/** Stores values[0, n) in slots [first, first + n), as n sets would. BAD_PARAM (nothing stored)
 *  if the range exceeds the length or values is NULL with n > 0. */
WEAKGC_API weakgc_res_t weakgc_guarded_array_set_range(weakgc_guarded_array_t array, size_t first,
                                                       size_t n, void* const* values);

/* ------------------------------------------------------------------------------ event log */

/** Starts the arena's event log: a preallocated ring of `capacity` fixed-size records (0: 65,536)
 *  of flips, increments, faults by outcome, splats and sweeps, with CLOCK_MONOTONIC timestamps.
 *  Records are written to `path` (created or truncated) or, if path is NULL, to the open
 *  descriptor `fd` (not closed by the library) on weakgc_event_log_flush, _stop and at arena
 *  destruction, never from the fault handler. ALREADY if a log is running. The environment
 *  variable WEAKGC_EVENT_LOG=<path> starts one at arena creation. */
WEAKGC_API weakgc_res_t weakgc_event_log_start(weakgc_arena_t arena, const char* path, int fd,
                                               size_t capacity);
/** Writes the records collected so far and empties the ring; NOT_FOUND if no log is running. */
WEAKGC_API weakgc_res_t weakgc_event_log_flush(weakgc_arena_t arena);
/** Flushes and ends the event log; NOT_FOUND if no log is running. */
WEAKGC_API weakgc_res_t weakgc_event_log_stop(weakgc_arena_t arena);

#ifdef __cplusplus
}
#endif

#endif
