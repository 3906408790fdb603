// stocksent._native: the compiled core's Python interface (the plain CPython API and the buffer
// protocol: no build dependency beyond a C++17 compiler). Arrays come in as buffers (numpy arrays)
// and go out as bytearrays, which stocksent wraps with numpy.frombuffer without a copy. Every
// method releases the GIL while it computes.
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <cstring>
#include <new>
#include <string>
#include <vector>

#include "cpu.h"
#include "lstm.h"
#include "normalise.h"

namespace stocksent {
namespace {

// ------------------------------------------------------------------ helpers

// A C-contiguous buffer of `itemsize`-byte items (formats of numpy's float32 / int64 / ...).
struct Buffer {
    Py_buffer view{};
    bool held = false;
    ~Buffer() {
        if (held) PyBuffer_Release(&view);
    }
    bool get(PyObject* obj, Py_ssize_t itemsize, const char* formats, const char* what) {
        if (PyObject_GetBuffer(obj, &view, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) != 0) return false;
        held = true;
        const char* f = view.format ? view.format : "B";
        if (*f == '<' || *f == '=' || *f == '@') ++f;
        if (view.itemsize != itemsize || !std::strchr(formats, *f) || f[1] != '\0') {
            PyErr_Format(PyExc_TypeError, "%s: expected a contiguous array of %zd-byte items (%s), got format %s", what,
                         itemsize, formats, view.format ? view.format : "B");
            return false;
        }
        return true;
    }
    template <class T>
    const T* data() const {
        return static_cast<const T*>(view.buf);
    }
    Py_ssize_t size() const { return view.len / view.itemsize; }
};

PyObject* bytearray_of(const void* data, size_t bytes) {
    return PyByteArray_FromStringAndSize(static_cast<const char*>(data), static_cast<Py_ssize_t>(bytes));
}

bool to_text(PyObject* str, Text& out) {
    if (!PyUnicode_Check(str)) {
        PyErr_SetString(PyExc_TypeError, "expected a str");
        return false;
    }
    Py_UCS4* copy = PyUnicode_AsUCS4Copy(str);
    if (!copy) return false;
    out.assign(reinterpret_cast<char32_t*>(copy), static_cast<size_t>(PyUnicode_GET_LENGTH(str)));
    PyMem_Free(copy);
    return true;
}

// UTF-8 of a Python str, surrogates written as "surrogatepass" does (what WordIds stores).
bool utf8_of(PyObject* str, std::string& out) {
    Text text;
    if (!to_text(str, text)) return false;
    out.clear();
    append_utf8(text.data(), text.data() + text.size(), out);
    return true;
}

// The messages of a call: each str referenced, so another thread's change to the list cannot free
// one while the GIL is released.
struct Messages {
    struct Ref {
        PyObject* obj;
        const void* data;
        int kind;
        size_t length;
    };
    std::vector<Ref> refs;
    void clear() {
        for (Ref& r : refs) Py_DECREF(r.obj);
        refs.clear();
    }
    bool read(PyObject* texts) {
        clear();
        PyObject* seq = PySequence_Fast(texts, "messages must be a list of strings");
        if (!seq) return false;
        const Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
        refs.reserve(static_cast<size_t>(n));
        for (Py_ssize_t i = 0; i < n; ++i) {
            PyObject* item = PySequence_Fast_GET_ITEM(seq, i);
            if (!PyUnicode_Check(item)) {
                Py_DECREF(seq);
                clear();
                PyErr_Format(PyExc_TypeError, "messages must be strings, got %s", Py_TYPE(item)->tp_name);
                return false;
            }
            Py_INCREF(item);
            refs.push_back({item, PyUnicode_DATA(item), static_cast<int>(PyUnicode_KIND(item)),
                            static_cast<size_t>(PyUnicode_GET_LENGTH(item))});
        }
        Py_DECREF(seq);
        return true;
    }
    ~Messages() { clear(); }
};

// ------------------------------------------------------------------ TextEncoder

struct TextEncoderObject {
    PyObject_HEAD Normaliser* normaliser;
    WordIds* words;
    int64_t ticker_id;
    PyObject* reference;  // reference(list of str) -> (tokens, lengths): text.normalise_flat
};

void encoder_dealloc(TextEncoderObject* self) {
    delete self->normaliser;
    delete self->words;
    Py_XDECREF(self->reference);
    Py_TYPE(self)->tp_free(reinterpret_cast<PyObject*>(self));
}

int encoder_init(TextEncoderObject* self, PyObject* args, PyObject* kwargs) {
    static const char* names[] = {"lower",         "flags",      "placeholders", "replacements", "cashtag",
                                  "keep_emoji",    "keep_cashtags", "max_tokens", "words",       "ticker_id",
                                  "reference",     nullptr};
    PyObject *lower, *flags, *placeholders, *replacements, *cashtag, *words, *reference;
    int keep_emoji, keep_cashtags;
    Py_ssize_t max_tokens;
    long long ticker_id;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OOOOOppnOLO", const_cast<char**>(names), &lower, &flags,
                                     &placeholders, &replacements, &cashtag, &keep_emoji, &keep_cashtags, &max_tokens,
                                     &words, &ticker_id, &reference))
        return -1;
    if (!PyCallable_Check(reference)) {
        PyErr_SetString(PyExc_TypeError, "reference must be callable");
        return -1;
    }
    Buffer lb, fb;
    if (!lb.get(lower, 4, "IL", "lower") || !fb.get(flags, 2, "H", "flags")) return -1;
    if (lb.size() != fb.size()) {
        PyErr_SetString(PyExc_ValueError, "lower and flags must cover the same code points");
        return -1;
    }
    CharTable table;
    table.lower.assign(lb.data<uint32_t>(), lb.data<uint32_t>() + lb.size());
    table.flags.assign(fb.data<uint16_t>(), fb.data<uint16_t>() + fb.size());
    for (uint32_t c : table.lower)
        if (c != kNoLower && c >= table.flags.size()) {
            PyErr_SetString(PyExc_ValueError, "a lower-case code point is outside the table");
            return -1;
        }
    std::vector<Placeholder> marks;
    std::vector<Text> repl;
    Text cash;
    PyObject* seq = PySequence_Fast(placeholders, "placeholders must be (word, token) pairs");
    if (!seq) return -1;
    for (Py_ssize_t i = 0; i < PySequence_Fast_GET_SIZE(seq); ++i) {
        PyObject* pair = PySequence_Fast_GET_ITEM(seq, i);
        Placeholder p;
        if (!PyTuple_Check(pair) || PyTuple_GET_SIZE(pair) != 2 || !to_text(PyTuple_GET_ITEM(pair, 0), p.word) ||
            !to_text(PyTuple_GET_ITEM(pair, 1), p.token) || p.word.empty()) {
            Py_DECREF(seq);
            if (!PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, "placeholders must be (word, token) pairs");
            return -1;
        }
        marks.push_back(std::move(p));
    }
    Py_DECREF(seq);
    seq = PySequence_Fast(replacements, "replacements must be a sequence of str");
    if (!seq) return -1;
    for (Py_ssize_t i = 0; i < PySequence_Fast_GET_SIZE(seq); ++i) {
        Text t;
        if (!to_text(PySequence_Fast_GET_ITEM(seq, i), t)) {
            Py_DECREF(seq);
            return -1;
        }
        repl.push_back(std::move(t));
    }
    Py_DECREF(seq);
    if (repl.size() != 7) {
        PyErr_SetString(PyExc_ValueError, "replacements: one per rule, seven");
        return -1;
    }
    if (!to_text(cashtag, cash) || max_tokens < 0) {
        if (!PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, "max_tokens must be non-negative");
        return -1;
    }
    auto* ids = new WordIds();
    if (words != Py_None) {
        seq = PySequence_Fast(words, "words must be a list of str");
        if (!seq) {
            delete ids;
            return -1;
        }
        std::string utf8;
        for (Py_ssize_t i = 0; i < PySequence_Fast_GET_SIZE(seq); ++i) {
            if (!utf8_of(PySequence_Fast_GET_ITEM(seq, i), utf8)) {
                Py_DECREF(seq);
                delete ids;
                return -1;
            }
            if (i) ids->add(utf8.data(), utf8.size(), i);  // id 0 (padding) is never a word's: get() or unknown
        }
        Py_DECREF(seq);
    }
    NormaliseOptions options;
    options.keep_emoji = keep_emoji;
    options.keep_cashtags = keep_cashtags;
    options.max_tokens = static_cast<size_t>(max_tokens);
    delete self->normaliser;
    delete self->words;
    self->normaliser = new Normaliser(std::move(table), std::move(marks), std::move(repl), std::move(cash), options);
    self->words = ids;
    self->ticker_id = ticker_id;
    Py_INCREF(reference);
    Py_XSETREF(self->reference, reference);
    return 0;
}

thread_local TextScratch tls_text;
thread_local Messages tls_messages;

int64_t word_id(const TextEncoderObject* self, const char* utf8, size_t size) {
    const int64_t id = self->words->find(utf8, size);
    if (id >= 0) return id;
    return size && utf8[0] == '$' ? self->ticker_id : 1;  // Vocabulary.unknown_id
}

// The id of a token of the normalised text: short ASCII tokens (nearly all) as bytes on the stack.
int64_t token_id(const TextEncoderObject* self, const char32_t* begin, const char32_t* end, std::string& utf8) {
    const size_t size = static_cast<size_t>(end - begin);
    if (size <= 32) {
        char bytes[32];
        uint32_t high = 0;
        for (size_t k = 0; k < size; ++k) {
            high |= begin[k];
            bytes[k] = static_cast<char>(begin[k]);
        }
        if (high < 0x80) return word_id(self, bytes, size);
    }
    utf8.clear();
    append_utf8(begin, end, utf8);
    return word_id(self, utf8.data(), utf8.size());
}

// Calls the reference on the messages at `rows`; appends each one's tokens (as ids, or as str).
bool reference_tokens(TextEncoderObject* self, const Messages& messages, const std::vector<size_t>& rows,
                      PyObject** tokens_out, PyObject** lengths_out) {
    PyObject* list = PyList_New(static_cast<Py_ssize_t>(rows.size()));
    if (!list) return false;
    for (size_t i = 0; i < rows.size(); ++i) {
        PyObject* obj = messages.refs[rows[i]].obj;
        Py_INCREF(obj);
        PyList_SET_ITEM(list, static_cast<Py_ssize_t>(i), obj);
    }
    PyObject* result = PyObject_CallOneArg(self->reference, list);
    Py_DECREF(list);
    if (!result) return false;
    PyObject *tokens, *lengths;
    if (!PyTuple_Check(result) || PyTuple_GET_SIZE(result) != 2 || !PyList_Check(tokens = PyTuple_GET_ITEM(result, 0)) ||
        !PyList_Check(lengths = PyTuple_GET_ITEM(result, 1)) ||
        PyList_GET_SIZE(lengths) != static_cast<Py_ssize_t>(rows.size())) {
        Py_DECREF(result);
        PyErr_SetString(PyExc_TypeError, "the reference must return (list of tokens, list of lengths)");
        return false;
    }
    Py_INCREF(tokens);
    Py_INCREF(lengths);
    Py_DECREF(result);
    *tokens_out = tokens;
    *lengths_out = lengths;
    return true;
}

// encode(texts) -> (ids: bytearray of int64, lengths: bytearray of int64, messages left to the reference)
PyObject* encoder_encode(TextEncoderObject* self, PyObject* texts) {
    Messages& messages = tls_messages;
    if (!messages.read(texts)) return nullptr;
    const size_t n = messages.refs.size();
    thread_local std::vector<int64_t> ids, lengths;
    thread_local std::vector<size_t> slow;
    ids.clear();
    lengths.assign(n, 0);
    slow.clear();
    bool failed = false;
    Py_BEGIN_ALLOW_THREADS;
    try {
        // References taken once: each use of a thread_local in a shared library costs a call.
        TextScratch& scratch = tls_text;
        std::vector<int64_t>& out_ids = ids;
        std::vector<int64_t>& out_lengths = lengths;
        std::vector<size_t>& out_slow = slow;
        for (size_t i = 0; i < n; ++i) {
            const Messages::Ref& m = messages.refs[i];
            const Text* text = nullptr;
            if (!self->normaliser->normalise(m.data, m.kind, m.length, scratch, text)) {
                out_slow.push_back(i);
                continue;
            }
            for (const Span& s : scratch.tokens)
                out_ids.push_back(token_id(self, text->data() + s.begin, text->data() + s.end, scratch.utf8));
            out_lengths[i] = static_cast<int64_t>(scratch.tokens.size());
        }
    } catch (const std::bad_alloc&) {
        failed = true;
    }
    Py_END_ALLOW_THREADS;
    if (failed) {
        messages.clear();
        return PyErr_NoMemory();
    }
    PyObject *tokens = nullptr, *token_lengths = nullptr;
    if (!slow.empty()) {
        if (!reference_tokens(self, messages, slow, &tokens, &token_lengths)) {
            messages.clear();
            return nullptr;
        }
        // Merge: the fast messages' ids in order, the reference's in the gaps.
        std::vector<int64_t> merged;
        merged.reserve(ids.size() + static_cast<size_t>(PyList_GET_SIZE(tokens)));
        size_t fast_at = 0, slow_at = 0;
        Py_ssize_t token_at = 0;
        std::string utf8;
        for (size_t i = 0; i < n; ++i) {
            if (slow_at < slow.size() && slow[slow_at] == i) {
                const Py_ssize_t count = PyLong_AsSsize_t(PyList_GET_ITEM(token_lengths, slow_at));
                if (count < 0 || token_at + count > PyList_GET_SIZE(tokens)) {
                    if (!PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, "the reference's lengths do not add up");
                    Py_DECREF(tokens);
                    Py_DECREF(token_lengths);
                    messages.clear();
                    return nullptr;
                }
                for (Py_ssize_t k = 0; k < count; ++k, ++token_at) {
                    if (!utf8_of(PyList_GET_ITEM(tokens, token_at), utf8)) {
                        Py_DECREF(tokens);
                        Py_DECREF(token_lengths);
                        messages.clear();
                        return nullptr;
                    }
                    merged.push_back(word_id(self, utf8.data(), utf8.size()));
                }
                lengths[i] = count;
                ++slow_at;
            } else {
                merged.insert(merged.end(), ids.begin() + fast_at, ids.begin() + fast_at + lengths[i]);
                fast_at += static_cast<size_t>(lengths[i]);
            }
        }
        ids.swap(merged);
        Py_DECREF(tokens);
        Py_DECREF(token_lengths);
    }
    messages.clear();
    PyObject* id_bytes = bytearray_of(ids.data(), ids.size() * sizeof(int64_t));
    PyObject* length_bytes = bytearray_of(lengths.data(), lengths.size() * sizeof(int64_t));
    if (!id_bytes || !length_bytes) {
        Py_XDECREF(id_bytes);
        Py_XDECREF(length_bytes);
        return nullptr;
    }
    return Py_BuildValue("(NNn)", id_bytes, length_bytes, static_cast<Py_ssize_t>(slow.size()));
}

// tokens(texts) -> (tokens: list of str, lengths: bytearray of int64, fast: bytearray of uint8)
// Every message's tokens (the reference's where the compiled rules do not apply), and which
// messages the compiled rules handled: what the tests compare and the benchmark counts.
PyObject* encoder_tokens(TextEncoderObject* self, PyObject* texts) {
    Messages messages;
    if (!messages.read(texts)) return nullptr;
    const size_t n = messages.refs.size();
    std::vector<char32_t> chars;
    std::vector<size_t> ends, counts(n, 0), slow;
    std::vector<uint8_t> fast(n, 0);
    bool failed = false;
    Py_BEGIN_ALLOW_THREADS;
    try {
    TextScratch scratch;
    for (size_t i = 0; i < n; ++i) {
        const Messages::Ref& m = messages.refs[i];
        const Text* text = nullptr;
        if (!self->normaliser->normalise(m.data, m.kind, m.length, scratch, text)) {
            slow.push_back(i);
            continue;
        }
        fast[i] = 1;
        counts[i] = scratch.tokens.size();
        for (const Span& s : scratch.tokens) {
            chars.insert(chars.end(), text->begin() + s.begin, text->begin() + s.end);
            ends.push_back(chars.size());
        }
    }
    } catch (const std::bad_alloc&) {
        failed = true;
    }
    Py_END_ALLOW_THREADS;
    if (failed) return PyErr_NoMemory();
    PyObject *ref_tokens = nullptr, *ref_lengths = nullptr;
    if (!slow.empty() && !reference_tokens(self, messages, slow, &ref_tokens, &ref_lengths)) return nullptr;
    PyObject* out = PyList_New(0);
    std::vector<int64_t> lengths(n);
    size_t fast_token = 0, slow_at = 0;
    Py_ssize_t ref_at = 0;
    bool ok = out != nullptr;
    for (size_t i = 0; ok && i < n; ++i) {
        if (!fast[i]) {
            const Py_ssize_t count = PyLong_AsSsize_t(PyList_GET_ITEM(ref_lengths, slow_at++));
            for (Py_ssize_t k = 0; ok && k < count; ++k) ok = PyList_Append(out, PyList_GET_ITEM(ref_tokens, ref_at++)) == 0;
            lengths[i] = count;
            continue;
        }
        for (size_t k = 0; ok && k < counts[i]; ++k, ++fast_token) {
            const size_t begin = fast_token ? ends[fast_token - 1] : 0;
            PyObject* token =
                PyUnicode_FromKindAndData(PyUnicode_4BYTE_KIND, chars.data() + begin, static_cast<Py_ssize_t>(ends[fast_token] - begin));
            ok = token && PyList_Append(out, token) == 0;
            Py_XDECREF(token);
        }
        lengths[i] = static_cast<int64_t>(counts[i]);
    }
    Py_XDECREF(ref_tokens);
    Py_XDECREF(ref_lengths);
    if (!ok) {
        Py_XDECREF(out);
        return nullptr;
    }
    return Py_BuildValue("(NNN)", out, bytearray_of(lengths.data(), n * sizeof(int64_t)),
                         bytearray_of(fast.data(), n));
}

PyObject* encoder_vocabulary_bytes(TextEncoderObject* self, void*) {
    return PyLong_FromSize_t(self->words ? self->words->bytes() : 0);
}

PyMethodDef encoder_methods[] = {
    {"encode", reinterpret_cast<PyCFunction>(encoder_encode), METH_O,
     "encode(texts) -> (ids, lengths, fallbacks): word ids (int64 bytes) of all messages end to end, each "
     "message's length (int64 bytes), and how many messages the reference normalised."},
    {"tokens", reinterpret_cast<PyCFunction>(encoder_tokens), METH_O,
     "tokens(texts) -> (tokens, lengths, fast): every message's tokens, and which the compiled rules made."},
    {nullptr, nullptr, 0, nullptr}};

PyGetSetDef encoder_getset[] = {
    {"vocabulary_bytes", reinterpret_cast<getter>(encoder_vocabulary_bytes), nullptr, "memory of the word hash map",
     nullptr},
    {nullptr, nullptr, nullptr, nullptr, nullptr}};

PyTypeObject TextEncoderType = {PyVarObject_HEAD_INIT(nullptr, 0)};

// ------------------------------------------------------------------ LSTM

struct LSTMObject {
    PyObject_HEAD LSTMEngine* engine;
};

void lstm_dealloc(LSTMObject* self) {
    delete self->engine;
    Py_TYPE(self)->tp_free(reinterpret_cast<PyObject*>(self));
}

int lstm_init(LSTMObject* self, PyObject* args, PyObject* kwargs) {
    static const char* names[] = {"table", "layers", "w_out", "b_out", "ngram", "buckets", "precision", "kernel", nullptr};
    PyObject *table, *layers, *w_out, *ngram;
    double b_out;
    long long buckets;
    const char* precision;
    const char* kernel = "";
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OOOdOLs|s", const_cast<char**>(names), &table, &layers, &w_out,
                                     &b_out, &ngram, &buckets, &precision, &kernel))
        return -1;
    const bool bf16 = std::strcmp(precision, "float32") != 0;
    PyObject* seq = PySequence_Fast(layers, "layers must be a list of (hidden, inputs, w_ih, w_hh, bias)");
    if (!seq) return -1;
    const Py_ssize_t count = PySequence_Fast_GET_SIZE(seq);
    if (count < 1 || count > 16) {
        Py_DECREF(seq);
        PyErr_SetString(PyExc_ValueError, "an LSTM of 1 to 16 layers");
        return -1;
    }
    std::vector<Buffer> buffers(static_cast<size_t>(3 * count + 3));
    RawNetwork raw;
    raw.b_out = static_cast<float>(b_out);
    raw.bf16 = bf16;
    raw.buckets = buckets;
    bool ok = true;
    for (Py_ssize_t l = 0; ok && l < count; ++l) {
        PyObject* item = PySequence_Fast_GET_ITEM(seq, l);
        RawLayer layer;
        PyObject *w_ih, *w_hh, *bias;
        ok = PyArg_ParseTuple(item, "iiOOO", &layer.hidden, &layer.inputs, &w_ih, &w_hh, &bias);
        if (!ok) break;
        const size_t gates = 4 * static_cast<size_t>(layer.hidden);
        Buffer& bw_hh = buffers[3 * l + 1];
        ok = layer.hidden > 0 && bw_hh.get(w_hh, 4, "f", "w_hh") &&
             static_cast<size_t>(bw_hh.size()) == gates * layer.hidden;
        if (ok && l) {
            Buffer &bw_ih = buffers[3 * l], &bb = buffers[3 * l + 2];
            ok = layer.inputs == raw.layers.back().hidden && bw_ih.get(w_ih, 4, "f", "w_ih") &&
                 static_cast<size_t>(bw_ih.size()) == gates * layer.inputs && bb.get(bias, 4, "f", "bias") &&
                 static_cast<size_t>(bb.size()) == gates;
            layer.w_ih = bw_ih.data<float>();
            layer.bias = bb.data<float>();
        }
        layer.w_hh = bw_hh.data<float>();
        raw.layers.push_back(layer);
    }
    Py_DECREF(seq);
    Buffer &bt = buffers[3 * count], &bo = buffers[3 * count + 1], &bn = buffers[3 * count + 2];
    ok = ok && bt.get(table, 4, "f", "table") && bo.get(w_out, 4, "f", "w_out") &&
         bo.size() == raw.layers.back().hidden;
    if (ok) {
        const Py_ssize_t width = 4 * raw.layers[0].hidden;
        ok = bt.size() % width == 0;
        raw.vocab = bt.size() / width;
        raw.table = bt.data<float>();
        raw.w_out = bo.data<float>();
    }
    if (ok && ngram != Py_None) {
        ok = buckets > 0 && bn.get(ngram, 4, "f", "ngram") && bn.size() == raw.vocab + buckets;
        raw.ngram = bn.data<float>();
    } else if (ok) {
        raw.buckets = 0;
    }
    if (!ok) {
        if (!PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, "the network's arrays do not have matching shapes");
        return -1;
    }
    LSTMEngine* engine = nullptr;
    std::string error;
    const std::string name(kernel), mode(precision);
    Py_BEGIN_ALLOW_THREADS;
    try {
        engine = new LSTMEngine(pack_network(raw), mode, name);
    } catch (const std::bad_alloc&) {
        error = "out of memory";
    } catch (const std::exception& err) {
        error = err.what();
    }
    Py_END_ALLOW_THREADS;
    if (!engine) {
        if (error == "out of memory") PyErr_NoMemory();
        else PyErr_SetString(PyExc_ValueError, error.c_str());
        return -1;
    }
    delete self->engine;
    self->engine = engine;
    return 0;
}

// logits(ids, lengths, batch_rows) -> bytearray of float32
PyObject* lstm_logits(LSTMObject* self, PyObject* args) {
    PyObject *ids_obj, *lengths_obj;
    int batch_rows = 256;
    if (!PyArg_ParseTuple(args, "OO|i", &ids_obj, &lengths_obj, &batch_rows)) return nullptr;
    Buffer ids, lengths;
    if (!ids.get(ids_obj, 8, "qlL", "ids") || !lengths.get(lengths_obj, 8, "qlL", "lengths")) return nullptr;
    const size_t n = static_cast<size_t>(lengths.size());
    PyObject* out = PyByteArray_FromStringAndSize(nullptr, static_cast<Py_ssize_t>(n * sizeof(float)));
    if (!out) return nullptr;
    float* dst = reinterpret_cast<float*>(PyByteArray_AS_STRING(out));
    std::string error;
    bool no_memory = false;
    Py_BEGIN_ALLOW_THREADS;
    try {
        error = self->engine->logits(ids.data<int64_t>(), static_cast<size_t>(ids.size()), lengths.data<int64_t>(), n,
                                     dst, batch_rows);
    } catch (const std::bad_alloc&) {
        no_memory = true;
    }
    Py_END_ALLOW_THREADS;
    if (no_memory || !error.empty()) {
        Py_DECREF(out);
        if (no_memory) return PyErr_NoMemory();
        PyErr_SetString(error[0] == 'I' ? PyExc_IndexError : PyExc_ValueError, error.c_str() + 2);
        return nullptr;
    }
    return out;
}

PyObject* lstm_kernel(LSTMObject* self, void*) { return PyUnicode_FromString(self->engine->kernel_name()); }

PyObject* lstm_large_kernel(LSTMObject* self, void*) {
    return PyUnicode_FromString(self->engine->large_kernel_name());
}

PyObject* lstm_bytes(LSTMObject* self, void*) {
    const Network& net = self->engine->network();
    size_t bytes = net.table.size() * 4 + net.ngram.size() * 4 + net.w_out.size() * 4;
    for (const PackedLayer& l : net.layers)
        bytes += l.w.size() * 4 + l.bias.size() * 4 + l.w_bf.size() * 2 + l.w_amx.size() * 2;
    return PyLong_FromSize_t(bytes);
}

PyMethodDef lstm_methods[] = {
    {"logits", reinterpret_cast<PyCFunction>(lstm_logits), METH_VARARGS,
     "logits(ids, lengths, batch_rows=256) -> float32 logits (bytes), in input order."},
    {nullptr, nullptr, 0, nullptr}};

PyGetSetDef lstm_getset[] = {
    {"kernel", reinterpret_cast<getter>(lstm_kernel), nullptr, "the kernel in use", nullptr},
    {"large_kernel", reinterpret_cast<getter>(lstm_large_kernel), nullptr,
     "precision auto: the kernel of calls of 64 messages or more (empty: the same)", nullptr},
    {"bytes", reinterpret_cast<getter>(lstm_bytes), nullptr, "memory of the packed network", nullptr},
    {nullptr, nullptr, nullptr, nullptr, nullptr}};

PyTypeObject LSTMType = {PyVarObject_HEAD_INIT(nullptr, 0)};

// ------------------------------------------------------------------ functions

PyObject* py_cpu_features(PyObject*, PyObject*) {
    const CpuFeatures& f = cpu_features();
    return Py_BuildValue("{s:O,s:O,s:O,s:O}", "avx2_fma", f.avx2_fma ? Py_True : Py_False, "avx512",
                         f.avx512 ? Py_True : Py_False, "avx512_bf16", f.avx512_bf16 ? Py_True : Py_False, "amx_bf16",
                         f.amx_bf16 ? Py_True : Py_False);
}

PyObject* py_kernels(PyObject*, PyObject* arg) {
    const int bf16 = PyObject_IsTrue(arg);
    if (bf16 < 0) return nullptr;
    PyObject* out = PyList_New(0);
    for (const KernelInfo& k : usable_kernels(bf16)) {
        PyObject* name = PyUnicode_FromString(k.name);
        PyList_Append(out, name);
        Py_DECREF(name);
    }
    return out;
}

PyObject* py_peak_macs(PyObject*, PyObject* args) {
    const char* kind;
    double seconds = 0.2;
    if (!PyArg_ParseTuple(args, "s|d", &kind, &seconds)) return nullptr;
    double rate;
    std::string k(kind);
    Py_BEGIN_ALLOW_THREADS;
    rate = peak_macs(k, seconds);
    Py_END_ALLOW_THREADS;
    return PyFloat_FromDouble(rate);
}

PyObject* py_auto_bf16_min(PyObject*, PyObject*) { return PyLong_FromSize_t(kAutoBf16Min); }

PyMethodDef module_methods[] = {
    {"cpu_features", py_cpu_features, METH_NOARGS, "What this CPU runs: avx2_fma, avx512, avx512_bf16, amx_bf16."},
    {"auto_bf16_min", py_auto_bf16_min, METH_NOARGS, "Calls of this many messages run precision auto's bfloat16."},
    {"kernels", py_kernels, METH_O, "kernels(bf16) -> names of the LSTM kernels this CPU runs, best first."},
    {"peak_macs", py_peak_macs, METH_VARARGS,
     "peak_macs(kind, seconds=0.2) -> multiply-adds per CPU-second of one core (avx512-fp32, avx512-bf16, "
     "avx2-fp32, amx-bf16)."},
    {nullptr, nullptr, 0, nullptr}};

PyModuleDef module_def = {PyModuleDef_HEAD_INIT, "stocksent._native", "stocksent's compiled inference core.", -1,
                          module_methods};

void init_type(PyTypeObject& type, const char* name, Py_ssize_t size, const char* doc, initproc init,
               destructor dealloc, PyMethodDef* methods, PyGetSetDef* getset) {
    type.tp_name = name;
    type.tp_basicsize = size;
    type.tp_flags = Py_TPFLAGS_DEFAULT;
    type.tp_doc = doc;
    type.tp_new = PyType_GenericNew;
    type.tp_init = init;
    type.tp_dealloc = dealloc;
    type.tp_methods = methods;
    type.tp_getset = getset;
}

}  // namespace
}  // namespace stocksent

PyMODINIT_FUNC PyInit__native() {
    using namespace stocksent;
    init_type(TextEncoderType, "stocksent._native.TextEncoder", sizeof(TextEncoderObject),
              "Raw text -> word ids by text.py's rules, compiled.", reinterpret_cast<initproc>(encoder_init),
              reinterpret_cast<destructor>(encoder_dealloc), encoder_methods, encoder_getset);
    init_type(LSTMType, "stocksent._native.LSTM", sizeof(LSTMObject),
              "The LSTMClassifier's inference, fused kernels chosen for this CPU.", reinterpret_cast<initproc>(lstm_init),
              reinterpret_cast<destructor>(lstm_dealloc), lstm_methods, lstm_getset);
    if (PyType_Ready(&TextEncoderType) < 0 || PyType_Ready(&LSTMType) < 0) return nullptr;
    PyObject* m = PyModule_Create(&module_def);
    if (!m) return nullptr;
    Py_INCREF(&TextEncoderType);
    Py_INCREF(&LSTMType);
    if (PyModule_AddObject(m, "TextEncoder", reinterpret_cast<PyObject*>(&TextEncoderType)) < 0 ||
        PyModule_AddObject(m, "LSTM", reinterpret_cast<PyObject*>(&LSTMType)) < 0) {
        Py_DECREF(m);
        return nullptr;
    }
    return m;
}
