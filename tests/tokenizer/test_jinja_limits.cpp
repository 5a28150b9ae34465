// Limits of the Jinja interpreter where jinja2 has no answer to compare with (it gives a big int,
// runs out of memory, or has no such limit): each must be a tllm::Error that names the problem,
// never a crash, a hang, or silent wrong output. The cases jinja2 does answer (cycles printed as
// [...], RecursionError on deep values, INT64_MIN formatting, huge ** exponents and slice steps,
// extra macro arguments) are in jinja_cases.json.
#include <gtest/gtest.h>

#include <pthread.h>

#include <functional>
#include <string>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "tokenizer/jinja/template.h"

using nlohmann::ordered_json;
using tllm::jinja::Template;

namespace {

std::string render(const std::string& src, const ordered_json& ctx = ordered_json::object()) {
  return Template(src).render(tllm::jinja::from_json(ctx));
}

// The message of the tllm::Error that `fn` throws ("" if none).
std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const tllm::Error& e) {
    return e.what();
  }
  return "";
}

#define EXPECT_RENDER_ERROR(src, part) \
  EXPECT_NE(error_of([&] { render(src); }).find(part), std::string::npos) << "template: " << (src)

// Runs fn on a thread with the 8 MiB stack of a server worker thread (the test's own main thread
// may have a larger one), so a template that would overflow the server's stack crashes here too.
void on_server_sized_stack(const std::function<void()>& fn) {
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, size_t{8} << 20);
  pthread_t t;
  auto body = [](void* p) -> void* {
    (*static_cast<const std::function<void()>*>(p))();
    return nullptr;
  };
  ASSERT_EQ(pthread_create(&t, &attr, body, const_cast<std::function<void()>*>(&fn)), 0);
  pthread_join(t, nullptr);
  pthread_attr_destroy(&attr);
}

std::string times(const std::string& s, int n) {
  std::string out;
  for (int k = 0; k < n; ++k) out += s;
  return out;
}

std::string chain(const std::string& term, const std::string& op, int n) {
  std::string s = "{{ " + term;
  for (int k = 1; k < n; ++k) s += op + term;
  return s + " }}";
}

}  // namespace

// Python has big ints; ours are 64-bit, so what does not fit is an "integer overflow" error, as
// + - * already gave. INT64_MIN // -1 used to kill the process with SIGFPE.
TEST(JinjaLimits, IntegerOverflowIsAnError) {
  EXPECT_RENDER_ERROR("{{ (-9223372036854775807 - 1) // -1 }}", "integer overflow in //");
  EXPECT_NE(error_of([] { render("{{ x // -1 }}", {{"x", INT64_MIN}}); }).find("integer overflow in //"),
            std::string::npos);
  EXPECT_EQ(render("{{ x % -1 }}|{{ x // 1 }}", {{"x", INT64_MIN}}), "0|-9223372036854775808");
  EXPECT_RENDER_ERROR("{{ -(-9223372036854775807 - 1) }}", "integer overflow in unary -");
  EXPECT_RENDER_ERROR("{{ (-9223372036854775807 - 1)|abs }}", "integer overflow in abs");
  EXPECT_RENDER_ERROR("{{ [9223372036854775807, 1]|sum }}", "integer overflow in sum");
  EXPECT_RENDER_ERROR("{{ 2 ** 63 }}", "integer overflow in **");
  EXPECT_RENDER_ERROR("{{ 3 ** 9223372036854775807 }}", "integer overflow in **");
  EXPECT_RENDER_ERROR("{{ 1e300|int }}", "integer overflow");
  EXPECT_RENDER_ERROR("{{ (1e300 * 1e300)|int }}", "cannot convert float infinity");
  // A string that does not fit gets |int's default, as any string |int cannot convert does.
  EXPECT_EQ(render("{{ '99999999999999999999'|int }}|{{ '1e300'|int(-1) }}|{{ '-9223372036854775809'|int }}|"
                   "{{ '0x8000000000000000'|int(base=16) }}"),
            "0|-1|0|0");
}

TEST(JinjaLimits, NumberLiteralsOutOfRangeAreSyntaxErrors) {
  EXPECT_EQ(error_of([] { Template("{{ 0x99999999999999999999 }}"); }),
            "template syntax error at 1:4: integer literal 0x99999999999999999999 is out of range "
            "(integers are 64-bit)");
  EXPECT_EQ(error_of([] { Template("{{ 1 + 99999999999999999999 }}"); }),
            "template syntax error at 1:8: integer literal 99999999999999999999 is out of range (integers are 64-bit)");
  // jinja2 looks the big int up and finds nothing; a literal that cannot be ours is refused at load instead.
  EXPECT_NE(error_of([] { Template("{{ messages.99999999999999999999 }}"); }).find("is out of range"),
            std::string::npos);
  EXPECT_EQ(render("{{ 1e400 }}"), "inf");
}

// Lists, dicts and namespaces can contain themselves (append/update are not sandboxed here):
// repr prints Python's [...], json.dumps' error, and == on two distinct cycles runs into the
// recursion limit as in Python. All used to overflow the stack.
TEST(JinjaLimits, SelfContainingValues) {
  EXPECT_EQ(render("{% set a = [] %}{% set _ = a.append(a) %}{{ a }}|{{ a == a }}|{{ a|length }}"), "[[...]]|True|1");
  EXPECT_EQ(render("{% set d = {} %}{% set _ = d.update({'x': d}) %}{{ d }}"), "{'x': {...}}");
  EXPECT_RENDER_ERROR("{% set a = [] %}{% set _ = a.append(a) %}{% set b = [] %}{% set _ = b.append(b) %}{{ a == b }}",
                      "maximum recursion depth exceeded in comparison");
  EXPECT_RENDER_ERROR("{% set a = [] %}{% set _ = a.append(a) %}{% set b = [] %}{% set _ = b.append(b) %}{{ a < b }}",
                      "maximum recursion depth exceeded in comparison");
  EXPECT_RENDER_ERROR("{% set d = {} %}{% set _ = d.update({'x': d}) %}{{ d|tojson }}", "Circular reference detected");
  EXPECT_RENDER_ERROR("{% set a = [] %}{% set _ = a.append(a) %}{{ a|tojson }}", "Circular reference detected");
  // The same list twice (not a cycle) is fine, as in json.dumps.
  EXPECT_EQ(render("{% set a = [1] %}{{ [a, a]|tojson }}"), "[[1], [1]]");
}

// A list nested 200,000 deep (built in a loop) used to overflow the stack when freed.
TEST(JinjaLimits, DeepValuesAreFreedWithoutRecursion) {
  on_server_sized_stack([] {
    EXPECT_EQ(render("{% set ns = namespace(x=1) %}{% for i in range(200) %}{% for j in range(1000) %}"
                     "{% set ns.x = [ns.x] %}{% endfor %}{% endfor %}{{ ns.x|length }}"),
              "1");
    EXPECT_RENDER_ERROR("{% set ns = namespace(x=1) %}{% for i in range(100) %}{% for j in range(1000) %}"
                        "{% set ns.x = {'k': ns.x} %}{% endfor %}{% endfor %}{{ ns.x }}",
                        "maximum recursion depth exceeded while getting the repr");
  });
}

// Left-associative chains are counted against the parser's depth limit: 40,000 terms used to
// load and then overflow the stack on the first render.
TEST(JinjaLimits, LongOperatorChainsFailAtLoad) {
  for (const std::string& src :
       {chain("'a'", " ~ ", 40000), chain("1", " + ", 40000), chain("x", " and ", 40000), chain("x", " or ", 40000),
        chain("2", " * ", 40000), chain("1", " ** ", 40000), "{{ " + times("not ", 40000) + "x }}",
        "{{ x" + times("|string", 40000) + " }}", "{{ x" + times(".a", 40000) + " }}",
        "{{ x" + times("[0]", 40000) + " }}",
        "{{ x" + times("()", 40000) + " }}", "{{ x" + times(" if x else x", 40000) + " }}"}) {
    EXPECT_NE(error_of([&] { Template t(src); }).find("more than 500 deep"), std::string::npos) << src.substr(0, 60);
  }
  EXPECT_EQ(render(chain("'a'", " ~ ", 450)), std::string(450, 'a'));
}

// Macro recursion (up to 200) times expression nesting (up to 500) could exhaust the stack while
// each stayed under its own limit; one render-depth budget bounds them together.
TEST(JinjaLimits, MacroRecursionTimesDeepExpressionsHitsTheRenderBudget) {
  on_server_sized_stack([] {
    std::string src = "{% macro r(n) %}{% if n > 0 %}{{ (" + std::string(400, '[') + "r(n-1)" + std::string(400, ']') +
                      ")|length }}{% endif %}{% endmacro %}{{ r(150) }}";
    EXPECT_NE(error_of([&] { render(src); }).find("template nests too deeply while rendering"), std::string::npos);
    // The same shape, shallow enough, renders.
    std::string ok = "{% macro r(n) %}{% if n > 0 %}{{ (" + std::string(5, '[') + "r(n-1)" + std::string(5, ']') +
                     ")|length }}{% endif %}{% endmacro %}{{ r(150) }}";
    EXPECT_EQ(render(ok), "1");
    // Plain recursion still reports the macro recursion limit.
    EXPECT_NE(error_of([] { render("{% macro f(n) %}{% if true %}{% for i in [1] %}{{ f(n + 1) }}{% endfor %}"
                                   "{% endif %}{% endmacro %}{{ f(0) }}"); })
                  .find("maximum recursion depth exceeded in macro 'f'"),
              std::string::npos);
  });
}

// Every way to build a huge string or list is capped at 256 MiB, where some used to spin for
// minutes or grow until the OOM killer came.
TEST(JinjaLimits, HugeResultsAreErrors) {
  EXPECT_RENDER_ERROR("{{ [1]|batch(10000000000, 0)|length }}", "batch result is too large");
  EXPECT_EQ(render("{{ [1]|batch(10000000000)|length }}"), "1");  // no fill: nothing to build
  EXPECT_RENDER_ERROR("{{ 'x'.center(10000000000) }}", "center result is too large");
  EXPECT_RENDER_ERROR("{{ 'x'.ljust(3000000000) }}", "ljust result is too large");
  EXPECT_RENDER_ERROR("{{ 'x'.rjust(3000000000, 'y') }}", "rjust result is too large");
  EXPECT_RENDER_ERROR("{{ 'x'.zfill(100000000000) }}", "zfill result is too large");
  EXPECT_RENDER_ERROR("{{ 'x'|indent(100000000000) }}", "indent result is too large");
  EXPECT_RENDER_ERROR("{{ {'a': 1}|tojson(indent=100000000000) }}", "tojson indent result is too large");
  EXPECT_RENDER_ERROR("{{ '{:100000000000}'.format(1) }}", "format width or precision is too large");
  EXPECT_RENDER_ERROR("{{ '{:.100000000000f}'.format(1.0) }}", "format width or precision is too large");
  EXPECT_RENDER_ERROR("{{ '%99999999999d' % 1 }}", "format width or precision is too large");
  EXPECT_RENDER_ERROR("{{ '%2147483648d' % 1 }}", "format width or precision is too large");
  EXPECT_RENDER_ERROR("{{ '%.2147483648f' % 1.0 }}", "format width or precision is too large");
  EXPECT_RENDER_ERROR("{{ ('a' * 1000)|replace('a', 'x' * 1000000) }}", "replace result is too large");
  EXPECT_RENDER_ERROR("{{ ('a' * 1000)|join('x' * 1000000) }}", "join result is too large");
  EXPECT_RENDER_ERROR("{{ ('x' * 1000000).join('a' * 1000) }}", "join result is too large");
  EXPECT_EQ(render("{{ ('' * 1000000000000000)|length }}|{{ ([] * 1000000000000000)|length }}"), "0|0");
  // The text a render writes, captured text included: a 1 MB string written 300 times.
  EXPECT_RENDER_ERROR("{% set s = 'x' * 1000000 %}{% for i in range(300) %}{% set _ %}{{ s }}{% endset %}{% endfor %}",
                      "the template's output is too large");
}

// Doubling a string in a loop (x = x + x) grew without bound; the step past 256 MiB is now refused
// before it allocates. The operands must be over 128 MiB, so the test makes one once and shares it
// (lists use the same check, with 8 Mi items for the cap: too big to build in a unit test).
TEST(JinjaLimits, ConcatenationPastTheCapIsAnError) {
  using tllm::jinja::Value;
  Value ctx = Value::dict();
  ctx.dict_ref().set(Value("s"), Value(std::string(135000000, 'x')));
  auto error = [&](const std::string& src) { return error_of([&] { Template(src).render(ctx); }); };
  EXPECT_NE(error("{% set ns = namespace(s=s) %}{% set ns.s = ns.s + ns.s %}").find("+ result is too large"),
            std::string::npos);
  EXPECT_NE(error("{{ s ~ s }}").find("~ result is too large"), std::string::npos);
}

// %-formatting used a 512-byte buffer: longer results were cut at 511 characters, and a failed
// snprintf (width beyond INT_MAX) printed whatever the buffer held.
TEST(JinjaLimits, PercentFormatIsNotTruncated) {
  EXPECT_EQ(render("{{ ('%600s' % 'x')|length }}|{{ ('%.600f' % 1.0)|length }}|{{ ('%-1000d|' % 5)|length }}"),
            "600|602|1001");
  EXPECT_EQ(render("{{ '%d' % 1e300 }}").size(), 301u);  // Python's exact int of the float
}
