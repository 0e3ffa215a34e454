# Several mutator threads (issue 7; docs/benchmarks/threads.md): throughput of interning and
# weak-key lookups on 1, 2 and 4 threads (lock-free single-threaded tables vs the concurrent
# ones), and the cost of a page-scan barrier fault alone vs with a second registered thread.
# Run it from an optimised build: threads_bench [--benchmark_repetitions=N ...].
add_executable(threads_bench ${CMAKE_CURRENT_LIST_DIR}/threads_bench.cpp)
target_link_libraries(threads_bench PRIVATE weakgc benchmark::benchmark)
