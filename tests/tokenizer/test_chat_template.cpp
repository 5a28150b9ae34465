// ChatTemplate loading and error reporting, and the interpreter behaviours jinja2 cannot be
// asked about through jinja_cases.json (our line:column positions, exception types, clock).
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/jinja/template.h"

namespace fs = std::filesystem;
using nlohmann::ordered_json;
using tllm::ChatTemplate;
using tllm::jinja::Template;
using tllm::jinja::Value;

namespace {

std::string render(const std::string& src, const ordered_json& ctx = ordered_json::object()) {
  return Template(src).render(tllm::jinja::from_json(ctx));
}

// The message of the tllm::Error that `fn` throws ("" if none).
template <typename F>
std::string error_of(F&& fn) {
  try {
    fn();
  } catch (const tllm::Error& e) {
    return e.what();
  }
  return "";
}

class TempDir {
 public:
  TempDir() {
    path_ = fs::temp_directory_path() / ("tllm_chat_" + std::to_string(::getpid()) + "_" + std::to_string(counter_++));
    fs::create_directories(path_);
  }
  ~TempDir() { fs::remove_all(path_); }
  void write(const std::string& name, const std::string& text) const { std::ofstream(path_ / name) << text; }
  std::string str() const { return path_.string(); }

 private:
  fs::path path_;
  static inline int counter_ = 0;
};

const ordered_json kUser = ordered_json::parse(R"([{"role": "user", "content": "hi"}])");

}  // namespace

TEST(JinjaErrors, SyntaxErrorsNameLineAndColumn) {
  EXPECT_EQ(error_of([] { Template("line one\n{{ 1 + }}"); }), "template syntax error at 2:8: unexpected '}}'");
  EXPECT_EQ(error_of([] { Template("{% if x %}\nabc"); }),
            "template syntax error at 2:4: unexpected end of template, expected 'elif' or 'else' or 'endif'");
  EXPECT_EQ(error_of([] { Template("ok\n  {% frobnicate %}"); }),
            "template syntax error at 2:6: encountered unknown tag 'frobnicate'");
  EXPECT_EQ(error_of([] { Template("{{ 'unterminated }}"); }), "template syntax error at 1:4: unterminated string literal");
  EXPECT_EQ(error_of([] { Template("é {# never closed"); }), "template syntax error at 1:3: missing end of comment tag");
  EXPECT_EQ(error_of([] { Template("{% endfor %}"); }),
            "template syntax error at 1:4: unexpected 'endfor' (no open block to close)");
  EXPECT_EQ(error_of([] { Template("{{ a ) }}"); }), "template syntax error at 1:6: unexpected ')'");
  EXPECT_EQ(error_of([] { Template("{% include 'x' %}"); }),
            "template syntax error at 1:4: tag 'include' is not supported in chat templates");
}

TEST(JinjaErrors, RuntimeErrorsNameLineAndColumn) {
  EXPECT_EQ(error_of([] { render("a\n  {{ x.y.z }}"); }), "template error at 2:6: 'x' is undefined");
  EXPECT_EQ(error_of([] { render("{% for m in msgs %}\n{{ m.content + '!' }}{% endfor %}",
                                 {{"msgs", ordered_json::parse(R"([{"content": null}])")}}); }),
            "template error at 2:4: unsupported operand type(s) for +: 'NoneType' and 'str'");
  EXPECT_EQ(error_of([] { render("{{ 1 | nope }}"); }), "template error at 1:8: no filter named 'nope'");
  EXPECT_EQ(error_of([] { render("{% break %}"); }), "template error at 1:4: 'break' or 'continue' outside a loop");
}

TEST(JinjaErrors, RunawayTemplatesFailCleanly) {
  std::string deep_parens = "{{ " + std::string(2000, '(') + "1" + std::string(2000, ')') + " }}";
  EXPECT_NE(error_of([&] { Template t(deep_parens); }).find("more than 500 deep"), std::string::npos);
  std::string deep_ifs;
  for (int k = 0; k < 2000; ++k) deep_ifs += "{% if true %}";
  EXPECT_NE(error_of([&] { Template t(deep_ifs); }).find("more than 500 deep"), std::string::npos);
  EXPECT_NE(error_of([] { render("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}"); })
                .find("maximum recursion depth exceeded in macro 'f'"),
            std::string::npos);
  EXPECT_NE(error_of([] { render("{{ 'ab' * 1000000000000 }}"); }).find("too large"), std::string::npos);
  EXPECT_EQ(render("{% macro f(n) %}{% if n > 0 %}{{ n }}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(5) }}"), "54321");
}

TEST(JinjaErrors, RaiseExceptionIsInvalidArgumentWithTheTemplatesMessage) {
  try {
    render("{% if messages|length > 1 %}{{ raise_exception('Only one message, got ' ~ messages|length) }}{% endif %}",
           {{"messages", {1, 2, 3}}});
    FAIL() << "no exception";
  } catch (const tllm::InvalidArgument& e) {
    EXPECT_STREQ(e.what(), "Only one message, got 3");
  }
}

TEST(Jinja, ListAppendMutatesInPlace) {
  // transformers' sandbox rejects list.append; we allow it, since a template that uses it
  // could not run under transformers anyway and some non-HF templates do.
  EXPECT_EQ(render("{% set l = [] %}{% for i in range(3) %}{% set _ = l.append(i * i) %}{% endfor %}{{ l }}"),
            "[0, 1, 4]");
  EXPECT_EQ(render("{% set ns = namespace(d={}) %}{% set _ = ns.d.update({'a': 1}) %}{{ ns.d }}"), "{'a': 1}");
}

TEST(Jinja, StrftimeNowUsesFixedDate) {
  tllm::jinja::RenderOptions opts;
  opts.fixed_now = "2024-07-26T14:30:05";
  Template t("{{ strftime_now('%d %b %Y') }}|{{ strftime_now('%Y-%m-%d %H:%M:%S %A %j') }}");
  EXPECT_EQ(t.render(Value::dict(), opts), "26 Jul 2024|2024-07-26 14:30:05 Friday 208");
  opts.fixed_now = "2025-01-02";
  EXPECT_EQ(t.render(Value::dict(), opts), "02 Jan 2025|2025-01-02 00:00:00 Thursday 002");
  opts.fixed_now = "yesterday";
  EXPECT_THROW(t.render(Value::dict(), opts), tllm::InvalidArgument);

  ::setenv("TLLM_FIXED_DATE", "2023-12-31T23:59:59", 1);
  EXPECT_EQ(Template("{{ strftime_now('%Y-%m-%d %H:%M') }}").render(Value::dict()), "2023-12-31 23:59");
  ::unsetenv("TLLM_FIXED_DATE");
  EXPECT_EQ(Template("{{ strftime_now('%Y') | length }}").render(Value::dict()), "4");  // the real clock
}

TEST(Jinja, FromJsonKeepsTypesAndOrder) {
  auto v = tllm::jinja::from_json(ordered_json::parse(R"({"z": 1, "a": 1.0, "m": [true, null, "s"]})"));
  EXPECT_EQ(v.repr(), "{'z': 1, 'a': 1.0, 'm': [True, None, 's']}");
  EXPECT_THROW(tllm::jinja::from_json(ordered_json::parse("18446744073709551615")), tllm::InvalidArgument);
}

// Request JSON is a client's to nest: converting 100,000 levels by recursion overflowed the
// stack (the server died on one request); past 256 levels it is refused with a message.
TEST(Jinja, FromJsonRefusesDeepNesting) {
  auto nested = [](int depth) { return std::string(depth, '[') + "1" + std::string(depth, ']'); };
  try {
    tllm::jinja::from_json(ordered_json::parse(nested(100000)));
    ADD_FAILURE() << "100,000 levels converted";
  } catch (const tllm::InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("nested more than 256 levels"), std::string::npos) << e.what();
  }
  EXPECT_THROW(tllm::jinja::from_json(ordered_json::parse(nested(257))), tllm::InvalidArgument);
  auto v = tllm::jinja::from_json(ordered_json::parse(nested(256)));
  for (int i = 0; i < 256; ++i) {
    ASSERT_TRUE(v.is_list()) << "level " << i;
    const tllm::jinja::Value inner = v.items().at(0);
    v = inner;
  }
  EXPECT_EQ(v.repr(), "1");
}

TEST(ChatTemplate, FromStringSeesMessagesToolsKwargsAndSpecialTokens) {
  auto ct = ChatTemplate::from_string(
      "{{ bos_token }}|{{ eos_token }}|{{ messages[0].content }}|{{ tools is none }}|{{ documents is none }}|"
      "{{ add_generation_prompt }}|{{ enable_thinking }}|{{ pad_token is defined }}",
      "<s>", "</s>");
  EXPECT_EQ(ct->render(kUser, nullptr, true, {{"enable_thinking", false}}), "<s>|</s>|hi|True|True|True|False|False");
  // Extra kwargs override special tokens, as in transformers ({**special_tokens_map, **kwargs}).
  EXPECT_EQ(ChatTemplate::from_string("{{ bos_token }}", "<s>")->render(kUser, nullptr, false, {{"bos_token", "B"}}), "B");
  // An empty token is left undefined (transformers leaves out a None token).
  EXPECT_EQ(ChatTemplate::from_string("{{ bos_token is defined }}")->render(kUser, nullptr, false), "False");
}

TEST(ChatTemplate, RejectsBadInputs) {
  auto ct = ChatTemplate::from_string("{{ messages | length }}");
  EXPECT_THROW(ct->render(ordered_json::object(), nullptr, true), tllm::InvalidArgument);
  EXPECT_THROW(ct->render(kUser, ordered_json::object(), true), tllm::InvalidArgument);
  EXPECT_THROW(ct->render(kUser, nullptr, true, ordered_json::array()), tllm::InvalidArgument);
  EXPECT_THROW(ct->render(kUser, nullptr, true, {{"messages", 1}}), tllm::InvalidArgument);
  EXPECT_THROW(ChatTemplate::from_string("{% if %}"), tllm::Error);
}

TEST(ChatTemplate, LoadsStringTemplateAndSpecialTokenObjects) {
  TempDir d;
  d.write("tokenizer_config.json", R"({
    "bos_token": {"__type": "AddedToken", "content": "<B>", "lstrip": false},
    "eos_token": "<E>", "pad_token": null, "unk_token": "<U>",
    "chat_template": "{{ bos_token }}{% for m in messages %}{{ m.content }}{% endfor %}{{ eos_token }}{{ unk_token }}{{ pad_token is defined }}"
  })");
  auto ct = ChatTemplate::load(d.str());
  EXPECT_EQ(ct->render(kUser, nullptr, false), "<B>hi<E><U>False");
  EXPECT_EQ(ct->names(), std::vector<std::string>{"default"});
}

TEST(ChatTemplate, ChatTemplateJinjaFileWins) {
  TempDir d;
  d.write("tokenizer_config.json", R"({"eos_token": "<E>", "chat_template": "from config"})");
  d.write("chat_template.jinja", "from file {{ eos_token }}\n");
  EXPECT_EQ(ChatTemplate::load(d.str())->render(kUser, nullptr, false), "from file <E>");
}

TEST(ChatTemplate, NamedTemplatesPickLikeTransformers) {
  TempDir d;
  d.write("tokenizer_config.json", R"({"chat_template": [
    {"name": "default", "template": "default"},
    {"name": "tool_use", "template": "tools:{{ tools | length }}"},
    {"name": "rag", "template": "rag"}]})");
  auto ct = ChatTemplate::load(d.str());
  EXPECT_EQ(ct->render(kUser, nullptr, true), "default");
  EXPECT_EQ(ct->render(kUser, ordered_json::parse(R"([{"type": "function"}])"), true), "tools:1");
  EXPECT_EQ(ChatTemplate::load(d.str(), "rag")->render(kUser, ordered_json::array({1}), true), "rag");
  std::string err = error_of([&] { ChatTemplate::load(d.str(), "nope"); });
  EXPECT_NE(err.find("available: default, tool_use, rag"), std::string::npos) << err;
}

TEST(ChatTemplate, MissingOrBrokenTemplatesAreClearErrors) {
  TempDir d;
  EXPECT_NE(error_of([&] { ChatTemplate::load(d.str()); }).find("neither chat_template.jinja nor tokenizer_config.json"),
            std::string::npos);
  d.write("tokenizer_config.json", R"({"eos_token": "<E>"})");
  EXPECT_NE(error_of([&] { ChatTemplate::load(d.str()); }).find("has no \"chat_template\""), std::string::npos);
  d.write("tokenizer_config.json", R"({"chat_template": "{% for %}"})");
  std::string err = error_of([&] { ChatTemplate::load(d.str()); });
  EXPECT_NE(err.find("tokenizer_config.json chat_template: template syntax error at 1:8"), std::string::npos) << err;
  d.write("tokenizer_config.json", R"({"chat_template": "{{ messages[0].content.upper() }}{{ 1 + none }}"})");
  err = error_of([&] { ChatTemplate::load(d.str())->render(kUser, nullptr, false); });
  EXPECT_NE(err.find("template error at 1:37: unsupported operand type(s) for +: 'int' and 'NoneType'"),
            std::string::npos)
      << err;
}
