// InternSet: a content-hashed weak set of leaf Symbols (weakgc/intern.hpp).
#include "weakgc/intern.hpp"

#include <xxhash.h>

#include <cstring>
#include <new>

namespace weakgc {

namespace {

uint64_t symbol_hash(const void* key, void*) {
  return static_cast<const Symbol*>(key)->hash;
}

// Symbols are leaf objects: reading their bytes never faults.
bool symbol_eq(const void* stored, const void* probe, void*) {
  const auto* a = static_cast<const Symbol*>(stored);
  const auto* b = static_cast<const Symbol*>(probe);
  return a->length == b->length && memcmp(a->bytes, b->bytes, a->length) == 0;
}

bool symbol_eq_view(const void* stored, const void* probe, void*) {
  const auto* a = static_cast<const Symbol*>(stored);
  const auto* v = static_cast<const std::string_view*>(probe);
  return a->length == v->size() && memcmp(a->bytes, v->data(), v->size()) == 0;
}

WeakTable::ContentKeys symbol_keys() {
  WeakTable::ContentKeys k;
  k.hash = &symbol_hash;
  k.eq = &symbol_eq;
  return k;
}

}  // namespace

InternSet::InternSet(Arena& arena, size_t capacity)
    : t_(arena, TableKind::kWeakSet, symbol_keys(), capacity) {}

uint64_t InternSet::hash(std::string_view bytes) noexcept {
  return XXH3_64bits(bytes.data(), bytes.size());
}

Symbol* InternSet::find(std::string_view name) {
  return static_cast<Symbol*>(t_.find_by(hash(name), &name, &symbol_eq_view, nullptr));
}

Symbol* InternSet::intern(std::string_view name) {
  uint64_t h = hash(name);
  if (void* s = t_.find_by(h, &name, &symbol_eq_view, nullptr)) return static_cast<Symbol*>(s);
  // Not present: nothing can insert it meanwhile (one thread), and the collector only removes.
  auto* sym = static_cast<Symbol*>(make_leaf_bytes(t_.arena(), sizeof(Symbol) + name.size() + 1));
  sym->hash = h;
  sym->length = name.size();
  if (!name.empty()) memcpy(sym->bytes, name.data(), name.size());
  sym->bytes[name.size()] = '\0';
  Root<Symbol> hold(t_.arena(), sym);  // put_new may allocate: keep sym alive on any thread
  t_.put_new(h, sym, nullptr);
  ++created_;
  return sym;
}

}  // namespace weakgc
