// Scalar activations for the portable kernels, in the form the vector kernels use (the same
// polynomial exp), so every kernel rounds alike. Internal linkage: each file gets its own copy,
// compiled for its own instruction set.
#pragma once

#include <cstdint>
#include <cstring>

namespace stocksent {

// Cephes' expf: exp(x) = 2^n exp(r), r = x - n ln 2 in [-ln2/2, ln2/2], exp(r) by a degree-6
// polynomial; about 1 ulp on the clamped range (beyond it, the sigmoid is 0 or 1 anyway).
static inline float exp_approx(float x) {
    x = x < -87.0f ? -87.0f : (x > 88.0f ? 88.0f : x);
    const float n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;  // round to nearest
    float r = x - n * 0.693359375f;
    r = r - n * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    const int32_t bits = (static_cast<int32_t>(n) + 127) << 23;
    float scale;
    std::memcpy(&scale, &bits, sizeof scale);
    return p * scale;
}

static inline float sigmoid(float x) { return 1.0f / (1.0f + exp_approx(-x)); }

static inline float tanh_(float x) { return 2.0f * sigmoid(2.0f * x) - 1.0f; }

// float32 -> the nearest bfloat16 (ties to even), as a float32 value.
static inline float round_bf16(float x) {
    uint32_t u;
    std::memcpy(&u, &x, sizeof u);
    u = (u + 0x7fffu + ((u >> 16) & 1u)) & 0xffff0000u;
    std::memcpy(&x, &u, sizeof x);
    return x;
}

static inline uint16_t bf16_bits(float x) {
    const float r = round_bf16(x);
    uint32_t u;
    std::memcpy(&u, &r, sizeof u);
    return static_cast<uint16_t>(u >> 16);
}

}  // namespace stocksent
