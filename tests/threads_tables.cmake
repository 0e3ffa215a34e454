# Thread-safe tables (weakgc/concurrent_tables.hpp, docs/design/weak.md "Thread safety"):
#   threads_tables_test         4 workers on one shared table of each kind + concurrent interning,
#                               incremental collection on the main thread, against an oracle
#   threads_tables_stress_test  the same with 8x the rounds (label threads_stress)
set(THREADS_TABLES_TEST_DIR ${CMAKE_CURRENT_LIST_DIR})
weakgc_test(threads_tables_test SOURCES ${THREADS_TABLES_TEST_DIR}/threads_tables_test.cpp
  LABELS threads)
weakgc_test(threads_tables_stress_test SOURCES ${THREADS_TABLES_TEST_DIR}/threads_tables_test.cpp
  LABELS threads stress)
target_compile_definitions(threads_tables_stress_test PRIVATE THREADS_TABLES_SCALE=8)
