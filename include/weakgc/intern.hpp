// Interning: a weak set of symbols hashed by content (DESIGN.md §7 "intern set").
//
// intern("foo") returns the one live Symbol whose bytes are "foo", creating it if there is none.
// The set holds its symbols weakly: when nothing else refers to a symbol it dies, its slot is
// splatted, and a later intern("foo") creates a new one. Symbols are leaf objects (never scanned,
// never protected): {hash, length, bytes[length], NUL}. Bytes are arbitrary (embedded NULs
// allowed); the content hash is XXH3-64 of the bytes.
//
// A lookup compares the control byte and the full hash (both in leaf arrays) before it loads a
// symbol, so probing keeps no other symbol alive; the symbol it returns is strong (the caller
// holds it). During a collection, interning a name whose symbol has died but is not yet splatted
// returns that symbol, alive again: it is still the one symbol with that name.
//
// Threads: one thread at a time, as WeakTable; from several threads: ConcurrentInternSet
// (weakgc/concurrent_tables.hpp).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "weakgc/tables.hpp"

namespace weakgc {

/// An interned string: a leaf object in the arena. Never modify it.
struct Symbol {
  uint64_t hash;    ///< XXH3-64 of the bytes
  uint64_t length;  ///< bytes, not counting the terminating NUL
  char bytes[];     ///< length bytes, then a NUL (the bytes may contain NULs too)

  /// The symbol's bytes.
  std::string_view view() const noexcept { return {bytes, static_cast<size_t>(length)}; }
  /// The bytes as a C string (cut at the first embedded NUL, if any).
  const char* c_str() const noexcept { return bytes; }
};

/// The intern set: at most one live Symbol per byte string, held weakly.
class WEAKGC_API InternSet {
 public:
  /// An empty set in `arena` with room for `capacity` symbols.
  explicit InternSet(Arena& arena, size_t capacity = 0);

  /// The live symbol with these bytes, created if none is alive. Throws std::bad_alloc.
  Symbol* intern(std::string_view name);
  /// The live symbol with these bytes, or nullptr (creates nothing).
  Symbol* find(std::string_view name);
  /// Number of symbols: exact whenever no weak phase is running, an upper bound during one.
  size_t size() { return t_.size(); }
  /// Calls f(Symbol*) for every symbol present (each is strong while f runs).
  template <class F>
  void for_each(F&& f) {
    t_.for_each([&](void* k, void*) { f(static_cast<Symbol*>(k)); });
  }
  /// Symbols created since the set was made (a new symbol for a name whose old one died counts).
  uint64_t symbols_created() const noexcept { return created_; }
  /// The content hash interning uses (XXH3-64).
  static uint64_t hash(std::string_view bytes) noexcept;
  /// The untyped table underneath.
  WeakTable& untyped() noexcept { return t_; }

 private:
  WeakTable t_;
  uint64_t created_ = 0;
};

}  // namespace weakgc
