# The demo: a realistic mixed workload under incremental collection (scripts/demo.sh runs it).
add_executable(demo ${CMAKE_CURRENT_LIST_DIR}/demo.cpp)
target_link_libraries(demo PRIVATE weakgc)
