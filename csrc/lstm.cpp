// The engine around the kernels: input checks, the n-gram term, length order, batches, output layer.
#include "lstm.h"

#include <algorithm>
#include <chrono>
#include <ctime>
#include <cmath>
#include <stdexcept>

#include "activations.h"
#include "cpu.h"

#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace stocksent {

#ifdef STOCKSENT_X86_KERNELS
double peak_avx512(bool bf16, long iterations);
double peak_avx2(long iterations);
double peak_amx(long iterations);
#endif

void* allocate_aligned(size_t bytes) {
    constexpr size_t kHuge = size_t(2) << 20;
    const size_t alignment = bytes >= kHuge ? kHuge : 64;
    void* p = nullptr;
    if (posix_memalign(&p, alignment, bytes) != 0) throw std::bad_alloc();
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    if (alignment == kHuge) madvise(p, bytes / kHuge * kHuge, MADV_HUGEPAGE);
#endif
    return p;
}

std::vector<KernelInfo> usable_kernels(bool bf16) {
    std::vector<KernelInfo> out;
#ifdef STOCKSENT_X86_KERNELS
    const CpuFeatures& cpu = cpu_features();
    using W = KernelInfo;
    if (bf16) {
        if (cpu.amx_bf16) out.push_back({"amx", W::kTiles, run_amx_bf16});
        if (cpu.avx512_bf16) out.push_back({"avx512-bf16", W::kPairs, run_avx512_bf16});
        if (cpu.avx512) out.push_back({"avx512", W::kRounded, run_avx512_bf16_emulated});
        if (cpu.avx2_fma) out.push_back({"avx2", W::kRounded, run_avx2_bf16});
    } else {
        if (cpu.avx512) out.push_back({"avx512", W::kFloat32, run_avx512_f32});
        if (cpu.avx2_fma) out.push_back({"avx2", W::kFloat32, run_avx2_f32});
    }
#endif
    if (bf16)
        out.push_back({"generic", KernelInfo::kRounded, run_generic_bf16});
    else
        out.push_back({"generic", KernelInfo::kFloat32, run_generic_f32});
    return out;
}

LSTMEngine::LSTMEngine(Network net, const std::string& precision, const std::string& kernel)
    : net_(std::move(net)) {
    if (precision != "float32" && precision != "bfloat16" && precision != "auto")
        throw std::invalid_argument("precision must be float32, bfloat16 or auto");
    if ((precision != "float32") != net_.bf16) throw std::invalid_argument("the network was packed for another precision");
    if (precision == "auto" && !kernel.empty()) throw std::invalid_argument("precision auto picks its own kernels");
    const std::vector<KernelInfo> kernels = usable_kernels(precision == "bfloat16");
    auto found = kernels.begin();
    if (!kernel.empty()) {
        found = std::find_if(kernels.begin(), kernels.end(), [&](const KernelInfo& k) { return kernel == k.name; });
        if (found == kernels.end()) throw std::invalid_argument("kernel " + kernel + " is not available on this CPU");
    }
    small_ = *found;
    if (precision == "auto") {
        const std::vector<KernelInfo> large = usable_kernels(true);
        if (large.front().weights == KernelInfo::kTiles) large_ = large.front();
    }
    if (small_.weights == KernelInfo::kRounded) {  // the float32 kernels multiply bfloat16-rounded values
        for (PackedLayer& layer : net_.layers)
            for (size_t i = 0; i < layer.w.size(); ++i) layer.w[i] = round_bf16(layer.w[i]);
        net_.rounded = true;
    }
}

Network pack_network(const RawNetwork& raw) {
    Network net;
    net.vocab = raw.vocab;
    net.bf16 = raw.bf16;
    net.b_out = raw.b_out;
    net.buckets = raw.buckets;
    if (raw.ngram) net.ngram.assign(raw.ngram, raw.ngram + raw.vocab + raw.buckets);
    int previous = 0;
    for (const RawLayer& r : raw.layers) {
        PackedLayer layer;
        layer.hidden = r.hidden;
        layer.padded = (r.hidden + kUnits - 1) / kUnits * kUnits;
        layer.inputs = previous;
        previous = layer.padded;
        net.layers.push_back(std::move(layer));
    }
    // The value at (block j, packed column g * 16 + u) of a row with torch values `row(g * H + unit)`.
    auto fill_row = [](float* dst, int hidden, int block, auto row) {
        for (int g = 0; g < 4; ++g)
            for (int u = 0; u < kUnits; ++u) {
                const int unit = block * kUnits + u;
                dst[g * kUnits + u] = unit < hidden ? row(g * hidden + unit) : 0.0f;
            }
    };
    const PackedLayer& first = net.layers[0];
    const size_t stride = net.table_stride();
    net.table.resize(static_cast<size_t>(raw.vocab) * stride);
    const int h0 = first.hidden;
    for (int64_t v = 0; v < raw.vocab; ++v)
        for (int j = 0; j < first.blocks(); ++j)
            fill_row(net.table.data() + v * stride + j * kBlock, h0, j,
                     [&](int column) { return raw.table[v * 4 * h0 + column]; });
    for (size_t l = 0; l < net.layers.size(); ++l) {
        PackedLayer& layer = net.layers[l];
        const RawLayer& r = raw.layers[l];
        const int hidden = layer.hidden, in_raw = r.inputs;
        const size_t per_block = static_cast<size_t>(layer.rows()) * kBlock;
        layer.w.resize(layer.blocks() * per_block);
        for (int j = 0; j < layer.blocks(); ++j)
            for (int k = 0; k < layer.rows(); ++k) {
                const bool input = k < layer.inputs;
                const int col = input ? k : k - layer.inputs, width = input ? in_raw : hidden;
                const float* m = input ? r.w_ih : r.w_hh;
                fill_row(layer.w.data() + j * per_block + k * kBlock, hidden, j,
                         [&](int row) { return col < width ? m[static_cast<size_t>(row) * width + col] : 0.0f; });
            }
        if (l) {
            layer.bias.resize(layer.blocks() * kBlock);
            for (int j = 0; j < layer.blocks(); ++j)
                fill_row(layer.bias.data() + j * kBlock, hidden, j, [&](int row) { return r.bias[row]; });
        }
        if (net.bf16) {  // the tiles tdpbf16ps reads
            const int in_chunks = (layer.inputs + 31) / 32, chunks = layer.chunks();
            layer.w_amx.resize(static_cast<size_t>(layer.blocks()) * chunks * 4 * 512);
            uint16_t* dst = layer.w_amx.data();
            for (int j = 0; j < layer.blocks(); ++j)
                for (int ch = 0; ch < chunks; ++ch)
                    for (int g = 0; g < 4; ++g)
                        for (int p = 0; p < 16; ++p)
                            for (int u = 0; u < kUnits; ++u)
                                for (int half = 0; half < 2; ++half) {
                                    const bool input = ch < in_chunks;
                                    const int k = (input ? ch : ch - in_chunks) * 32 + 2 * p + half;
                                    const bool inside = input ? k < layer.inputs : k < layer.padded;
                                    const int row = input ? k : layer.inputs + k;
                                    const float v = inside ? layer.w[j * per_block + row * kBlock + g * kUnits + u] : 0.0f;
                                    *dst++ = bf16_bits(v);
                                }
        }
        if (net.bf16) {  // the pairs vdpbf16ps reads
            layer.w_bf.resize(layer.w.size());
            for (int j = 0; j < layer.blocks(); ++j)
                for (int k = 0; k < layer.rows(); ++k)
                    for (int c = 0; c < kBlock; ++c)
                        layer.w_bf[j * per_block + (k / 2) * 2 * kBlock + c * 2 + (k % 2)] =
                            bf16_bits(layer.w[j * per_block + k * kBlock + c]);
        }
    }
    const PackedLayer& top = net.layers.back();
    net.w_out.assign(top.padded, 0.0f);
    for (int u = 0; u < top.hidden; ++u) net.w_out[u] = raw.w_out[u];
    return net;
}

namespace {

// model.ngram_features summed: each word's weight and each adjacent pair's hashed weight, over
// sqrt(the feature count); float64 sums, as np.bincount does them.
float ngram_logit(const Network& net, const int64_t* ids, int64_t length) {
    constexpr int64_t kPairHash = 1000003;  // model.NGRAM_HASH
    double sum = 0;
    for (int64_t k = 0; k < length; ++k) sum += net.ngram[ids[k]];
    for (int64_t k = 0; k + 1 < length; ++k)
        sum += net.ngram[net.vocab + (ids[k] * kPairHash + ids[k + 1]) % net.buckets];
    const int64_t count = std::max<int64_t>(2 * length - 1, 1);
    return static_cast<float>(sum * (1.0 / std::sqrt(static_cast<double>(count))));
}

}  // namespace

std::string LSTMEngine::logits(const int64_t* ids, size_t n_ids, const int64_t* lengths, size_t n, float* out,
                               int batch_rows) const {
    int64_t total = 0;
    bool negative = false;
    for (size_t i = 0; i < n; ++i) {
        negative |= lengths[i] < 0;
        total += lengths[i];
    }
    if (negative || total != static_cast<int64_t>(n_ids))
        return "V:lengths must be non-negative and sum to the number of ids (" + std::to_string(n_ids) + ")";
    for (size_t k = 0; k < n_ids; ++k)
        if (ids[k] < 0 || ids[k] >= net_.vocab) return "I:word ids must be in [0, " + std::to_string(net_.vocab) + ")";
    if (n == 0) return "";

    thread_local Workspace ws;
    static const int64_t kPadding = 0;  // an empty message is one padding word, as in training
    ws.order.resize(n);
    ws.ngram.resize(n);
    std::vector<int64_t>& order = ws.order;
    std::vector<const int64_t*>& first = ws.row_ids;
    first.resize(n);
    const int64_t* at = ids;
    for (size_t i = 0; i < n; ++i) {
        first[i] = lengths[i] ? at : &kPadding;
        ws.ngram[i] = net_.buckets ? ngram_logit(net_, at, lengths[i]) : 0.0f;
        at += lengths[i];
        order[i] = static_cast<int64_t>(i);
    }
    auto steps = [&](int64_t i) { return std::max<int64_t>(lengths[i], 1); };
    if (n > 1) std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return steps(a) > steps(b); });

    const size_t top = net_.layers.back().padded, batch = static_cast<size_t>(std::max(batch_rows, 1));
    std::vector<const int64_t*>& rows_ids = ws.batch_ids;
    rows_ids.resize(std::min(batch, n));
    ws.row_lengths.resize(std::min(batch, n));
    ws.top.resize(std::min(batch, n) * top);
    for (size_t lo = 0; lo < n; lo += batch) {
        const size_t rows = std::min(batch, n - lo);
        for (size_t r = 0; r < rows; ++r) {
            rows_ids[r] = first[order[lo + r]];
            ws.row_lengths[r] = static_cast<int32_t>(steps(order[lo + r]));
        }
        BatchView view;
        view.rows = static_cast<int>(rows);
        view.ids = rows_ids.data();
        view.lengths = ws.row_lengths.data();
        view.top = ws.top.data();
        (large_.run && n >= kAutoBf16Min ? large_ : small_).run(net_, view, ws);
        for (size_t r = 0; r < rows; ++r) {
            const float* h = ws.top.data() + r * top;
            float sum = 0;
            for (size_t u = 0; u < top; ++u) sum += h[u] * net_.w_out[u];
            const int64_t row = order[lo + r];
            out[row] = sum + net_.b_out + ws.ngram[row];
        }
    }
    return "";
}

// CPU time of this thread: on a shared machine, time spent descheduled is not counted against the core.
static double thread_seconds() {
#if defined(CLOCK_THREAD_CPUTIME_ID)
    timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
#else
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
#endif
}

double peak_macs(const std::string& kind, double seconds) {
#ifdef STOCKSENT_X86_KERNELS
    const CpuFeatures& cpu = cpu_features();
    auto rate = [seconds](auto run) {
        long iterations = 1 << 16;
        for (;;) {
            const double start = thread_seconds();
            const double macs = run(iterations);
            const double took = thread_seconds() - start;
            if (took >= seconds || iterations > (1L << 40)) return macs / took;
            iterations = static_cast<long>(iterations * std::max(2.0, 1.2 * seconds / std::max(took, 1e-6)));
        }
    };
    if (kind == "avx512-fp32" && cpu.avx512) return rate([](long n) { return peak_avx512(false, n); });
    if (kind == "avx512-bf16" && cpu.avx512_bf16) return rate([](long n) { return peak_avx512(true, n); });
    if (kind == "avx2-fp32" && cpu.avx2_fma) return rate([](long n) { return peak_avx2(n); });
    if (kind == "amx-bf16" && cpu.amx_bf16) return rate([](long n) { return peak_amx(n); });
#else
    (void)kind;
    (void)seconds;
#endif
    return 0.0;
}

}  // namespace stocksent
