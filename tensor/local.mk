# tensor unit: sources, tests, benches
libmvead_la_SOURCES += tensor/error.c
nobase_pkginclude_HEADERS += tensor/tensor.h tensor/error.h
libmvead_la_SOURCES += tensor/tensor.c tensor/arena.c tensor/elementwise.c tensor/reduce.c \
	tensor/blas.c tensor/softmax.c tensor/layernorm.c tensor/resample.c \
	tensor/vecmath.c tensor/vecmath.h tensor/vecmath_impl.h
check_PROGRAMS += tests/check_tensor
TESTS += tests/check_tensor
tests_check_tensor_SOURCES = tests/check_tensor.c
tests_check_tensor_CFLAGS = $(TEST_CFLAGS_ALL)
tests_check_tensor_LDADD = $(TEST_LIBS_ALL)
check_PROGRAMS += tests/check_vecmath
TESTS += tests/check_vecmath
tests_check_vecmath_SOURCES = tests/check_vecmath.c
tests_check_vecmath_CFLAGS = $(TEST_CFLAGS_ALL)
tests_check_vecmath_LDADD = $(TEST_LIBS_ALL)
