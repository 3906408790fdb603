// AVX-512 kernels: float32 (FMA), bfloat16 computed in float32 (for CPUs without AVX512-BF16), and
// bfloat16 products with vdpbf16ps (AVX512-BF16). Only called after cpu_features() said so.
#include <cstdint>
#include <cstring>

#include "lstm.h"

#ifdef STOCKSENT_X86_KERNELS
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx512bf16,fma,avx2"))), \
                             apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512dq,avx512vl,avx512bf16,fma,avx2")
#endif
#include <immintrin.h>

namespace stocksent {
namespace {

#include "lstm_loop.inc"

#include "avx512_math.inc"

// Not inlined: the register allocator then gives the R x 4 sums registers of their own, not the
// constants of the activations around it (inlined, GCC spilled the sums to the stack).
#define STOCKSENT_MICROKERNEL __attribute__((noinline))

// sums[r][g] += sum over k of x[r][k] * w[k][g]: 4 weight vectors loaded per k, reused by every row.
template <int R>
STOCKSENT_MICROKERNEL const float* products(float* sums, const float* x, size_t ld, int k_end, const float* w) {
    __m512 acc[R][4];
    for (int r = 0; r < R; ++r)
        for (int g = 0; g < 4; ++g) acc[r][g] = _mm512_load_ps(sums + r * kBlock + 16 * g);
    for (int k = 0; k < k_end; ++k, w += kBlock) {
        const __m512 w0 = _mm512_load_ps(w), w1 = _mm512_load_ps(w + 16), w2 = _mm512_load_ps(w + 32),
                     w3 = _mm512_load_ps(w + 48);
#pragma GCC unroll 8
        for (int r = 0; r < R; ++r) {
            const __m512 xr = _mm512_set1_ps(x[r * ld + k]);
            acc[r][0] = _mm512_fmadd_ps(xr, w0, acc[r][0]);
            acc[r][1] = _mm512_fmadd_ps(xr, w1, acc[r][1]);
            acc[r][2] = _mm512_fmadd_ps(xr, w2, acc[r][2]);
            acc[r][3] = _mm512_fmadd_ps(xr, w3, acc[r][3]);
        }
    }
    for (int r = 0; r < R; ++r)
        for (int g = 0; g < 4; ++g) _mm512_store_ps(sums + r * kBlock + 16 * g, acc[r][g]);
    return w;
}

// The same with bfloat16 pairs: rows k and k+1 of x times rows k and k+1 of w in one vdpbf16ps.
template <int R>
STOCKSENT_MICROKERNEL const uint16_t* products_bf16(float* sums, const uint16_t* x, size_t ld, int k_end,
                                                    const uint16_t* w) {
    __m512 acc[R][4];
    for (int r = 0; r < R; ++r)
        for (int g = 0; g < 4; ++g) acc[r][g] = _mm512_load_ps(sums + r * kBlock + 16 * g);
    for (int k = 0; k < k_end; k += 2, w += 2 * kBlock) {
        const __m512bh w0 = (__m512bh)_mm512_load_si512(w), w1 = (__m512bh)_mm512_load_si512(w + 32),
                       w2 = (__m512bh)_mm512_load_si512(w + 64), w3 = (__m512bh)_mm512_load_si512(w + 96);
#pragma GCC unroll 8
        for (int r = 0; r < R; ++r) {
            int32_t pair;
            std::memcpy(&pair, x + r * ld + k, sizeof pair);
            const __m512bh xr = (__m512bh)_mm512_set1_epi32(pair);
            acc[r][0] = _mm512_dpbf16_ps(acc[r][0], xr, w0);
            acc[r][1] = _mm512_dpbf16_ps(acc[r][1], xr, w1);
            acc[r][2] = _mm512_dpbf16_ps(acc[r][2], xr, w2);
            acc[r][3] = _mm512_dpbf16_ps(acc[r][3], xr, w3);
        }
    }
    for (int r = 0; r < R; ++r)
        for (int g = 0; g < 4; ++g) _mm512_store_ps(sums + r * kBlock + 16 * g, acc[r][g]);
    return w;
}

// The tile's R rows through finish_rows, two at a time.
template <int R, class E, class Store>
inline void finish_tile(const float* sums, const Tile<E>& a, Store store) {
    const float* rows[R];
    float* cells[R];
    for (int r = 0; r < R; ++r) {
        rows[r] = sums + r * kBlock;
        cells[r] = a.c + r * a.ldc;
    }
    int r = 0;
    for (; r + 2 <= R; r += 2)
        finish_rows<2>(rows + r, nullptr, cells + r, a.first, [&](int k, __m512 out) { store(r + k, out); });
    if (r < R) finish_rows<1>(rows + r, nullptr, cells + r, a.first, [&](int k, __m512 out) { store(r + k, out); });
}

template <bool RoundBf16>
struct Avx512 {
    using E = float;
    static constexpr int kRows = 6;
    static constexpr bool kBf16Weights = false;

    template <int R>
    static void tile(const Tile<float>& a) {
        alignas(64) float sums[R * kBlock];
        for (int r = 0; r < R; ++r)
            for (int g = 0; g < 4; ++g) _mm512_store_ps(sums + r * kBlock + 16 * g, _mm512_loadu_ps(a.init[r] + 16 * g));
        const float* w = static_cast<const float*>(a.w);
        if (a.kx) w = products<R>(sums, a.x, a.ldx, a.kx, w);
        if (a.h) products<R>(sums, a.h, a.ldh, a.kh, w);
        finish_tile<R>(sums, a, [&](int r, __m512 out) {
            _mm512_storeu_ps(a.hout + r * a.ldo, RoundBf16 ? round_bf16_16(out) : out);
            if (a.top) _mm512_storeu_ps(a.top + r * a.ldt, out);
        });
    }
};

// h as bfloat16, weights as pairs of rows: one vdpbf16ps adds two rows' products to 16 sums.
struct Avx512Bf16 {
    using E = uint16_t;
    static constexpr int kRows = 6;
    static constexpr bool kBf16Weights = true;

    template <int R>
    static void tile(const Tile<uint16_t>& a) {
        alignas(64) float sums[R * kBlock];
        for (int r = 0; r < R; ++r)
            for (int g = 0; g < 4; ++g) _mm512_store_ps(sums + r * kBlock + 16 * g, _mm512_loadu_ps(a.init[r] + 16 * g));
        const uint16_t* w = static_cast<const uint16_t*>(a.w);
        if (a.kx) w = products_bf16<R>(sums, a.x, a.ldx, a.kx, w);
        if (a.h) products_bf16<R>(sums, a.h, a.ldh, a.kh, w);
        finish_tile<R>(sums, a, [&](int r, __m512 out) {
            _mm256_storeu_si256(reinterpret_cast<__m256i*>(a.hout + r * a.ldo), (__m256i)_mm512_cvtneps_pbh(out));
            if (a.top) _mm512_storeu_ps(a.top + r * a.ldt, out);
        });
    }
};

}  // namespace

void run_avx512_f32(const Network& net, const BatchView& b, Workspace& ws) { run_batch<Avx512<false>>(net, b, ws); }
void run_avx512_bf16_emulated(const Network& net, const BatchView& b, Workspace& ws) {
    run_batch<Avx512<true>>(net, b, ws);
}
void run_avx512_bf16(const Network& net, const BatchView& b, Workspace& ws) { run_batch<Avx512Bf16>(net, b, ws); }

// Multiply-adds of `iterations` rounds of 12 independent accumulations (more than the latency
// times the ports): the loop runs at the instruction's throughput.
double peak_avx512(bool bf16, long iterations) {
    __m512 acc[12];
    for (int i = 0; i < 12; ++i) acc[i] = _mm512_set1_ps(static_cast<float>(i));
    if (bf16) {
        const __m512bh b = (__m512bh)_mm512_set1_epi32(0x3f7f3f7f), c = (__m512bh)_mm512_set1_epi32(0x3a833a83);
        for (long k = 0; k < iterations; ++k) {
#pragma GCC unroll 12
            for (int i = 0; i < 12; ++i) acc[i] = _mm512_dpbf16_ps(acc[i], b, c);
        }
    } else {
        const __m512 b = _mm512_set1_ps(0.999f), c = _mm512_set1_ps(1e-3f);
        for (long k = 0; k < iterations; ++k) {
#pragma GCC unroll 12
            for (int i = 0; i < 12; ++i) acc[i] = _mm512_fmadd_ps(acc[i], b, c);
        }
    }
    __m512 sum = acc[0];
    for (int i = 1; i < 12; ++i) sum = _mm512_add_ps(sum, acc[i]);
    volatile float sink = _mm512_reduce_add_ps(sum);
    (void)sink;
    return iterations * 12.0 * (bf16 ? 32 : 16);
}

#include "target_end.inc"
#endif  // STOCKSENT_X86_KERNELS
