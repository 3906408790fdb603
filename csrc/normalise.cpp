#include "normalise.h"

#include <cstring>
#include <utility>

namespace stocksent {

namespace {

bool lower_alnum(char32_t c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }
bool hex_digit(char32_t c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); }

// Text::find for short words, without char_traits' generic calls.
size_t find_word(const Text& s, const Text& word, size_t from) {
    const size_t n = s.size(), m = word.size();
    const char32_t first = word[0];
    for (size_t i = from; i + m <= n; ++i) {
        if (s[i] != first) continue;
        size_t k = 1;
        while (k < m && s[i + k] == word[k]) ++k;
        if (k == m) return i;
    }
    return Text::npos;
}

bool starts_with(const Text& s, size_t i, const char* ascii) {
    for (; *ascii; ++ascii, ++i)
        if (i >= s.size() || s[i] != static_cast<char32_t>(*ascii)) return false;
    return true;
}

// re.sub: the leftmost match from each position on, matches never empty, the scan going on after
// each one. `match(s, i)` is the end of a match starting at i, or 0, asked only where
// `starts(c)` says a match may start; `emit` writes its replacement. Conditions such as \b look at
// the text as it was before this rule (as re.sub does).
template <class Starts, class Match, class Emit>
bool substitute(const Text& in, Text& out, Starts starts, Match match, Emit emit) {
    bool any = false;
    size_t copied = 0;
    const size_t n = in.size();
    for (size_t i = 0; i < n;) {
        if (!starts(in[i])) {
            ++i;
            continue;
        }
        const size_t end = match(in, i);
        if (!end) {
            ++i;
            continue;
        }
        if (!any) out.clear();
        any = true;
        out.append(in, copied, i - copied);
        emit(out, in, i, end);
        i = copied = end;
    }
    if (any) out.append(in, copied, Text::npos);
    return any;
}

}  // namespace

Normaliser::Normaliser(CharTable table, std::vector<Placeholder> placeholders, std::vector<Text> replacements,
                       Text cashtag, NormaliseOptions options)
    : table_(std::move(table)),
      placeholders_(std::move(placeholders)),
      replacements_(std::move(replacements)),
      cashtag_(std::move(cashtag)),
      options_(options) {
    // Which placeholder words each rule's replacement (and each placeholder's token) holds: the
    // placeholders step then looks only for the words some step wrote. That needs the words to be
    // made of characters a lower-cased message never has (upper-case ones); else it looks for all.
    auto words_in = [this](const Text& written) {
        uint32_t bits = 0;
        for (size_t k = 0; k < placeholders_.size(); ++k)
            if (written.find(placeholders_[k].word) != Text::npos) bits |= 1u << k;
        return bits;
    };
    for (const Text& r : replacements_) writes_.push_back(words_in(r));
    cashtag_writes_ = words_in(cashtag_);
    for (const Placeholder& p : placeholders_) token_writes_.push_back(words_in(p.token));
    std::vector<bool> in_lowered(table_.flags.size(), false);
    for (uint32_t low : table_.lower)
        if (low != kNoLower) in_lowered[low] = true;
    for (const Placeholder& p : placeholders_)
        for (char32_t c : p.word) all_words_ |= c >= in_lowered.size() || in_lowered[c];
    all_words_ |= placeholders_.size() > 32;
    for (char32_t c = 0; c < 0x80; ++c) ascii_present_[c] = present_of(c);
}

// What a rule needs to find anything: a rule whose characters the message lacks is skipped. (A
// rule only ever removes these characters or writes placeholders, spaces and copies of the text's
// own letters and digits, so what the lower-cased message lacks, no later text has.)
enum Present : uint32_t {
    kAmpersand = 1,
    kColonOrDot = 2,
    kDollar = 4,
    kAt = 8,
    kDigits = 16,
    kApostrophes = 32,
    kNonAscii = 64,
};

uint8_t Normaliser::present_of(char32_t c) const {
    const uint16_t f = flags(c);
    return (c == '&' ? kAmpersand : 0) | (c == ':' || c == '.' ? kColonOrDot : 0) | (c == '$' ? kDollar : 0) |
           (c == '@' ? kAt : 0) | (f & kDigit ? kDigits : 0) | (f & kApostrophe ? kApostrophes : 0) |
           (c >= 0x80 ? kNonAscii : 0);
}

template <class Char>
bool Normaliser::lowered(const Char* data, size_t length, Text& out, uint32_t& present) const {
    out.resize(length);
    const size_t size = table_.lower.size();
    uint32_t seen = 0;
    for (size_t i = 0; i < length; ++i) {
        const uint32_t c = data[i];
        if (c >= size) return false;
        const uint32_t low = table_.lower[c];
        if (low == kNoLower) return false;
        out[i] = low;
        seen |= low < 0x80 ? ascii_present_[low] : present_of(low);
    }
    present = seen;
    return true;
}

bool Normaliser::boundary(const Text& s, size_t i) const {
    const bool before = i > 0 && word(s[i - 1]);
    const bool after = i < s.size() && word(s[i]);
    return before != after;
}

// &(?:#\d+|#x[0-9a-f]+|[a-z]+);
size_t Normaliser::html_entity(const Text& s, size_t i) const {
    const size_t n = s.size();
    if (s[i] != '&') return 0;
    size_t j = i + 1;
    if (j < n && s[j] == '#') {
        size_t k = j + 1;
        while (k < n && digit(s[k])) ++k;
        if (k > j + 1 && k < n && s[k] == ';') return k + 1;
        if (j + 1 < n && s[j + 1] == 'x') {
            k = j + 2;
            while (k < n && hex_digit(s[k])) ++k;
            if (k > j + 2 && k < n && s[k] == ';') return k + 1;
        }
        return 0;
    }
    size_t k = j;
    while (k < n && s[k] >= 'a' && s[k] <= 'z') ++k;
    return k > j && k < n && s[k] == ';' ? k + 1 : 0;
}

// (?:https?://|www\.)\S+
size_t Normaliser::link(const Text& s, size_t i) const {
    size_t start;
    if (starts_with(s, i, "http")) {
        const size_t p = i + 4 + (i + 4 < s.size() && s[i + 4] == 's');
        if (!starts_with(s, p, "://")) return 0;
        start = p + 3;
    } else if (starts_with(s, i, "www.")) {
        start = i + 4;
    } else {
        return 0;
    }
    size_t k = start;
    while (k < s.size() && !(flags(s[k]) & kSpace)) ++k;
    return k > start ? k : 0;
}

// The end of (?:\.\d+)?[km]?\b from e, trying what the regex engine tries in its order (the
// group before no group, longer digit runs first, k/m before none), or 0.
size_t Normaliser::price_tail(const Text& s, size_t e) const {
    const size_t n = s.size();
    auto unit_boundary = [&](size_t p) -> size_t {
        if (p < n && (s[p] == 'k' || s[p] == 'm') && boundary(s, p + 1)) return p + 1;
        return boundary(s, p) ? p : 0;
    };
    if (e + 1 < n && s[e] == '.' && digit(s[e + 1])) {
        size_t most = e + 2;
        while (most < n && digit(s[most])) ++most;
        for (size_t f = most; f >= e + 2; --f)
            if (size_t end = unit_boundary(f)) return end;
    }
    return unit_boundary(e);
}

// \$\d[\d,]*(?:\.\d+)?[km]?\b|\b\d[\d,]*(?:\.\d+)?\$  (text.py runs an equivalent faster form)
size_t Normaliser::price(const Text& s, size_t i) const {
    const size_t n = s.size();
    auto digits_commas = [&](size_t k) {
        while (k < n && (digit(s[k]) || s[k] == ',')) ++k;
        return k;
    };
    if (s[i] == '$') {
        if (i + 1 >= n || !digit(s[i + 1])) return 0;
        const size_t first = i + 2, most = digits_commas(first);
        for (size_t e = most;; --e) {  // [\d,]* gives back one character at a time
            if (size_t end = price_tail(s, e)) return end;
            if (e == first) return 0;
        }
    }
    if (!digit(s[i]) || (i > 0 && word(s[i - 1]))) return 0;
    const size_t e = digits_commas(i + 1);  // only the longest run can be followed by '.' or '$'
    if (e + 1 < n && s[e] == '.' && digit(s[e + 1])) {
        size_t f = e + 2;
        while (f < n && digit(s[f])) ++f;
        if (f < n && s[f] == '$') return f + 1;
    }
    return e < n && s[e] == '$' ? e + 1 : 0;
}

// \$[a-z][a-z0-9]*(?:[.\-][a-z0-9]+)?
size_t Normaliser::ticker(const Text& s, size_t i) const {
    const size_t n = s.size();
    if (s[i] != '$' || i + 1 >= n || s[i + 1] < 'a' || s[i + 1] > 'z') return 0;
    size_t k = i + 2;
    while (k < n && lower_alnum(s[k])) ++k;
    if (k + 1 < n && (s[k] == '.' || s[k] == '-') && lower_alnum(s[k + 1])) {
        k += 2;
        while (k < n && lower_alnum(s[k])) ++k;
    }
    return k;
}

// @\w+
size_t Normaliser::user(const Text& s, size_t i) const {
    if (s[i] != '@' || i + 1 >= s.size() || !word(s[i + 1])) return 0;
    size_t k = i + 2;
    while (k < s.size() && word(s[k])) ++k;
    return k;
}

// \d+(?:[.,:]\d+)*
size_t Normaliser::number(const Text& s, size_t i) const {
    const size_t n = s.size();
    if (!digit(s[i])) return 0;
    size_t k = i + 1;
    while (k < n && digit(s[k])) ++k;
    while (k + 1 < n && (s[k] == '.' || s[k] == ',' || s[k] == ':') && digit(s[k + 1])) {
        k += 2;
        while (k < n && digit(s[k])) ++k;
    }
    return k;
}

void Normaliser::non_ascii(const Text& in, Text& out) const {
    out.clear();
    for (char32_t c : in) {
        const uint16_t f = flags(c);
        if (options_.keep_emoji) {
            if (f & (kModifier | kDropKeepEmoji)) continue;
            if (f & kSpacedEmoji) {
                out.push_back(' ');
                out.push_back(c);
                out.push_back(' ');
                continue;
            }
        } else if (f & kDropPlain) {
            continue;
        }
        out.push_back(c);
    }
}

bool Normaliser::punctuation(const Text& in, Text& out) const {
    return substitute(
        in, out, [this](char32_t c) { return (flags(c) & kPunctuation) != 0; },
        [this](const Text& s, size_t i) -> size_t {
            size_t k = i;
            while (k < s.size() && (flags(s[k]) & kPunctuation)) ++k;
            return k > i ? k : 0;
        },
        [](Text& o, const Text&, size_t, size_t) { o.push_back(' '); });
}

bool Normaliser::placeholders(const Text& in, Text& out, Text& spare, uint32_t written) const {
    // str.replace for each placeholder in turn: the words in `written` (what the rules wrote).
    const Text* cur = &in;
    Text* dst = &out;
    bool any = false;
    for (size_t k = 0; k < placeholders_.size(); ++k) {
        const Placeholder& p = placeholders_[k];
        if (!all_words_ && !(written & (1u << k))) continue;
        const size_t at = find_word(*cur, p.word, 0);
        if (at == Text::npos) continue;
        dst->clear();
        size_t from = 0;
        for (size_t hit = at; hit != Text::npos; hit = find_word(*cur, p.word, from)) {
            dst->append(*cur, from, hit - from);
            dst->append(p.token);
            from = hit + p.word.size();
        }
        dst->append(*cur, from, Text::npos);
        cur = dst;
        dst = dst == &out ? &spare : &out;
        any = true;
        written |= token_writes_[k];
    }
    if (any && cur != &out) out.swap(spare);  // the result ends in `out`
    return any;
}

bool Normaliser::normalise(const void* data, int kind, size_t length, TextScratch& scratch, const Text*& text) const {
    Text* cur = &scratch.a;
    Text* other = &scratch.b;
    uint32_t present = 0;
    bool ok = kind == 1   ? lowered(static_cast<const uint8_t*>(data), length, *cur, present)
              : kind == 2 ? lowered(static_cast<const uint16_t*>(data), length, *cur, present)
                          : lowered(static_cast<const uint32_t*>(data), length, *cur, present);
    if (!ok) return false;
    uint32_t written = 0;  // the placeholder words the rules wrote
    auto rule = [&](uint32_t needs, auto starts, auto match, size_t k) {
        if (!(present & needs)) return;
        auto emit = [this, k](Text& o, const Text&, size_t, size_t) { o.append(replacements_[k]); };
        if (substitute(*cur, *other, starts, match, emit)) {
            std::swap(cur, other);
            written |= writes_[k];
        }
    };
    auto digit_or_dollar = [this](char32_t c) { return c == '$' || digit(c); };
    auto dollar = [](char32_t c) { return c == '$'; };
    rule(kAmpersand, [](char32_t c) { return c == '&'; }, [this](const Text& s, size_t i) { return html_entity(s, i); }, 0);
    rule(kColonOrDot, [](char32_t c) { return c == 'h' || c == 'w'; }, [this](const Text& s, size_t i) { return link(s, i); }, 1);
    rule(kDollar | kDigits, digit_or_dollar, [this](const Text& s, size_t i) { return price(s, i); }, 2);
    if (!(present & kDollar)) {
    } else if (options_.keep_cashtags) {
        // " CASHTAG" + the symbol's letters and digits + " " (text._cashtag)
        auto emit = [this](Text& o, const Text& s, size_t i, size_t end) {
            o.push_back(' ');
            o.append(cashtag_);
            for (size_t k = i + 1; k < end; ++k)
                if (lower_alnum(s[k])) o.push_back(s[k]);
            o.push_back(' ');
        };
        if (substitute(*cur, *other, dollar, [this](const Text& s, size_t i) { return ticker(s, i); }, emit)) {
            std::swap(cur, other);
            written |= cashtag_writes_;
        }
    } else {
        rule(kDollar, dollar, [this](const Text& s, size_t i) { return ticker(s, i); }, 3);
    }
    rule(kAt, [](char32_t c) { return c == '@'; }, [this](const Text& s, size_t i) { return user(s, i); }, 4);
    rule(kDigits, [this](char32_t c) { return digit(c); }, [this](const Text& s, size_t i) { return number(s, i); }, 5);
    rule(kApostrophes, [this](char32_t c) { return (flags(c) & kApostrophe) != 0; },
         [](const Text&, size_t i) -> size_t { return i + 1; }, 6);
    bool ascii = !(present & kNonAscii);
    if (!ascii) {
        ascii = true;
        for (char32_t c : *cur) ascii &= c < 0x80;
    }
    if (!ascii) {
        non_ascii(*cur, *other);
        std::swap(cur, other);
    }
    if (punctuation(*cur, *other)) std::swap(cur, other);
    if ((written || all_words_) && placeholders(*cur, *other, scratch.c, written)) std::swap(cur, other);

    scratch.tokens.clear();
    const Text& s = *cur;
    for (size_t i = 0, n = s.size(); i < n && scratch.tokens.size() < options_.max_tokens;) {
        while (i < n && (flags(s[i]) & kSpace)) ++i;
        const size_t start = i;
        while (i < n && !(flags(s[i]) & kSpace)) ++i;
        if (i > start) scratch.tokens.push_back({static_cast<uint32_t>(start), static_cast<uint32_t>(i)});
    }
    text = cur;
    return true;
}

// ------------------------------------------------------------------ words -> ids

// memcmp(a, b, n) == 0 without a call for the few bytes a word has.
static inline bool same_bytes(const char* a, const char* b, size_t n) {
    for (; n >= 8; a += 8, b += 8, n -= 8) {
        uint64_t x, y;
        std::memcpy(&x, a, 8);
        std::memcpy(&y, b, 8);
        if (x != y) return false;
    }
    for (; n; ++a, ++b, --n)
        if (*a != *b) return false;
    return true;
}

uint64_t WordIds::hash(const char* p, size_t n) {
    // 8 bytes at a time, each word mixed by a multiply and a fold (words are a few bytes long).
    uint64_t h = 0x9e3779b97f4a7c15ull ^ n;
    for (; n >= 8; p += 8, n -= 8) {
        uint64_t v;
        std::memcpy(&v, p, 8);
        h = (h ^ v) * 0xff51afd7ed558ccdull;
        h ^= h >> 32;
    }
    if (n) {
        uint64_t v = 0;
        for (size_t k = 0; k < n; ++k) v |= static_cast<uint64_t>(static_cast<unsigned char>(p[k])) << (8 * k);
        h = (h ^ v) * 0xc4ceb9fe1a85ec53ull;
        h ^= h >> 29;
    }
    return h ? h : 1;
}

void WordIds::grow() {
    std::vector<Slot> old = std::move(slots_);
    slots_.assign(old.empty() ? 64 : old.size() * 2, Slot{});
    const size_t mask = slots_.size() - 1;
    for (const Slot& s : old) {
        if (s.id < 0) continue;
        size_t at = s.hash & mask;
        while (slots_[at].id >= 0) at = (at + 1) & mask;
        slots_[at] = s;
    }
}

void WordIds::add(const char* utf8, size_t size, int64_t id) {
    if ((count_ + 1) * 2 > slots_.size()) grow();
    const uint64_t h = hash(utf8, size);
    const size_t mask = slots_.size() - 1;
    size_t at = h & mask;
    for (; slots_[at].id >= 0; at = (at + 1) & mask) {
        const Slot& s = slots_[at];
        if (s.hash == h && s.size == size && std::memcmp(arena_.data() + s.offset, utf8, size) == 0) return;
    }
    slots_[at] = Slot{h, static_cast<uint32_t>(arena_.size()), static_cast<uint32_t>(size), id};
    arena_.append(utf8, size);
    ++count_;
}

int64_t WordIds::find(const char* utf8, size_t size) const {
    if (slots_.empty()) return -1;
    const uint64_t h = hash(utf8, size);
    const size_t mask = slots_.size() - 1;
    for (size_t at = h & mask;; at = (at + 1) & mask) {
        const Slot& s = slots_[at];
        if (s.id < 0) return -1;
        if (s.hash == h && s.size == size && same_bytes(arena_.data() + s.offset, utf8, size)) return s.id;
    }
}

void append_utf8(const char32_t* begin, const char32_t* end, std::string& out) {
    bool ascii = true;
    for (const char32_t* p = begin; p != end; ++p) ascii &= *p < 0x80;
    if (ascii) {  // nearly every token: one resize, then bytes
        const size_t at = out.size();
        out.resize(at + static_cast<size_t>(end - begin));
        char* dst = &out[at];
        for (const char32_t* p = begin; p != end; ++p) *dst++ = static_cast<char>(*p);
        return;
    }
    for (const char32_t* p = begin; p != end; ++p) {
        const uint32_t c = *p;
        if (c < 0x80) {
            out.push_back(static_cast<char>(c));
        } else if (c < 0x800) {
            out.push_back(static_cast<char>(0xc0 | (c >> 6)));
            out.push_back(static_cast<char>(0x80 | (c & 0x3f)));
        } else if (c < 0x10000) {
            out.push_back(static_cast<char>(0xe0 | (c >> 12)));
            out.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3f)));
            out.push_back(static_cast<char>(0x80 | (c & 0x3f)));
        } else {
            out.push_back(static_cast<char>(0xf0 | (c >> 18)));
            out.push_back(static_cast<char>(0x80 | ((c >> 12) & 0x3f)));
            out.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3f)));
            out.push_back(static_cast<char>(0x80 | (c & 0x3f)));
        }
    }
}

}  // namespace stocksent
