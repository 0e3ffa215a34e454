# AWL benchmark (issue 5; docs/benchmarks/awl.md): retention of dead weak entries read during
# marking with single-access emulation on vs off, emulation coverage, and a sweep of the per-page
# single-access budget. Run it from an optimised build: awl_bench [entries [repetitions]].
add_executable(awl_bench ${CMAKE_CURRENT_LIST_DIR}/awl_bench.cpp)
target_link_libraries(awl_bench PRIVATE weakgc)
