# geometry fragment: epipolar geometry, calibration JSON, epiline pictures
libmvead_la_SOURCES += mvead/epipolar.c mvead/epipolar.h mvead/calibration.c mvead/calibration.h \
	mvead/epilines.c mvead/epilines.h
nobase_pkginclude_HEADERS += mvead/epipolar.h mvead/calibration.h mvead/epilines.h

check_PROGRAMS += tests/check_epipolar
TESTS += tests/check_epipolar
tests_check_epipolar_SOURCES = tests/check_epipolar.c
tests_check_epipolar_CFLAGS = $(TEST_CFLAGS_ALL)
tests_check_epipolar_LDADD = $(TEST_LIBS_ALL)
