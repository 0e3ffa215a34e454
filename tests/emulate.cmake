# emulate/ tests (docs/design/emulate.md, "Tests"):
#   emulate_test         unit, decline, cache, end-to-end fault and no-malloc tests
#   emulate_diff_test    differential against the CPU, >= 100,000 cases
#   emulate_stress_test  the same at >= 1,000,000 cases (label stress)
# The differential cases are generated at build time by emulate_gen.py and assembled by GNU as.
find_package(Python3 REQUIRED COMPONENTS Interpreter)
set(EMU_CASES ${CMAKE_CURRENT_BINARY_DIR}/emulate_cases.s)
add_custom_command(OUTPUT ${EMU_CASES}
  COMMAND Python3::Interpreter ${CMAKE_CURRENT_LIST_DIR}/emulate_gen.py ${EMU_CASES}
  DEPENDS ${CMAKE_CURRENT_LIST_DIR}/emulate_gen.py
  COMMENT "Generating the emulate differential cases"
  VERBATIM)
set_source_files_properties(${EMU_CASES} PROPERTIES LANGUAGE ASM GENERATED TRUE)

weakgc_test(emulate_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/emulate_test.cpp ${CMAKE_CURRENT_LIST_DIR}/emulate_malloc_count.cpp
  LABELS emulate)
set(EMU_DIFF_SOURCES ${CMAKE_CURRENT_LIST_DIR}/emulate_diff_test.cpp
    ${CMAKE_CURRENT_LIST_DIR}/emulate_malloc_count.cpp ${EMU_CASES})
weakgc_test(emulate_diff_test SOURCES ${EMU_DIFF_SOURCES} LABELS emulate)
weakgc_test(emulate_stress_test SOURCES ${EMU_DIFF_SOURCES} LABELS emulate stress)
target_compile_definitions(emulate_stress_test PRIVATE EMU_DIFF_ROUNDS=200)
