// Unit cases of the Jinja interpreter, each rendered by jinja2 configured as transformers
// configures it (scripts/goldens/jinja_cases.py -> tests/data/chat/jinja_cases.json): whitespace
// control, literals and printing, operators, loops and scoping, macros, string methods, tests,
// filters, tojson, globals, and the inputs jinja2 rejects.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "tokenizer/jinja/template.h"

namespace fs = std::filesystem;
using nlohmann::ordered_json;
using tllm::jinja::Template;

namespace {

ordered_json load_cases() {
  fs::path p = fs::path(TLLM_SOURCE_DIR) / "tests" / "data" / "chat" / "jinja_cases.json";
  std::ifstream f(p);
  std::ostringstream ss;
  ss << f.rdbuf();
  return ordered_json::parse(ss.str())["cases"];
}

class JinjaCase : public ::testing::TestWithParam<ordered_json> {};

TEST_P(JinjaCase, MatchesJinja2) {
  const ordered_json& c = GetParam();
  SCOPED_TRACE("template: " + c["template"].get<std::string>());
  tllm::jinja::RenderOptions opts;
  opts.fixed_now = "2024-07-26T14:30:05";  // as jinja_cases.py pins strftime_now()
  auto render = [&] {
    return Template(c["template"].get<std::string>()).render(tllm::jinja::from_json(c["context"]), opts);
  };
  if (c.contains("expected")) {
    std::string got;
    try {
      got = render();
    } catch (const std::exception& e) {
      FAIL() << "threw: " << e.what();
    }
    EXPECT_EQ(got, c["expected"].get<std::string>());
  } else {
    EXPECT_THROW(render(), tllm::Error) << "jinja2 raised " << c["error"].get<std::string>();
  }
}

std::string case_name(const ::testing::TestParamInfo<ordered_json>& info) { return info.param["name"]; }

INSTANTIATE_TEST_SUITE_P(Jinja2, JinjaCase, ::testing::ValuesIn(load_cases().get<std::vector<ordered_json>>()),
                         case_name);

}  // namespace
