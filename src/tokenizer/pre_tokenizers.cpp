#include "tokenizer/pre_tokenizers.h"

#include "tokenizer/byte_level.h"
#include "tokenizer/normalizers.h"
#include "tokenizer/regex.h"
#include "tokenizer/scratch.h"
#include "tokenizer/unicode.h"

namespace tllm::tok {

namespace {

enum class Behavior { Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous };

Behavior parse_behavior(const json& j, const std::string& where, Behavior fallback) {
  auto it = j.find("behavior");
  if (it == j.end() || it->is_null()) return fallback;
  TLLM_CHECK_ARG(it->is_string(), "tokenizer.json: ", where, ".behavior must be a string");
  std::string b = it->get<std::string>();
  if (b == "Removed") return Behavior::Removed;
  if (b == "Isolated") return Behavior::Isolated;
  if (b == "MergedWithPrevious") return Behavior::MergedWithPrevious;
  if (b == "MergedWithNext") return Behavior::MergedWithNext;
  if (b == "Contiguous") return Behavior::Contiguous;
  TOK_FAIL("tokenizer.json: ", where, ".behavior '", b,
           "' is not one of Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous");
}

// A run of the input and whether the pattern matched it (HF Pattern::find_matches output:
// the runs cover the whole string in order).
struct Seg {
  size_t b, e;
  bool match;
};

// Applies a split behaviour to segs of text and appends the resulting non-empty pieces.
void split_segments(std::string_view text, bool at_origin, std::vector<Seg>& segs, Behavior behavior,
                    std::vector<Piece>& out) {
  struct Cut {
    size_t b, e;
    bool remove;
  };
  thread_local std::vector<Cut> cuts;
  cuts.clear();
  switch (behavior) {
    case Behavior::Isolated:
      for (const Seg& s : segs) cuts.push_back({s.b, s.e, false});
      break;
    case Behavior::Removed:
      for (const Seg& s : segs) cuts.push_back({s.b, s.e, s.match});
      break;
    case Behavior::Contiguous: {
      bool prev = false;
      for (const Seg& s : segs) {
        if (s.match == prev && !cuts.empty()) {
          cuts.back().e = s.e;
        } else {
          cuts.push_back({s.b, s.e, false});
        }
        prev = s.match;
      }
      break;
    }
    case Behavior::MergedWithPrevious: {
      bool prev = false;
      for (const Seg& s : segs) {
        if (s.match && !prev && !cuts.empty()) {
          cuts.back().e = s.e;
        } else {
          cuts.push_back({s.b, s.e, false});
        }
        prev = s.match;
      }
      break;
    }
    case Behavior::MergedWithNext: {
      bool prev = false;
      for (size_t k = segs.size(); k-- > 0;) {
        const Seg& s = segs[k];
        if (s.match && !prev && !cuts.empty()) {
          cuts.back().b = s.b;
        } else {
          cuts.push_back({s.b, s.e, false});
        }
        prev = s.match;
      }
      std::reverse(cuts.begin(), cuts.end());
      break;
    }
  }
  for (const Cut& c : cuts) {
    if (c.remove || c.e <= c.b) continue;
    out.push_back({text.substr(c.b, c.e - c.b), at_origin && c.b == 0});
  }
  trim_scratch(cuts);
}

// Segments where every character satisfying pred is its own match (HF's Fn(char) pattern).
template <typename Pred>
void char_segments(std::string_view text, Pred pred, std::vector<Seg>& segs) {
  segs.clear();
  size_t last = 0, i = 0;
  while (i < text.size()) {
    size_t start = i;
    char32_t c = next_cp(text, i);
    if (pred(c)) {
      if (last < start) segs.push_back({last, start, false});
      segs.push_back({start, i, true});
      last = i;
    }
  }
  if (last < text.size()) segs.push_back({last, text.size(), false});
}

void regex_segments(std::string_view text, const Regex& re, bool invert, std::vector<Seg>& segs) {
  segs.clear();
  if (text.empty()) return;
  size_t prev = 0;
  re.for_each_match(text, [&](size_t b, size_t e) {
    if (prev != b) segs.push_back({prev, b, invert});
    segs.push_back({b, e, !invert});
    prev = e;
  });
  if (prev != text.size()) segs.push_back({prev, text.size(), invert});
}

void literal_segments(std::string_view text, std::string_view lit, bool invert, std::vector<Seg>& segs) {
  segs.clear();
  if (text.empty()) return;
  if (lit.empty()) {
    segs.push_back({0, text.size(), invert});
    return;
  }
  size_t prev = 0, pos = 0;
  while ((pos = text.find(lit, pos)) != std::string_view::npos) {
    if (prev != pos) segs.push_back({prev, pos, invert});
    segs.push_back({pos, pos + lit.size(), !invert});
    pos += lit.size();
    prev = pos;
  }
  if (prev != text.size()) segs.push_back({prev, text.size(), invert});
}

// Runs every piece through fn(piece, out) and swaps the result in.
template <typename Fn>
void for_each_piece(std::vector<Piece>& pieces, Fn fn) {
  std::vector<Piece> out;
  out.reserve(pieces.size() * 2 + 4);
  for (const Piece& p : pieces) fn(p, out);
  pieces.swap(out);
}

class Split final : public PreTokenizer {
 public:
  Split(std::string literal, std::unique_ptr<Regex> regex, Behavior behavior, bool invert)
      : literal_(std::move(literal)), regex_(std::move(regex)), behavior_(behavior), invert_(invert) {}

  void apply(std::vector<Piece>& pieces, PieceArena&) const override {
    for_each_piece(pieces, [&](const Piece& p, std::vector<Piece>& out) {
      if (regex_ && behavior_ == Behavior::Isolated) {
        // Hot path (Qwen/Llama/DeepSeek): every match and every gap becomes a piece.
        size_t prev = 0;
        regex_->for_each_match(p.text, [&](size_t b, size_t e) {
          if (prev < b) out.push_back({p.text.substr(prev, b - prev), p.at_origin && prev == 0});
          if (b < e) out.push_back({p.text.substr(b, e - b), p.at_origin && b == 0});
          prev = e;
        });
        if (prev < p.text.size()) {
          out.push_back({p.text.substr(prev), p.at_origin && prev == 0});
        }
        return;
      }
      thread_local std::vector<Seg> segs;
      if (regex_) {
        regex_segments(p.text, *regex_, invert_, segs);
      } else {
        literal_segments(p.text, literal_, invert_, segs);
      }
      split_segments(p.text, p.at_origin, segs, behavior_, out);
      trim_scratch(segs);
    });
  }
  bool keeps_all_text() const override { return behavior_ != Behavior::Removed; }

 private:
  std::string literal_;
  std::unique_ptr<Regex> regex_;
  Behavior behavior_;
  bool invert_;
};

// Splits on characters that satisfy a predicate (Digits, Punctuation, CharDelimiterSplit...).
template <typename Pred>
class CharSplit final : public PreTokenizer {
 public:
  CharSplit(Pred pred, Behavior behavior) : pred_(pred), behavior_(behavior) {}
  void apply(std::vector<Piece>& pieces, PieceArena&) const override {
    for_each_piece(pieces, [&](const Piece& p, std::vector<Piece>& out) {
      thread_local std::vector<Seg> segs;
      char_segments(p.text, pred_, segs);
      split_segments(p.text, p.at_origin, segs, behavior_, out);
      trim_scratch(segs);
    });
  }
  bool keeps_all_text() const override { return behavior_ != Behavior::Removed; }

 private:
  Pred pred_;
  Behavior behavior_;
};

template <typename Pred>
std::unique_ptr<PreTokenizer> make_char_split(Pred pred, Behavior behavior) {
  return std::make_unique<CharSplit<Pred>>(pred, behavior);
}

// HF Whitespace: the pieces are the matches of \w+|[^\w\s]+ (the rest is removed).
class Whitespace final : public PreTokenizer {
 public:
  void apply(std::vector<Piece>& pieces, PieceArena&) const override {
    for_each_piece(pieces, [&](const Piece& p, std::vector<Piece>& out) {
      std::string_view t = p.text;
      size_t i = 0;
      int run_kind = -1;  // 0 word, 1 other
      size_t run_start = 0;
      auto flush = [&](size_t end) {
        if (run_kind >= 0 && end > run_start) {
          out.push_back({t.substr(run_start, end - run_start), p.at_origin && run_start == 0});
        }
        run_kind = -1;
      };
      while (i < t.size()) {
        size_t start = i;
        char32_t c = next_cp(t, i);
        int kind = is_word_char(c) ? 0 : (is_whitespace(c) ? 2 : 1);
        if (kind == 2) {
          flush(start);
          continue;
        }
        if (kind != run_kind) {
          flush(start);
          run_kind = kind;
          run_start = start;
        }
      }
      flush(t.size());
    });
  }
};

class Metaspace final : public PreTokenizer {
 public:
  enum class Prepend { Always, First, Never };
  Metaspace(char32_t replacement, Prepend prepend, bool split)
      : replacement_(replacement), prepend_(prepend), split_(split) {
    append_utf8(rep_, replacement);
  }
  bool keeps_all_text() const override { return true; }  // spaces become the replacement
  void apply(std::vector<Piece>& pieces, PieceArena& arena) const override {
    for_each_piece(pieces, [&](const Piece& p, std::vector<Piece>& out) {
      std::string s;
      s.reserve(p.text.size() + rep_.size() * 4);
      for (char ch : p.text) {
        if (ch == ' ') {
          s += rep_;
        } else {
          s += ch;
        }
      }
      bool starts = s.compare(0, rep_.size(), rep_) == 0;
      if (!starts && (prepend_ == Prepend::Always || (prepend_ == Prepend::First && p.at_origin))) {
        s.insert(0, rep_);
      }
      arena.push_back(std::move(s));
      std::string_view text = arena.back();
      if (!split_) {
        if (!text.empty()) out.push_back({text, p.at_origin});
        return;
      }
      thread_local std::vector<Seg> segs;
      char32_t r = replacement_;
      char_segments(text, [r](char32_t c) { return c == r; }, segs);
      split_segments(text, p.at_origin, segs, Behavior::MergedWithNext, out);
      trim_scratch(segs);
    });
  }

 private:
  char32_t replacement_;
  std::string rep_;
  Prepend prepend_;
  bool split_;
};

class ByteLevel final : public PreTokenizer {
 public:
  ByteLevel(bool add_prefix_space, bool use_regex) : add_prefix_space_(add_prefix_space) {
    if (use_regex) {
      // GPT-2's pattern, as HF's ByteLevel pre-tokenizer uses it.
      regex_ = std::make_unique<Regex>(
          "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+",
          "ByteLevel pre-tokenizer");
    }
  }
  void set_map_bytes(bool on) { map_bytes_ = on; }
  bool keeps_all_text() const override { return true; }

  void apply(std::vector<Piece>& pieces, PieceArena& arena) const override {
    for_each_piece(pieces, [&](const Piece& p, std::vector<Piece>& out) {
      std::string_view text = p.text;
      if (add_prefix_space_ && (text.empty() || text[0] != ' ')) {
        std::string s;
        s.reserve(text.size() + 1);
        s += ' ';
        s += text;
        arena.push_back(std::move(s));
        text = arena.back();
      }
      size_t first = out.size();
      if (regex_) {
        size_t prev = 0;
        regex_->for_each_match(text, [&](size_t b, size_t e) {
          if (prev < b) out.push_back({text.substr(prev, b - prev), p.at_origin && prev == 0});
          if (b < e) out.push_back({text.substr(b, e - b), p.at_origin && b == 0});
          prev = e;
        });
        if (prev < text.size()) out.push_back({text.substr(prev), p.at_origin && prev == 0});
      } else if (!text.empty()) {
        out.push_back({text, p.at_origin});
      }
      if (map_bytes_) {
        const auto& table = byte_level_table();
        for (size_t k = first; k < out.size(); ++k) {
          std::string m;
          m.reserve(out[k].text.size() * 2);
          for (unsigned char b : out[k].text) m += table.byte_to_utf8[b];
          arena.push_back(std::move(m));
          out[k].text = arena.back();
        }
      }
    });
  }

 private:
  bool add_prefix_space_;
  bool map_bytes_ = true;
  std::unique_ptr<Regex> regex_;
};

class SequencePreTokenizer final : public PreTokenizer {
 public:
  explicit SequencePreTokenizer(std::vector<std::unique_ptr<PreTokenizer>> items)
      : items_(std::move(items)) {}
  void apply(std::vector<Piece>& pieces, PieceArena& arena) const override {
    for (const auto& p : items_) p->apply(pieces, arena);
  }
  bool keeps_all_text() const override {
    for (const auto& p : items_)
      if (!p->keeps_all_text()) return false;
    return true;
  }
  std::vector<std::unique_ptr<PreTokenizer>>& items() { return items_; }

 private:
  std::vector<std::unique_ptr<PreTokenizer>> items_;
};

}  // namespace

std::unique_ptr<PreTokenizer> make_pre_tokenizer(const json& j, const std::string& where) {
  if (j.is_null()) return nullptr;
  std::string type = get_type(j, where);
  if (type == "Split") {
    Pattern pattern = Pattern::read(j, where);
    return std::make_unique<Split>(std::move(pattern.literal), std::move(pattern.regex),
                                   parse_behavior(j, where, Behavior::Isolated),
                                   get_bool_or(j, "invert", false, where));
  }
  if (type == "ByteLevel") {
    return std::make_unique<ByteLevel>(get_bool_or(j, "add_prefix_space", true, where),
                                       get_bool_or(j, "use_regex", true, where));
  }
  if (type == "Digits") {
    bool individual = get_bool_or(j, "individual_digits", false, where);
    return make_char_split([](char32_t c) { return is_numeric(c); },
                           individual ? Behavior::Isolated : Behavior::Contiguous);
  }
  if (type == "Punctuation") {
    return make_char_split([](char32_t c) { return is_punctuation(c); },
                           parse_behavior(j, where, Behavior::Isolated));
  }
  if (type == "CharDelimiterSplit") {
    char32_t d = get_char(j, "delimiter", 0, where);
    return make_char_split([d](char32_t c) { return c == d; }, Behavior::Removed);
  }
  if (type == "WhitespaceSplit") {
    return make_char_split([](char32_t c) { return is_whitespace(c); }, Behavior::Removed);
  }
  if (type == "Whitespace") return std::make_unique<Whitespace>();
  if (type == "BertPreTokenizer") {
    std::vector<std::unique_ptr<PreTokenizer>> items;
    items.push_back(make_char_split([](char32_t c) { return is_whitespace(c); }, Behavior::Removed));
    items.push_back(make_char_split([](char32_t c) { return is_punctuation(c); }, Behavior::Isolated));
    return std::make_unique<SequencePreTokenizer>(std::move(items));
  }
  if (type == "Metaspace") {
    char32_t rep = get_char(j, "replacement", U'\u2581', where);
    Metaspace::Prepend prepend = Metaspace::Prepend::Always;
    auto it = j.find("prepend_scheme");
    if (it != j.end() && !it->is_null()) {
      std::string s = get_string(j, "prepend_scheme", where);
      if (s == "always") {
        prepend = Metaspace::Prepend::Always;
      } else if (s == "first") {
        prepend = Metaspace::Prepend::First;
      } else if (s == "never") {
        prepend = Metaspace::Prepend::Never;
      } else {
        TOK_FAIL("tokenizer.json: ", where, ".prepend_scheme '", s,
                 "' is not one of always, first, never");
      }
    } else if (!get_bool_or(j, "add_prefix_space", true, where)) {
      prepend = Metaspace::Prepend::Never;  // files written before prepend_scheme existed
    }
    return std::make_unique<Metaspace>(rep, prepend, get_bool_or(j, "split", true, where));
  }
  if (type == "Sequence") {
    return std::make_unique<SequencePreTokenizer>(
        make_list<PreTokenizer>(j, "pretokenizers", where, make_pre_tokenizer));
  }
  TOK_FAIL("tokenizer.json: ", where, ": unsupported pre-tokenizer type '", type,
           "' (supported: Split, ByteLevel, Digits, Metaspace, Whitespace, WhitespaceSplit, "
           "Punctuation, BertPreTokenizer, CharDelimiterSplit, Sequence)");
}

bool take_over_final_byte_level(PreTokenizer* p) {
  if (auto* bl = dynamic_cast<ByteLevel*>(p)) {
    bl->set_map_bytes(false);
    return true;
  }
  if (auto* seq = dynamic_cast<SequencePreTokenizer*>(p)) {
    if (seq->items().empty()) return false;
    return take_over_final_byte_level(seq->items().back().get());
  }
  return false;
}

}  // namespace tllm::tok
