# weak/ tests (docs/design/weak.md, "Tests"):
#   weak_table_test      unit tests of every table kind and of the raw layer
#   weak_model_test      seeded random operations against an oracle (map + shadow reachability)
#   weak_retention_test  lookups during marking leave >= 99% of dead entries to be splatted
#   weak_intern_test     interning: canonical symbols, fresh after death, content hashing
#   weak_finalize_test   finalization messages: exactly the unreachable objects, once
#   weak_guarded_array_test  GuardedArray: pending at the flip, guarded loads and stores, oracle
#   weak_exhaustion_test  arena exhaustion: bad_alloc, and the tables lose nothing
#   weak_model_stress_test  the model test with many more seeds (label stress)
set(WEAK_TEST_DIR ${CMAKE_CURRENT_LIST_DIR})
weakgc_test(weak_model_test SOURCES ${WEAK_TEST_DIR}/weak_model_test.cpp LABELS weak)
weakgc_test(weak_table_test SOURCES ${WEAK_TEST_DIR}/weak_table_test.cpp LABELS weak)
weakgc_test(weak_retention_test SOURCES ${WEAK_TEST_DIR}/weak_retention_test.cpp LABELS weak)
weakgc_test(weak_intern_test SOURCES ${WEAK_TEST_DIR}/weak_intern_test.cpp LABELS weak
  LIBS PkgConfig::XXHASH)
weakgc_test(weak_finalize_test SOURCES ${WEAK_TEST_DIR}/weak_finalize_test.cpp LABELS weak)
weakgc_test(weak_guarded_array_test SOURCES ${WEAK_TEST_DIR}/weak_guarded_array_test.cpp
  LABELS weak)
weakgc_test(weak_exhaustion_test SOURCES ${WEAK_TEST_DIR}/weak_exhaustion_test.cpp LABELS weak)
weakgc_test(weak_model_stress_test SOURCES ${WEAK_TEST_DIR}/weak_model_test.cpp LABELS weak stress)
target_compile_definitions(weak_model_stress_test PRIVATE WEAK_MODEL_SCALE=25)
