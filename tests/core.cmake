# core/ tests (issue 2: the foundation). Not benchmarks; seeded, reproducible from the printed seed.
#   core_test         oracle stress (1,000 graphs per variant), exact slots, conservative roots,
#                     keep_alive, Root<T>, large objects, exhaustion, memory return, bad input
#   core_stress_test  the oracle stress at 40,000 graphs per variant (label stress)
set(CORE_TEST_DIR ${CMAKE_CURRENT_LIST_DIR})
weakgc_test(core_test
  SOURCES ${CORE_TEST_DIR}/core_oracle_test.cpp ${CORE_TEST_DIR}/core_roots_test.cpp
          ${CORE_TEST_DIR}/core_memory_test.cpp
  LABELS core)
weakgc_test(core_stress_test SOURCES ${CORE_TEST_DIR}/core_oracle_test.cpp LABELS core stress)
target_compile_definitions(core_stress_test PRIVATE WEAKGC_TEST_STRESS=1)
foreach(t core_test core_stress_test)
  target_include_directories(${t} PRIVATE ${CORE_TEST_DIR})
endforeach()
