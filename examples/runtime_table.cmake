add_executable(runtime_table ${CMAKE_CURRENT_LIST_DIR}/runtime_table.cpp)
target_link_libraries(runtime_table PRIVATE weakgc)
