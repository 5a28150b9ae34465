#include "engine/grammar.h"

#include <algorithm>
#include <map>
#include <optional>

#include "core/error.h"
#include "engine/code_point_ranges.h"
#include "tokenizer/unicode.h"

namespace tllm {

namespace {

// A code point of the grammar's text, with where it is.
struct Char {
  uint32_t cp;
  int line, col;
};

// Decodes UTF-8; the first invalid byte is refused with its place.
std::vector<Char> decode(std::string_view s) {
  std::vector<Char> out;
  const size_t valid = tok::valid_utf8_prefix(s);
  int line = 1, col = 1;
  for (size_t i = 0; i < valid;) {
    const uint32_t cp = static_cast<uint32_t>(tok::next_cp(s, i));
    out.push_back({cp, line, col});
    if (cp == '\n') ++line, col = 1;
    else ++col;
  }
  if (valid < s.size())
    throw InvalidArgument("grammar: line " + std::to_string(line) + ", column " + std::to_string(col) +
                          ": the text is not valid UTF-8");
  return out;
}

}  // namespace

// Parses GBNF into rules whose alternatives are sequences of items (a character class or a
// rule), groups and quantifiers becoming rules of their own; then checks the rules and lays
// them out as Grammar::elements_.
class GrammarCompiler {
 public:
  explicit GrammarCompiler(std::string_view text) : text_(decode(text)) {}

  std::shared_ptr<const Grammar> compile(std::string_view source) {
    skip_space();
    while (i_ < text_.size()) rule();
    const auto root = ids_.find("root");
    if (root == ids_.end() || !defined_[static_cast<size_t>(root->second)])
      throw InvalidArgument("grammar: there is no 'root' rule (the output is one root)");
    for (size_t r = 0; r < rules_.size(); ++r)
      if (!defined_[r]) fail_at(used_at_[r], "rule '" + names_[r] + "' is not defined");
    check_productive();
    check_left_recursion();
    auto g = std::make_shared<Grammar>();
    g->source_ = std::string(source);
    g->root_ = root->second;
    g->classes_ = std::move(classes_);
    g->rules_.resize(rules_.size());
    for (size_t r = 0; r < rules_.size(); ++r) {
      for (const auto& alt : rules_[r]) {
        g->rules_[r].push_back(static_cast<int32_t>(g->elements_.size()));
        for (const Item& it : alt)
          g->elements_.push_back({it.rule >= 0 ? Grammar::Element::Ref : Grammar::Element::Chars,
                                  it.rule >= 0 ? it.rule : it.cls});
        g->elements_.push_back({Grammar::Element::End, 0});
        if (g->elements_.size() > Grammar::kMaxElements)
          throw InvalidArgument("grammar: too large (more than " + std::to_string(Grammar::kMaxElements) +
                                " elements once repetitions are written out)");
      }
    }
    return g;
  }

 private:
  struct Item {
    int rule = -1;  // a rule, or
    int cls = -1;   // a character class
  };
  using Alt = std::vector<Item>;
  struct Where {
    int line = 0, col = 0;
  };

  [[noreturn]] void fail_at(Where w, const std::string& what) const {
    throw InvalidArgument("grammar: line " + std::to_string(w.line) + ", column " + std::to_string(w.col) + ": " + what);
  }
  [[noreturn]] void fail(const std::string& what) const { fail_at(here(), what); }
  Where here() const {
    if (i_ < text_.size()) return {text_[i_].line, text_[i_].col};
    if (text_.empty()) return {1, 1};
    return {text_.back().line, text_.back().col + 1};
  }
  bool at(uint32_t c) const { return i_ < text_.size() && text_[i_].cp == c; }
  static bool name_char(uint32_t c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
  }
  void skip_space() {
    while (i_ < text_.size()) {
      const uint32_t c = text_[i_].cp;
      if (c == '#') {
        while (i_ < text_.size() && text_[i_].cp != '\n') ++i_;
      } else if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
        ++i_;
      } else {
        break;
      }
    }
  }
  std::string name() {
    std::string n;
    while (i_ < text_.size() && name_char(text_[i_].cp)) n.push_back(static_cast<char>(text_[i_++].cp));
    return n;
  }
  // Whether a `name ::=` starts here (the next rule), without moving.
  bool rule_starts() {
    const size_t save = i_;
    const bool named = !name().empty();
    skip_space();
    const bool yes = named && i_ + 2 < text_.size() && text_[i_].cp == ':' && text_[i_ + 1].cp == ':' &&
                     text_[i_ + 2].cp == '=';
    i_ = save;
    return yes;
  }
  int rule_id(const std::string& n, Where used) {
    auto [it, fresh] = ids_.try_emplace(n, static_cast<int>(rules_.size()));
    if (fresh) {
      check_rule_count();
      rules_.emplace_back();
      names_.push_back(n);
      defined_.push_back(false);
      used_at_.push_back(used);
    }
    return it->second;
  }
  void check_rule_count() const {
    if (rules_.size() >= Grammar::kMaxRules)
      fail("too many rules (more than " + std::to_string(Grammar::kMaxRules) + ", groups and repetitions included)");
  }
  int new_rule(const std::string& what, std::vector<Alt> alts) {
    check_rule_count();
    rules_.push_back(std::move(alts));
    names_.push_back(what);
    defined_.push_back(true);
    used_at_.push_back(here());
    return static_cast<int>(rules_.size()) - 1;
  }
  int add_class(CodePointRanges r) {
    classes_.push_back(normalize_ranges(std::move(r)));
    return static_cast<int>(classes_.size()) - 1;
  }

  void rule() {
    const Where w = here();
    const std::string n = name();
    if (n.empty()) fail("expected a rule name");
    skip_space();
    if (!(at(':') && i_ + 2 < text_.size() && text_[i_ + 1].cp == ':' && text_[i_ + 2].cp == '='))
      fail("expected '::=' after the rule name '" + n + "'");
    i_ += 3;
    const int id = rule_id(n, w);
    if (defined_[static_cast<size_t>(id)]) fail_at(w, "rule '" + n + "' is defined twice");
    defined_[static_cast<size_t>(id)] = true;
    used_at_[static_cast<size_t>(id)] = w;  // a defined rule is named where it is defined
    current_ = n;
    rules_[static_cast<size_t>(id)] = alternatives();
    if (i_ < text_.size() && at(')')) fail("unbalanced ')'");
  }

  std::vector<Alt> alternatives() {
    std::vector<Alt> alts;
    alts.push_back(sequence());
    while (at('|')) {
      ++i_;
      alts.push_back(sequence());
    }
    return alts;
  }

  Alt sequence() {
    Alt seq;
    for (;;) {
      skip_space();
      if (i_ >= text_.size() || at('|') || at(')')) break;
      if (rule_starts()) break;
      std::vector<Item> items = primary();
      skip_space();
      if (at('*') || at('+') || at('?') || at('{')) items = quantified(std::move(items));
      // Counted as read: repetitions written out could otherwise fill memory first.
      if ((items_ += items.size()) > Grammar::kMaxElements)
        fail("the grammar is too large (more than " + std::to_string(Grammar::kMaxElements) +
             " elements once repetitions are written out)");
      seq.insert(seq.end(), items.begin(), items.end());
    }
    return seq;
  }

  // One primary: a string (one item per character), a class, '.', a rule, or a group.
  std::vector<Item> primary() {
    const Where w = here();
    const uint32_t c = text_[i_].cp;
    if (c == '"' || c == '\'') {
      ++i_;
      std::vector<Item> items;
      while (!at(c)) {
        if (i_ >= text_.size() || text_[i_].cp == '\n') fail_at(w, "unterminated string");
        const uint32_t ch = escaped();
        items.push_back({-1, add_class({{ch, ch}})});
      }
      ++i_;
      return items;
    }
    if (c == '[') return {{-1, char_class()}};
    if (c == '.') {
      ++i_;
      return {{-1, add_class({{0, kMaxCodePoint}})}};
    }
    if (c == '(') {
      if (++nesting_ > Grammar::kMaxNesting) fail("groups nested too deeply");
      ++i_;
      std::vector<Alt> alts = alternatives();
      if (!at(')')) fail_at(w, "unclosed '('");
      ++i_;
      --nesting_;
      return {{new_rule(current_ + " (group)", std::move(alts)), -1}};
    }
    if (name_char(c)) {
      const std::string n = name();
      return {{rule_id(n, w), -1}};
    }
    fail("unexpected character '" + std::string(c < 0x80 ? std::string(1, static_cast<char>(c)) : "?") + "'");
  }

  // A character of a string or class: itself, or an escape.
  uint32_t escaped() {
    const Where w = here();
    uint32_t c = text_[i_++].cp;
    if (c != '\\') return c;
    if (i_ >= text_.size()) fail_at(w, "an escape at the end of the text");
    c = text_[i_++].cp;
    auto hex = [&](int digits) {
      uint32_t v = 0;
      for (int k = 0; k < digits; ++k) {
        if (i_ >= text_.size()) fail_at(w, "a short hexadecimal escape");
        const uint32_t h = text_[i_++].cp;
        const int d = h >= '0' && h <= '9' ? int(h - '0') : h >= 'a' && h <= 'f' ? int(h - 'a' + 10)
                    : h >= 'A' && h <= 'F' ? int(h - 'A' + 10) : -1;
        if (d < 0) fail_at(w, "a bad hexadecimal escape");
        v = v * 16 + static_cast<uint32_t>(d);
      }
      if (v > kMaxCodePoint || (v >= 0xD800 && v <= 0xDFFF)) fail_at(w, "an escape that is not a Unicode character");
      return v;
    };
    switch (c) {
      case 'n': return '\n';
      case 'r': return '\r';
      case 't': return '\t';
      case '0': return 0;
      case 'x': return hex(2);
      case 'u': return hex(4);
      case 'U': return hex(8);
      case '\\': case '"': case '\'': case '[': case ']': case '-': case '^': case '/': return c;
      default: fail_at(w, "unknown escape '\\" + std::string(c < 0x80 ? std::string(1, static_cast<char>(c)) : "?") + "'");
    }
  }

  int char_class() {
    const Where w = here();
    ++i_;  // [
    bool negated = false;
    if (at('^')) negated = true, ++i_;
    CodePointRanges r;
    while (!at(']')) {
      if (i_ >= text_.size()) fail_at(w, "unterminated character class");
      const uint32_t lo = escaped();
      uint32_t hi = lo;
      if (at('-') && i_ + 1 < text_.size() && text_[i_ + 1].cp != ']') {
        ++i_;
        hi = escaped();
        if (hi < lo) fail_at(w, "a range whose end comes before its start");
      }
      r.push_back({lo, hi});
    }
    ++i_;
    r = normalize_ranges(std::move(r));
    if (negated) r = complement_ranges(r);
    if (r.empty()) fail_at(w, "a character class that matches no character");
    return add_class(std::move(r));
  }

  std::vector<Item> quantified(std::vector<Item> items) {
    const Where w = here();
    // The primary as one item (a string of several characters becomes a rule).
    Item x = items.size() == 1 ? items[0] : Item{new_rule(current_ + " (string)", {items}), -1};
    int lo = 0, hi = -1;  // hi -1: unbounded
    const uint32_t q = text_[i_++].cp;
    if (q == '+') lo = 1;
    else if (q == '?') hi = 1;
    else if (q == '{') {
      auto number = [&] {
        skip_space();
        if (!(i_ < text_.size() && text_[i_].cp >= '0' && text_[i_].cp <= '9')) fail_at(w, "a bad repetition");
        long v = 0;
        while (i_ < text_.size() && text_[i_].cp >= '0' && text_[i_].cp <= '9') {
          v = v * 10 + static_cast<long>(text_[i_++].cp - '0');
          if (v > Grammar::kMaxRepeat) fail_at(w, "a repetition bound above " + std::to_string(Grammar::kMaxRepeat));
        }
        skip_space();
        return static_cast<int>(v);
      };
      lo = number();
      hi = lo;
      if (at(',')) {
        ++i_;
        skip_space();
        hi = at('}') ? -1 : number();
      }
      if (!at('}')) fail_at(w, "a bad repetition (expected {m}, {m,} or {m,n})");
      ++i_;
      if (hi >= 0 && hi < lo) fail_at(w, "a repetition {m,n} with n < m");
    }
    std::vector<Item> out(static_cast<size_t>(lo), x);
    if (hi < 0) {
      // x*: star ::= x star | (empty); its tail call keeps the parse stacks flat.
      const int star = new_rule(current_ + " (repetition)", {});
      rules_[static_cast<size_t>(star)] = {{x, Item{star, -1}}, {}};
      used_at_[static_cast<size_t>(star)] = w;  // errors point at the quantifier
      out.push_back({star, -1});
    } else if (hi > lo) {
      // Up to hi - lo more: opt_k ::= x opt_{k-1} | (empty).
      int opt = new_rule(current_ + " (repetition)", {{x}, {}});
      for (int k = 1; k < hi - lo; ++k) opt = new_rule(current_ + " (repetition)", {{x, Item{opt, -1}}, {}});
      out.push_back({opt, -1});
    }
    return out;
  }

  // Every rule can end (derive some text): else a prefix could have no completion.
  void check_productive() {
    std::vector<uint8_t> productive(rules_.size(), 0);
    for (bool changed = true; changed;) {
      changed = false;
      for (size_t r = 0; r < rules_.size(); ++r) {
        if (productive[r]) continue;
        for (const Alt& alt : rules_[r]) {
          const bool all = std::all_of(alt.begin(), alt.end(), [&](const Item& it) {
            return it.rule < 0 || productive[static_cast<size_t>(it.rule)];
          });
          if (all) {
            productive[r] = 1;
            changed = true;
            break;
          }
        }
      }
    }
    for (size_t r = 0; r < rules_.size(); ++r)
      if (!productive[r])
        fail_at(used_at_[r], "rule '" + names_[r] + "' can never end (every alternative refers to itself)");
  }

  // No rule may begin with itself (through rules that can be empty): the recognizer would
  // expand it forever.
  void check_left_recursion() {
    const size_t n = rules_.size();
    std::vector<uint8_t> nullable(n, 0);
    for (bool changed = true; changed;) {
      changed = false;
      for (size_t r = 0; r < n; ++r) {
        if (nullable[r]) continue;
        for (const Alt& alt : rules_[r]) {
          if (std::all_of(alt.begin(), alt.end(),
                          [&](const Item& it) { return it.rule >= 0 && nullable[static_cast<size_t>(it.rule)]; })) {
            nullable[r] = 1;
            changed = true;
            break;
          }
        }
      }
    }
    std::vector<std::vector<int>> first(n);  // rules that can come first in r
    for (size_t r = 0; r < n; ++r)
      for (const Alt& alt : rules_[r])
        for (const Item& it : alt) {
          if (it.rule < 0) break;
          first[r].push_back(it.rule);
          if (!nullable[static_cast<size_t>(it.rule)]) break;
        }
    std::vector<uint8_t> color(n, 0);  // 0 new, 1 on the path, 2 done
    std::vector<std::pair<int, size_t>> path;
    for (size_t s = 0; s < n; ++s) {
      if (color[s]) continue;
      path.push_back({static_cast<int>(s), 0});
      color[s] = 1;
      while (!path.empty()) {
        auto& [r, k] = path.back();
        if (k == first[static_cast<size_t>(r)].size()) {
          color[static_cast<size_t>(r)] = 2;
          path.pop_back();
          continue;
        }
        const int next = first[static_cast<size_t>(r)][k++];
        if (color[static_cast<size_t>(next)] == 1) {
          // x* is star ::= x star | (empty); with x able to match nothing, star begins with
          // itself. Name that mistake rather than a recursion the user did not write.
          const std::string& nm = names_[static_cast<size_t>(next)];
          constexpr std::string_view kRep = " (repetition)";
          if (next == r && nm.size() > kRep.size() && nm.compare(nm.size() - kRep.size(), kRep.size(), kRep) == 0)
            fail_at(used_at_[static_cast<size_t>(next)],
                    "rule '" + nm.substr(0, nm.size() - kRep.size()) +
                        "' repeats (with *, + or {m,}) something that can match the empty text, so the "
                        "repetition could go on without reading anything; make the repeated part non-empty, "
                        "e.g. \"a\"* instead of (\"\" | \"a\")*");
          // Name a rule the user wrote, if the cycle has one.
          int named = next;
          for (const auto& [q, unused] : path)
            if (names_[static_cast<size_t>(q)].find(' ') == std::string::npos) named = q;
          fail_at(used_at_[static_cast<size_t>(named)],
                  "rule '" + names_[static_cast<size_t>(named)] +
                      "' is left-recursive (it can begin with itself); write the repetition with * or +, "
                      "e.g. list ::= item (\",\" item)*");
        }
        if (color[static_cast<size_t>(next)] == 0) {
          color[static_cast<size_t>(next)] = 1;
          path.push_back({next, 0});
        }
      }
    }
  }

  std::vector<Char> text_;
  size_t i_ = 0;
  std::string current_;  // the rule being read
  int nesting_ = 0;      // open groups
  size_t items_ = 0;     // items read so far
  std::map<std::string, int> ids_;
  std::vector<std::vector<Alt>> rules_;
  std::vector<std::string> names_;
  std::vector<bool> defined_;
  std::vector<Where> used_at_;  // where a rule is defined (or first used, while it is not)
  std::vector<CodePointRanges> classes_;
};

std::shared_ptr<const Grammar> Grammar::compile(std::string_view text) {
  return GrammarCompiler(text).compile(text);
}

// ---- the recognizer ------------------------------------------------------------------------

bool Grammar::class_has(int cls, uint32_t cp) const { return ranges_contain(classes_[static_cast<size_t>(cls)], cp); }

bool Grammar::class_meets(int cls, uint32_t lo, uint32_t hi) const {
  for (const auto& [a, b] : classes_[static_cast<size_t>(cls)])
    if (a <= hi && b >= lo) return true;
  return false;
}

// Stacks one step may expand to, and their elements, before it stops (settle() keeps
// kMaxStacks of them, kMaxStackData elements).
constexpr size_t kMaxExpanded = 4096;
constexpr size_t kMaxExpandedData = 16384;

// The stacks of one step, flat (each its elements), with their spans, and expand()'s work
// list; thread-local scratch reused across steps, so a step allocates nothing once warm.
struct Grammar::Expansion {
  std::vector<int32_t> data;
  std::vector<std::pair<uint32_t, uint32_t>> spans;    // (offset, length) into data
  std::vector<int32_t> cur;                            // the stack being expanded
  std::vector<int32_t> work;                           // stacks waiting, flat
  std::vector<std::pair<uint32_t, uint32_t>> pending;  // their spans in work (last in, first out)
  void clear() {
    data.clear();
    spans.clear();
  }
};

Grammar::Expansion& Grammar::expansion_scratch() {
  thread_local Expansion e;
  e.clear();
  return e;
}

void Grammar::expand(Expansion& out) const {
  // Iterative, with a work list: a run of rules that can be empty would otherwise recurse
  // once per rule in it.
  out.work.clear();
  out.pending.clear();
  std::vector<int32_t>& cur = out.cur;
  for (;;) {
    while (!cur.empty()) {
      const int32_t top = cur.back();
      const Element e = elements_[static_cast<size_t>(top)];
      if (e.kind == Element::Chars) break;
      cur.pop_back();
      if (e.kind == Element::End) continue;
      // A reference: its alternatives, then what follows it (nothing pushed when that is the
      // end of the caller's alternative: a tail call). The first alternative goes on here,
      // the others wait.
      if (elements_[static_cast<size_t>(top) + 1].kind != Element::End) cur.push_back(top + 1);
      const std::vector<int32_t>& alts = rules_[static_cast<size_t>(e.arg)];
      for (size_t a = alts.size(); a-- > 1;) {
        out.pending.push_back({static_cast<uint32_t>(out.work.size()), static_cast<uint32_t>(cur.size() + 1)});
        out.work.insert(out.work.end(), cur.begin(), cur.end());
        out.work.push_back(alts[a]);
      }
      cur.push_back(alts[0]);
    }
    out.spans.push_back({static_cast<uint32_t>(out.data.size()), static_cast<uint32_t>(cur.size())});
    out.data.insert(out.data.end(), cur.begin(), cur.end());
    // Enough to choose the kept ones from (settle()): an ambiguous rule could expand to
    // exponentially many. Not as few as are kept: a long run of optional items expands to one
    // stack per item before the empty one (the sentence may end) comes.
    if (out.pending.empty() || out.spans.size() > kMaxExpanded || out.data.size() > kMaxExpandedData) return;
    const auto [at, len] = out.pending.back();
    out.pending.pop_back();
    cur.assign(out.work.begin() + at, out.work.begin() + at + len);
    out.work.resize(at);
  }
}

void Grammar::settle(Expansion& out, State& st) const {
  const int32_t* d = out.data.data();
  auto less = [d](const std::pair<uint32_t, uint32_t>& a, const std::pair<uint32_t, uint32_t>& b) {
    return std::lexicographical_compare(d + a.first, d + a.first + a.second, d + b.first, d + b.first + b.second);
  };
  auto same = [d](const std::pair<uint32_t, uint32_t>& a, const std::pair<uint32_t, uint32_t>& b) {
    return a.second == b.second && std::equal(d + a.first, d + a.first + a.second, d + b.first);
  };
  std::sort(out.spans.begin(), out.spans.end(), less);
  out.spans.erase(std::unique(out.spans.begin(), out.spans.end(), same), out.spans.end());
  if (out.spans.size() > kMaxStacks) out.spans.resize(kMaxStacks);
  size_t keep = 0, data = 0;
  while (keep < out.spans.size() && (keep == 0 || data + out.spans[keep].second <= kMaxStackData))
    data += out.spans[keep++].second;
  out.spans.resize(keep);
  st.stacks_.clear();
  for (const auto& [at, len] : out.spans) {
    st.stacks_.push_back(static_cast<int32_t>(len));
    for (uint32_t k = 0; k < len; ++k) st.stacks_.push_back(d[at + k]);
  }
}

Grammar::State Grammar::start() const {
  State st;
  st.g_ = this;
  Expansion& out = expansion_scratch();
  for (int32_t alt : rules_[static_cast<size_t>(root_)]) {
    out.cur.assign(1, alt);
    expand(out);
  }
  settle(out, st);
  return st;
}

bool Grammar::State::feed(unsigned char c) {
  static const uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
  uint32_t partial = partial_;
  int have = have_, need = need_;
  if (need == 0) {
    if (c < 0x80) need = 1, partial = c;
    else if (c >= 0xC2 && c <= 0xDF) need = 2, partial = c & 0x1F;
    else if (c >= 0xE0 && c <= 0xEF) need = 3, partial = c & 0x0F;
    else if (c >= 0xF0 && c <= 0xF4) need = 4, partial = c & 0x07;
    else return false;
    have = 1;
  } else {
    if ((c & 0xC0) != 0x80) return false;
    partial = partial << 6 | (c & 0x3F);
    ++have;
  }
  const int32_t* d = stacks_.begin();
  const size_t n = stacks_.size();
  if (have < need) {
    // A partial character: taken while a class on top may hold a character beginning so.
    const int rest = 6 * (need - have);
    const uint32_t lo = std::max(partial << rest, kMin[need]);
    const uint32_t hi = std::min(partial << rest | ((1u << rest) - 1), kMaxCodePoint);
    if (lo > hi) return false;
    bool some = false;
    for (size_t at = 0; at < n && !some; at += static_cast<size_t>(d[at]) + 1)
      some = d[at] > 0 && g_->class_meets(g_->elements_[static_cast<size_t>(d[at + static_cast<size_t>(d[at])])].arg, lo, hi);
    if (!some) return false;
    partial_ = partial, have_ = have, need_ = need;
    return true;
  }
  const uint32_t cp = partial;
  if (cp < kMin[need] || cp > kMaxCodePoint || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
  Expansion& out = expansion_scratch();
  for (size_t at = 0; at < n; at += static_cast<size_t>(d[at]) + 1) {
    const size_t len = static_cast<size_t>(d[at]);
    if (len == 0 || !g_->class_has(g_->elements_[static_cast<size_t>(d[at + len])].arg, cp)) continue;
    out.cur.assign(d + at + 1, d + at + 1 + len);
    ++out.cur.back();
    g_->expand(out);
  }
  if (out.spans.empty()) return false;
  g_->settle(out, *this);
  partial_ = 0, have_ = 0, need_ = 0;
  return true;
}

bool Grammar::State::complete() const { return need_ == 0 && !stacks_.empty() && stacks_[0] == 0; }

bool Grammar::State::finished() const { return complete() && stacks_.size() == 1; }

std::string Grammar::State::key() const {
  std::string k;
  auto put = [&](uint32_t v) { k.append(reinterpret_cast<const char*>(&v), sizeof(v)); };
  put(partial_);
  put(static_cast<uint32_t>(have_ << 8 | need_));
  for (int32_t v : stacks_) put(static_cast<uint32_t>(v));
  return k;
}

bool Grammar::State::loops(CodePointRanges& out) const {
  out.clear();
  if (need_ != 0) return false;
  // What a character does depends only on which classes on top hold it: cut the code points
  // where that changes, and try one character per distinct set of classes.
  std::vector<int32_t> tops;
  const int32_t* d = stacks_.begin();
  for (size_t at = 0; at < stacks_.size(); at += static_cast<size_t>(d[at]) + 1)
    if (d[at] > 0) tops.push_back(g_->elements_[static_cast<size_t>(d[at + static_cast<size_t>(d[at])])].arg);
  std::sort(tops.begin(), tops.end());
  tops.erase(std::unique(tops.begin(), tops.end()), tops.end());
  if (tops.empty() || tops.size() > 64) return false;
  std::vector<uint32_t> cuts;
  for (int32_t cls : tops)
    for (const auto& [lo, hi] : g_->classes_[static_cast<size_t>(cls)]) {
      cuts.push_back(lo);
      cuts.push_back(hi + 1);
    }
  std::sort(cuts.begin(), cuts.end());
  cuts.erase(std::unique(cuts.begin(), cuts.end()), cuts.end());
  if (cuts.size() > 4096) return false;
  std::vector<std::pair<uint64_t, bool>> tried;  // class set -> whether its characters loop
  for (size_t i = 0; i + 1 < cuts.size(); ++i) {
    const uint32_t lo = cuts[i], hi = cuts[i + 1] - 1;
    uint64_t set = 0;
    for (size_t k = 0; k < tops.size(); ++k)
      if (g_->class_has(tops[k], lo)) set |= uint64_t{1} << k;
    if (set == 0) continue;
    auto it = std::find_if(tried.begin(), tried.end(), [&](const auto& t) { return t.first == set; });
    if (it == tried.end()) {
      std::string utf8;
      tok::append_utf8(utf8, static_cast<char32_t>(lo));
      State t = *this;
      bool same = true;
      for (size_t k = 0; k < utf8.size() && same; ++k) same = t.feed(static_cast<unsigned char>(utf8[k]));
      same = same && t.stacks_.size() == stacks_.size() && std::equal(stacks_.begin(), stacks_.end(), t.stacks_.begin());
      tried.push_back({set, same});
      it = tried.end() - 1;
    }
    if (!it->second) continue;
    if (!out.empty() && out.back().second + 1 == lo) out.back().second = hi;
    else out.push_back({lo, hi});
  }
  return !out.empty();
}

bool Grammar::full_match(std::string_view text) const {
  State s = start();
  for (char c : text)
    if (!s.feed(static_cast<unsigned char>(c))) return false;
  return s.complete();
}

}  // namespace tllm
