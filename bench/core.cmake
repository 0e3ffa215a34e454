# Benchmarks of the foundation (issue 2) and the incremental barrier (issue 3); see
# docs/benchmarks.md. bench/run_core_benchmarks.sh builds and runs them all.
#   gcbench        GCBench binary trees: weakgc typed layer (stop-the-world, incremental) vs Boehm
#   graph_bench    full collection of a 1,000,000-object random live graph: weakgc vs Boehm
#   pause_bench    incremental pauses vs a stop-the-world collection of a >= 256 MiB live heap
#   barrier_bench  page-scan barrier fault vs a bare SIGSEGV round trip (and vs the scan alone)
#   finalize_bench finalization of 1,000,000 registered objects: weakgc vs Boehm
if(TARGET PkgConfig::BDWGC)
  add_executable(gcbench ${CMAKE_CURRENT_LIST_DIR}/gcbench.cpp)
  target_link_libraries(gcbench PRIVATE weakgc PkgConfig::BDWGC)
  add_executable(graph_bench ${CMAKE_CURRENT_LIST_DIR}/graph_bench.cpp)
  target_link_libraries(graph_bench PRIVATE weakgc PkgConfig::BDWGC)
  add_executable(finalize_bench ${CMAKE_CURRENT_LIST_DIR}/finalize_bench.cpp)
  target_link_libraries(finalize_bench PRIVATE weakgc PkgConfig::BDWGC)
else()
  message(STATUS "bdw-gc not found: gcbench, graph_bench and finalize_bench (weakgc vs Boehm) "
                 "are not built")
endif()
add_executable(pause_bench ${CMAKE_CURRENT_LIST_DIR}/pause_bench.cpp)
target_link_libraries(pause_bench PRIVATE weakgc)
add_executable(barrier_bench ${CMAKE_CURRENT_LIST_DIR}/barrier_bench.cpp)
target_link_libraries(barrier_bench PRIVATE weakgc)
