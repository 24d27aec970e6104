# data/store: HDF5 I/O helpers and the feature cache
libmvead_la_SOURCES += data/h5io.c data/h5io.h data/cache.c data/cache.h
nobase_pkginclude_HEADERS += data/h5io.h data/cache.h
check_PROGRAMS += tests/check_store
TESTS += tests/check_store
tests_check_store_SOURCES = tests/check_store.c
tests_check_store_CFLAGS = $(TEST_CFLAGS_ALL)
tests_check_store_LDADD = mvead/cli/libmvead_cli.la $(TEST_LIBS_ALL)
