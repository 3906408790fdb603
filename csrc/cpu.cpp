#include "cpu.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__)) && !defined(STOCKSENT_PORTABLE)
#include <cpuid.h>
#if defined(__linux__)
#include <sys/syscall.h>
#include <unistd.h>
#endif
#define STOCKSENT_X86 1
#endif

namespace stocksent {

#ifdef STOCKSENT_X86
namespace {

unsigned long long xgetbv0() {
    unsigned int eax, edx;
    __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
    return (static_cast<unsigned long long>(edx) << 32) | eax;
}

// Linux hands out the (large) AMX tile state only to processes that ask for it.
bool amx_permitted() {
#if defined(__linux__)
    const long ARCH_REQ_XCOMP_PERM = 0x1023, XFEATURE_XTILEDATA = 18;
    return syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) == 0;
#else
    return false;
#endif
}

CpuFeatures detect() {
    CpuFeatures f;
    unsigned int a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return f;
    const bool osxsave = c & (1u << 27), fma = c & (1u << 12);
    if (!osxsave) return f;
    const unsigned long long xcr0 = xgetbv0();
    const bool ymm_state = (xcr0 & 0x6) == 0x6, zmm_state = (xcr0 & 0xe6) == 0xe6;
    const bool tile_state = (xcr0 & 0x60000) == 0x60000;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return f;
    const bool avx2 = b & (1u << 5);
    const bool avx512f = b & (1u << 16), avx512dq = b & (1u << 17), avx512bw = b & (1u << 30),
               avx512vl = b & (1u << 31);
    const bool amx_bf16 = d & (1u << 22), amx_tile = d & (1u << 24);
    f.avx2_fma = avx2 && fma && ymm_state;
    f.avx512 = f.avx2_fma && avx512f && avx512dq && avx512bw && avx512vl && zmm_state;
    unsigned int a1 = 0, b1 = 0, c1 = 0, d1 = 0;
    __get_cpuid_count(7, 1, &a1, &b1, &c1, &d1);
    f.avx512_bf16 = f.avx512 && (a1 & (1u << 5));
    f.amx_bf16 = f.avx512_bf16 && amx_bf16 && amx_tile && tile_state && amx_permitted();
    return f;
}

}  // namespace
#endif

const CpuFeatures& cpu_features() {
#ifdef STOCKSENT_X86
    static const CpuFeatures features = detect();
#else
    static const CpuFeatures features;
#endif
    return features;
}

}  // namespace stocksent
