// What the CPU this process runs on can execute: read once with cpuid/xgetbv (x86-64), so every
// kernel is chosen at run time and the build never depends on the machine it was compiled on.
#pragma once

namespace stocksent {

struct CpuFeatures {
    bool avx2_fma = false;     // AVX2 + FMA, and the OS saves ymm state
    bool avx512 = false;       // AVX-512 F/BW/DQ/VL, and the OS saves zmm state
    bool avx512_bf16 = false;  // vdpbf16ps / vcvtneps2bf16
    bool amx_bf16 = false;     // AMX tiles with bf16 products, granted by the OS to this process
};

// Detected once (thread-safe static initialisation); AMX permission is requested from Linux here.
const CpuFeatures& cpu_features();

}  // namespace stocksent
