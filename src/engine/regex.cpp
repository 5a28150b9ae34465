#include "engine/regex.h"

#include <algorithm>
#include <cctype>
#include <map>
#include <utility>

#include "core/error.h"
#include "engine/code_point_ranges.h"
#include "tokenizer/unicode.h"

namespace tllm {

namespace {

constexpr uint32_t kMaxCp = kMaxCodePoint;
constexpr int kMaxNfaStates = 400000;
// NFA states the subset construction may visit in all (each DFA state's closure and moves):
// nested counted repeats such as (.{1,99}){1,99} make every DFA state a set of tens of
// thousands of NFA states, minutes and gigabytes of work before kMaxStates would say no.
constexpr size_t kMaxSubsetWork = 8000000;
constexpr int kInf = -1;  // Node::max of an unbounded repeat

using Ranges = CodePointRanges;

struct Node {
  enum Kind { Set, Concat, Alt, Repeat, Empty } kind = Empty;
  Ranges ranges;          // Set
  std::vector<int> kids;  // Concat, Alt; Repeat: one
  int min = 0, max = 0;   // Repeat (max kInf: unbounded)
  bool dollar = false;    // some branch of it ends with '$': nothing may follow it
};

// Recursive descent over the pattern's code points.
class Parser {
 public:
  explicit Parser(std::string_view p) : p_(p) {}

  int parse(std::vector<Node>& nodes) {
    nodes_ = &nodes;
    if (peek_is('^')) ++i_;
    const int root = alternation(0);
    if (i_ < p_.size()) fail(p_[i_] == ')' ? "unbalanced ')'" : "unexpected character");
    return root;
  }

 private:
  [[noreturn]] void fail(const std::string& what) const {
    throw InvalidArgument("regex: " + what + " at offset " + std::to_string(i_) + " of the pattern");
  }
  bool peek_is(char c) const { return i_ < p_.size() && p_[i_] == c; }
  Node& node(int k) { return (*nodes_)[static_cast<size_t>(k)]; }
  static constexpr const char* kDollarInside = "'$' before the end of the pattern is not supported";
  int add(Node n) {
    nodes_->push_back(std::move(n));
    return static_cast<int>(nodes_->size()) - 1;
  }
  static Node set_of(Ranges r) {
    Node n;
    n.kind = Node::Set;
    n.ranges = normalize_ranges(std::move(r));
    return n;
  }
  uint32_t next_cp() {
    if (tok::valid_utf8_prefix(p_.substr(i_, 4)) == 0) fail("invalid UTF-8");
    return tok::next_cp(p_, i_);
  }

  int alternation(int depth) {
    if (depth > 200) fail("groups nested too deeply");
    std::vector<int> alts = {concatenation(depth)};
    while (peek_is('|')) {
      ++i_;
      alts.push_back(concatenation(depth));
    }
    if (alts.size() == 1) return alts[0];
    Node n;
    n.kind = Node::Alt;
    for (int k : alts) n.dollar |= node(k).dollar;
    n.kids = std::move(alts);
    return add(std::move(n));
  }

  // '$' is taken only where nothing can follow it: at the end of a branch, of a group that ends
  // its branch and so on outward. The automaton has no anchors (a match is whole anyway), so
  // text after one, as in (a$)b or (a$)+, would be allowed where Python's re matches nothing.
  int concatenation(int depth) {
    Node n;
    n.kind = Node::Concat;
    bool dollar = false;
    while (i_ < p_.size() && p_[i_] != '|' && p_[i_] != ')') {
      if (dollar || (!n.kids.empty() && node(n.kids.back()).dollar)) fail(kDollarInside);
      if (p_[i_] == '$') {
        ++i_;
        dollar = true;
        continue;
      }
      n.kids.push_back(repeat(depth));
    }
    int r;
    if (n.kids.size() == 1) {
      r = n.kids[0];
    } else if (n.kids.empty()) {
      r = add(Node{});
    } else {
      n.dollar = node(n.kids.back()).dollar;
      r = add(std::move(n));
    }
    node(r).dollar |= dollar;
    return r;
  }

  // {n}, {n,}, {n,m}, {,m} (Python's {0,m}) at i_ (on '{'); false (i_ unchanged) when it is not
  // one (a literal '{', as `{`, `{}` and `{,x}` are in Python).
  bool bounds(int& lo, int& hi) {
    size_t j = i_ + 1;
    auto number = [&](int& v) {
      const size_t s = j;
      long long x = 0;
      while (j < p_.size() && p_[j] >= '0' && p_[j] <= '9') {
        x = std::min<long long>(x * 10 + (p_[j] - '0'), 1LL << 40);
        ++j;
      }
      v = static_cast<int>(std::min<long long>(x, 1 << 30));
      return j > s;
    };
    if (!number(lo)) {
      if (j >= p_.size() || p_[j] != ',') return false;
      lo = 0;  // {,m} / {,}
    }
    hi = lo;
    if (j < p_.size() && p_[j] == ',') {
      ++j;
      if (!number(hi)) hi = kInf;
    }
    if (j >= p_.size() || p_[j] != '}') return false;
    i_ = j + 1;
    return true;
  }

  int repeat(int depth) {
    int atom_node = atom(depth);
    bool quantified = false;
    while (i_ < p_.size()) {
      int lo = 0, hi = 0;
      const char c = p_[i_];
      if (c == '*') lo = 0, hi = kInf, ++i_;
      else if (c == '+') lo = 1, hi = kInf, ++i_;
      else if (c == '?') lo = 0, hi = 1, ++i_;
      else if (c == '{') {
        const size_t s = i_;
        if (!bounds(lo, hi)) break;
        if (hi != kInf && hi < lo) {
          i_ = s;
          fail("repeat bounds {" + std::to_string(lo) + "," + std::to_string(hi) + "} out of order");
        }
        if (lo > Regex::kMaxRepeat || hi > Regex::kMaxRepeat) {
          i_ = s;
          fail("repeat bound above " + std::to_string(Regex::kMaxRepeat));
        }
      } else {
        break;
      }
      if (quantified) fail("multiple repeat");
      // (a$)? may stop after its '$'; more copies would put text after one.
      if (node(atom_node).dollar && hi != 1) fail(kDollarInside);
      quantified = true;
      if (i_ < p_.size() && (p_[i_] == '?' || p_[i_] == '+')) ++i_;  // lazy / possessive: same matches
      Node n;
      n.kind = Node::Repeat;
      n.kids = {atom_node};
      n.min = lo;
      n.max = hi;
      n.dollar = node(atom_node).dollar;
      atom_node = add(std::move(n));
    }
    return atom_node;
  }

  int atom(int depth) {
    const char c = p_[i_];
    switch (c) {
      case '(': {
        ++i_;
        if (peek_is('?')) {
          ++i_;
          if (peek_is(':')) {
            ++i_;
          } else if (peek_is('P') && i_ + 1 < p_.size() && p_[i_ + 1] == '<') {
            i_ += 2;
            group_name();
          } else if (peek_is('<') && i_ + 1 < p_.size() && p_[i_ + 1] != '=' && p_[i_ + 1] != '!') {
            ++i_;
            group_name();
          } else if (peek_is('=') || peek_is('!') || peek_is('<')) {
            fail("lookaround is not supported");
          } else if (peek_is('P') && i_ + 1 < p_.size() && p_[i_ + 1] == '=') {
            fail("backreferences are not supported");
          } else {
            fail("inline flags and other (?...) groups are not supported");
          }
        }
        const int inner = alternation(depth + 1);
        if (!peek_is(')')) fail("missing ')'");
        ++i_;
        return inner;
      }
      case '[':
        return add(set_of(char_class()));
      case '.':
        ++i_;
        return add(set_of({{0, '\n' - 1}, {'\n' + 1, kMaxCp}}));
      case '\\':
        return add(set_of(escape(false)));
      case '*':
      case '+':
      case '?':
        fail("nothing to repeat");
      case '^':
        fail("'^' after the start of the pattern is not supported");
      default: {
        if (c == '{') {
          int lo = 0, hi = 0;
          const size_t s = i_;
          if (bounds(lo, hi)) {
            i_ = s;
            fail("nothing to repeat");
          }
        }
        const uint32_t cp = next_cp();
        return add(set_of({{cp, cp}}));
      }
    }
  }

  void group_name() {
    const size_t s = i_;
    while (i_ < p_.size() && (std::isalnum(static_cast<unsigned char>(p_[i_])) || p_[i_] == '_')) ++i_;
    if (i_ == s || !peek_is('>')) fail("bad group name");
    ++i_;
  }

  uint32_t hex(size_t digits) {
    uint32_t v = 0;
    for (size_t k = 0; k < digits; ++k) {
      if (i_ >= p_.size() || !std::isxdigit(static_cast<unsigned char>(p_[i_]))) fail("bad hexadecimal escape");
      const char h = p_[i_++];
      v = v * 16 + static_cast<uint32_t>(h <= '9' ? h - '0' : (h | 0x20) - 'a' + 10);
    }
    return v;
  }

  // The escape at i_ ('\\') as a set; in_class: inside [...].
  Ranges escape(bool in_class) {
    ++i_;
    if (i_ >= p_.size()) fail("a pattern must not end with '\\'");
    const char c = p_[i_++];
    const Ranges digit = {{'0', '9'}}, word = {{'0', '9'}, {'A', 'Z'}, {'_', '_'}, {'a', 'z'}},
                 space = {{'\t', '\r'}, {' ', ' '}};
    auto one = [](uint32_t cp) { return Ranges{{cp, cp}}; };
    switch (c) {
      case 'd': return digit;
      case 'D': return complement_ranges(normalize_ranges(digit));
      case 'w': return word;
      case 'W': return complement_ranges(normalize_ranges(word));
      case 's': return space;
      case 'S': return complement_ranges(normalize_ranges(space));
      case 'n': return one('\n');
      case 'r': return one('\r');
      case 't': return one('\t');
      case 'f': return one('\f');
      case 'v': return one('\v');
      case '0': return one(0);
      case 'x': return one(hex(2));
      case 'u': {
        if (peek_is('{')) {
          ++i_;
          uint32_t v = 0;
          size_t n = 0;
          while (i_ < p_.size() && p_[i_] != '}' && n < 7) v = v * 16 + hex(1), ++n;
          if (!peek_is('}') || n == 0 || v > kMaxCp) fail("bad \\u{...} escape");
          ++i_;
          return one(v);
        }
        return one(hex(4));
      }
      case 'b':
        if (in_class) return one('\b');
        fail("word boundaries (\\b) are not supported");
      case 'B':
      case 'A':
      case 'Z':
      case 'z':
      case 'G':
        fail(std::string("the anchor \\") + c + " is not supported");
      default:
        if (c >= '1' && c <= '9') fail("backreferences are not supported");
        if (std::isalnum(static_cast<unsigned char>(c))) fail(std::string("unknown escape \\") + c);
        --i_;
        {
          const uint32_t cp = next_cp();
          return one(cp);
        }
    }
  }

  Ranges char_class() {
    const size_t open = i_;
    ++i_;
    bool negate = false;
    if (peek_is('^')) negate = true, ++i_;
    Ranges r;
    bool first = true;
    while (true) {
      if (i_ >= p_.size()) {
        i_ = open;
        fail("missing ']'");
      }
      if (p_[i_] == ']' && !first) {
        ++i_;
        break;
      }
      first = false;
      Ranges item;
      bool single = false;
      uint32_t lo = 0;
      if (p_[i_] == '\\') {
        item = escape(true);
        single = item.size() == 1 && item[0].first == item[0].second;
        lo = item[0].first;
      } else if (p_[i_] == '[' && i_ + 1 < p_.size() && p_[i_ + 1] == ':') {
        fail("POSIX classes ([:alpha:]) are not supported");
      } else {
        lo = next_cp();
        item = {{lo, lo}};
        single = true;
      }
      if (single && peek_is('-') && i_ + 1 < p_.size() && p_[i_ + 1] != ']') {
        ++i_;
        uint32_t hi = 0;
        if (p_[i_] == '\\') {
          const Ranges h = escape(true);
          if (h.size() != 1 || h[0].first != h[0].second) fail("a class range must end with one character");
          hi = h[0].first;
        } else {
          hi = next_cp();
        }
        if (hi < lo) fail("class range out of order");
        item = {{lo, hi}};
      }
      r.insert(r.end(), item.begin(), item.end());
    }
    Ranges n = normalize_ranges(std::move(r));
    return negate ? complement_ranges(n) : n;
  }

  std::string_view p_;
  size_t i_ = 0;
  std::vector<Node>* nodes_ = nullptr;
};

// ---- UTF-8 byte-range sequences of a code point range --------------------------------------

using ByteSeq = std::vector<std::pair<uint8_t, uint8_t>>;  // byte i in [first, second]

int encode(uint32_t cp, uint8_t* b) {
  if (cp < 0x80) return b[0] = static_cast<uint8_t>(cp), 1;
  if (cp < 0x800) {
    b[0] = static_cast<uint8_t>(0xC0 | (cp >> 6));
    b[1] = static_cast<uint8_t>(0x80 | (cp & 0x3F));
    return 2;
  }
  if (cp < 0x10000) {
    b[0] = static_cast<uint8_t>(0xE0 | (cp >> 12));
    b[1] = static_cast<uint8_t>(0x80 | ((cp >> 6) & 0x3F));
    b[2] = static_cast<uint8_t>(0x80 | (cp & 0x3F));
    return 3;
  }
  b[0] = static_cast<uint8_t>(0xF0 | (cp >> 18));
  b[1] = static_cast<uint8_t>(0x80 | ((cp >> 12) & 0x3F));
  b[2] = static_cast<uint8_t>(0x80 | ((cp >> 6) & 0x3F));
  b[3] = static_cast<uint8_t>(0x80 | (cp & 0x3F));
  return 4;
}

// Splits [lo, hi] until each piece encodes as one sequence of byte ranges (every code point
// between the two ends has, at each byte, a value between theirs).
void utf8_sequences(uint32_t lo, uint32_t hi, std::vector<ByteSeq>& out) {
  for (uint32_t edge : {0x7Fu, 0x7FFu, 0xFFFFu}) {  // one encoded length per piece
    if (lo <= edge && hi > edge) {
      utf8_sequences(lo, edge, out);
      utf8_sequences(edge + 1, hi, out);
      return;
    }
  }
  uint8_t a[4], b[4];
  const int n = encode(lo, a);
  for (int k = 1; k < n; ++k) {
    const uint32_t m = (1u << (6 * k)) - 1;
    if ((lo & ~m) != (hi & ~m)) {
      if ((lo & m) != 0) {
        utf8_sequences(lo, lo | m, out);
        utf8_sequences((lo | m) + 1, hi, out);
        return;
      }
      if ((hi & m) != m) {
        utf8_sequences(lo, (hi & ~m) - 1, out);
        utf8_sequences(hi & ~m, hi, out);
        return;
      }
    }
  }
  encode(hi, b);
  ByteSeq s;
  for (int i = 0; i < n; ++i) s.push_back({a[i], b[i]});
  out.push_back(std::move(s));
}

// ---- Thompson NFA over bytes ----------------------------------------------------------------

struct NState {
  std::vector<int> eps;
  int to = -1;  // byte edge [lo, hi] -> to
  uint8_t lo = 0, hi = 0;
};

class NfaBuilder {
 public:
  NfaBuilder(const std::vector<Node>& nodes, std::vector<NState>& st) : nodes_(nodes), st_(st) {}

  // A fragment for node n: (start, end); end has no edges yet.
  std::pair<int, int> build(int n) {
    const Node& node = nodes_[static_cast<size_t>(n)];
    const int s = add(), e = add();
    switch (node.kind) {
      case Node::Empty:
        eps(s, e);
        break;
      case Node::Set: {
        std::vector<ByteSeq> seqs;
        for (const auto& [lo, hi] : node.ranges) utf8_sequences(lo, hi, seqs);
        // Sequences end in runs of any continuation byte (80-BF); tail[k] reads k of them and
        // ends at e, shared by every sequence, so that a character's pending bytes are one
        // automaton state whichever lead byte began it.
        int tail[4] = {e, -1, -1, -1};
        auto tail_of = [&](int k) {
          for (int j = 1; j <= k; ++j)
            if (tail[j] < 0) {
              tail[j] = add();
              edge(tail[j], 0x80, 0xBF, tail[j - 1]);
            }
          return tail[k];
        };
        for (const ByteSeq& q : seqs) {
          size_t t = 0;  // trailing full continuation ranges (never the first byte)
          while (t + 1 < q.size() && q[q.size() - 1 - t] == std::pair<uint8_t, uint8_t>{0x80, 0xBF}) ++t;
          const size_t head = q.size() - t;
          int cur = s;
          for (size_t i = 0; i < head; ++i) {
            const int nxt = i + 1 == head ? tail_of(static_cast<int>(t)) : add();
            edge(cur, q[i].first, q[i].second, nxt);
            cur = nxt;
          }
        }
        break;
      }
      case Node::Concat: {
        int cur = s;
        for (int k : node.kids) {
          const auto [ks, ke] = build(k);
          eps(cur, ks);
          cur = ke;
        }
        eps(cur, e);
        break;
      }
      case Node::Alt:
        for (int k : node.kids) {
          const auto [ks, ke] = build(k);
          eps(s, ks);
          eps(ke, e);
        }
        break;
      case Node::Repeat: {
        const int kid = node.kids[0];
        int cur = s;
        for (int i = 0; i < node.min; ++i) {
          const auto [ks, ke] = build(kid);
          eps(cur, ks);
          cur = ke;
        }
        if (node.max == kInf) {  // cur -> (kid)* -> e
          const auto [ks, ke] = build(kid);
          eps(cur, ks);
          eps(cur, e);
          eps(ke, ks);
          eps(ke, e);
        } else {
          for (int i = node.min; i < node.max; ++i) {  // optional copies, each may stop
            eps(cur, e);
            const auto [ks, ke] = build(kid);
            eps(cur, ks);
            cur = ke;
          }
          eps(cur, e);
        }
        break;
      }
    }
    return {s, e};
  }

 private:
  int add() {
    if (static_cast<int>(st_.size()) >= kMaxNfaStates)
      throw InvalidArgument("regex: the pattern is too large (more than " + std::to_string(kMaxNfaStates) +
                            " automaton nodes; lower its repeat counts)");
    st_.emplace_back();
    return static_cast<int>(st_.size()) - 1;
  }
  void eps(int a, int b) { st_[static_cast<size_t>(a)].eps.push_back(b); }
  void edge(int a, uint8_t lo, uint8_t hi, int b) {
    // A state holds one byte edge; more go through an epsilon to a fresh state.
    if (st_[static_cast<size_t>(a)].to >= 0) {
      const int c = add();
      eps(a, c);
      a = c;
    }
    NState& x = st_[static_cast<size_t>(a)];
    x.to = b;
    x.lo = lo;
    x.hi = hi;
  }

  const std::vector<Node>& nodes_;
  std::vector<NState>& st_;
};

}  // namespace

std::shared_ptr<const Regex> Regex::compile(std::string_view pattern) {
  TLLM_CHECK_ARG(tok::valid_utf8_prefix(pattern) == pattern.size(), "regex: the pattern is not valid UTF-8");
  std::vector<Node> nodes;
  const int root = Parser(pattern).parse(nodes);
  std::vector<NState> nfa;
  NfaBuilder builder(nodes, nfa);
  const auto [start, accept] = builder.build(root);

  // Byte classes: bytes that every edge takes or refuses alike.
  bool cut[257] = {};
  for (const NState& x : nfa)
    if (x.to >= 0) cut[x.lo] = cut[x.hi + 1] = true;
  uint8_t class_of[256];
  std::vector<int> first_byte;  // a byte of each class
  for (int b = 0; b < 256; ++b) {
    if (b == 0 || cut[b]) first_byte.push_back(b);
    class_of[b] = static_cast<uint8_t>(first_byte.size() - 1);
  }
  const size_t C = first_byte.size();

  // Subset construction: a DFA state is the sorted epsilon closure of NFA states.
  std::vector<uint8_t> mark(nfa.size(), 0);
  std::vector<int> stack;
  size_t work = 0;  // NFA states visited so far (kMaxSubsetWork)
  auto spend = [&](size_t n) {
    work += n;
    TLLM_CHECK_ARG(work <= kMaxSubsetWork, "regex: the pattern needs too much work to compile (more than ",
                   kMaxSubsetWork, " automaton steps; nested or overlapping repeats; simplify it)");
  };
  auto closure = [&](std::vector<int>& set) {
    stack.clear();
    std::vector<int> seeds;
    seeds.swap(set);
    for (int s : seeds)
      if (!mark[static_cast<size_t>(s)]) mark[static_cast<size_t>(s)] = 1, set.push_back(s), stack.push_back(s);
    while (!stack.empty()) {
      const int s = stack.back();
      stack.pop_back();
      for (int t : nfa[static_cast<size_t>(s)].eps)
        if (!mark[static_cast<size_t>(t)]) {
          mark[static_cast<size_t>(t)] = 1;
          set.push_back(t);
          stack.push_back(t);
        }
    }
    for (int s : set) mark[static_cast<size_t>(s)] = 0;
    spend(set.size());
    std::sort(set.begin(), set.end());
  };
  std::map<std::vector<int>, int> ids;
  std::vector<const std::vector<int>*> sets;
  std::vector<int32_t> trans;
  auto intern = [&](std::vector<int> set) {
    auto [it, fresh] = ids.emplace(std::move(set), static_cast<int>(sets.size()));
    if (fresh) {
      TLLM_CHECK_ARG(static_cast<int>(sets.size()) < kMaxStates, "regex: the pattern needs more than ", kMaxStates,
                     " automaton states (nested or overlapping repeats; simplify it)");
      sets.push_back(&it->first);
    }
    return it->second;
  };
  std::vector<int> init = {start};
  closure(init);
  intern(std::move(init));
  std::vector<std::vector<int>> by_class(C);
  for (size_t d = 0; d < sets.size(); ++d) {
    for (auto& v : by_class) v.clear();
    for (int s : *sets[d]) {
      const NState& x = nfa[static_cast<size_t>(s)];
      if (x.to < 0) continue;
      for (size_t c = class_of[x.lo]; c <= class_of[x.hi]; ++c) by_class[c].push_back(x.to);
      spend(static_cast<size_t>(class_of[x.hi] - class_of[x.lo]) + 1);
    }
    trans.resize((d + 1) * C, kDead);
    for (size_t c = 0; c < C; ++c) {
      if (by_class[c].empty()) continue;
      std::vector<int> set = by_class[c];
      closure(set);
      trans[d * C + c] = intern(std::move(set));
    }
  }
  const size_t n = sets.size();
  std::vector<uint8_t> acc(n, 0);
  for (size_t d = 0; d < n; ++d) acc[d] = std::binary_search(sets[d]->begin(), sets[d]->end(), accept);

  // Keep the states from which an accepting one is reachable.
  std::vector<std::vector<int>> rev(n);
  for (size_t d = 0; d < n; ++d)
    for (size_t c = 0; c < C; ++c)
      if (const int t = trans[d * C + c]; t >= 0) rev[static_cast<size_t>(t)].push_back(static_cast<int>(d));
  std::vector<uint8_t> live(acc);
  std::vector<int> q;
  for (size_t d = 0; d < n; ++d)
    if (live[d]) q.push_back(static_cast<int>(d));
  while (!q.empty()) {
    const int d = q.back();
    q.pop_back();
    for (int p : rev[static_cast<size_t>(d)])
      if (!live[static_cast<size_t>(p)]) live[static_cast<size_t>(p)] = 1, q.push_back(p);
  }
  TLLM_CHECK_ARG(live[0], "regex: no text matches the pattern");
  std::vector<int> renum(n, kDead);
  int m = 0;
  for (size_t d = 0; d < n; ++d)
    if (live[d]) renum[d] = m++;
  auto r = std::make_shared<Regex>();
  r->pattern_ = std::string(pattern);
  std::copy(class_of, class_of + 256, r->class_of_);
  r->classes_ = C;
  r->trans_.assign(static_cast<size_t>(m) * C, kDead);
  r->accept_.assign(static_cast<size_t>(m), 0);
  r->finished_.assign(static_cast<size_t>(m), 0);
  for (size_t d = 0; d < n; ++d) {
    if (!live[d]) continue;
    const size_t nd = static_cast<size_t>(renum[d]);
    bool any = false;
    for (size_t c = 0; c < C; ++c) {
      const int t = trans[d * C + c];
      const int nt = t >= 0 ? renum[static_cast<size_t>(t)] : kDead;
      r->trans_[nd * C + c] = nt;
      any |= nt >= 0;
    }
    r->accept_[nd] = acc[d];
    r->finished_[nd] = acc[d] && !any;
  }
  return r;
}

bool Regex::full_match(std::string_view text) const {
  int s = start();
  for (char c : text) {
    s = next(s, static_cast<unsigned char>(c));
    if (s == kDead) return false;
  }
  return accepting(s);
}

}  // namespace tllm
