# data unit: images (JPEG/PNG), transforms, the Real-IAD index and the prefetching loader.
libmvead_la_SOURCES += data/fileio.c data/fileio.h data/image.c data/image.h data/transform.c data/transform.h \
	data/realiad.c data/realiad.h data/loader.c data/loader.h
nobase_pkginclude_HEADERS += data/fileio.h data/image.h data/transform.h data/realiad.h data/loader.h

check_PROGRAMS += tests/check_image tests/check_realiad
TESTS += tests/check_image tests/check_realiad
tests_check_image_SOURCES = tests/check_image.c
tests_check_image_CFLAGS = $(TEST_CFLAGS_ALL)
tests_check_image_LDADD = $(TEST_LIBS_ALL)
tests_check_realiad_SOURCES = tests/check_realiad.c
tests_check_realiad_CFLAGS = $(TEST_CFLAGS_ALL)
tests_check_realiad_LDADD = $(TEST_LIBS_ALL)
