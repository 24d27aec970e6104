// FAISS peer (C++ API) of bench/bench_bank.c's exact nearest-neighbour search,
// used by bench/run.sh only when the Python module (faiss_flat.py) is missing
// but libfaiss-dev is installed: g++ -O2 -fopenmp faiss_flat.cpp -lfaiss -llapack -lblas
// (Debian ships libfaiss static: its BLAS/LAPACK must be named).
// faiss::IndexFlatL2, k = 1, float32, dim 768; timed: index creation + add +
// search, one run. Prints the same "@bench" record as faiss_flat.py.
//
// Usage: faiss_flat --threads N [--n-bank M] [--n-query Q]
// (defaults as bench_bank: MVEAD_BENCH_QUICK=1 2000 x 20000, else 10000 x 100000)
#include <faiss/IndexFlat.h>
#include <omp.h>
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <vector>

static double peak_rss_mb() {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_maxrss / 1024.0;
}

int main(int argc, char **argv) {
    const char *q = std::getenv("MVEAD_BENCH_QUICK");
    bool quick = q && *q && std::strcmp(q, "0") != 0;
    int threads = 1;
    long n_bank = quick ? 20000 : 100000, n_query = quick ? 2000 : 10000;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!std::strcmp(argv[i], "--threads")) threads = std::atoi(argv[i + 1]);
        else if (!std::strcmp(argv[i], "--n-bank")) n_bank = std::atol(argv[i + 1]);
        else if (!std::strcmp(argv[i], "--n-query")) n_query = std::atol(argv[i + 1]);
        else { std::fprintf(stderr, "faiss_flat: unknown argument %s\n", argv[i]); return 2; }
    }
    omp_set_num_threads(threads);
    const int dim = 768;
    std::mt19937 gen(0);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    std::vector<float> bank((size_t)n_bank * dim), queries((size_t)n_query * dim);
    for (auto &v : bank) v = nd(gen);
    for (auto &v : queries) v = nd(gen);
    std::vector<float> dist(n_query);
    std::vector<faiss::Index::idx_t> idx(n_query);   // faiss::idx_t from 1.7.4 on
    double rss0 = peak_rss_mb();

    auto t0 = std::chrono::steady_clock::now();
    faiss::IndexFlatL2 index(dim);
    index.add(n_bank, bank.data());
    auto t1 = std::chrono::steady_clock::now();
    index.search(n_query, queries.data(), 1, dist.data(), idx.data());
    auto t2 = std::chrono::steady_clock::now();
    double add_s = std::chrono::duration<double>(t1 - t0).count();
    double search_s = std::chrono::duration<double>(t2 - t1).count();
    double flops = 2.0 * (double)n_query * (double)n_bank * dim;
    std::printf("## faiss_flat (C++ API, IndexFlatL2, %d threads)\n", threads);
    std::printf("  faiss    add %.4f s, search %.4f s, %.1f GFLOP/s\n", add_s, search_s,
                flops / (add_s + search_s) * 1e-9);
    std::printf("@bench key=knn impl=faiss threads=%d size=%ldx%ld time_s=%.6g flops=%.6g held_mb=%.1f "
                "rss_mb=%.1f rss0_mb=%.1f\n",
                threads, n_query, n_bank, add_s + search_s, flops,
                (double)(n_bank + n_query) * dim * 4 / 1048576.0, peak_rss_mb(), rss0);
    return 0;
}
