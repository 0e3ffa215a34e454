# A workload that writes the collector's event log (tools/plot_events.py draws it).
add_executable(event_log_example event_log_example.cpp)
target_link_libraries(event_log_example PRIVATE weakgc)
