# mvead/geometry: epipolar geometry (F, lines, bands), calibration files,
# automatic calibration from features, epiline pictures.
libmvead_la_SOURCES += mvead/geometry/epipolar.c mvead/geometry/epipolar.h \
	mvead/geometry/calibration.c mvead/geometry/calibration.h mvead/geometry/calibrate_auto.c \
	mvead/geometry/epilines.c mvead/geometry/epilines.h
nobase_pkginclude_HEADERS += mvead/geometry/epipolar.h mvead/geometry/calibration.h mvead/geometry/epilines.h

check_PROGRAMS += tests/check_epipolar
TESTS += tests/check_epipolar
tests_check_epipolar_SOURCES = tests/check_epipolar.c
tests_check_epipolar_CFLAGS = $(TEST_CFLAGS_ALL)
tests_check_epipolar_LDADD = $(TEST_LIBS_ALL)
