# peers bench fragment (owner: benchmarks against the peers).
# bench_eam: EAM forward+backward and MCP+Reg training step (vs bench/peers/eam.py);
# bench_stream: the machine limits (sgemm peak, copy bandwidth) every workload is
# measured against. bench/run.sh runs them with the other BENCH_PROGS and the peers.
BENCH_PROGS += bench/bench_eam bench/bench_stream
bench_bench_eam_SOURCES = bench/bench_eam.c
bench_bench_eam_LDADD = libmvead.la $(MV_LIBS)
bench_bench_stream_SOURCES = bench/bench_stream.c
bench_bench_stream_LDADD = libmvead.la $(MV_LIBS)
EXTRA_DIST += bench/run.sh bench/README.md bench/peers/collect.py bench/peers/common.py \
	bench/peers/torch_kernels.py bench/peers/torch_vit.py bench/peers/eam.py \
	bench/peers/torch_bank.py bench/peers/faiss_flat.py bench/peers/faiss_flat.cpp
EXTRA_DIST += bench/bench_util.h
# collect.py's target checks on a made-up run (no timings: the verdicts only)
TESTS += tests/bench_collect_test.sh
EXTRA_DIST += tests/bench_collect_test.sh
