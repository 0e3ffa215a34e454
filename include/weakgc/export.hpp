/* Symbol visibility of the public API (C and C++; this header is valid C99).
 *
 * The library is compiled with -fvisibility=hidden and -fvisibility-inlines-hidden: only what
 * carries WEAKGC_API is exported from libweakgc.so. Every public C function, and every C++ class
 * or free function in include/weakgc/ that is defined out of line (or reached from an inline
 * function or template a client instantiates), is marked. Check with
 *     nm -D --defined-only libweakgc.so | c++filt
 * The static library is unaffected: hidden symbols link into an executable as usual. */
#ifndef WEAKGC_EXPORT_HPP
#define WEAKGC_EXPORT_HPP

/** Marks a declaration as part of the shared library's exported interface. */
#define WEAKGC_API __attribute__((visibility("default")))

#endif
