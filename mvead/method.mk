# method fragment: Epipolar Attention Module, pre-training objectives, AdamW
libmvead_la_SOURCES += mvead/eam.c mvead/eam.h mvead/objective.c mvead/objective.h \
	nn/adamw.c nn/adamw.h
nobase_pkginclude_HEADERS += mvead/eam.h mvead/objective.h nn/adamw.h

check_PROGRAMS += tests/check_eam tests/check_objective tests/check_adamw
TESTS += tests/check_eam tests/check_objective tests/check_adamw
tests_check_eam_SOURCES = tests/check_eam.c
tests_check_eam_CFLAGS = $(TEST_CFLAGS_ALL)
tests_check_eam_LDADD = $(TEST_LIBS_ALL)
tests_check_objective_SOURCES = tests/check_objective.c
tests_check_objective_CFLAGS = $(TEST_CFLAGS_ALL)
tests_check_objective_LDADD = $(TEST_LIBS_ALL)
tests_check_adamw_SOURCES = tests/check_adamw.c
tests_check_adamw_CFLAGS = $(TEST_CFLAGS_ALL)
tests_check_adamw_LDADD = $(TEST_LIBS_ALL)
