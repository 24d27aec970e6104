# autograd unit: sources, tests, benches
libmvead_la_SOURCES += autograd/op.h autograd/op_table.c autograd/graph.c autograd/ops_elementwise.c \
	autograd/ops_reduce.c autograd/ops_nn.c autograd/ops_shape.c autograd/ops_attention.c autograd/gradcheck.c
nobase_pkginclude_HEADERS += autograd/autograd.h

check_PROGRAMS += tests/check_autograd
TESTS += tests/check_autograd
tests_check_autograd_SOURCES = tests/check_autograd.c
tests_check_autograd_CFLAGS = $(TEST_CFLAGS_ALL)
tests_check_autograd_LDADD = $(TEST_LIBS_ALL)

