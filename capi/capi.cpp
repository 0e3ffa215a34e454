// The C interface (include/weakgc/weakgc.h): handles wrapping the C++ API, keyword-argument
// parsing, and the exception firewall (docs/design/capi.md).
//
// .req.firewall  every extern "C" entry point is noexcept and catches everything: a C caller
//                 never sees a C++ exception (a result code instead: docs/design/capi.md).
// .req.mirror    result codes, ranks, phases, pool classes, the weak-array layout and the
//                 statistics mirror their C++ counterparts; static_asserts below keep them equal.
// .dec.owner     a C arena owns its formats and pools: they live until weakgc_arena_destroy,
//                 because a pool keeps a copy of its format whose closure points at the C format.
#include "weakgc/weakgc.h"

#include <pthread.h>

#include <algorithm>
#include <cstddef>
#include <memory>
#include <new>
#include <stdexcept>
#include <vector>

#include "core/events.hpp"  // the event log (internal: the C API is its public face)
#include "weakgc/arena.hpp"
#include "weakgc/guarded_array.hpp"
#include "weakgc/intern.hpp"
#include "weakgc/stats.hpp"
#include "weakgc/tables.hpp"
#include "weakgc/weak_array.hpp"

struct weakgc_fmt_s {
  weakgc_scan_fn scan = nullptr;
  weakgc_dependent_fn dependent = nullptr;
  void* closure = nullptr;
};

struct weakgc_pool_s {
  weakgc_arena_s* arena = nullptr;
  weakgc::Pool* pool = nullptr;
};

struct weakgc_arena_s {
  // Destroyed in reverse order: the Arena (and its pools) before the formats they point at.
  std::vector<std::unique_ptr<weakgc_fmt_s>> formats;
  std::vector<std::unique_ptr<weakgc_pool_s>> pools;
  std::unique_ptr<weakgc::Arena> arena;
  pthread_t creator;
};

struct weakgc_table_s {
  // Content keys: the C callbacks behind the C++ hooks (the hooks' ctx points here).
  weakgc_hash_fn hash = nullptr;
  weakgc_eq_fn eq = nullptr;
  void* closure = nullptr;
  std::unique_ptr<weakgc::WeakTable> table;
};

struct weakgc_guarded_array_s {
  weakgc_guarded_array_s(weakgc::Arena& arena, size_t length) : array(arena, length) {}
  weakgc::RawGuardedArray array;
};

struct weakgc_intern_set_s {
  std::unique_ptr<weakgc::InternSet> set;
};

struct weakgc_thread_s {
  weakgc_arena_s* arena = nullptr;
  pthread_t thread;
  bool unregister = false;  // this registration made the thread known (not the arena's creator)
};

namespace {

using weakgc::Status;

// .req.mirror
static_assert(WEAKGC_RES_OK == static_cast<int>(Status::kOk));
static_assert(WEAKGC_RES_NO_MEMORY == static_cast<int>(Status::kNoMemory));
static_assert(WEAKGC_RES_LIMIT == static_cast<int>(Status::kLimit));
static_assert(WEAKGC_RES_BAD_PARAM == static_cast<int>(Status::kBadParam));
static_assert(WEAKGC_RES_NOT_FOUND == static_cast<int>(Status::kNotFound));
static_assert(WEAKGC_RES_ALREADY == static_cast<int>(Status::kAlready));
static_assert(WEAKGC_RES_OS_ERROR == static_cast<int>(Status::kOsError));
static_assert(WEAKGC_RES_UNIMPLEMENTED == static_cast<int>(Status::kUnimplemented));
static_assert(WEAKGC_RANK_EXACT == static_cast<int>(weakgc::Rank::kExact));
static_assert(WEAKGC_RANK_EPHEMERON == static_cast<int>(weakgc::Rank::kEphemeron));
static_assert(WEAKGC_RANK_WEAK == static_cast<int>(weakgc::Rank::kWeak));
static_assert(WEAKGC_PHASE_IDLE == static_cast<int>(weakgc::Phase::kIdle));
static_assert(WEAKGC_PHASE_MARK == static_cast<int>(weakgc::Phase::kMark));
static_assert(WEAKGC_PHASE_WEAK == static_cast<int>(weakgc::Phase::kWeak));
static_assert(WEAKGC_PHASE_SWEEP == static_cast<int>(weakgc::Phase::kSweep));
static_assert(WEAKGC_POOL_AMS == static_cast<int>(weakgc::PoolClass::kAMS));
static_assert(WEAKGC_POOL_LO == static_cast<int>(weakgc::PoolClass::kLO));
static_assert(WEAKGC_POOL_AWL == static_cast<int>(weakgc::PoolClass::kAWL));
static_assert(WEAKGC_SLOT_EMPTY == weakgc::kEmpty && WEAKGC_SLOT_DELETED == weakgc::kDeleted);
static_assert(sizeof(weakgc_weak_array_s) == sizeof(weakgc::WeakArray));
static_assert(offsetof(weakgc_weak_array_s, length) == offsetof(weakgc::WeakArray, length));
static_assert(offsetof(weakgc_weak_array_s, dependent) == offsetof(weakgc::WeakArray, dependent));
static_assert(offsetof(weakgc_weak_array_s, splatted) == offsetof(weakgc::WeakArray, splatted));
static_assert(offsetof(weakgc_weak_array_s, graveyard) == offsetof(weakgc::WeakArray, graveyard));
static_assert(offsetof(weakgc_weak_array_s, slot) == offsetof(weakgc::WeakArray, slot));
static_assert(weakgc::PauseHistogram::kBuckets == 40);
static_assert(sizeof(weakgc_stats_s::declined_by_reason) ==
              sizeof(weakgc::Stats::declined_by_reason));

static_assert(WEAKGC_TABLE_WEAK_KEY == static_cast<int>(weakgc::TableKind::kWeakKey));
static_assert(WEAKGC_TABLE_WEAK_VALUE == static_cast<int>(weakgc::TableKind::kWeakValue));
static_assert(WEAKGC_TABLE_DOUBLY_WEAK == static_cast<int>(weakgc::TableKind::kDoublyWeak));
static_assert(WEAKGC_TABLE_EPHEMERON == static_cast<int>(weakgc::TableKind::kEphemeron));
static_assert(WEAKGC_TABLE_WEAK_SET == static_cast<int>(weakgc::TableKind::kWeakSet));
static_assert(sizeof(weakgc_table_cursor_s) == sizeof(weakgc::WeakTable::Cursor));
static_assert(offsetof(weakgc_table_cursor_s, gen) == offsetof(weakgc::WeakTable::Cursor, gen));
static_assert(offsetof(weakgc_table_cursor_s, slot) == offsetof(weakgc::WeakTable::Cursor, slot));
static_assert(offsetof(weakgc_symbol_s, hash) == offsetof(weakgc::Symbol, hash));
static_assert(offsetof(weakgc_symbol_s, length) == offsetof(weakgc::Symbol, length));
static_assert(offsetof(weakgc_symbol_s, bytes) == offsetof(weakgc::Symbol, bytes));

weakgc_res_t res(Status s) noexcept {
  return static_cast<weakgc_res_t>(s);
}

// .req.firewall: runs f, turning std::bad_alloc into WEAKGC_RES_NO_MEMORY (the typed layers
// throw it when the arena is exhausted), std::logic_error (a bad argument) into
// WEAKGC_RES_BAD_PARAM and any other exception into WEAKGC_RES_FAIL.
template <class F>
weakgc_res_t guarded(F&& f) noexcept {
  try {
    return f();
  } catch (const std::bad_alloc&) {
    return WEAKGC_RES_NO_MEMORY;
  } catch (const std::logic_error&) {  // invalid_argument, length_error: what the caller passed
    return WEAKGC_RES_BAD_PARAM;
  } catch (...) {
    return WEAKGC_RES_FAIL;
  }
}

// Runs f for a result of type T, answering `fallback` if it throws (.req.firewall).
template <class T, class F>
T guarded_value(T fallback, F&& f) noexcept {
  try {
    return f();
  } catch (...) {
    return fallback;
  }
}

// Content-key hooks: the C++ table calls these with the C table as ctx.
uint64_t table_hash(const void* key, void* ctx) {
  auto* t = static_cast<weakgc_table_s*>(ctx);
  return t->hash(key, t->closure);
}
bool table_eq(const void* stored, const void* probe, void* ctx) {
  auto* t = static_cast<weakgc_table_s*>(ctx);
  return t->eq(stored, probe, t->closure) != 0;
}
// find_by's one-off equality: the C function and its closure.
struct ProbeEq {
  weakgc_eq_fn eq;
  void* closure;
};
bool probe_eq(const void* stored, const void* probe, void* ctx) {
  auto* p = static_cast<ProbeEq*>(ctx);
  return p->eq(stored, probe, p->closure) != 0;
}

weakgc::WeakTable::Cursor* cxx(weakgc_table_cursor_s* c) noexcept {
  return reinterpret_cast<weakgc::WeakTable::Cursor*>(c);
}

weakgc::Arena& cxx(weakgc_arena_t a) noexcept {
  return *a->arena;
}

weakgc::WeakArray* cxx(weakgc_weak_array_s* w) noexcept {
  return reinterpret_cast<weakgc::WeakArray*>(w);
}

// The Format trampoline: the C scan function sees the ScanState as an opaque weakgc_ss_t.
// Runs inside the collector, possibly in the fault handler. signal-safe.
void scan_trampoline(weakgc::ScanState& ss, void* obj, size_t size, void* closure) {
  auto* f = static_cast<weakgc_fmt_s*>(closure);
  f->scan(reinterpret_cast<weakgc_ss_t>(&ss), obj, size, f->closure);
}

void* dependent_trampoline(void* obj, void* closure) {
  auto* f = static_cast<weakgc_fmt_s*>(closure);
  return f->dependent(obj, f->closure);
}

void copy_histogram(const weakgc::PauseHistogram& from, weakgc_pause_histogram_s* to) noexcept {
  to->count = from.count;
  to->total_ns = from.total_ns;
  to->max_ns = from.max_ns;
  for (int b = 0; b < weakgc::PauseHistogram::kBuckets; ++b) to->bucket[b] = from.bucket[b];
}

// Whether [first, first + n) lies within the array, with memory for n slots if n > 0.
bool range_ok(weakgc_guarded_array_t array, size_t first, size_t n, const void* mem) {
  size_t len = array->array.size();
  return first <= len && n <= len - first && (n == 0 || mem != nullptr);
}

}  // namespace

extern "C" {

const char* weakgc_version(void) {
  return WEAKGC_VERSION_STRING;
}

int weakgc_version_number(void) {
  return WEAKGC_VERSION_NUMBER;
}

const char* weakgc_res_name(weakgc_res_t r) {
  if (r == WEAKGC_RES_FAIL) return "internal failure";
  if (r < WEAKGC_RES_OK || r > WEAKGC_RES_UNIMPLEMENTED) return "unknown result";
  return weakgc::status_name(static_cast<Status>(r));
}

// ------------------------------------------------------------------------------------- arenas

weakgc_res_t weakgc_arena_create(weakgc_arena_t* arena_o, const weakgc_arg_s* args) {
  if (arena_o == nullptr) return WEAKGC_RES_BAD_PARAM;
  return guarded([&]() -> weakgc_res_t {
    weakgc::ArenaOptions o;
    for (const weakgc_arg_s* a = args; a != nullptr && a->key != WEAKGC_KEY_ARGS_END; ++a) {
      switch (a->key) {
        case WEAKGC_KEY_RESERVE_BYTES:
          o.reserve_bytes = a->val.size;
          break;
        case WEAKGC_KEY_PAUSE_TARGET_MS:
          o.pause_target_ms = a->val.d;
          break;
        case WEAKGC_KEY_TRIGGER_BYTES:
          o.trigger_bytes = a->val.size;
          break;
        case WEAKGC_KEY_GROWTH_FACTOR:
          o.growth_factor = a->val.d;
          break;
        case WEAKGC_KEY_INCREMENTAL:
          if (a->val.i < -1 || a->val.i > 1) return WEAKGC_RES_BAD_PARAM;
          o.incremental = a->val.i;
          break;
        case WEAKGC_KEY_REGISTER_THREAD:
          o.register_thread = a->val.b != 0;
          break;
        case WEAKGC_KEY_SINGLE_ACCESS_BUDGET:
          o.single_access_budget = a->val.u;
          break;
        case WEAKGC_KEY_EMULATION:
          o.emulation = a->val.b != 0;
          break;
        case WEAKGC_KEY_VIEW_PROBES:
          o.view_probes = a->val.b != 0;
          break;
        case WEAKGC_KEY_PENDING_MIN_PAGES:
          o.pending_min_pages = a->val.size;
          break;
        case WEAKGC_KEY_TABLE_MOVE_SLOTS:
          o.table_move_slots = a->val.size;
          break;
        default:
          return WEAKGC_RES_BAD_PARAM;  // includes format keys: not an arena option
      }
    }
    auto wrapper = std::make_unique<weakgc_arena_s>();
    Status st;
    wrapper->arena = weakgc::Arena::create(o, &st);
    if (!wrapper->arena) return res(st);
    wrapper->creator = pthread_self();
    *arena_o = wrapper.release();
    return WEAKGC_RES_OK;
  });
}

void weakgc_arena_destroy(weakgc_arena_t arena) {
  delete arena;
}

int weakgc_arena_contains(weakgc_arena_t arena, const void* p) {
  return arena != nullptr && cxx(arena).contains(p) ? 1 : 0;
}

void* weakgc_object_base(weakgc_arena_t arena, const void* p) {
  return arena != nullptr ? cxx(arena).object_base(p) : nullptr;
}

size_t weakgc_object_size(weakgc_arena_t arena, const void* base) {
  return arena != nullptr ? cxx(arena).object_size(base) : 0;
}

size_t weakgc_arena_committed(weakgc_arena_t arena) {
  return arena != nullptr ? cxx(arena).committed_bytes() : 0;
}

void weakgc_arena_verify(weakgc_arena_t arena) {
  if (arena != nullptr) cxx(arena).verify();
}

// ------------------------------------------------------------------------------------ formats

weakgc_res_t weakgc_fmt_create(weakgc_fmt_t* fmt_o, weakgc_arena_t arena,
                               const weakgc_arg_s* args) {
  if (fmt_o == nullptr || arena == nullptr) return WEAKGC_RES_BAD_PARAM;
  return guarded([&]() -> weakgc_res_t {
    auto f = std::make_unique<weakgc_fmt_s>();
    for (const weakgc_arg_s* a = args; a != nullptr && a->key != WEAKGC_KEY_ARGS_END; ++a) {
      switch (a->key) {
        case WEAKGC_KEY_FMT_SCAN:
          f->scan = a->val.scan;
          break;
        case WEAKGC_KEY_FMT_CLOSURE:
          f->closure = a->val.p;
          break;
        case WEAKGC_KEY_FMT_DEPENDENT:
          f->dependent = a->val.dependent;
          break;
        default:
          return WEAKGC_RES_BAD_PARAM;
      }
    }
    if (f->scan == nullptr) return WEAKGC_RES_BAD_PARAM;
    arena->formats.push_back(std::move(f));
    *fmt_o = arena->formats.back().get();
    return WEAKGC_RES_OK;
  });
}

void weakgc_fix(weakgc_ss_t ss, void** slot) {
  reinterpret_cast<weakgc::ScanState*>(ss)->fix(slot);
}

void* weakgc_ss_collector_view(weakgc_ss_t ss, const void* p) {
  return reinterpret_cast<weakgc::ScanState*>(ss)->collector_view(p);
}

// -------------------------------------------------------------------------------------- pools

weakgc_res_t weakgc_pool_create(weakgc_pool_t* pool_o, weakgc_arena_t arena,
                                weakgc_pool_class_t cls, weakgc_fmt_t fmt) {
  if (pool_o == nullptr || arena == nullptr) return WEAKGC_RES_BAD_PARAM;
  if (cls != WEAKGC_POOL_AMS && cls != WEAKGC_POOL_LO && cls != WEAKGC_POOL_AWL)
    return WEAKGC_RES_BAD_PARAM;
  if (cls == WEAKGC_POOL_AMS && fmt == nullptr) return WEAKGC_RES_BAD_PARAM;
  if (cls == WEAKGC_POOL_LO && fmt != nullptr) return WEAKGC_RES_BAD_PARAM;
  if (cls == WEAKGC_POOL_AMS && fmt->dependent != nullptr) return WEAKGC_RES_BAD_PARAM;
  // A format of another arena (it would be freed with that arena while this pool uses it).
  if (fmt != nullptr && std::none_of(arena->formats.begin(), arena->formats.end(),
                                     [fmt](const auto& f) { return f.get() == fmt; }))
    return WEAKGC_RES_BAD_PARAM;
  return guarded([&]() -> weakgc_res_t {
    auto p = std::make_unique<weakgc_pool_s>();
    p->arena = arena;
    weakgc::Format f;
    if (fmt != nullptr) {
      f.scan = &scan_trampoline;
      if (fmt->dependent != nullptr) f.find_dependent = &dependent_trampoline;
      f.closure = fmt;
    }
    Status st = cxx(arena).create_pool(static_cast<weakgc::PoolClass>(cls),
                                       fmt != nullptr ? &f : nullptr, &p->pool);
    if (st != Status::kOk) return res(st);
    arena->pools.push_back(std::move(p));
    *pool_o = arena->pools.back().get();
    return WEAKGC_RES_OK;
  });
}

weakgc_res_t weakgc_alloc(void** p_o, weakgc_pool_t pool, size_t size) {
  return weakgc_alloc_rank(p_o, pool, size, WEAKGC_RANK_EXACT);
}

weakgc_res_t weakgc_alloc_rank(void** p_o, weakgc_pool_t pool, size_t size, weakgc_rank_t rank) {
  if (p_o == nullptr || pool == nullptr) return WEAKGC_RES_BAD_PARAM;
  if (rank != WEAKGC_RANK_EXACT && rank != WEAKGC_RANK_EPHEMERON && rank != WEAKGC_RANK_WEAK)
    return WEAKGC_RES_BAD_PARAM;
  return res(cxx(pool->arena).alloc(pool->pool, size, p_o, static_cast<weakgc::Rank>(rank)));
}

// -------------------------------------------------------------------------------------- roots

weakgc_res_t weakgc_root_register(weakgc_root_t* root_o, weakgc_arena_t arena, void** base,
                                  size_t count) {
  if (root_o == nullptr || arena == nullptr) return WEAKGC_RES_BAD_PARAM;
  weakgc::RootId id;
  Status st = cxx(arena).register_root(base, count, &id);
  if (st == Status::kOk) *root_o = id.value;
  return res(st);
}

weakgc_res_t weakgc_root_remove(weakgc_arena_t arena, weakgc_root_t root) {
  if (arena == nullptr) return WEAKGC_RES_BAD_PARAM;
  weakgc::RootId id;
  id.value = root;
  return res(cxx(arena).remove_root(id));
}

// ------------------------------------------------------------------------------------ threads

weakgc_res_t weakgc_thread_register(weakgc_thread_t* thread_o, weakgc_arena_t arena) {
  if (thread_o == nullptr || arena == nullptr) return WEAKGC_RES_BAD_PARAM;
  return guarded([&]() -> weakgc_res_t {
    auto t = std::make_unique<weakgc_thread_s>();
    t->arena = arena;
    t->thread = pthread_self();
    bool creator = pthread_equal(arena->creator, t->thread) != 0;
    if constexpr (requires(weakgc::Arena & a) { a.register_thread(); }) {
      Status st = cxx(arena).register_thread();
      if (st == Status::kOk) {
        t->unregister = true;
      } else if (st != Status::kAlready) {
        return res(st);
      }
    } else if (!creator) {
      return WEAKGC_RES_UNIMPLEMENTED;  // one mutator thread only in this build
    }
    *thread_o = t.release();
    return WEAKGC_RES_OK;
  });
}

weakgc_res_t weakgc_thread_deregister(weakgc_thread_t thread) {
  if (thread == nullptr) return WEAKGC_RES_BAD_PARAM;
  if (pthread_equal(thread->thread, pthread_self()) == 0) return WEAKGC_RES_BAD_PARAM;
  return guarded([&]() -> weakgc_res_t {
    Status st = Status::kOk;
    if constexpr (requires(weakgc::Arena & a) { a.unregister_thread(); }) {
      if (thread->unregister) st = cxx(thread->arena).unregister_thread();
    }
    delete thread;
    return res(st);
  });
}

// --------------------------------------------------------------------------------- collection

void weakgc_arena_collect(weakgc_arena_t arena) {
  if (arena != nullptr) cxx(arena).collect();
}

void weakgc_arena_start_collect(weakgc_arena_t arena) {
  if (arena != nullptr) cxx(arena).start_cycle();
}

int weakgc_arena_step(weakgc_arena_t arena, uint64_t budget_ns) {
  return arena != nullptr && cxx(arena).step(budget_ns) ? 1 : 0;
}

weakgc_phase_t weakgc_arena_phase(weakgc_arena_t arena) {
  if (arena == nullptr) return WEAKGC_PHASE_ENUM_MAX;
  return static_cast<weakgc_phase_t>(cxx(arena).phase());
}

int weakgc_arena_incremental(weakgc_arena_t arena) {
  return arena != nullptr && cxx(arena).incremental() ? 1 : 0;
}

// --------------------------------------------------------------------------------- statistics

weakgc_res_t weakgc_arena_stats(weakgc_arena_t arena, weakgc_stats_s* stats_o) {
  if (arena == nullptr || stats_o == nullptr) return WEAKGC_RES_BAD_PARAM;
  weakgc::Stats s = cxx(arena).stats();
  weakgc_stats_s* o = stats_o;
  o->cycles = s.cycles;
  o->full_collections = s.full_collections;
  o->increments = s.increments;
  o->faults_scanned = s.faults_scanned;
  o->faults_emulated = s.faults_emulated;
  o->faults_declined = s.faults_declined;
  o->faults_budget = s.faults_budget;
  o->faults_weak_phase = s.faults_weak_phase;
  o->faults_concurrent = 0;
  if constexpr (requires { s.faults_concurrent; }) o->faults_concurrent = s.faults_concurrent;
  for (size_t i = 0; i < sizeof o->declined_by_reason / sizeof o->declined_by_reason[0]; ++i)
    o->declined_by_reason[i] = s.declined_by_reason[i];
  o->pages_protected = s.pages_protected;
  o->pages_unprotected = s.pages_unprotected;
  o->mprotect_calls = s.mprotect_calls;
  o->mprotect_failures = s.mprotect_failures;
  o->bytes_allocated = s.bytes_allocated;
  o->bytes_marked = s.bytes_marked;
  o->bytes_swept = s.bytes_swept;
  o->segments_released = s.segments_released;
  o->slots_splatted = s.slots_splatted;
  o->objects_finalized = s.objects_finalized;
  o->bad_exact_refs = s.bad_exact_refs;
  o->live_bytes = s.live_bytes;
  o->committed_bytes = s.committed_bytes;
  copy_histogram(s.flip_pauses, &o->flip_pauses);
  copy_histogram(s.increment_pauses, &o->increment_pauses);
  copy_histogram(s.fault_pauses, &o->fault_pauses);
  copy_histogram(s.full_pauses, &o->full_pauses);
  o->pages_pending = s.pages_pending;
  o->pending_guards = s.pending_guards;
  o->bad_awl_slots = s.bad_awl_slots;
  o->bad_dependents = s.bad_dependents;
  return WEAKGC_RES_OK;
}

uint64_t weakgc_pause_quantile_ns(const weakgc_pause_histogram_s* h, double q) {
  if (h == nullptr) return 0;
  weakgc::PauseHistogram p;
  p.count = h->count;
  p.total_ns = h->total_ns;
  p.max_ns = h->max_ns;
  for (int b = 0; b < weakgc::PauseHistogram::kBuckets; ++b) p.bucket[b] = h->bucket[b];
  return p.quantile_ns(q);
}

// -------------------------------------------------------------------------------- weak arrays

weakgc_res_t weakgc_weak_array_alloc(weakgc_weak_array_s** array_o, weakgc_arena_t arena,
                                     size_t length, weakgc_rank_t rank,
                                     weakgc_weak_array_s* dependent) {
  if (array_o == nullptr || arena == nullptr) return WEAKGC_RES_BAD_PARAM;
  if (rank != WEAKGC_RANK_EXACT && rank != WEAKGC_RANK_EPHEMERON && rank != WEAKGC_RANK_WEAK)
    return WEAKGC_RES_BAD_PARAM;
  weakgc::WeakArray* out = nullptr;
  Status st = weakgc::alloc_weak_array(cxx(arena), length, static_cast<weakgc::Rank>(rank),
                                       cxx(dependent), &out);
  if (st == Status::kOk) *array_o = reinterpret_cast<weakgc_weak_array_s*>(out);
  return res(st);
}

weakgc_res_t weakgc_weak_array_link(weakgc_arena_t arena, weakgc_weak_array_s* a,
                                    weakgc_weak_array_s* b) {
  if (arena == nullptr || a == nullptr || b == nullptr) return WEAKGC_RES_BAD_PARAM;
  return res(weakgc::link_dependents(cxx(arena), cxx(a), cxx(b)));
}

weakgc_res_t weakgc_weak_array_set_graveyard(weakgc_arena_t arena, weakgc_weak_array_s* array,
                                             weakgc_weak_array_s* graveyard) {
  if (arena == nullptr || array == nullptr) return WEAKGC_RES_BAD_PARAM;
  return res(weakgc::raw::set_graveyard(cxx(arena), cxx(array), cxx(graveyard)));
}

// ------------------------------------------------------------------------------- finalization

weakgc_res_t weakgc_finalize(weakgc_arena_t arena, void* obj) {
  if (arena == nullptr) return WEAKGC_RES_BAD_PARAM;
  return res(cxx(arena).finalize(obj));
}

int weakgc_finalization_take(weakgc_arena_t arena, void** obj_o) {
  if (arena == nullptr) return 0;
  return cxx(arena).take_finalized(obj_o) ? 1 : 0;
}

// ------------------------------------------------------------------------------------- expose

weakgc_res_t weakgc_expose(weakgc_arena_t arena, const void* p, size_t size) {
  if (arena == nullptr) return WEAKGC_RES_BAD_PARAM;
  return res(cxx(arena).expose(p, size));
}

weakgc_res_t weakgc_unexpose(weakgc_arena_t arena, const void* p, size_t size) {
  if (arena == nullptr) return WEAKGC_RES_BAD_PARAM;
  return cxx(arena).unexpose(p, size) ? WEAKGC_RES_OK : WEAKGC_RES_BAD_PARAM;
}

// ----------------------------------------------------------------------------- guarded arrays

weakgc_res_t weakgc_guarded_array_create(weakgc_guarded_array_t* array_o, weakgc_arena_t arena,
                                         size_t length) {
  if (array_o == nullptr || arena == nullptr) return WEAKGC_RES_BAD_PARAM;
  return guarded([&]() -> weakgc_res_t {
    try {
      *array_o = new weakgc_guarded_array_s(cxx(arena), length);
    } catch (const std::length_error&) {
      return WEAKGC_RES_BAD_PARAM;
    }
    return WEAKGC_RES_OK;
  });
}

void weakgc_guarded_array_destroy(weakgc_guarded_array_t array) {
  delete array;
}

size_t weakgc_guarded_array_length(weakgc_guarded_array_t array) {
  return array == nullptr ? 0 : array->array.size();
}

weakgc_res_t weakgc_guarded_array_resize(weakgc_guarded_array_t array, size_t length) {
  if (array == nullptr) return WEAKGC_RES_BAD_PARAM;
  return guarded([&]() -> weakgc_res_t {
    try {
      array->array.resize(length);
    } catch (const std::length_error&) {
      return WEAKGC_RES_BAD_PARAM;
    }
    return WEAKGC_RES_OK;
  });
}

weakgc_res_t weakgc_guarded_array_get(weakgc_guarded_array_t array, size_t i, void** value_o) {
  if (array == nullptr || value_o == nullptr || i >= array->array.size())
    return WEAKGC_RES_BAD_PARAM;
  *value_o = array->array.get(i);
  return WEAKGC_RES_OK;
}

weakgc_res_t weakgc_guarded_array_set(weakgc_guarded_array_t array, size_t i, void* value) {
  if (array == nullptr || i >= array->array.size()) return WEAKGC_RES_BAD_PARAM;
  array->array.set(i, value);
  return WEAKGC_RES_OK;
}

weakgc_res_t weakgc_guarded_array_get_range(weakgc_guarded_array_t array, size_t first, size_t n,
                                            void** out) {
  if (array == nullptr || !range_ok(array, first, n, out)) return WEAKGC_RES_BAD_PARAM;
  array->array.get_range(first, n, out);
  return WEAKGC_RES_OK;
}

weakgc_res_t weakgc_guarded_array_set_range(weakgc_guarded_array_t array, size_t first, size_t n,
                                            void* const* values) {
  if (array == nullptr || !range_ok(array, first, n, values)) return WEAKGC_RES_BAD_PARAM;
  array->array.set_range(first, values, n);
  return WEAKGC_RES_OK;
}

// -------------------------------------------------------------------------------- weak tables

weakgc_res_t weakgc_table_create(weakgc_table_t* table_o, weakgc_arena_t arena,
                                 weakgc_table_kind_t kind, const weakgc_arg_s* args) {
  if (table_o == nullptr || arena == nullptr) return WEAKGC_RES_BAD_PARAM;
  if (kind < WEAKGC_TABLE_WEAK_KEY || kind > WEAKGC_TABLE_WEAK_SET) return WEAKGC_RES_BAD_PARAM;
  return guarded([&]() -> weakgc_res_t {
    auto t = std::make_unique<weakgc_table_s>();
    size_t capacity = 0;
    for (const weakgc_arg_s* a = args; a != nullptr && a->key != WEAKGC_KEY_ARGS_END; ++a) {
      switch (a->key) {
        case WEAKGC_KEY_TABLE_CAPACITY:
          capacity = a->val.size;
          break;
        case WEAKGC_KEY_TABLE_HASH:
          t->hash = a->val.hash;
          break;
        case WEAKGC_KEY_TABLE_EQ:
          t->eq = a->val.eq;
          break;
        case WEAKGC_KEY_TABLE_CLOSURE:
          t->closure = a->val.p;
          break;
        default:
          return WEAKGC_RES_BAD_PARAM;
      }
    }
    if ((t->hash == nullptr) != (t->eq == nullptr)) return WEAKGC_RES_BAD_PARAM;
    auto k = static_cast<weakgc::TableKind>(kind);
    if (t->hash != nullptr) {
      weakgc::WeakTable::ContentKeys ck;
      ck.hash = &table_hash;
      ck.eq = &table_eq;
      ck.ctx = t.get();
      t->table = std::make_unique<weakgc::WeakTable>(cxx(arena), k, ck, capacity);
    } else {
      t->table = std::make_unique<weakgc::WeakTable>(cxx(arena), k, capacity);
    }
    *table_o = t.release();
    return WEAKGC_RES_OK;
  });
}

void weakgc_table_destroy(weakgc_table_t table) {
  delete table;
}

weakgc_table_kind_t weakgc_table_kind(weakgc_table_t table) {
  if (table == nullptr) return WEAKGC_TABLE_ENUM_MAX;
  return static_cast<weakgc_table_kind_t>(table->table->kind());
}

void* weakgc_table_get(weakgc_table_t table, const void* key) {
  if (table == nullptr) return nullptr;
  return guarded_value<void*>(nullptr, [&] { return table->table->get(key); });
}

int weakgc_table_contains(weakgc_table_t table, const void* key) {
  if (table == nullptr) return 0;
  return guarded_value(0, [&] { return table->table->contains(key) ? 1 : 0; });
}

// Whether a table slot can hold w: not NULL or DELETED and, if it lies in the table's arena, an
// allocated object's base (an interior or freed address would be neither a reference the
// collector can follow nor a plain word: MPS's AWL rule, .capi.misuse).
bool storable(const weakgc::WeakTable& t, const void* w) {
  if (w == nullptr || reinterpret_cast<uintptr_t>(w) == weakgc::kDeleted) return false;
  const weakgc::Arena& a = t.arena();
  return !a.contains(w) || a.object_base(w) == w;
}

weakgc_res_t weakgc_table_put(weakgc_table_t table, void* key, void* value, void** old_o) {
  if (table == nullptr) return WEAKGC_RES_BAD_PARAM;
  bool set = table->table->kind() == weakgc::TableKind::kWeakSet;
  if (!storable(*table->table, key) || (!set && !storable(*table->table, value)))
    return WEAKGC_RES_BAD_PARAM;
  return guarded([&]() -> weakgc_res_t {
    // exchange loads (keeps alive) the replaced value; put does not: only when it is wanted.
    void* old = nullptr;
    if (old_o != nullptr)
      old = table->table->exchange(key, set ? nullptr : value);
    else
      table->table->put(key, set ? nullptr : value);
    if (old_o != nullptr) *old_o = old;
    return WEAKGC_RES_OK;
  });
}

void* weakgc_table_remove(weakgc_table_t table, const void* key) {
  if (table == nullptr) return nullptr;
  return guarded_value<void*>(nullptr, [&] { return table->table->take(key); });
}

void weakgc_table_clear(weakgc_table_t table) {
  if (table == nullptr) return;
  (void)guarded([&] {
    table->table->clear();
    return WEAKGC_RES_OK;
  });
}

weakgc_res_t weakgc_table_reserve(weakgc_table_t table, size_t n) {
  if (table == nullptr) return WEAKGC_RES_BAD_PARAM;
  return guarded([&] {
    table->table->reserve(n);
    return WEAKGC_RES_OK;
  });
}

size_t weakgc_table_size(weakgc_table_t table) {
  if (table == nullptr) return 0;
  return guarded_value<size_t>(0, [&] { return table->table->size(); });
}

void* weakgc_table_find_by(weakgc_table_t table, uint64_t hash, const void* probe, weakgc_eq_fn eq,
                           void* closure, void** value_o) {
  if (table == nullptr || eq == nullptr) return nullptr;
  return guarded_value<void*>(nullptr, [&] {
    ProbeEq p{eq, closure};
    return table->table->find_by(hash, probe, &probe_eq, &p, value_o);
  });
}

weakgc_res_t weakgc_table_put_new(weakgc_table_t table, uint64_t hash, void* key, void* value) {
  if (table == nullptr) return WEAKGC_RES_BAD_PARAM;
  bool set = table->table->kind() == weakgc::TableKind::kWeakSet;
  if (!storable(*table->table, key) || (!set && !storable(*table->table, value)))
    return WEAKGC_RES_BAD_PARAM;
  return guarded([&] {
    table->table->put_new(hash, key, set ? nullptr : value);
    return WEAKGC_RES_OK;
  });
}

weakgc_res_t weakgc_table_enable_notification(weakgc_table_t table) {
  if (table == nullptr) return WEAKGC_RES_BAD_PARAM;
  return guarded([&] { return res(table->table->enable_notification()); });
}

int weakgc_table_take_dead(weakgc_table_t table, void** key_o, void** value_o) {
  if (table == nullptr || key_o == nullptr || value_o == nullptr) return 0;
  return guarded_value(0, [&] {
    weakgc::DeadEntry d;
    if (!table->table->take_dead(&d)) return 0;
    *key_o = d.key;
    *value_o = d.value;
    return 1;
  });
}

int weakgc_table_next(weakgc_table_t table, weakgc_table_cursor_s* cursor, void** key_o,
                      void** value_o) {
  if (table == nullptr || cursor == nullptr) return 0;
  return guarded_value(0, [&] {
    void* k = nullptr;
    void* v = nullptr;
    if (!table->table->next(cxx(cursor), &k, &v)) return 0;
    if (key_o != nullptr) *key_o = k;
    if (value_o != nullptr) *value_o = v;
    return 1;
  });
}

weakgc_res_t weakgc_table_stats(weakgc_table_t table, weakgc_table_stats_s* stats_o) {
  if (table == nullptr || stats_o == nullptr) return WEAKGC_RES_BAD_PARAM;
  weakgc::TableStats s = table->table->stats();
  stats_o->capacity = s.capacity;
  stats_o->generations = s.generations;
  stats_o->occupied = s.occupied;
  stats_o->tombstones = s.tombstones;
  stats_o->splats_noticed = s.splats_noticed;
  stats_o->rebuilds = s.rebuilds;
  stats_o->deferred_moves = s.deferred_moves;
  return WEAKGC_RES_OK;
}

// --------------------------------------------------------------------------------- intern set

weakgc_res_t weakgc_intern_set_create(weakgc_intern_set_t* set_o, weakgc_arena_t arena,
                                      size_t capacity) {
  if (set_o == nullptr || arena == nullptr) return WEAKGC_RES_BAD_PARAM;
  return guarded([&] {
    auto s = std::make_unique<weakgc_intern_set_s>();
    s->set = std::make_unique<weakgc::InternSet>(cxx(arena), capacity);
    *set_o = s.release();
    return WEAKGC_RES_OK;
  });
}

void weakgc_intern_set_destroy(weakgc_intern_set_t set) {
  delete set;
}

weakgc_res_t weakgc_intern(weakgc_intern_set_t set, const char* bytes, size_t length,
                           weakgc_symbol_s** symbol_o) {
  if (set == nullptr || symbol_o == nullptr || (bytes == nullptr && length != 0))
    return WEAKGC_RES_BAD_PARAM;
  return guarded([&] {
    weakgc::Symbol* s = set->set->intern(std::string_view(bytes, length));
    *symbol_o = reinterpret_cast<weakgc_symbol_s*>(s);
    return WEAKGC_RES_OK;
  });
}

weakgc_symbol_s* weakgc_intern_find(weakgc_intern_set_t set, const char* bytes, size_t length) {
  if (set == nullptr || (bytes == nullptr && length != 0)) return nullptr;
  return guarded_value<weakgc_symbol_s*>(nullptr, [&] {
    return reinterpret_cast<weakgc_symbol_s*>(set->set->find(std::string_view(bytes, length)));
  });
}

size_t weakgc_intern_set_size(weakgc_intern_set_t set) {
  if (set == nullptr) return 0;
  return guarded_value<size_t>(0, [&] { return set->set->size(); });
}

uint64_t weakgc_intern_symbols_created(weakgc_intern_set_t set) {
  if (set == nullptr) return 0;
  return set->set->symbols_created();
}

int weakgc_intern_set_next(weakgc_intern_set_t set, weakgc_table_cursor_s* cursor,
                           weakgc_symbol_s** symbol_o) {
  if (set == nullptr || cursor == nullptr || symbol_o == nullptr) return 0;
  return guarded_value(0, [&] {
    void* k = nullptr;
    void* v = nullptr;
    if (!set->set->untyped().next(cxx(cursor), &k, &v)) return 0;
    *symbol_o = static_cast<weakgc_symbol_s*>(k);
    return 1;
  });
}

uint64_t weakgc_intern_hash(const char* bytes, size_t length) {
  if (bytes == nullptr) length = 0;
  return weakgc::InternSet::hash(std::string_view(bytes != nullptr ? bytes : "", length));
}

// ---------------------------------------------------------------------------------- event log

weakgc_res_t weakgc_event_log_start(weakgc_arena_t arena, const char* path, int fd,
                                    size_t capacity) {
  if (arena == nullptr) return WEAKGC_RES_BAD_PARAM;
  return res(weakgc::detail::event_log_start(cxx(arena).impl(), path, fd, capacity));
}

weakgc_res_t weakgc_event_log_flush(weakgc_arena_t arena) {
  if (arena == nullptr) return WEAKGC_RES_BAD_PARAM;
  return res(weakgc::detail::event_log_flush(cxx(arena).impl()));
}

weakgc_res_t weakgc_event_log_stop(weakgc_arena_t arena) {
  if (arena == nullptr) return WEAKGC_RES_BAD_PARAM;
  return res(weakgc::detail::event_log_stop(cxx(arena).impl()));
}

}  // extern "C"
