// A doubly weak table as a language runtime would use it: the runtime's own object format, exact
// roots only, and the raw table layer (weakgc::raw) inside one of its heap objects.
//
// The runtime (a toy Lisp) records where each cons cell was read: a source-position table from
// pair to position string. Neither side may keep the other alive: code that is dropped must go,
// and when a file is reloaded its old position strings are dropped by the source manager. So the
// table is doubly weak ("key-and-value" weakness): an entry goes when either half dies, and the
// collector splats both slots together.
//
// What a runtime brings: object layouts and a scan function (a weakgc::Format) for an AMS pool;
// its VM stack as an exact root (the C++ stack is not scanned: register_thread = false); a
// table object holding the raw arrays as ordinary exact fields; its own counting. Values are
// tagged words: fixnums are (n << 3) | 3, never taken for references (nor for kDeleted = 5).
//
//   build/…/examples/runtime_table
#include <cinttypes>
#include <cstdio>
#include <cstring>

#include "weakgc/tables.hpp"

namespace {

using Value = uintptr_t;
constexpr Value kNil = 0;
Value fixnum(int64_t n) {
  return (static_cast<uintptr_t>(n) << 3) | 3;
}
int64_t fixnum_value(Value v) {
  return static_cast<int64_t>(v) >> 3;
}

enum Tag : uint64_t { kPair = 1, kString = 2, kTable = 3 };

struct Pair {
  uint64_t tag;
  Value car, cdr;
};
struct String {
  uint64_t tag;
  uint64_t length;
  char bytes[48];
};
// The runtime's hash-table object: header words, then the raw slots (each array an exact field).
struct Table {
  uint64_t tag;
  uint64_t count;        // entries stored minus entries noticed dead
  uint64_t occupied;     // control bytes not empty (entries and tombstones): the load
  uint64_t splats_seen;  // splat counter value last reconciled
  weakgc::raw::Slots slots;
};

// The runtime's scan function: called by the collector on the collector's view of an object.
void scan(weakgc::ScanState& ss, void* obj, size_t, void*) {
  switch (static_cast<const uint64_t*>(obj)[0]) {
    case kPair: {
      auto* p = static_cast<Pair*>(obj);
      ss.fix(reinterpret_cast<void**>(&p->car));  // fixnums and nil are ignored by fix
      ss.fix(reinterpret_cast<void**>(&p->cdr));
      break;
    }
    case kTable: {
      auto* t = static_cast<Table*>(obj);
      ss.fix(reinterpret_cast<void**>(&t->slots.keys));
      ss.fix(reinterpret_cast<void**>(&t->slots.values));
      ss.fix(reinterpret_cast<void**>(&t->slots.ctrl));
      ss.fix(reinterpret_cast<void**>(&t->slots.hashes));
      break;
    }
    default:  // strings, and cells allocated but not yet initialised (tag 0)
      break;
  }
}

// The VM: an arena, a pool in the runtime's format, and a stack of Values that is an exact root.
struct Vm {
  weakgc::Arena arena;
  weakgc::Pool* pool = nullptr;
  Value stack[256] = {};
  size_t sp = 0;
  weakgc::RootId stack_root;

  static weakgc::ArenaOptions options() {
    weakgc::ArenaOptions o;
    o.register_thread = false;  // exact roots only: the VM stack
    o.trigger_bytes = 512 << 10;
    return o;
  }
  Vm() : arena(options()) {
    weakgc::Format f;
    f.scan = &scan;
    if (arena.create_pool(weakgc::PoolClass::kAMS, &f, &pool) != weakgc::Status::kOk) std::abort();
    if (arena.register_root(reinterpret_cast<void**>(stack), 256, &stack_root) !=
        weakgc::Status::kOk)
      std::abort();
  }
  void* alloc(size_t size) {
    void* p = nullptr;
    if (arena.alloc(pool, size, &p) != weakgc::Status::kOk) std::abort();
    return p;
  }
  // Every allocation may run collector work: what the runtime still needs lives on the stack.
  size_t push(Value v) {
    stack[sp] = v;
    return sp++;
  }
  void pop(size_t n = 1) {
    while (n-- > 0) stack[--sp] = kNil;
  }

  Value cons(size_t car_at, Value cdr) {  // car is a stack slot: it survives the allocation
    size_t cdr_at = push(cdr);
    auto* p = static_cast<Pair*>(alloc(sizeof(Pair)));
    p->tag = kPair;
    p->car = stack[car_at];
    p->cdr = stack[cdr_at];
    pop();
    return reinterpret_cast<Value>(p);
  }
  Value string(const char* s) {
    auto* str = static_cast<String*>(alloc(sizeof(String)));
    str->tag = kString;
    str->length = std::strlen(s);
    std::snprintf(str->bytes, sizeof str->bytes, "%s", s);
    return reinterpret_cast<Value>(str);
  }

  // ---------------------------------------------------------------- the doubly weak table

  Value make_table(size_t capacity) {
    auto* t = static_cast<Table*>(alloc(sizeof(Table)));
    t->tag = kTable;
    size_t at = push(reinterpret_cast<Value>(t));
    // alloc_slots stores each array into t->slots as it is made, so the table reaches them.
    if (weakgc::raw::alloc_slots(arena, weakgc::TableKind::kDoublyWeak, capacity, false,
                                 &t->slots) != weakgc::Status::kOk)
      std::abort();
    Value v = stack[at];
    pop();
    return v;
  }

  // Entries the collector splatted since the last look turn into tombstones here, so the count
  // stays exact. Compare-only accesses: reconciling keeps nothing alive.
  void reconcile(Table* t) {
    uint64_t splats = weakgc::raw::splat_count(t->slots);
    if (splats == t->splats_seen) return;
    for (size_t i = 0; i < t->slots.capacity; ++i) {
      if (weakgc::raw::ctrl_full(t->slots.ctrl[i]) && weakgc::raw::splatted(t->slots, i)) {
        weakgc::raw::forget(t->slots, i);
        --t->count;
      }
    }
    t->splats_seen = splats;
  }

  Value table_get(Value table, Value key) {
    auto* t = reinterpret_cast<Table*>(table);
    uint64_t h = weakgc::raw::identity_hash(reinterpret_cast<void*>(key));
    size_t i = weakgc::raw::find_identity(t->slots, h, reinterpret_cast<void*>(key));
    if (i == weakgc::raw::kNotFound) return kNil;
    Value v = weakgc::raw::load_value(t->slots, i);  // strong: the VM now holds it
    return v == weakgc::kDeleted ? kNil : v;
  }

  void table_put(size_t table_at, size_t key_at, size_t value_at) {
    auto* t = reinterpret_cast<Table*>(stack[table_at]);
    void* key = reinterpret_cast<void*>(stack[key_at]);
    uint64_t h = weakgc::raw::identity_hash(key);
    size_t i = weakgc::raw::find_identity(t->slots, h, key);
    if (i != weakgc::raw::kNotFound) {
      weakgc::raw::store_value(t->slots, i, reinterpret_cast<void*>(stack[value_at]));
      return;
    }
    if (weakgc::raw::needs_room(t->slots.capacity, t->occupied)) {
      grow(table_at);
      t = reinterpret_cast<Table*>(stack[table_at]);
      key = reinterpret_cast<void*>(stack[key_at]);
    }
    size_t j = weakgc::raw::find_free(t->slots, h);
    if (t->slots.ctrl[j] == weakgc::raw::kCtrlEmpty) ++t->occupied;
    weakgc::raw::store(t->slots, j, h, key, reinterpret_cast<void*>(stack[value_at]));
    ++t->count;
  }

  // Rehashing loads every key: during marking that would keep the dead ones alive. This runtime
  // simply finishes the marking first (the typed WeakTable adds a generation instead).
  void grow(size_t table_at) {
    while (arena.phase() == weakgc::Phase::kMark) arena.step(1000000);
    auto* old = reinterpret_cast<Table*>(stack[table_at]);
    reconcile(old);
    Value fresh = make_table(2 * old->slots.capacity);
    old = reinterpret_cast<Table*>(stack[table_at]);
    // No allocation from here on: nothing can collect, nothing is splatted meanwhile.
    auto* t = reinterpret_cast<Table*>(fresh);
    for (size_t i = 0; i < old->slots.capacity; ++i) {
      if (!weakgc::raw::ctrl_full(old->slots.ctrl[i])) continue;
      uintptr_t k = weakgc::raw::load_key(old->slots, i);
      uintptr_t v = weakgc::raw::load_value(old->slots, i);
      if (k == weakgc::kDeleted || v == weakgc::kDeleted) continue;
      uint64_t h = weakgc::raw::identity_hash(reinterpret_cast<void*>(k));
      weakgc::raw::store(t->slots, weakgc::raw::find_free(t->slots, h), h,
                         reinterpret_cast<void*>(k), reinterpret_cast<void*>(v));
      ++t->count;
      ++t->occupied;
    }
    stack[table_at] = fresh;
  }
};

}  // namespace

// Everything unreachable now is reclaimed (a cycle under way is finished first).
void collect_now(Vm& vm) {
  vm.arena.collect();
}

Table* table_at(Vm& vm, size_t slot) {
  return reinterpret_cast<Table*>(vm.stack[slot]);
}

int main() {
  Vm vm;
  size_t positions = vm.push(vm.make_table(64));
  // Read two "files" of 2,000 forms each; each form is a 3-element list; every pair records the
  // position string of its line (one per line, shared by the line's pairs). The source manager
  // keeps each file's position strings in a list; the code is a list of forms.
  size_t code[2], sources[2];
  char buf[48];
  for (int f = 0; f < 2; ++f) {
    code[f] = vm.push(kNil);
    sources[f] = vm.push(kNil);
    for (int line = 1; line <= 2000; ++line) {
      std::snprintf(buf, sizeof buf, "file%d.lisp:%d", f, line);
      size_t pos = vm.push(vm.string(buf));
      vm.stack[sources[f]] = vm.cons(pos, vm.stack[sources[f]]);
      size_t form = vm.push(kNil);
      for (int k = 2; k >= 0; --k) {
        size_t elt = vm.push(fixnum(line * 10 + k));
        vm.stack[form] = vm.cons(elt, vm.stack[form]);
        vm.pop();
        size_t cell = vm.push(vm.stack[form]);
        vm.table_put(positions, cell, pos);
        vm.pop();
      }
      vm.stack[code[f]] = vm.cons(form, vm.stack[code[f]]);
      vm.pop(2);
    }
  }
  Table* t = table_at(vm, positions);
  std::printf("entries after reading two files:       %6" PRIu64 "  (capacity %zu)\n", t->count,
              t->slots.capacity);
  Value form = reinterpret_cast<Pair*>(vm.stack[code[1]])->car;  // file 1's last form
  size_t form_at = vm.push(form);
  Value where = vm.table_get(vm.stack[positions], form);
  std::printf("position of (%" PRId64 " ...):                 %s\n",
              fixnum_value(reinterpret_cast<Pair*>(form)->car),
              where ? reinterpret_cast<String*>(where)->bytes : "?");

  // Drop file 0's code: its pairs die, and their entries with them (the keys went).
  vm.stack[code[0]] = kNil;
  collect_now(vm);
  t = table_at(vm, positions);
  vm.reconcile(t);
  std::printf("after dropping file 0's code:          %6" PRIu64 "\n", t->count);

  // Reload file 1: the source manager drops its old position strings. File 1's code is still
  // alive, but its entries go too (the values went): neither half keeps the other.
  vm.stack[sources[1]] = kNil;
  collect_now(vm);
  t = table_at(vm, positions);
  vm.reconcile(t);
  std::printf("after reloading file 1's positions:    %6" PRIu64 "\n", t->count);
  where = vm.table_get(vm.stack[positions], vm.stack[form_at]);
  std::printf("position of the same form now:         %s\n",
              where ? reinterpret_cast<String*>(where)->bytes : "unknown (entry splatted)");
  std::printf("slots splatted by the collector:       %6" PRIu64 "  (both halves of each entry)\n",
              vm.arena.stats().slots_splatted);
  return 0;
}
