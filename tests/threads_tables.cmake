# Thread-safe tables (weakgc/concurrent_tables.hpp, docs/design/weak.md "Thread safety"):
#   threads_tables_test         4 workers on one shared table of each kind + concurrent interning,
#                               incremental collection on the main thread, against an oracle
#   threads_tables_stress_test  the same with 8x the rounds (label threads_stress)
# The stress binary's tests are discovered under the prefix "stress.": same names in two binaries
# would share one ctest entry's properties, and the stress label would hide the default ones.
set(THREADS_TABLES_TEST_DIR ${CMAKE_CURRENT_LIST_DIR})
weakgc_test(threads_tables_test SOURCES ${THREADS_TABLES_TEST_DIR}/threads_tables_test.cpp
  LABELS threads)
add_executable(threads_tables_stress_test ${THREADS_TABLES_TEST_DIR}/threads_tables_test.cpp)
target_link_libraries(threads_tables_stress_test PRIVATE weakgc GTest::gtest GTest::gtest_main)
target_compile_definitions(threads_tables_stress_test PRIVATE THREADS_TABLES_SCALE=8)
gtest_discover_tests(threads_tables_stress_test TEST_PREFIX "stress." DISCOVERY_TIMEOUT 60
  PROPERTIES LABELS "threads_stress")
