# barrier/ tests (issue 3: the incremental barrier). Not benchmarks; seeded, reproducible.
#   barrier_test         incremental oracle stress (1,000 schedules per variant: incremental on,
#                        off, failing mprotect; a no-barrier negative control), ExposeGuard
#   barrier_death_test   null dereference, stack overflow, collector self-fault, handler chaining
#   barrier_stress_test  the incremental oracle at 30,000 schedules per variant (label stress)
set(BARRIER_TEST_DIR ${CMAKE_CURRENT_LIST_DIR})
weakgc_test(barrier_test
  SOURCES ${BARRIER_TEST_DIR}/barrier_incremental_test.cpp ${BARRIER_TEST_DIR}/barrier_expose_test.cpp
  LABELS barrier)
weakgc_test(barrier_death_test SOURCES ${BARRIER_TEST_DIR}/barrier_death_test.cpp LABELS barrier)
weakgc_test(barrier_stress_test SOURCES ${BARRIER_TEST_DIR}/barrier_incremental_test.cpp
  LABELS barrier stress)
target_compile_definitions(barrier_stress_test PRIVATE WEAKGC_TEST_STRESS=1)
foreach(t barrier_test barrier_death_test barrier_stress_test)
  target_include_directories(${t} PRIVATE ${BARRIER_TEST_DIR})
endforeach()
