// Every rendering in tests/data/chat/chat_goldens.json (made by transformers'
// apply_chat_template through scripts/goldens/chat_goldens.py) must come out byte-identical,
// and every conversation transformers rejected must be rejected here too.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "tokenizer/chat_template.h"

namespace fs = std::filesystem;
using nlohmann::ordered_json;

namespace {

const fs::path kData = fs::path(TLLM_SOURCE_DIR) / "tests" / "data" / "chat";

std::string read_file(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::ostringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// TLLM_CHAT_GOLDENS may point at another goldens file (e.g. a fresh run of the script).
fs::path goldens_path() {
  if (const char* p = std::getenv("TLLM_CHAT_GOLDENS"); p && *p) return p;
  return kData / "chat_goldens.json";
}

const ordered_json& goldens() {
  static const ordered_json g = [] {
    fs::path p = goldens_path();
    if (!fs::exists(p)) return ordered_json();
    return ordered_json::parse(read_file(p));
  }();
  return g;
}

const ordered_json& conversation(const std::string& id) {
  static const ordered_json convs = ordered_json::parse(read_file(kData / "conversations.json"))["conversations"];
  for (const auto& c : convs)
    if (c["id"] == id) return c;
  throw std::runtime_error("no conversation " + id);
}

std::unique_ptr<tllm::ChatTemplate> load_template(const ordered_json& meta, std::string* skip) {
  std::string source = meta["source"].get<std::string>();
  if (source.rfind("asset:", 0) == 0) {
    fs::path dir = fs::path(TLLM_SOURCE_DIR) / ".cache" / "assets" / "tokenizers" / source.substr(6);
    if (!fs::exists(dir / "tokenizer_config.json")) {
      *skip = dir.string() + " missing (run scripts/fetch_assets.sh)";
      return nullptr;
    }
    return tllm::ChatTemplate::load(dir.string());
  }
  std::string path = source.substr(source.find(':') + 1);
  auto str = [&](const char* k) { return meta[k].is_string() ? meta[k].get<std::string>() : std::string(); };
  return tllm::ChatTemplate::from_string(read_file(fs::path(TLLM_SOURCE_DIR) / path), str("bos_token"),
                                         str("eos_token"));
}

void check_template(const std::string& name) {
  const ordered_json& g = goldens();
  if (g.is_null()) GTEST_SKIP() << goldens_path() << " not found (the lead makes it on the GPU machine)";
  if (!g.contains(name)) GTEST_SKIP() << "no goldens for " << name << " (its assets were missing when they were made)";
  std::string skip;
  auto tpl = load_template(g["__meta__"]["templates"][name], &skip);
  if (!tpl) GTEST_SKIP() << skip;
  tpl->set_fixed_date(g["__meta__"]["fixed_now"].get<std::string>());
  int checked = 0;
  for (const auto& row : g[name]) {
    const std::string id = row["conversation_id"];
    const bool agp = row["add_generation_prompt"];
    SCOPED_TRACE(name + " / " + id + (agp ? " / generation prompt" : "") + " / kwargs " + row["kwargs"].dump());
    const ordered_json& conv = conversation(id);
    ordered_json tools = conv.contains("tools") ? conv["tools"] : ordered_json();
    if (row.contains("rendered")) {
      std::string got;
      try {
        got = tpl->render(conv["messages"], tools, agp, row["kwargs"]);
      } catch (const std::exception& e) {
        ADD_FAILURE() << "threw: " << e.what();
        continue;
      }
      EXPECT_EQ(got, row["rendered"].get<std::string>());
    } else {
      const std::string err = row["error"];
      const std::string raised = "TemplateError: ";  // raise_exception() in the template
      if (err.rfind(raised, 0) == 0) {
        try {
          tpl->render(conv["messages"], tools, agp, row["kwargs"]);
          ADD_FAILURE() << "rendered, but transformers raised " << err;
        } catch (const tllm::InvalidArgument& e) {
          EXPECT_EQ(std::string(e.what()), err.substr(raised.size()));
        }
      } else {
        EXPECT_THROW(tpl->render(conv["messages"], tools, agp, row["kwargs"]), tllm::Error)
            << "transformers raised " << err;
      }
    }
    ++checked;
  }
  EXPECT_GT(checked, 0);
}

}  // namespace

TEST(ChatTemplateGoldens, Qwen3) { check_template("qwen3"); }
TEST(ChatTemplateGoldens, Llama3) { check_template("llama3"); }
TEST(ChatTemplateGoldens, DeepSeekV3) { check_template("deepseek_v3"); }
TEST(ChatTemplateGoldens, Qwen2Instruct) { check_template("qwen2_instruct"); }
TEST(ChatTemplateGoldens, Qwen25Instruct) { check_template("qwen2_5_instruct"); }
TEST(ChatTemplateGoldens, TinyQwen2Demo) { check_template("tiny_qwen2_demo"); }
TEST(ChatTemplateGoldens, ProbeBasics) { check_template("probe_basics"); }
TEST(ChatTemplateGoldens, ProbeFilters) { check_template("probe_filters"); }
TEST(ChatTemplateGoldens, ProbeTojson) { check_template("probe_tojson"); }
TEST(ChatTemplateGoldens, ProbeRaise) { check_template("probe_raise"); }

// The committed copy of the demo model's template is the one the model ships.
TEST(ChatTemplateGoldens, DemoModelDirMatchesCommittedCopy) {
  fs::path dir = fs::path(TLLM_SOURCE_DIR).parent_path() / "shared" / "models" / "tiny-qwen2-demo";
  if (!fs::exists(dir / "tokenizer_config.json")) GTEST_SKIP() << dir << " not present";
  auto cfg = ordered_json::parse(read_file(dir / "tokenizer_config.json"));
  EXPECT_EQ(cfg["chat_template"].get<std::string>(), read_file(kData / "templates" / "tiny_qwen2_demo.jinja"));
  auto from_dir = tllm::ChatTemplate::load(dir.string());
  EXPECT_EQ(from_dir->special_tokens().value("eos_token", ""), "<|endoftext|>");
  EXPECT_FALSE(from_dir->special_tokens().contains("bos_token"));  // null in the config
  auto msgs = conversation("multi_turn")["messages"];
  auto from_copy = tllm::ChatTemplate::from_string(read_file(kData / "templates" / "tiny_qwen2_demo.jinja"), "",
                                                   "<|endoftext|>");
  EXPECT_EQ(from_dir->render(msgs, nullptr, true), from_copy->render(msgs, nullptr, true));
}
