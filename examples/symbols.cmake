add_executable(symbols ${CMAKE_CURRENT_LIST_DIR}/symbols.cpp)
target_link_libraries(symbols PRIVATE weakgc)
