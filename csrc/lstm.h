// The LSTMClassifier's inference maths (stocksent/model.py) as fused kernels over word ids.
//
// Layout: hidden units are taken 16 at a time ("a block"); a block's weights hold, for every input
// row k, the 64 values i f g o x 16 units side by side, so one tile of rows x 64 columns has all
// four gates of 16 units and the activations and the state update run on it in registers, the
// moment its products are done (no gate buffer). Sizes are padded to 16 units with zero weights,
// which keeps padded units at exactly 0. Layer 1's input projection (embedding x W_ih + biases) is a
// table computed once at load: a row lookup per word.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

namespace stocksent {

constexpr int kUnits = 16;
constexpr int kBlock = 4 * kUnits;

// 64-byte aligned memory; from 2 MB up, 2 MB aligned and backed by huge pages where the OS allows,
// so random rows of the layer-1 table do not each cost a TLB miss. Freed with std::free.
void* allocate_aligned(size_t bytes);

// 64-byte aligned storage: weight rows and state rows start on cache lines.
template <class T>
class Aligned {
public:
    Aligned() = default;
    explicit Aligned(size_t n) { resize(n); }
    void resize(size_t n) {
        if (n <= capacity_) {
            size_ = n;
            return;
        }
        data_.reset(static_cast<T*>(allocate_aligned((n ? n : 1) * sizeof(T))));
        size_ = capacity_ = n;
    }
    T* data() { return data_.get(); }
    const T* data() const { return data_.get(); }
    size_t size() const { return size_; }
    T& operator[](size_t i) { return data_.get()[i]; }
    const T& operator[](size_t i) const { return data_.get()[i]; }

private:
    struct Free {
        void operator()(T* p) const { std::free(p); }
    };
    std::unique_ptr<T, Free> data_;
    size_t size_ = 0, capacity_ = 0;
};

struct PackedLayer {
    int hidden = 0;  // H
    int padded = 0;  // H rounded up to kUnits
    int inputs = 0;  // padded width of this layer's input (0 for layer 1: its input is the table)
    int rows() const { return inputs + padded; }
    int blocks() const { return padded / kUnits; }
    Aligned<float> w;        // blocks x rows() x 64: input rows, then recurrent rows
    Aligned<float> bias;     // blocks x 64 (layers after the first; the first's is in the table)
    Aligned<uint16_t> w_bf;  // bfloat16 kernels: blocks x rows()/2 x 4 gates x 16 units x 2 rows
    // AMX: inputs and recurrent rows each padded to 32; per block, per 32 rows, per gate, one
    // 16 x 32 tile: row p holds rows 2p and 2p + 1 of 16 units, interleaved.
    int chunks() const { return (inputs + 31) / 32 + (padded + 31) / 32; }
    Aligned<uint16_t> w_amx;
};

struct Network {
    int64_t vocab = 0;
    Aligned<float> table;  // vocab x blocks of layer 1 x 64
    std::vector<PackedLayer> layers;
    std::vector<float> w_out;  // top layer's padded width
    float b_out = 0;
    std::vector<float> ngram;  // vocab + buckets weights (empty: no n-gram term)
    int64_t buckets = 0;
    bool bf16 = false;     // has the bfloat16 forms of the weights (w_bf, w_amx)
    bool rounded = false;  // PackedLayer::w holds bfloat16-rounded values (for the float32-emulated kernels)
    size_t table_stride() const { return static_cast<size_t>(layers[0].blocks()) * kBlock; }
};

// One length-sorted batch (rows longest first), as the kernels see it.
struct BatchView {
    int rows = 0;
    const int64_t* const* ids = nullptr;  // per row: its first word id (an empty message: one 0)
    const int32_t* lengths = nullptr;     // per row, >= 1, non-increasing
    float* top = nullptr;                 // rows x top padded width: the top layer's h at each row's last word
};

// Per-thread buffers, grown on demand and kept: calls after the first allocate nothing.
struct Workspace {
    Aligned<unsigned char> state;
    std::vector<const int64_t*> row_ids, batch_ids;
    std::vector<int32_t> row_lengths;
    std::vector<int64_t> order;
    std::vector<float> ngram;
    Aligned<float> top;
};

// A network as torch holds it (float32, row-major), for pack_network.
struct RawLayer {
    int hidden = 0, inputs = 0;      // inputs: the previous layer's H (ignored for layer 1)
    const float* w_ih = nullptr;     // 4H x inputs (layers after the first)
    const float* w_hh = nullptr;     // 4H x H
    const float* bias = nullptr;     // 4H: b_ih + b_hh (layers after the first)
};
struct RawNetwork {
    int64_t vocab = 0;
    const float* table = nullptr;  // vocab x 4H of layer 1: embedding @ W_ih^T + b_ih + b_hh
    std::vector<RawLayer> layers;
    const float* w_out = nullptr;  // top H
    float b_out = 0;
    const float* ngram = nullptr;  // vocab + buckets, or nullptr
    int64_t buckets = 0;
    bool bf16 = false;
};
Network pack_network(const RawNetwork& raw);

using BatchKernel = void (*)(const Network&, const BatchView&, Workspace&);

struct KernelInfo {
    enum Weights { kFloat32, kRounded, kPairs, kTiles };  // reads w, w rounded, w_bf, w_amx
    const char* name;
    Weights weights;
    BatchKernel run;
};

// The kernels this build has and this CPU runs, best first, for float32 or bfloat16.
std::vector<KernelInfo> usable_kernels(bool bf16);

// Calls of at least this many messages run the large-call kernel of precision "auto".
constexpr size_t kAutoBf16Min = 64;

class LSTMEngine {
public:
    // `precision`: "float32", "bfloat16", or "auto" (float32 for calls of fewer than kAutoBf16Min
    // messages, AMX bfloat16 from there, where the CPU has it). `kernel`: a name from
    // usable_kernels for that precision, or empty for the best.
    LSTMEngine(Network net, const std::string& precision, const std::string& kernel);
    const char* kernel_name() const { return small_.name; }
    const char* large_kernel_name() const { return large_.run ? large_.name : ""; }
    const Network& network() const { return net_; }
    // Logits of messages laid end to end; returns an error message (empty when fine).
    std::string logits(const int64_t* ids, size_t n_ids, const int64_t* lengths, size_t n, float* out,
                       int batch_rows) const;

private:
    Network net_;
    KernelInfo small_{}, large_{};
};

// Kernels by instruction set (kernels_*.cpp); each file compiles only where its target exists
// (-DSTOCKSENT_PORTABLE builds the portable kernels alone, as on other architectures).
void run_generic_f32(const Network&, const BatchView&, Workspace&);
void run_generic_bf16(const Network&, const BatchView&, Workspace&);
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__)) && !defined(STOCKSENT_PORTABLE)
#define STOCKSENT_X86_KERNELS 1
void run_avx2_f32(const Network&, const BatchView&, Workspace&);
void run_avx2_bf16(const Network&, const BatchView&, Workspace&);
void run_avx512_f32(const Network&, const BatchView&, Workspace&);
void run_avx512_bf16_emulated(const Network&, const BatchView&, Workspace&);
void run_avx512_bf16(const Network&, const BatchView&, Workspace&);
void run_amx_bf16(const Network&, const BatchView&, Workspace&);
#endif

// Peak multiply-adds per CPU-second of one core for a kind of instruction ("avx512-fp32",
// "avx512-bf16", "avx2-fp32", "amx-bf16"), measured over about `seconds` of this thread's CPU
// time (time descheduled on a shared machine is not counted); 0 when this CPU lacks it.
double peak_macs(const std::string& kind, double seconds);

}  // namespace stocksent
