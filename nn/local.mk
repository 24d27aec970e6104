# nn unit: sources, tests, benches
libmvead_la_SOURCES += nn/safetensors.c nn/safetensors.h nn/config.c nn/config.h \
	nn/weights.c nn/weights.h nn/vit.c nn/vit.h nn/adamw.c nn/adamw.h
nobase_pkginclude_HEADERS += nn/safetensors.h nn/config.h nn/weights.h nn/vit.h nn/adamw.h

check_PROGRAMS += tests/check_safetensors
TESTS += tests/check_safetensors
tests_check_safetensors_SOURCES = tests/check_safetensors.c
tests_check_safetensors_CFLAGS = $(TEST_CFLAGS_ALL)
tests_check_safetensors_LDADD = $(TEST_LIBS_ALL)

check_PROGRAMS += tests/check_adamw
TESTS += tests/check_adamw
tests_check_adamw_SOURCES = tests/check_adamw.c
tests_check_adamw_CFLAGS = $(TEST_CFLAGS_ALL)
tests_check_adamw_LDADD = $(TEST_LIBS_ALL)

check_PROGRAMS += tests/check_vit
TESTS += tests/check_vit
tests_check_vit_SOURCES = tests/check_vit.c
tests_check_vit_CFLAGS = $(TEST_CFLAGS_ALL)
tests_check_vit_LDADD = $(TEST_LIBS_ALL)

BENCH_PROGS += bench/bench_vit
bench_bench_vit_SOURCES = bench/bench_vit.c
bench_bench_vit_LDADD = libmvead.la $(MV_LIBS)
