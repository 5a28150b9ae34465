// Global functions: jinja2's range/dict/namespace/joiner and transformers' raise_exception and
// strftime_now.
#include <cstdlib>
#include <ctime>

#include "core/error.h"
#include "tokenizer/jinja/builtins.h"

namespace tllm::jinja {

namespace {

// jinja2's sandbox refuses ranges over MAX_RANGE items; transformers renders in that sandbox.
constexpr int64_t kMaxRange = 100000;

Value g_range(Args& args) {
  if (!args.kw.empty()) throw TemplateFault("range() takes no keyword arguments");
  if (args.pos.empty() || args.pos.size() > 3)
    throw TemplateFault("range expected 1 to 3 arguments, got " + std::to_string(args.pos.size()));
  int64_t start = 0, stop, step = 1;
  if (args.pos.size() == 1) {
    stop = to_int_arg(args.pos[0], "range");
  } else {
    start = to_int_arg(args.pos[0], "range");
    stop = to_int_arg(args.pos[1], "range");
    if (args.pos.size() == 3) step = to_int_arg(args.pos[2], "range");
  }
  if (step == 0) throw TemplateFault("range() arg 3 must not be zero");
  int64_t n = step > 0 ? (stop > start ? (stop - start + step - 1) / step : 0)
                       : (start > stop ? (start - stop - step - 1) / -step : 0);
  if (n > kMaxRange)
    throw TemplateFault("Range too big. The sandbox blocks ranges larger than MAX_RANGE (100000).");
  List out;
  out.reserve(static_cast<size_t>(n));
  for (int64_t k = 0; k < n; ++k) out.emplace_back(start + k * step);
  return Value::list(std::move(out));
}

// dict(mapping_or_pairs, **kwargs) / namespace(...) share the same argument rules.
DictPtr dict_from_args(Args& args, const char* fn) {
  auto d = std::make_shared<Dict>();
  if (args.pos.size() > 1) throw TemplateFault(std::string(fn) + " expected at most 1 positional argument");
  if (!args.pos.empty()) {
    const Value& src = args.pos[0];
    if (src.is_dict() || src.is_namespace()) {
      d->entries = src.dict_ref().entries;
    } else {
      for (const auto& pair : iterate(src)) {
        List kv = iterate(pair);
        if (kv.size() != 2) throw TemplateFault(std::string(fn) + " sequence elements must have length 2");
        d->set(kv[0], kv[1]);
      }
    }
  }
  for (auto& [k, v] : args.kw) d->set(Value(k), v);
  return d;
}

// "YYYY-MM-DD", "YYYY-MM-DDTHH:MM[:SS]" or "YYYY-MM-DD HH:MM[:SS]" as a broken-down local time.
std::tm parse_fixed_date(const std::string& s) {
  std::tm tm{};
  int y = 0, mo = 0, d = 0, h = 0, mi = 0, sec = 0;
  char sep = 0;
  int n = std::sscanf(s.c_str(), "%d-%d-%d%c%d:%d:%d", &y, &mo, &d, &sep, &h, &mi, &sec);
  if (n < 3 || (n > 3 && sep != 'T' && sep != ' ') || n == 4 || n == 5 || mo < 1 || mo > 12 || d < 1 || d > 31)
    throw InvalidArgument("fixed date '" + s + "' is not YYYY-MM-DD or YYYY-MM-DDTHH:MM:SS (TLLM_FIXED_DATE)");
  tm.tm_year = y - 1900;
  tm.tm_mon = mo - 1;
  tm.tm_mday = d;
  tm.tm_hour = h;
  tm.tm_min = mi;
  tm.tm_sec = sec;
  // Fill in weekday and day of year without touching the time zone.
  std::time_t t = timegm(&tm);
  std::tm norm{};
  gmtime_r(&t, &norm);
  return norm;
}

}  // namespace

void install_globals(Scope& scope, const RenderOptions& opts) {
  auto add = [&](const char* name, std::function<Value(Args&)> fn) {
    auto c = std::make_shared<Callable>();
    c->name = name;
    c->fn = std::move(fn);
    scope.set(name, Value::callable(c));
  };
  add("range", g_range);
  add("dict", [](Args& args) { return Value::dict(dict_from_args(args, "dict")); });
  add("namespace", [](Args& args) { return Value::namespace_(dict_from_args(args, "namespace")); });
  add("raise_exception", [](Args& args) -> Value {
    std::string msg = args.pos.empty() ? std::string() : args.pos[0].str();
    throw InvalidArgument(msg);
  });
  std::optional<std::string> fixed = opts.fixed_now;
  if (!fixed) {
    if (const char* env = std::getenv("TLLM_FIXED_DATE"); env && *env) fixed = env;
  }
  add("strftime_now", [fixed](Args& args) -> Value {
    if (args.pos.size() != 1 || !args.pos[0].is_string()) throw TemplateFault("strftime_now(format) needs one string");
    std::tm tm{};
    if (fixed) {
      tm = parse_fixed_date(*fixed);
    } else {
      std::time_t now = std::time(nullptr);
      localtime_r(&now, &tm);
    }
    const std::string& fmt = args.pos[0].as_string();
    if (fmt.empty()) return Value("");
    std::string buf(256 + fmt.size() * 8, '\0');
    size_t n = std::strftime(buf.data(), buf.size(), fmt.c_str(), &tm);
    buf.resize(n);
    return Value(std::move(buf));
  });
  add("joiner", [](Args& args) -> Value {
    std::string sep = args.pos.empty() ? ", " : args.pos[0].str();
    auto used = std::make_shared<bool>(false);
    auto c = std::make_shared<Callable>();
    c->name = "joiner";
    c->fn = [sep, used](Args&) -> Value {
      if (!*used) {
        *used = true;
        return Value("");
      }
      return Value(sep);
    };
    return Value::callable(c);
  });
}

}  // namespace tllm::jinja
