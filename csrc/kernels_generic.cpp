// Portable kernels (any CPU and compiler): plain loops the compiler vectorises for the baseline
// instruction set. float32, and bfloat16 computed exactly as the bfloat16 kernels do (weights and
// h rounded to bfloat16, products summed in float32), for CPUs without bfloat16 instructions.
#include <cstdint>
#include <cstring>

#include "activations.h"
#include "lstm.h"

namespace stocksent {
namespace {

#include "lstm_loop.inc"

template <bool RoundBf16>
struct Generic {
    using E = float;
    static constexpr int kRows = 4;
    static constexpr bool kBf16Weights = false;

    template <int R>
    static void tile(const Tile<float>& a) {
        alignas(64) float acc[R][kBlock];
        for (int r = 0; r < R; ++r) std::memcpy(acc[r], a.init[r], sizeof(acc[r]));
        const float* w = static_cast<const float*>(a.w);
        for (int k = 0; k < a.kx; ++k, w += kBlock)
            for (int r = 0; r < R; ++r) {
                const float x = a.x[r * a.ldx + k];
                for (int c = 0; c < kBlock; ++c) acc[r][c] += x * w[c];
            }
        if (a.h)
            for (int k = 0; k < a.kh; ++k, w += kBlock)
                for (int r = 0; r < R; ++r) {
                    const float x = a.h[r * a.ldh + k];
                    for (int c = 0; c < kBlock; ++c) acc[r][c] += x * w[c];
                }
        for (int r = 0; r < R; ++r) {
            float* c = a.c + r * a.ldc;
            float* h = a.hout + r * a.ldo;
            for (int u = 0; u < kUnits; ++u) {
                const float i = sigmoid(acc[r][u]), f = sigmoid(acc[r][kUnits + u]);
                const float g = tanh_(acc[r][2 * kUnits + u]), o = sigmoid(acc[r][3 * kUnits + u]);
                const float cell = a.first ? i * g : f * c[u] + i * g;
                c[u] = cell;
                const float out = o * tanh_(cell);
                h[u] = RoundBf16 ? round_bf16(out) : out;
                if (a.top) a.top[r * a.ldt + u] = out;
            }
        }
    }
};

}  // namespace

void run_generic_f32(const Network& net, const BatchView& b, Workspace& ws) { run_batch<Generic<false>>(net, b, ws); }
void run_generic_bf16(const Network& net, const BatchView& b, Workspace& ws) { run_batch<Generic<true>>(net, b, ws); }

}  // namespace stocksent
