# synth fragment: the built-in synthetic multi-view dataset (data/synth.h)
libmvead_la_SOURCES += data/synth.c data/synth_render.c data/synth.h
nobase_pkginclude_HEADERS += data/synth.h

check_PROGRAMS += tests/check_synth
TESTS += tests/check_synth
tests_check_synth_SOURCES = tests/check_synth.c
tests_check_synth_CFLAGS = $(TEST_CFLAGS_ALL)
tests_check_synth_LDADD = $(TEST_LIBS_ALL)
