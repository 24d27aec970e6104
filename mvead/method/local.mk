# mvead/method: the Epipolar Attention Module and its fusion modes, the
# pre-training objectives (MCP, Reg, Deep SVDD).
libmvead_la_SOURCES += mvead/method/eam.c mvead/method/eam.h mvead/method/objective.c mvead/method/objective.h
nobase_pkginclude_HEADERS += mvead/method/eam.h mvead/method/objective.h

check_PROGRAMS += tests/check_eam tests/check_objective
TESTS += tests/check_eam tests/check_objective
tests_check_eam_SOURCES = tests/check_eam.c
tests_check_eam_CFLAGS = $(TEST_CFLAGS_ALL)
tests_check_eam_LDADD = $(TEST_LIBS_ALL)
tests_check_objective_SOURCES = tests/check_objective.c
tests_check_objective_CFLAGS = $(TEST_CFLAGS_ALL)
tests_check_objective_LDADD = $(TEST_LIBS_ALL)

# --attention sparse vs dense end to end (5 training epochs on a tiny synthetic set)
TESTS += tests/attention_test.sh
EXTRA_DIST += tests/attention_test.sh
