// AMX kernel (Intel Sapphire Rapids and later): the products of 16 rows at a time as tile products
// in bfloat16 (tdpbf16ps: 16 x 16 sums of 32 products each per instruction), the activations and
// the cell update in AVX-512 on the tiles' float32 sums. Only called where the CPU has AMX-BF16
// and Linux has granted this process the tile state (cpu.cpp).
#include <cstdint>
#include <cstring>

#include "lstm.h"

#ifdef STOCKSENT_X86_KERNELS
#if defined(__clang__)
#pragma clang attribute push(                                                                                  \
    __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx512bf16,fma,avx2,amx-tile,amx-bf16"))), \
    apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512dq,avx512vl,avx512bf16,fma,avx2,amx-tile,amx-bf16")
#endif
#include <immintrin.h>

namespace stocksent {
namespace {

#include "avx512_math.inc"

constexpr int kTileRows = 16;

struct TileConfig {
    uint8_t palette = 1, start_row = 0, reserved[14] = {};
    uint16_t colsb[16] = {};
    uint8_t rows[16] = {};
};

size_t round_up(size_t n, size_t m) { return (n + m - 1) / m * m; }

// One 16-row tile of one block: sums (16 rows x 64, gates i f g o) = x . W_in + h . W_rec.
// Tiles 0-3 hold the four gates' sums, 4 the rows' inputs, 5-7 weights. The sums start at zero
// (their starting values are added in the activations: no store-to-tile-load round trip).
inline void tile_products(float* sums, const uint16_t* x, size_t ldx, int x_chunks, const uint16_t* h, size_t ldh,
                          int h_chunks, const uint16_t* w) {
    _tile_zero(0);
    _tile_zero(1);
    _tile_zero(2);
    _tile_zero(3);
    auto chunk = [&](const uint16_t* a, size_t lda, const uint16_t* b) {
        _tile_loadd(4, a, lda * 2);
        _tile_loadd(5, b, 64);
        _tile_dpbf16ps(0, 4, 5);
        _tile_loadd(6, b + 512, 64);
        _tile_dpbf16ps(1, 4, 6);
        _tile_loadd(7, b + 1024, 64);
        _tile_dpbf16ps(2, 4, 7);
        _tile_loadd(5, b + 1536, 64);
        _tile_dpbf16ps(3, 4, 5);
    };
    for (int c = 0; c < x_chunks; ++c, w += 2048) chunk(x + 32 * c, ldx, w);
    if (h)
        for (int c = 0; c < h_chunks; ++c, w += 2048) chunk(h + 32 * c, ldh, w);
    _tile_stored(0, sums, kBlock * 4);
    _tile_stored(1, sums + 16, kBlock * 4);
    _tile_stored(2, sums + 32, kBlock * 4);
    _tile_stored(3, sums + 48, kBlock * 4);
}

void run_amx(const Network& net, const BatchView& b, Workspace& ws) {
    TileConfig config;
    for (int t = 0; t < 8; ++t) {
        config.colsb[t] = 64;
        config.rows[t] = kTileRows;
    }
    _tile_loadconfig(&config);

    const size_t layers = net.layers.size();
    const size_t rows = round_up(static_cast<size_t>(b.rows), kTileRows);
    uint16_t* hbuf[16][2];
    float* cbuf[16];
    size_t ld[16], bytes = 0;
    for (size_t l = 0; l < layers; ++l) {
        ld[l] = round_up(net.layers[l].padded, 32);  // inputs of the next tile products: whole chunks
        bytes += 2 * round_up(rows * ld[l] * 2, 64) + round_up(rows * net.layers[l].padded * 4, 64);
    }
    ws.state.resize(bytes);
    unsigned char* at = ws.state.data();
    for (size_t l = 0; l < layers; ++l) {
        for (int p = 0; p < 2; ++p) {
            hbuf[l][p] = reinterpret_cast<uint16_t*>(at);
            std::memset(at, 0, rows * ld[l] * 2);  // columns past the layer's width multiply zero weights
            at += round_up(rows * ld[l] * 2, 64);
        }
        cbuf[l] = reinterpret_cast<float*>(at);
        at += round_up(rows * net.layers[l].padded * 4, 64);
    }
    const size_t table_stride = net.table_stride(), top_stride = net.layers.back().padded;
    alignas(64) float sums[kTileRows * kBlock];
    const int steps = b.lengths[0];
    int live = b.rows;
    for (int t = 0; t < steps; ++t) {
        while (b.lengths[live - 1] <= t) --live;
        for (size_t l = 0; l < layers; ++l) {
            const PackedLayer& layer = net.layers[l];
            const int x_chunks = (layer.inputs + 31) / 32, h_chunks = (layer.padded + 31) / 32;
            const size_t block_weights = static_cast<size_t>(layer.chunks()) * 2048;
            const uint16_t* x = l ? hbuf[l - 1][t & 1] : nullptr;
            const uint16_t* h = t ? hbuf[l][(t - 1) & 1] : nullptr;
            uint16_t* out = hbuf[l][t & 1];
            for (int j = 0; j < layer.blocks(); ++j) {
                const uint16_t* w = layer.w_amx.data() + j * block_weights;
                for (int r0 = 0; r0 < live; r0 += kTileRows) {
                    const int n = live - r0 < kTileRows ? live - r0 : kTileRows;
                    const float* init[kTileRows];
                    for (int i = 0; i < n; ++i) {
                        init[i] = l ? layer.bias.data() + j * kBlock
                                    : net.table.data() + b.ids[r0 + i][t] * table_stride + j * kBlock;
                        if (!l) {  // the next block's part of this table row, or the next word's
                            const float* next = j + 1 < layer.blocks() ? init[i] + kBlock
                                                : b.lengths[r0 + i] > t + 1
                                                    ? net.table.data() + b.ids[r0 + i][t + 1] * table_stride
                                                    : nullptr;
                            if (next)
                                for (int k = 0; k < kBlock; k += 16) __builtin_prefetch(next + k, 0, 2);
                        }
                    }
                    tile_products(sums, x ? x + r0 * ld[l - 1] : nullptr, l ? ld[l - 1] : 0, x_chunks,
                                  h ? h + r0 * ld[l] : nullptr, ld[l], h_chunks, w);
                    const float* sum_rows[kTileRows];
                    float* c_rows[kTileRows];
                    for (int i = 0; i < n; ++i) {
                        sum_rows[i] = sums + i * kBlock;
                        c_rows[i] = cbuf[l] + static_cast<size_t>(r0 + i) * layer.padded + j * kUnits;
                    }
                    const bool top = l + 1 == layers;
                    auto store = [&](int first_row) {
                        return [&, first_row](int r, __m512 v) {
                            const size_t row = static_cast<size_t>(r0 + first_row + r);
                            _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + row * ld[l] + j * kUnits),
                                                (__m256i)_mm512_cvtneps_pbh(v));
                            if (top) _mm512_storeu_ps(b.top + row * top_stride + j * kUnits, v);
                        };
                    };
                    int i = 0;
                    for (; i + 2 <= n; i += 2) finish_rows<2>(sum_rows + i, init + i, c_rows + i, t == 0, store(i));
                    if (i < n) finish_rows<1>(sum_rows + i, init + i, c_rows + i, t == 0, store(i));
                }
            }
        }
    }
    _tile_release();
}

}  // namespace

void run_amx_bf16(const Network& net, const BatchView& b, Workspace& ws) { run_amx(net, b, ws); }

// Multiply-adds of `iterations` rounds of 4 independent tile products (16 x 16 x 32 each).
double peak_amx(long iterations) {
    TileConfig config;
    for (int t = 0; t < 8; ++t) {
        config.colsb[t] = 64;
        config.rows[t] = kTileRows;
    }
    _tile_loadconfig(&config);
    alignas(64) static uint16_t a[16 * 32], b[16 * 32];
    alignas(64) float c[16 * 16];
    for (int i = 0; i < 16 * 32; ++i) a[i] = b[i] = 0x3f80;  // 1.0
    _tile_zero(0);
    _tile_zero(1);
    _tile_zero(2);
    _tile_zero(3);
    _tile_loadd(4, a, 64);
    _tile_loadd(5, b, 64);
    _tile_loadd(6, a, 64);
    _tile_loadd(7, b, 64);
    for (long k = 0; k < iterations; ++k) {
        _tile_dpbf16ps(0, 4, 5);
        _tile_dpbf16ps(1, 4, 7);
        _tile_dpbf16ps(2, 6, 5);
        _tile_dpbf16ps(3, 6, 7);
    }
    _tile_stored(0, c, 64);
    _tile_release();
    volatile float sink = c[0];
    (void)sink;
    return iterations * 4.0 * 16 * 16 * 32;
}

#include "target_end.inc"
#endif  // STOCKSENT_X86_KERNELS
