weakgc_test(threads_test SOURCES threads_test.cpp LABELS threads)
