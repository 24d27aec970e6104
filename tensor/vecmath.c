/* vecmath: vecmath_impl.h compiled once per x86 ISA level (AVX-512F,
 * AVX2+FMA, SSE2) with SLEEF's functions of that width (and, where glibc
 * has it, libmvec's erfcf of that width for GELU), and the run-time
 * choice of the widest one the CPU supports. The choice never depends on the
 * thread count, so neither do the results. */
#include "config.h"
#include "tensor/vecmath.h"

#include <math.h>
#include <string.h>

#if !defined(__x86_64__)
#error "vecmath.c: only x86-64 is supported (SLEEF vector variants chosen by ISA)"
#endif

/* Each block below compiles for its own ISA: GCC through `#pragma GCC
 * target`, clang through `#pragma clang attribute` (clang ignores the GCC
 * pragma, and without the target attribute a 512-bit argument would be
 * passed with the wrong ABI). sleef.h declares each width's functions only
 * when the ISA's macro is defined: GCC's pragma defines it, clang's does not,
 * so for clang the few we call are declared here. */
#ifdef __clang__
#define ISA_BEGIN_AVX512 _Pragma("clang attribute push(__attribute__((target(\"avx512f,avx2,fma\"))), apply_to = function)")
#define ISA_BEGIN_AVX2 _Pragma("clang attribute push(__attribute__((target(\"avx2,fma\"))), apply_to = function)")
#define ISA_END _Pragma("clang attribute pop")
#else
#define ISA_BEGIN_AVX512 _Pragma("GCC push_options") _Pragma("GCC target(\"avx512f,avx2,fma\")")
#define ISA_BEGIN_AVX2 _Pragma("GCC push_options") _Pragma("GCC target(\"avx2,fma\")")
#define ISA_END _Pragma("GCC pop_options")
#endif

/* The intrinsics' header comes first, outside every target pragma: included
 * under the AVX-512 target, its functions would carry that target and GCC
 * would refuse to inline them into the AVX2 build. */
#include <immintrin.h>

ISA_BEGIN_AVX512
#include <sleef.h>
#ifndef __AVX512F__
__m512 Sleef_expf16_u10avx512f(__m512);
__m512 Sleef_erff16_u10avx512f(__m512);
__m512 Sleef_erfcf16_u15avx512f(__m512);
__m512 Sleef_tanhf16_u10avx512f(__m512);
#endif
#ifndef __AVX__
__m256 Sleef_expf8_u10avx2(__m256);
__m256 Sleef_erff8_u10avx2(__m256);
__m256 Sleef_erfcf8_u15avx2(__m256);
__m256 Sleef_tanhf8_u10avx2(__m256);
#endif
#ifdef HAVE_LIBMVEC_ERFC
/* glibc's libmvec, by its vector-ABI names (math.h declares them only for
 * `omp declare simd` builds): e = AVX-512, d = AVX2, b = SSE2 */
__m512 _ZGVeN16v_erfcf(__m512);
__m256 _ZGVdN8v_erfcf(__m256);
#endif
ISA_END
#ifdef HAVE_LIBMVEC_ERFC
__m128 _ZGVbN4v_erfcf(__m128);
#endif

ISA_BEGIN_AVX512
#define V_W 16
#define V_NAME "avx512f"
#define FN(name) name##_avx512
#define V_EXP(v) Sleef_expf16_u10avx512f(v)
#define V_ERF(v) Sleef_erff16_u10avx512f(v)
#define V_ERFC(v) Sleef_erfcf16_u15avx512f(v)
#define V_TANH(v) Sleef_tanhf16_u10avx512f(v)
#ifdef HAVE_LIBMVEC_ERFC
#define V_ERFC_ALL(v) _ZGVeN16v_erfcf(v)
#endif
#define V_LO(v) _mm512_cvtps_pd(_mm512_castps512_ps256((__m512)(v)))
#define V_HI(v) _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd((__m512)(v)), 1)))
#define V_NARROW(l, h)                                                                             \
    _mm512_castpd_ps(_mm512_insertf64x4(_mm512_castps_pd(_mm512_castps256_ps512(_mm512_cvtpd_ps((__m512d)(l)))), \
                                        _mm256_castps_pd(_mm512_cvtpd_ps((__m512d)(h))), 1))
#define V_LD_PART(p, n, pad) _mm512_mask_loadu_ps(_mm512_set1_ps(pad), (__mmask16)((1u << (n)) - 1), (p))
#define V_ST_PART(p, v, n) _mm512_mask_storeu_ps((p), (__mmask16)((1u << (n)) - 1), (__m512)(v))
#include "tensor/vecmath_impl.h"
ISA_END

ISA_BEGIN_AVX2
#define V_W 8
#define V_NAME "avx2"
#define FN(name) name##_avx2
#define V_EXP(v) Sleef_expf8_u10avx2(v)
#define V_ERF(v) Sleef_erff8_u10avx2(v)
#define V_ERFC(v) Sleef_erfcf8_u15avx2(v)
#define V_TANH(v) Sleef_tanhf8_u10avx2(v)
#ifdef HAVE_LIBMVEC_ERFC
#define V_ERFC_ALL(v) _ZGVdN8v_erfcf(v)
#endif
#define V_LO(v) _mm256_cvtps_pd(_mm256_castps256_ps128((__m256)(v)))
#define V_HI(v) _mm256_cvtps_pd(_mm256_extractf128_ps((__m256)(v), 1))
#define V_NARROW(l, h) \
    _mm256_insertf128_ps(_mm256_castps128_ps256(_mm256_cvtpd_ps((__m256d)(l))), _mm256_cvtpd_ps((__m256d)(h)), 1)
#include "tensor/vecmath_impl.h"
ISA_END

/* x86-64 baseline */
#define V_W 4
#define V_NAME "sse2"
#define FN(name) name##_sse2
#define V_EXP(v) Sleef_expf4_u10sse2(v)
#define V_ERF(v) Sleef_erff4_u10sse2(v)
#define V_ERFC(v) Sleef_erfcf4_u15sse2(v)
#define V_TANH(v) Sleef_tanhf4_u10sse2(v)
#ifdef HAVE_LIBMVEC_ERFC
#define V_ERFC_ALL(v) _ZGVbN4v_erfcf(v)
#endif
#define V_LO(v) _mm_cvtps_pd((__m128)(v))
#define V_HI(v) _mm_cvtps_pd(_mm_movehl_ps((__m128)(v), (__m128)(v)))
#define V_NARROW(l, h) _mm_movelh_ps(_mm_cvtpd_ps((__m128d)(l)), _mm_cvtpd_ps((__m128d)(h)))
#include "tensor/vecmath_impl.h"

int mvv_levels(const mvv_table **out) {
    int n = 0;
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) out[n++] = &table_avx512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) out[n++] = &table_avx2;
    out[n++] = &table_sse2;
    return n;
}

const mvv_table *mvv_get(void) {
    static const mvv_table *chosen;   /* a benign race: every thread computes the same pointer */
    const mvv_table *t = __atomic_load_n(&chosen, __ATOMIC_ACQUIRE);
    if (!t) {
        const mvv_table *lv[3];
        mvv_levels(lv);
        t = lv[0];
        __atomic_store_n(&chosen, t, __ATOMIC_RELEASE);
    }
    return t;
}
