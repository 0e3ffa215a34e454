add_executable(finalize_wrapper ${CMAKE_CURRENT_LIST_DIR}/finalize_wrapper.cpp)
target_link_libraries(finalize_wrapper PRIVATE weakgc)
