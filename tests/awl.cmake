# AWL pool tests (issue 5; docs/design/pools.md "Weak arrays"):
#   awl_test            splat oracle (weak-key, doubly weak, ephemeron, small and large arrays,
#                       graveyards), single-access emulation (loads, cmp/test, stores, weak-phase
#                       faults, declines, budgets), misuse, statistics
#   awl_retention_test  100,000-entry weak-key table read during marking: emulation on vs off.
#                       Compiled -O2 whatever the build type: the loads must be the compiler's
#                       own plain loads.
#   awl_stress_test     the oracle runs with more seeds, rounds and nodes. One label,
#                       "awl-stress", which both `-L awl` and `-LE stress` (the presets) match:
#                       gtest_discover_tests passes a label list on as separate property
#                       arguments, so "awl;stress" would lose "stress".
weakgc_test(awl_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/awl_test.cpp LABELS awl)
weakgc_test(awl_retention_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/awl_retention_test.cpp LABELS awl)
set_source_files_properties(${CMAKE_CURRENT_LIST_DIR}/awl_retention_test.cpp
  PROPERTIES COMPILE_OPTIONS "-O2")
weakgc_test(awl_stress_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/awl_stress_test.cpp LABELS awl-stress)
# Client formats in AWL pools (MPS's rule, find_dependent), emulation on their pages.
weakgc_test(awl_client_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/awl_client_test.cpp LABELS awl)
set_source_files_properties(${CMAKE_CURRENT_LIST_DIR}/awl_client_test.cpp PROPERTIES COMPILE_OPTIONS -O2)
