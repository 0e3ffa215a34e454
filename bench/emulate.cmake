# emulate/ benchmark: SIGSEGV round trip, bare vs emulated (decode-cache hit and miss).
add_executable(emulate_bench ${CMAKE_CURRENT_LIST_DIR}/emulate_bench.cpp)
target_link_libraries(emulate_bench PRIVATE weakgc benchmark::benchmark)
