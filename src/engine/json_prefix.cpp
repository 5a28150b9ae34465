#include "engine/json_prefix.h"

#include <algorithm>
#include <vector>

#include "engine/json_schema.h"
#include "engine/regex.h"
#include "tokenizer/unicode.h"

namespace tllm {
namespace {

using Kind = JsonSchema::Kind;
using Frame = JsonPrefix::Frame;
using Thread = JsonPrefix::Thread;

// What a frame expects next.
enum St : uint8_t {
  VStart,   // a value of the frame's node begins (whitespace first, but not at the top level)
  OFirst,   // after '{': '"' (a key) or '}'
  OKey,     // after ',' in an object: '"'
  OKeyStr,  // in a key (string scanner; declared keys [first, last) match so far)
  OColon,   // after a key: ':'
  OAfter,   // after a member's value: ',' or '}'
  AFirst,   // after '[': an item or ']'
  AAfter,   // after an item: ',' or ']'
  Str,      // in a string value
  NMinus,   // numbers, as JSON's grammar: '-'
  NZero,    // an integer part "0"
  NInt,     // an integer part [1-9][0-9]*
  NDot,     // '.'
  NFrac,    // fraction digits
  NE,       // 'e' / 'E'
  NESign,   // the exponent's sign
  NExp,     // exponent digits
  Lit,      // in one of the node's literal texts (pos bytes matched)
};

// The string scanner inside a frame (Frame::str).
enum Scan : uint8_t { Plain, Esc, Hex, LowBs, LowU, Utf8 };
constexpr uint8_t kLow = 1, kHigh = 2, kExtra = 4, kNeg = 8;

// Whether an integer whose digits begin with those read (magnitude v, sign neg; zero: the digits
// are the whole "0") can still land in [lo, hi]: v itself, or v followed by k more digits, the
// magnitudes [v 10^k, v 10^k + 10^k - 1].
bool integer_reachable(bool neg, uint64_t v, bool zero, int64_t lo, int64_t hi) {
  using I = __int128;
  if (zero) return lo <= 0 && 0 <= hi;
  I a = v, w = 1;
  for (int k = 0; k < 20; ++k) {
    const I mlo = a, mhi = a + w - 1;
    const I vlo = neg ? -mhi : mlo, vhi = neg ? -mlo : mhi;
    if (vlo <= hi && vhi >= lo) return true;
    if (neg ? -mlo < lo : mlo > hi) return false;  // longer ones only go further out
    a *= 10;
    w *= 10;
  }
  return false;
}

// Whether the number read so far may end here: a bounded integer only inside its bounds.
bool number_may_end(const Frame& f, const JsonSchema::Node& n) {
  if (n.kind != Kind::Integer || !n.bounded) return true;
  const __int128 v = (f.flags & kNeg) ? -static_cast<__int128>(f.num) : static_cast<__int128>(f.num);
  return n.min_value <= v && v <= n.max_value;
}

// Array items begun or string characters, capped where larger counts no longer differ: without
// a maximum, beyond the minimum and the tuple prefix (strings have none).
uint32_t capped_count(const JsonSchema::Node& n, uint32_t count) {
  if (n.max_count != JsonSchema::kUnbounded) return count;
  return std::min<uint32_t>(count, std::max<uint32_t>(n.min_count, static_cast<uint32_t>(n.prefix.size())));
}

enum class Scanned { Refused, Taken, Char, Closed };

bool is_ws(unsigned char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }
bool is_digit(unsigned char c) { return c >= '0' && c <= '9'; }
int hex_value(unsigned char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// One byte of a JSON string's body. A character may begin only when may_begin (its length
// limit); Char when one is complete (a surrogate pair counts once).
Scanned scan(Frame& f, unsigned char c, bool may_begin) {
  switch (f.str) {
    case Plain:
      if (c == '"') return Scanned::Closed;
      if (!may_begin) return Scanned::Refused;
      if (c == '\\') {
        f.str = Esc;
        return Scanned::Taken;
      }
      if (c < 0x20) return Scanned::Refused;  // control characters must be escaped
      if (c < 0x80) return Scanned::Char;
      {
        tok::Utf8Lead lead;
        if (!tok::utf8_lead(c, lead)) return Scanned::Refused;
        f.cont = static_cast<uint8_t>(lead.continuation);
        f.lo = lead.lo;
        f.hi = lead.hi;
      }
      f.str = Utf8;
      return Scanned::Taken;
    case Utf8:
      if (c < f.lo || c > f.hi) return Scanned::Refused;
      f.lo = 0x80;
      f.hi = 0xBF;
      if (--f.cont > 0) return Scanned::Taken;
      f.str = Plain;
      return Scanned::Char;
    case Esc:
      if (c == 'u') {
        f.hex = 0;
        f.flags &= static_cast<uint8_t>(~kLow);
        f.str = Hex;
        return Scanned::Taken;
      }
      if (c != '"' && c != '\\' && c != '/' && c != 'b' && c != 'f' && c != 'n' && c != 'r' && c != 't')
        return Scanned::Refused;
      f.str = Plain;
      return Scanned::Char;
    case LowBs:
      if (c != '\\') return Scanned::Refused;
      f.str = LowU;
      return Scanned::Taken;
    case LowU:
      if (c != 'u') return Scanned::Refused;
      f.hex = 0;
      f.flags |= kLow;
      f.str = Hex;
      return Scanned::Taken;
    case Hex: {
      const int v = hex_value(c);
      if (v < 0) return Scanned::Refused;
      const bool low = f.flags & kLow;
      if (f.hex == 0) {
        if (low && v != 0xD) return Scanned::Refused;  // the escape after a high surrogate: DC00-DFFF
        f.hex_first = static_cast<uint8_t>(v);
      } else if (f.hex == 1) {
        const bool surrogate = f.hex_first == 0xD && v >= 0x8;
        if (low && v < 0xC) return Scanned::Refused;
        if (!low && surrogate && v >= 0xC) return Scanned::Refused;  // a low surrogate without its high one
        if (!low && surrogate) f.flags |= kHigh;
      }
      if (++f.hex < 4) return Scanned::Taken;
      const bool high = f.flags & kHigh;
      f.flags &= static_cast<uint8_t>(~(kLow | kHigh));
      f.hex = 0;
      f.hex_first = 0;
      f.str = high ? LowBs : Plain;
      return high ? Scanned::Taken : Scanned::Char;
    }
    default:
      return Scanned::Refused;
  }
}

// A string under a pattern (JsonSchema::Node::pattern): the automaton reads the string's
// characters as UTF-8, escapes decoded. Raw bytes go through as they are; a short escape as the
// byte it stands for; \u escapes only for control characters (\u0000-\u001F, the ones JSON
// cannot write raw; the others come raw), so that every digit taken keeps a character the
// pattern can take within reach. str / hex: the scanner's state before c. False: c refused.
bool pattern_step(const Regex& re, Frame& f, uint8_t str, uint8_t hex, unsigned char c) {
  static constexpr unsigned char kShort[][2] = {{'"', '"'}, {'\\', '\\'}, {'/', '/'}, {'b', '\b'},
                                                {'f', '\f'}, {'n', '\n'}, {'r', '\r'},   {'t', '\t'}};
  const auto control_alive = [&](unsigned lo, unsigned hi) {
    for (unsigned b = lo; b <= hi; ++b)
      if (re.next(f.re, static_cast<unsigned char>(b)) != Regex::kDead) return true;
    return false;
  };
  const auto take = [&](unsigned char b) {
    const int n = re.next(f.re, b);
    if (n == Regex::kDead) return false;
    f.re = n;
    return true;
  };
  switch (str) {
    case Plain:
      if (c != '\\') return take(c);
      for (const auto& e : kShort)
        if (re.next(f.re, e[1]) != Regex::kDead) return true;
      return control_alive(0x00, 0x1F);
    case Utf8:
      return take(c);
    case Esc:
      if (c == 'u') return control_alive(0x00, 0x1F);
      for (const auto& e : kShort)
        if (e[0] == c) return take(e[1]);
      return false;
    case Hex: {
      const int v = hex_value(c);
      if (hex < 2) return v == 0;
      if (hex == 2) {
        if (v > 1) return false;
        f.num = static_cast<uint64_t>(v);
        return control_alive(16u * v, 16u * v + 15);
      }
      const unsigned char b = static_cast<unsigned char>(16 * f.num + static_cast<uint64_t>(v));
      f.num = 0;
      return take(b);
    }
    default:  // the low half of a surrogate pair: never reached (\u takes control characters only)
      return false;
  }
}

void put(std::string& k, uint32_t v) { k.append(reinterpret_cast<const char*>(&v), sizeof v); }

// A frame's count in a key for texts of up to `horizon` bytes (JsonPrefix::key): such a text
// adds at most `horizon` characters or items, so the count matters only through the limits it
// can reach (minimum, maximum, a tuple's length; each tuple position has its own schema).
// Counts with the same limits behind them and none within reach share one key.
uint32_t key_count(const JsonSchema::Node& n, uint32_t count, uint32_t horizon) {
  if (horizon == JsonPrefix::kExactKey || count < n.prefix.size()) return count;
  uint32_t behind = 0;
  for (const uint32_t limit : {n.min_count, n.max_count, static_cast<uint32_t>(n.prefix.size())}) {
    if (limit == JsonSchema::kUnbounded) continue;
    if (count >= limit) ++behind;
    else if (uint64_t{count} + horizon >= limit) return count;
  }
  return 0x80000000u | behind;
}

void thread_key(const JsonSchema& S, const Thread& t, uint32_t horizon, std::string& k) {
  put(k, static_cast<uint32_t>(t.ws));
  put(k, static_cast<uint32_t>(t.stack.size()));
  for (const Frame& f : t.stack) {
    put(k, static_cast<uint32_t>(f.node));
    k.push_back(static_cast<char>(f.st));
    k.push_back(static_cast<char>(f.str));
    k.push_back(static_cast<char>(f.hex));
    k.push_back(static_cast<char>(f.hex_first));
    k.push_back(static_cast<char>(f.cont));
    k.push_back(static_cast<char>(f.lo));
    k.push_back(static_cast<char>(f.hi));
    k.push_back(static_cast<char>(f.flags));
    put(k, f.pos);
    put(k, f.first);
    put(k, f.last);
    put(k, key_count(S.node(f.node), f.count, horizon));
    put(k, static_cast<uint32_t>(f.prop));
    put(k, static_cast<uint32_t>(f.seen));
    put(k, static_cast<uint32_t>(f.seen >> 32));
    put(k, static_cast<uint32_t>(f.num));
    put(k, static_cast<uint32_t>(f.num >> 32));
    put(k, static_cast<uint32_t>(f.re));
  }
}

// Whitespace between tokens: one space (where space_ok), or a newline (where newline_ok) and
// up to kMaxWhitespace spaces / tabs of indentation. ws: 0 none yet, 1 a space, 2 + k a newline
// and k indentation bytes.
bool take_whitespace(int& ws, unsigned char c, bool space_ok, bool newline_ok) {
  if (c == '\n' && ws == 0 && newline_ok) {
    ws = 2;
    return true;
  }
  if (c == ' ' && ws == 0 && space_ok) {
    ws = 1;
    return true;
  }
  if ((c == ' ' || c == '\t') && ws >= 2 && ws - 2 < JsonPrefix::kMaxWhitespace) {
    ++ws;
    return true;
  }
  return false;
}

// The texts of sorted [first, last) (which share their first pos bytes) whose next byte is c:
// again a range, [*a, *b).
void narrow(const std::vector<std::string>& texts, uint32_t first, uint32_t last, uint32_t pos, unsigned char c,
            uint32_t* a, uint32_t* b) {
  const auto match = [&](uint32_t i) { return texts[i].size() > pos && static_cast<unsigned char>(texts[i][pos]) == c; };
  *a = first;
  while (*a < last && !match(*a)) ++*a;
  *b = *a;
  while (*b < last && match(*b)) ++*b;
}

bool accepting_number(uint8_t st) { return st == NZero || st == NInt || st == NFrac || st == NExp; }

}  // namespace

JsonPrefix::JsonPrefix() : JsonPrefix(JsonSchema::any_object()) {}

JsonPrefix::JsonPrefix(std::shared_ptr<const JsonSchema> schema) : JsonPrefix(schema.get()) { owned_ = std::move(schema); }

JsonPrefix::JsonPrefix(const JsonSchema* schema) : schema_(schema) {
  Thread t;
  push_value(t, schema_->root());
  threads_.push_back(std::move(t));
}

bool JsonPrefix::fits(const Thread& t, int node) const {
  // A value pushed now sits inside every frame of the stack (all containers).
  return node >= 0 && static_cast<int>(t.stack.size()) + schema_->node(node).min_depth <= kMaxDepth;
}

void JsonPrefix::end_value(Thread& t) const { t.stack.pop_back(); }

void JsonPrefix::push_value(Thread& t, int node) const {
  Frame f;
  f.node = node;
  f.st = VStart;
  t.stack.push_back(f);
}

bool JsonPrefix::key_open(const Thread& t, const Frame& f) const {
  const JsonSchema::Node& n = schema_->node(f.node);
  if (fits(t, n.additional)) return true;
  for (size_t i = 0; i < n.keys.size(); ++i)
    if (!((f.seen >> i) & 1) && n.in_order(i, f.seen) && fits(t, n.values[i])) return true;
  return false;
}

void JsonPrefix::advance(Thread t, unsigned char c, Threads& out) const {
  const JsonSchema& S = *schema_;
  for (;;) {
    if (t.stack.empty()) return;  // the top-level value is closed: nothing follows
    Frame& f = t.stack.back();
    const JsonSchema::Node& n = S.node(f.node);
    bool had_ws = false;  // whitespace came since the last token
    switch (f.st) {
      case VStart:
      case OFirst:
      case OKey:
      case OColon:
      case OAfter:
      case AFirst:
      case AAfter:
        if (is_ws(c)) {
          // Where a writer of JSON puts whitespace, compact or pretty-printed: after '{', '['
          // and ',' a space or a newline; after ':' a space; after a value a newline, before
          // its container's closer only; none before ':' or ',', and none around the
          // top-level value.
          bool space_ok = false, newline_ok = false;
          if (f.st == VStart) {
            if (t.stack.size() == 1) return;
            space_ok = true;
            newline_ok = t.stack[t.stack.size() - 2].st == AAfter;  // an item, not a member's value
          } else if (f.st == OFirst || f.st == OKey || f.st == AFirst) {
            space_ok = newline_ok = true;
          } else if (f.st == OAfter) {
            newline_ok = (n.required & ~f.seen) == 0;
          } else if (f.st == AAfter) {
            newline_ok = f.count >= n.min_count;
          }
          if (!S.any_whitespace() || !take_whitespace(t.ws, c, space_ok, newline_ok)) return;
          out.push_back(std::move(t));
          return;
        }
        had_ws = t.ws != 0;
        t.ws = 0;
        break;
      default:
        break;
    }
    switch (f.st) {
      case VStart: {
        if (n.kind == Kind::AnyOf) {
          const int open = static_cast<int>(t.stack.size()) - 1;
          for (int a : n.alts) {
            const JsonSchema::Node& alt = S.node(a);
            if (!alt.can_start(c) || open + alt.min_depth > kMaxDepth) continue;
            Thread u = t;
            u.stack.back().node = a;
            advance(std::move(u), c, out);
          }
          return;
        }
        if (!n.can_start(c)) return;
        switch (n.kind) {
          case Kind::Object: f.st = OFirst; break;
          case Kind::Array: f.st = AFirst; break;
          case Kind::String:
            f.st = Str;
            f.re = 0;  // Regex::start()
            f.num = 0;
            break;
          case Kind::Number:
          case Kind::Integer:
            if (n.bounded) {  // a sign where a negative fits, a first digit that can land inside
              const bool ok = c == '-' ? n.min_value <= -1
                                       : integer_reachable(false, static_cast<uint64_t>(c - '0'), c == '0', n.min_value, n.max_value);
              if (!ok) return;
              f.num = c == '-' ? 0 : static_cast<uint64_t>(c - '0');
              f.flags = c == '-' ? kNeg : 0;
            }
            f.st = c == '-' ? NMinus : c == '0' ? NZero : NInt;
            break;
          case Kind::Literals: {
            uint32_t a = 0, b = 0;
            narrow(n.texts, 0, static_cast<uint32_t>(n.texts.size()), 0, c, &a, &b);
            f.st = Lit;
            f.first = a;
            f.last = b;
            f.pos = 1;
            if (b - a == 1 && n.texts[a].size() == 1) end_value(t);
            break;
          }
          case Kind::AnyOf: return;
        }
        out.push_back(std::move(t));
        return;
      }
      case OFirst:
      case OKey:
        if (c == '"' && key_open(t, f)) {
          f.st = OKeyStr;
          f.first = 0;
          f.last = static_cast<uint32_t>(n.keys.size());
          f.pos = 1;
          f.flags = fits(t, n.additional) ? kExtra : 0;
          out.push_back(std::move(t));
          return;
        }
        if (f.st == OFirst && c == '}' && n.required == 0) {
          end_value(t);
          out.push_back(std::move(t));
        }
        return;
      case OKeyStr: {
        const Scanned r = scan(f, c, true);
        if (r == Scanned::Refused) return;
        if (r == Scanned::Closed) {
          for (uint32_t i = f.first; i < f.last; ++i) {
            if (n.keys[i].size() != f.pos + 1) continue;
            // A declared key: its property, once; another key's schema never takes its name.
            if (((f.seen >> i) & 1) || !n.in_order(i, f.seen) || !fits(t, n.values[i])) return;
            f.prop = static_cast<int32_t>(i);
            f.seen |= uint64_t{1} << i;
            f.st = OColon;
            f.first = f.last = f.pos = 0;
            f.flags = 0;
            out.push_back(std::move(t));
            return;
          }
          if (!(f.flags & kExtra)) return;
          f.prop = -1;
          f.st = OColon;
          f.first = f.last = f.pos = 0;
          f.flags = 0;
          out.push_back(std::move(t));
          return;
        }
        uint32_t a = 0, b = 0;
        narrow(n.keys, f.first, f.last, f.pos, c, &a, &b);
        bool alive = f.flags & kExtra;
        for (uint32_t i = a; i < b && !alive; ++i)
          alive = !((f.seen >> i) & 1) && n.in_order(i, f.seen) && fits(t, n.values[i]);
        if (!alive) return;
        if (a == b) {
          f.first = f.last = f.pos = 0;  // another key: the declared ones no longer matter
        } else {
          f.first = a;
          f.last = b;
          ++f.pos;
        }
        out.push_back(std::move(t));
        return;
      }
      case OColon: {
        if (c != ':') return;
        const int value = f.prop >= 0 ? n.values[static_cast<size_t>(f.prop)] : n.additional;
        f.st = OAfter;
        f.prop = -1;
        push_value(t, value);
        out.push_back(std::move(t));
        return;
      }
      case OAfter:
        if (c == ',' && !had_ws && key_open(t, f)) {
          f.st = OKey;
          out.push_back(std::move(t));
        } else if (c == '}' && (n.required & ~f.seen) == 0) {
          end_value(t);
          out.push_back(std::move(t));
        }
        return;
      case AFirst: {
        if (c == ']') {
          if (n.min_count > 0) return;
          end_value(t);
          out.push_back(std::move(t));
          return;
        }
        const int item = n.item(0);
        if (n.max_count == 0 || !fits(t, item)) return;
        f.st = AAfter;
        f.count = capped_count(n, 1);
        push_value(t, item);
        continue;  // the item's first byte
      }
      case AAfter:
        if (c == ',' && !had_ws) {
          const int item = n.item(f.count);
          if (f.count >= n.max_count || !fits(t, item)) return;
          f.count = capped_count(n, f.count + 1);
          push_value(t, item);
          out.push_back(std::move(t));
        } else if (c == ']' && f.count >= n.min_count) {
          end_value(t);
          out.push_back(std::move(t));
        }
        return;
      case Str: {
        const uint8_t str = f.str, hex = f.hex;  // the scanner before c
        const Scanned r = scan(f, c, f.count < n.max_count);
        if (r == Scanned::Refused) return;
        if (r == Scanned::Closed) {
          if (f.count < n.min_count || (n.pattern && !n.pattern->accepting(f.re))) return;
          end_value(t);
        } else {
          if (n.pattern && !pattern_step(*n.pattern, f, str, hex, c)) return;
          if (r == Scanned::Char) f.count = capped_count(n, f.count + 1);
        }
        out.push_back(std::move(t));
        return;
      }
      case NMinus:
        if (!is_digit(c)) return;
        if (n.bounded && !integer_reachable(true, static_cast<uint64_t>(c - '0'), c == '0', n.min_value, n.max_value)) return;
        f.num = n.bounded ? static_cast<uint64_t>(c - '0') : 0;
        f.st = c == '0' ? NZero : NInt;
        out.push_back(std::move(t));
        return;
      case NZero:
      case NInt:
      case NFrac:
      case NExp: {
        const bool integer = n.kind == Kind::Integer;
        if (is_digit(c) && f.st != NZero) {
          if (integer && n.bounded) {
            if (f.num > (UINT64_MAX - 9) / 10) return;
            const uint64_t v = f.num * 10 + static_cast<uint64_t>(c - '0');
            if (!integer_reachable(f.flags & kNeg, v, false, n.min_value, n.max_value)) return;
            f.num = v;
          }
          out.push_back(std::move(t));
          return;
        }
        if (c == '.' && !integer && f.st != NFrac && f.st != NExp) {
          f.st = NDot;
        } else if ((c == 'e' || c == 'E') && !integer && f.st != NExp) {
          f.st = NE;
        } else {
          if (!number_may_end(f, n)) return;
          end_value(t);  // the number ends; the byte follows it
          continue;
        }
        out.push_back(std::move(t));
        return;
      }
      case NDot:
        if (!is_digit(c)) return;
        f.st = NFrac;
        out.push_back(std::move(t));
        return;
      case NE:
        if (c == '+' || c == '-') {
          f.st = NESign;
        } else if (is_digit(c)) {
          f.st = NExp;
        } else {
          return;
        }
        out.push_back(std::move(t));
        return;
      case NESign:
        if (!is_digit(c)) return;
        f.st = NExp;
        out.push_back(std::move(t));
        return;
      case Lit: {
        uint32_t a = 0, b = 0;
        narrow(n.texts, f.first, f.last, f.pos, c, &a, &b);
        if (a == b) {
          // The texts sharing the bytes read sort after the one that is exactly them.
          if (n.texts[f.first].size() != f.pos) return;
          end_value(t);
          continue;
        }
        f.first = a;
        f.last = b;
        ++f.pos;
        if (b - a == 1 && n.texts[a].size() == f.pos) end_value(t);
        out.push_back(std::move(t));
        return;
      }
      default:
        return;
    }
  }
}

bool JsonPrefix::feed(unsigned char c) {
  Threads out;
  for (const Thread& t : threads_) advance(t, c, out);
  if (out.empty()) return false;
  if (out.size() > 1) {
    std::vector<std::pair<std::string, size_t>> keys;
    for (size_t i = 0; i < out.size(); ++i) {
      keys.emplace_back(std::string(), i);
      thread_key(*schema_, out[i], kExactKey, keys.back().first);
    }
    std::sort(keys.begin(), keys.end());
    // Beyond kMaxThreads live alternatives the first ones (in key order) are kept: each of them
    // can still complete, so the output stays valid, only fewer texts stay possible.
    Threads unique;
    for (size_t i = 0; i < keys.size() && unique.size() < kMaxThreads; ++i)
      if (i == 0 || keys[i].first != keys[i - 1].first) unique.push_back(std::move(out[keys[i].second]));
    out = std::move(unique);
  }
  threads_ = std::move(out);
  return true;
}

bool JsonPrefix::feed(std::string_view s) {
  for (char c : s)
    if (!feed(static_cast<unsigned char>(c))) return false;
  return true;
}

bool JsonPrefix::value_accepting(const Thread& t) const {
  if (t.stack.empty()) return true;
  if (t.stack.size() != 1) return false;
  const Frame& f = t.stack.back();
  if (accepting_number(f.st)) return number_may_end(f, schema_->node(f.node));
  return f.st == Lit && schema_->node(f.node).texts[f.first].size() == f.pos;
}

bool JsonPrefix::complete() const {
  return std::any_of(threads_.begin(), threads_.end(), [&](const Thread& t) { return value_accepting(t); });
}

bool JsonPrefix::closed() const {
  return std::all_of(threads_.begin(), threads_.end(), [](const Thread& t) { return t.stack.empty(); });
}

std::string JsonPrefix::key(uint32_t horizon) const {
  std::string k;
  for (const Thread& t : threads_) thread_key(*schema_, t, horizon, k);
  return k;
}

bool JsonPrefix::in_plain_string(uint32_t* room) const {
  if (threads_.size() != 1 || threads_[0].stack.empty()) return false;
  const Frame& f = threads_[0].stack.back();
  if (f.st == OKeyStr && f.str == Plain && (f.flags & kExtra)) {
    *room = JsonSchema::kUnbounded;  // plain text never closes a key, and another key takes any
    return true;
  }
  if (f.st != Str || f.str != Plain || schema_->node(f.node).pattern) return false;  // a pattern reads every byte
  const uint32_t max = schema_->node(f.node).max_count;
  *room = max == JsonSchema::kUnbounded ? max : max - f.count;
  return true;
}

}  // namespace tllm
