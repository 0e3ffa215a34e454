#include <cstdio>
#include "weakgc/gc.hpp"
struct Node : weakgc::GcObject {
  weakgc::Ref<Node> next;
  long value = 0;
  void trace(weakgc::Visitor& v) const override { v.visit(next); }
};
int main() {
  weakgc::Arena arena;
  weakgc::Root<Node> head(arena);
  for (long i = 0; i < 100000; ++i) {
    Node* n = weakgc::make<Node>(arena);
    n->value = i;
    if (i % 10 == 0) {
      n->next = head.get();
      head = n;
    }
  }
  arena.collect();
  long sum = 0, count = 0;
  for (Node* n = head.get(); n; n = n->next.get()) {
    sum += n->value;
    ++count;
  }
  auto s = arena.stats();
  std::printf("kept %ld nodes (sum %ld), cycles %lu, swept %lu bytes\n", count, sum,
              (unsigned long)s.cycles, (unsigned long)s.bytes_swept);
}
