# tensor unit: sources, tests, benches
libmvead_la_SOURCES += tensor/error.c
nobase_pkginclude_HEADERS += tensor/tensor.h tensor/error.h
libmvead_la_SOURCES += tensor/tensor.c tensor/arena.c tensor/elementwise.c tensor/reduce.c \
	tensor/blas.c tensor/softmax.c tensor/layernorm.c tensor/resample.c
check_PROGRAMS += tests/check_tensor
TESTS += tests/check_tensor
tests_check_tensor_SOURCES = tests/check_tensor.c
tests_check_tensor_CFLAGS = $(TEST_CFLAGS_ALL)
tests_check_tensor_LDADD = $(TEST_LIBS_ALL)
