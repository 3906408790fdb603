// AVX2 + FMA kernels (x86-64 CPUs since 2013, AMD Zen included): float32, and bfloat16 computed in
// float32. A tile is one row: 8 accumulators of 8 floats hold its 64 gate sums.
#include <cstdint>
#include <cstring>

#include "lstm.h"

#ifdef STOCKSENT_X86_KERNELS
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx2,fma")
#endif
#include <immintrin.h>

namespace stocksent {
namespace {

#include "lstm_loop.inc"

inline __m256 exp8(__m256 x) {
    x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-87.0f)), _mm256_set1_ps(88.0f));
    const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                     _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.9875691500e-4f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
    p = _mm256_fmadd_ps(_mm256_mul_ps(p, r), r, _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
}

inline __m256 sigmoid8(__m256 x) {
    const __m256 one = _mm256_set1_ps(1.0f);
    return _mm256_div_ps(one, _mm256_add_ps(one, exp8(_mm256_sub_ps(_mm256_setzero_ps(), x))));
}

inline __m256 tanh8(__m256 x) {
    return _mm256_fmsub_ps(_mm256_set1_ps(2.0f), sigmoid8(_mm256_add_ps(x, x)), _mm256_set1_ps(1.0f));
}

inline __m256 round_bf16_8(__m256 x) {
    __m256i u = _mm256_castps_si256(x);
    const __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(1));
    u = _mm256_add_epi32(u, _mm256_add_epi32(lsb, _mm256_set1_epi32(0x7fff)));
    return _mm256_castsi256_ps(_mm256_and_si256(u, _mm256_set1_epi32(static_cast<int>(0xffff0000u))));
}

// acc[v] += sum over k of x[k] * w[k][8v..8v+7], the 8 sums of one row.
inline __attribute__((always_inline)) const float* products(__m256 (&acc)[8], const float* x, int k_end,
                                                             const float* w) {
    for (int k = 0; k < k_end; ++k, w += kBlock) {
        const __m256 xk = _mm256_set1_ps(x[k]);
#pragma GCC unroll 8
        for (int v = 0; v < 8; ++v) acc[v] = _mm256_fmadd_ps(xk, _mm256_load_ps(w + 8 * v), acc[v]);
    }
    return w;
}

template <bool RoundBf16>
struct Avx2 {
    using E = float;
    static constexpr int kRows = 1;
    static constexpr bool kBf16Weights = false;

    template <int R>
    static void tile(const Tile<float>& a) {
        __m256 acc[8];
        for (int v = 0; v < 8; ++v) acc[v] = _mm256_loadu_ps(a.init[0] + 8 * v);
        const float* w = static_cast<const float*>(a.w);
        if (a.kx) w = products(acc, a.x, a.kx, w);
        if (a.h) products(acc, a.h, a.kh, w);
        for (int half = 0; half < 2; ++half) {  // units 0-7, then 8-15
            const int u = 8 * half;
            const __m256 i = sigmoid8(acc[half]), f = sigmoid8(acc[2 + half]);
            const __m256 g = tanh8(acc[4 + half]), o = sigmoid8(acc[6 + half]);
            const __m256 ig = _mm256_mul_ps(i, g);
            const __m256 c = a.first ? ig : _mm256_fmadd_ps(f, _mm256_loadu_ps(a.c + u), ig);
            _mm256_storeu_ps(a.c + u, c);
            const __m256 out = _mm256_mul_ps(o, tanh8(c));
            _mm256_storeu_ps(a.hout + u, RoundBf16 ? round_bf16_8(out) : out);
            if (a.top) _mm256_storeu_ps(a.top + u, out);
        }
    }
};

}  // namespace

void run_avx2_f32(const Network& net, const BatchView& b, Workspace& ws) { run_batch<Avx2<false>>(net, b, ws); }
void run_avx2_bf16(const Network& net, const BatchView& b, Workspace& ws) { run_batch<Avx2<true>>(net, b, ws); }

double peak_avx2(long iterations) {
    __m256 acc[12];
    for (int i = 0; i < 12; ++i) acc[i] = _mm256_set1_ps(static_cast<float>(i));
    const __m256 b = _mm256_set1_ps(0.999f), c = _mm256_set1_ps(1e-3f);
    for (long k = 0; k < iterations; ++k) {
#pragma GCC unroll 12
        for (int i = 0; i < 12; ++i) acc[i] = _mm256_fmadd_ps(acc[i], b, c);
    }
    __m256 sum = acc[0];
    for (int i = 1; i < 12; ++i) sum = _mm256_add_ps(sum, acc[i]);
    float lanes[8];
    _mm256_storeu_ps(lanes, sum);
    volatile float sink = lanes[0];
    (void)sink;
    return iterations * 12.0 * 8;
}

#include "target_end.inc"
#endif  // STOCKSENT_X86_KERNELS
