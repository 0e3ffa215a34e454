# Weak-table benchmarks (issue 6; docs/benchmarks/tables.md): a 1,000,000-entry weak-key table
# (insert, lookup, full collection, incremental pauses) against std::unordered_map and against
# the Boehm collector's disappearing links, and ephemeron clearing of entries whose value refers
# to its key. Run it from an optimised build: tables_bench [entries [repetitions]].
if(TARGET PkgConfig::BDWGC)
  add_executable(tables_bench ${CMAKE_CURRENT_LIST_DIR}/tables_bench.cpp)
  target_link_libraries(tables_bench PRIVATE weakgc PkgConfig::BDWGC)
else()
  message(STATUS "bdw-gc not found: tables_bench (weak tables vs Boehm) is not built")
endif()

# Interning: weakgc's InternSet against std::unordered_set<std::string> (intern_bench [reps]).
add_executable(intern_bench ${CMAKE_CURRENT_LIST_DIR}/intern_bench.cpp)
target_link_libraries(intern_bench PRIVATE weakgc)
