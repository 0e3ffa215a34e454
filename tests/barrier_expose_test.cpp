// Exposing GC memory to the kernel during marking (issue 3): a protected page handed to read(2)
// gives EFAULT, not SIGSEGV; inside an ExposeGuard the same read succeeds, and the object's
// references are scanned so nothing it names is lost.
#include <unistd.h>

#include <gtest/gtest.h>

#include <cerrno>
#include <cstring>
#include <memory>

#include "support/shadow_graph.hpp"
#include "weakgc/arena.hpp"

namespace {

using weakgc::Arena;
using weakgc::ArenaOptions;
using weakgc::Status;

struct Pipe {
  int fd[2] = {-1, -1};
  Pipe() { EXPECT_EQ(pipe(fd), 0); }
  ~Pipe() {
    close(fd[0]);
    close(fd[1]);
  }
};

struct Fixture {
  std::unique_ptr<Arena> arena;
  weakgc::Pool *ams = nullptr, *lo = nullptr;
  void** roots = nullptr;
  weakgc::RootId id;
  uintptr_t obj = 0;     // a 4 KiB object: a page of its own, slot 0 names `target`
  uintptr_t target = 0;  // reachable only through obj
  Fixture() {
    ArenaOptions o;
    o.reserve_bytes = size_t{16} << 20;
    o.trigger_bytes = size_t{1} << 40;
    o.register_thread = false;
    Status st;
    arena = Arena::create(o, &st);
    EXPECT_EQ(st, Status::kOk);
    EXPECT_EQ(arena->create_pool(weakgc::PoolClass::kAMS, &wgtest::kGraphFormat, &ams),
              Status::kOk);
    EXPECT_EQ(arena->create_pool(weakgc::PoolClass::kLO, nullptr, &lo), Status::kOk);
    roots = static_cast<void**>(calloc(1, sizeof(void*)));
    EXPECT_EQ(arena->register_root(roots, 1, &id), Status::kOk);
    void* p = nullptr;
    EXPECT_EQ(arena->alloc(ams, 4096, &p), Status::kOk);
    obj = reinterpret_cast<uintptr_t>(p);
    EXPECT_EQ(arena->alloc(lo, 64, &p), Status::kOk);
    target = reinterpret_cast<uintptr_t>(p);
    wgtest::store_word(target, 0, 77);
    wgtest::store_word(obj, wgtest::kIdWord, 1);
    wgtest::store_word(obj, wgtest::kNslotsWord, 1);
    wgtest::store_word(obj, wgtest::kStrideWord, 1);
    wgtest::store_word(obj, wgtest::kFirstSlotWord, target);
    roots[0] = reinterpret_cast<void*>(obj);
  }
  ~Fixture() {
    (void)arena->remove_root(id);
    arena.reset();
    free(roots);
  }
};

TEST(ExposeGuard, ReadIntoAnObjectOnAProtectedPageSucceedsInsideTheGuard) {
  Fixture f;
  Arena& a = *f.arena;
  ASSERT_EQ(f.obj % 4096, 0u);
  a.start_cycle();
  ASSERT_EQ(a.phase(), weakgc::Phase::kMark);
  ASSERT_FALSE(a.is_marked(reinterpret_cast<void*>(f.target)));  // obj is grey: not scanned yet
  char data[64];
  for (int i = 0; i < 64; ++i) data[i] = static_cast<char>('a' + i % 26);
  auto* dst = reinterpret_cast<char*>(f.obj + 1024);
  // The page is protected: the kernel cannot write to it (EFAULT, and no barrier fault).
  uint64_t faults0 = a.stats().faults_scanned;
  {
    Pipe p;
    ASSERT_EQ(write(p.fd[1], data, sizeof data), 64);
    errno = 0;
    EXPECT_EQ(read(p.fd[0], dst, sizeof data), -1);
    EXPECT_EQ(errno, EFAULT);
  }
  EXPECT_EQ(a.stats().faults_scanned, faults0);
  {
    weakgc::ExposeGuard g(a, dst, sizeof data);
    // Exposing scanned the object: what it references is marked.
    EXPECT_TRUE(a.is_marked(reinterpret_cast<void*>(f.target)));
    Pipe p;
    ASSERT_EQ(write(p.fd[1], data, sizeof data), 64);
    EXPECT_EQ(read(p.fd[0], dst, sizeof data), 64);
    // Increments while exposed do not protect the page again.
    a.step(100000);
    {
      weakgc::ExposeGuard nested(a, reinterpret_cast<void*>(f.obj), 4096);
      Pipe q;
      ASSERT_EQ(write(q.fd[1], data, 32), 32);
      EXPECT_EQ(read(q.fd[0], dst + 64, 32), 32);
    }
    Pipe r;
    ASSERT_EQ(write(r.fd[1], data, 16), 16);
    EXPECT_EQ(read(r.fd[0], dst + 96, 16), 16);
  }
  EXPECT_EQ(a.stats().faults_scanned, faults0);
  while (a.step(1000000)) {
  }
  a.verify();
  EXPECT_EQ(a.object_base(reinterpret_cast<void*>(f.target)), reinterpret_cast<void*>(f.target));
  EXPECT_EQ(wgtest::peek_word(a, f.target, 0), 77u);
  EXPECT_EQ(memcmp(a.impl()->cview<char>(f.obj + 1024), data, 64), 0);
  EXPECT_EQ(memcmp(a.impl()->cview<char>(f.obj + 1024 + 64), data, 32), 0);
  EXPECT_EQ(memcmp(a.impl()->cview<char>(f.obj + 1024 + 96), data, 16), 0);
  EXPECT_EQ(wgtest::peek_word(a, f.obj, wgtest::kFirstSlotWord), f.target);
}

// write(2) from an exposed object works too, and after the guard the page is protected again
// when the next cycle greys the object.
TEST(ExposeGuard, WriteFromAnExposedObjectAndProtectionAfterwards) {
  Fixture f;
  Arena& a = *f.arena;
  memcpy(reinterpret_cast<char*>(f.obj + 2048), "exposed bytes", 14);
  a.start_cycle();
  Pipe p;
  errno = 0;
  EXPECT_EQ(write(p.fd[1], reinterpret_cast<char*>(f.obj + 2048), 14), -1);
  EXPECT_EQ(errno, EFAULT);
  {
    weakgc::ExposeGuard g(a, reinterpret_cast<char*>(f.obj + 2048), 14);
    EXPECT_EQ(write(p.fd[1], reinterpret_cast<char*>(f.obj + 2048), 14), 14);
  }
  char buf[14];
  EXPECT_EQ(read(p.fd[0], buf, 14), 14);
  EXPECT_STREQ(buf, "exposed bytes");
  while (a.step(1000000)) {
  }
  a.start_cycle();  // obj grey again, its page protected again
  Pipe q;
  errno = 0;
  EXPECT_EQ(write(q.fd[1], reinterpret_cast<char*>(f.obj + 2048), 14), -1);
  EXPECT_EQ(errno, EFAULT);
  // A plain load from the mutator goes through the barrier instead.
  uint64_t faults0 = a.stats().faults_scanned;
  EXPECT_EQ(wgtest::load_word(f.obj, wgtest::kIdWord), 1u);
  EXPECT_EQ(a.stats().faults_scanned, faults0 + 1);
  EXPECT_EQ(write(q.fd[1], reinterpret_cast<char*>(f.obj + 2048), 14), 14);
}

}  // namespace
