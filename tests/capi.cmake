# C interface tests (docs/design/capi.md, "Tests"):
#   capi_test   a C99 program driving include/weakgc/weakgc.h end to end against its own oracle
#               (reachability, weak-array splats, dependents and graveyards, finalization, expose,
#               the event log checked against the statistics, thread registration)
add_executable(capi_test ${CMAKE_CURRENT_LIST_DIR}/capi_test.c)
set_target_properties(capi_test PROPERTIES C_STANDARD 99 C_STANDARD_REQUIRED ON C_EXTENSIONS OFF
  LINKER_LANGUAGE CXX)
target_link_libraries(capi_test PRIVATE weakgc)
add_test(NAME capi_test COMMAND capi_test)
set_tests_properties(capi_test PROPERTIES LABELS capi)

# The event log end to end: the example workload writes a log, tools/plot_events.py reads it
# back (checking its structure) and draws the three pictures into the build tree.
find_program(GNUPLOT_EXECUTABLE gnuplot)
if(TARGET event_log_example AND GNUPLOT_EXECUTABLE)
  find_package(Python3 REQUIRED COMPONENTS Interpreter)
  set(EV_DIR ${CMAKE_CURRENT_BINARY_DIR}/plot_events_test)
  add_test(NAME plot_events_test COMMAND sh -c
    "mkdir -p '${EV_DIR}' && '$<TARGET_FILE:event_log_example>' '${EV_DIR}/events.bin' 24 && '${Python3_EXECUTABLE}' '${CMAKE_SOURCE_DIR}/tools/plot_events.py' '${EV_DIR}/events.bin' --out '${EV_DIR}' --backend gnuplot")
  set_tests_properties(plot_events_test PROPERTIES LABELS capi)
endif()
