# bench unit: sources, tests, benches
BENCH_PROGS += bench/bench_kernels
bench_bench_kernels_SOURCES = bench/bench_kernels.c
bench_bench_kernels_LDADD = libmvead.la $(MV_LIBS)
