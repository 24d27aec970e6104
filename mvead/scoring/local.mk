# mvead/scoring: k-means, coreset memory banks, kNN scoring, anomaly maps, metrics.
libmvead_la_SOURCES += mvead/scoring/metrics.c mvead/scoring/metrics.h mvead/scoring/adeval.c mvead/scoring/adeval.h mvead/scoring/kmeans.c mvead/scoring/kmeans.h \
	mvead/scoring/coreset.c mvead/scoring/coreset.h mvead/scoring/sqdist_tmpl.h mvead/scoring/knn.c mvead/scoring/knn.h \
	mvead/scoring/anomaly_map.c mvead/scoring/anomaly_map.h mvead/scoring/threshold.c mvead/scoring/threshold.h
nobase_pkginclude_HEADERS += mvead/scoring/metrics.h mvead/scoring/adeval.h mvead/scoring/kmeans.h mvead/scoring/coreset.h mvead/scoring/knn.h \
	mvead/scoring/anomaly_map.h mvead/scoring/threshold.h

check_PROGRAMS += tests/check_metrics tests/check_adeval tests/check_bank tests/check_threshold
TESTS += tests/check_metrics tests/check_adeval tests/check_bank tests/check_threshold
tests_check_threshold_SOURCES = tests/check_threshold.c
tests_check_threshold_CFLAGS = $(TEST_CFLAGS_ALL)
tests_check_threshold_LDADD = $(TEST_LIBS_ALL)
tests_check_metrics_SOURCES = tests/check_metrics.c
tests_check_metrics_CFLAGS = $(TEST_CFLAGS_ALL)
tests_check_metrics_LDADD = $(TEST_LIBS_ALL)
tests_check_adeval_SOURCES = tests/check_adeval.c
tests_check_adeval_CFLAGS = $(TEST_CFLAGS_ALL)
tests_check_adeval_LDADD = $(TEST_LIBS_ALL)
tests_check_bank_SOURCES = tests/check_bank.c
tests_check_bank_CFLAGS = $(TEST_CFLAGS_ALL)
tests_check_bank_LDADD = $(TEST_LIBS_ALL)

BENCH_PROGS += bench/bench_bank
bench_bench_bank_SOURCES = bench/bench_bank.c
bench_bench_bank_LDADD = libmvead.la $(MV_LIBS)
