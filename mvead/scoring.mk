# scoring fragment: memory banks (coreset), k-means, kNN scoring, anomaly maps, metrics
libmvead_la_SOURCES += mvead/metrics.c mvead/metrics.h mvead/kmeans.c mvead/kmeans.h \
	mvead/coreset.c mvead/coreset.h mvead/sqdist_tmpl.h mvead/knn.c mvead/knn.h mvead/anomaly_map.c mvead/anomaly_map.h
nobase_pkginclude_HEADERS += mvead/metrics.h mvead/kmeans.h mvead/coreset.h mvead/knn.h mvead/anomaly_map.h

check_PROGRAMS += tests/check_metrics tests/check_bank
TESTS += tests/check_metrics tests/check_bank
tests_check_metrics_SOURCES = tests/check_metrics.c
tests_check_metrics_CFLAGS = $(TEST_CFLAGS_ALL)
tests_check_metrics_LDADD = $(TEST_LIBS_ALL)
tests_check_bank_SOURCES = tests/check_bank.c
tests_check_bank_CFLAGS = $(TEST_CFLAGS_ALL)
tests_check_bank_LDADD = $(TEST_LIBS_ALL)

BENCH_PROGS += bench/bench_bank
bench_bench_bank_SOURCES = bench/bench_bank.c
bench_bench_bank_LDADD = libmvead.la $(MV_LIBS)
