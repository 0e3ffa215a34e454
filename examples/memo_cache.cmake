add_executable(memo_cache ${CMAKE_CURRENT_LIST_DIR}/memo_cache.cpp)
target_link_libraries(memo_cache PRIVATE weakgc)
