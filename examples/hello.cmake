add_executable(hello_gc hello_gc.cpp)
target_link_libraries(hello_gc PRIVATE weakgc)
