// text.normalise ported rule by rule, and the vocabulary as a hash map: raw text -> word ids with
// no Python object per token. Character classes are not decided here: stocksent/encoding.py derives
// them for every code point from the reference's own regular expressions and hands them over as a
// table; a message holding a character the table cannot speak for is left to the reference.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace stocksent {

// One bit per class the rules ask about (stocksent/encoding.py: CHAR_FLAGS, same order).
enum CharFlag : uint16_t {
    kWord = 1,            // \w
    kSpace = 2,           // \s, str.split()
    kDigit = 4,           // \d
    kApostrophe = 8,      // the apostrophe rule's class
    kModifier = 16,       // _EMOJI_MODIFIERS: dropped when emoji are kept
    kDropKeepEmoji = 32,  // _NON_ASCII_KEEP_EMOJI: dropped when emoji are kept
    kDropPlain = 64,      // _NON_ASCII: dropped when emoji are not kept
    kSpacedEmoji = 128,   // _SPACE_EMOJI: becomes a token of its own
    kPunctuation = 256,   // _PUNCTUATION: a run of them becomes one space
};
constexpr uint32_t kNoLower = 0xFFFFFFFFu;  // str.lower() of it is not one context-free code point

using Text = std::u32string;

struct CharTable {
    std::vector<uint32_t> lower;  // code point -> str.lower() of it, or kNoLower
    std::vector<uint16_t> flags;  // code point -> CharFlag bits
};

struct Placeholder {
    Text word, token;  // text.replace(word, token), in the order given
};

struct NormaliseOptions {
    bool keep_emoji = false;
    bool keep_cashtags = false;
    size_t max_tokens = 100;
};

struct Span {
    uint32_t begin, end;  // a token: [begin, end) of the normalised text
};

// Buffers one thread reuses from message to message (no allocation once they have grown).
struct TextScratch {
    Text a, b, c;
    std::vector<Span> tokens;
    std::string utf8;
};

class Normaliser {
public:
    // `replacements`: each rule's replacement text, in text.RULES' order; `cashtag`: the word a kept
    // ticker symbol is written after (text._cashtag), before the placeholders turn it into "$".
    Normaliser(CharTable table, std::vector<Placeholder> placeholders, std::vector<Text> replacements, Text cashtag,
               NormaliseOptions options);
    const NormaliseOptions& options() const { return options_; }

    // Tokens of one message (`kind` 1, 2 or 4 bytes per code point, as CPython stores str):
    // false when a character is outside what the table vouches for (the reference must decide).
    // On true, scratch.tokens are spans of the text returned.
    bool normalise(const void* data, int kind, size_t length, TextScratch& scratch, const Text*& text) const;

private:
    template <class Char>
    bool lowered(const Char* data, size_t length, Text& out, uint32_t& present) const;
    uint16_t flags(char32_t c) const { return table_.flags[c]; }
    uint8_t present_of(char32_t c) const;
    bool word(char32_t c) const { return flags(c) & kWord; }
    bool digit(char32_t c) const { return flags(c) & kDigit; }
    bool boundary(const Text& s, size_t i) const;
    size_t html_entity(const Text& s, size_t i) const;
    size_t link(const Text& s, size_t i) const;
    size_t price(const Text& s, size_t i) const;
    size_t price_tail(const Text& s, size_t e) const;
    size_t ticker(const Text& s, size_t i) const;
    size_t user(const Text& s, size_t i) const;
    size_t number(const Text& s, size_t i) const;
    void non_ascii(const Text& in, Text& out) const;
    bool punctuation(const Text& in, Text& out) const;
    bool placeholders(const Text& in, Text& out, Text& spare, uint32_t written) const;

    CharTable table_;
    std::vector<Placeholder> placeholders_;
    std::vector<Text> replacements_;
    std::vector<uint32_t> writes_, token_writes_;  // placeholder words (bits) each replacement holds
    uint32_t cashtag_writes_ = 0;
    bool all_words_ = false;  // a placeholder word could come from the text itself: look for every one
    uint8_t ascii_present_[0x80] = {};
    Text cashtag_;
    NormaliseOptions options_;
};

// Words -> ids: open addressing over UTF-8 bytes held in one arena.
class WordIds {
public:
    void add(const char* utf8, size_t size, int64_t id);
    int64_t find(const char* utf8, size_t size) const;  // -1 when absent
    size_t size() const { return count_; }
    size_t bytes() const { return arena_.size() + slots_.size() * sizeof(Slot); }

private:
    struct Slot {
        uint64_t hash = 0;
        uint32_t offset = 0, size = 0;
        int64_t id = -1;
    };
    static uint64_t hash(const char* p, size_t n);
    void grow();
    std::vector<Slot> slots_;
    std::string arena_;
    size_t count_ = 0;
};

// UTF-8 of code points (surrogates as CPython's "surrogatepass" writes them).
void append_utf8(const char32_t* begin, const char32_t* end, std::string& out);

}  // namespace stocksent
