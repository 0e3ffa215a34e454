#include "core/check.hpp"

#include <time.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>

namespace weakgc::detail {

void write_err(const char* s) noexcept {
  size_t n = strlen(s);
  while (n > 0) {
    ssize_t w = ::write(2, s, n);
    if (w <= 0) return;
    s += w;
    n -= static_cast<size_t>(w);
  }
}

char* format_hex(uint64_t v, char* buf) noexcept {
  static const char kDigits[] = "0123456789abcdef";
  char tmp[16];
  int n = 0;
  do {
    tmp[n++] = kDigits[v & 15];
    v >>= 4;
  } while (v != 0);
  buf[0] = '0';
  buf[1] = 'x';
  for (int i = 0; i < n; ++i) buf[2 + i] = tmp[n - 1 - i];
  buf[2 + n] = '\0';
  return buf;
}

char* format_dec(uint64_t v, char* buf) noexcept {
  char tmp[20];
  int n = 0;
  do {
    tmp[n++] = static_cast<char>('0' + v % 10);
    v /= 10;
  } while (v != 0);
  for (int i = 0; i < n; ++i) buf[i] = tmp[n - 1 - i];
  buf[n] = '\0';
  return buf;
}

uint64_t now_ns() noexcept {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

void fatal(const char* msg, const void* addr) noexcept {
  write_err("weakgc: fatal: ");
  write_err(msg);
  if (addr != nullptr) {
    char buf[24];
    write_err(" at address ");
    write_err(format_hex(reinterpret_cast<uintptr_t>(addr), buf));
  }
  write_err("\n");
  abort();
}

void check_failed(const char* expr, const char* file, int line) noexcept {
  char buf[24];
  write_err("weakgc: check failed: ");
  write_err(expr);
  write_err(" (");
  write_err(file);
  write_err(":");
  write_err(format_dec(static_cast<uint64_t>(line), buf));
  write_err(")\n");
  abort();
}

}  // namespace weakgc::detail
