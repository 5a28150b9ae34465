// The tinyllm binary as users run it: generate with ids in/out on a checkpoint without a
// tokenizer (greedy tokens and log-probs against the HF goldens), text in/out on the shipped
// demo model, and clean one-line errors (exit status 1) for bad input.
#include <unistd.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>

#include <nlohmann/json.hpp>

#include "../engine/schema_oracle.h"
#include "core/cpu_features.h"
#include "engine/engine.h"
#include "engine/grammar.h"
#include "io/safetensors.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"
#include "cli_run.h"
#include "fake_hub.h"
#include "goldens.h"

namespace fs = std::filesystem;
using namespace tllm::goldens;
using namespace tllm::cli_test;

namespace {

std::string ids_arg(const std::vector<int32_t>& ids) {
  std::string s;
  for (size_t i = 0; i < ids.size(); ++i) s += (i ? "," : "") + std::to_string(ids[i]);
  return s;
}

}  // namespace

TEST(Cli, GenerateIdsJsonMatchesGoldens) {
  const std::vector<Case> cases = load_cases("qwen2_untied");  // no tokenizer files in this checkpoint
  const Case& k = cases[0];
  const Result r = run("generate --model " + (models_dir() / "qwen2_untied").string() + " --prompt-ids " +
                       ids_arg(k.prompt) + " --dtype float32 --temperature 0 --ignore-eos --max-tokens " +
                       std::to_string(k.greedy.size()) + " --logprobs 3 --json --kv-cache-memory 64MiB");
  ASSERT_EQ(r.status, 0) << r.out;
  std::istringstream lines(r.out);
  std::string line;
  size_t step = 0;
  bool summary = false;
  while (std::getline(lines, line)) {
    if (line.empty() || line[0] != '{') continue;  // log lines
    const nlohmann::json j = nlohmann::json::parse(line);
    if (j.contains("summary")) {
      summary = true;
      EXPECT_EQ(j["summary"]["generated_tokens"].get<size_t>(), k.greedy.size());
      EXPECT_GT(j["summary"]["tokens_per_s"].get<double>(), 0.0);
      continue;
    }
    ASSERT_LT(step, k.greedy.size());
    EXPECT_EQ(j["token_id"].get<int32_t>(), k.greedy[step]) << "step " << step;
    EXPECT_NEAR(j["logprob"].get<double>(), k.steps[step][0].second, 1e-4);
    ASSERT_EQ(j["top_logprobs"].size(), 3u);
    for (int i = 0; i < 3; ++i) {
      EXPECT_EQ(j["top_logprobs"][i]["token_id"].get<int32_t>(), k.steps[step][i].first);
      EXPECT_NEAR(j["top_logprobs"][i]["logprob"].get<double>(), k.steps[step][i].second, 1e-4);
    }
    ++step;
  }
  EXPECT_EQ(step, k.greedy.size());
  EXPECT_TRUE(summary);
  // Text mode on a model without a tokenizer prints the ids (it printed an empty line).
  const Result text = run_stdout("generate --model " + (models_dir() / "qwen2_untied").string() + " --prompt-ids " +
                                 ids_arg(k.prompt) + " --dtype float32 --temperature 0 --ignore-eos --max-tokens " +
                                 std::to_string(k.greedy.size()) + " --kv-cache-memory 64MiB");
  ASSERT_EQ(text.status, 0) << text.out;
  std::string want;
  for (int32_t t : k.greedy) want += (want.empty() ? "" : " ") + std::to_string(t);
  EXPECT_EQ(text.out, want + "\n");
}

TEST(Cli, GenerateTextOnTheShippedModel) {
  const std::string model = std::string(TLLM_SOURCE_DIR) + "/models/tiny-qwen2-demo";
  const Result a = run("generate --model " + model +
                       " --prompt \"And the LORD said unto Moses,\" --max-tokens 24 --seed 7 --kv-cache-memory 64MiB");
  ASSERT_EQ(a.status, 0) << a.out;
  const Result b = run("generate --model " + model +
                       " --prompt \"And the LORD said unto Moses,\" --max-tokens 24 --seed 7 --kv-cache-memory 64MiB");
  ASSERT_EQ(b.status, 0) << b.out;
  // Same seed, same text; the text is not empty.
  // stdout holds the text; stderr (merged here) the load line and the timing summary.
  auto text = [](const std::string& out) {
    std::string t = out.substr(out.find('\n') + 1);
    return t.substr(0, t.find(" tokens in ") == std::string::npos ? t.size() : t.rfind('[', t.find(" tokens in ")));
  };
  const std::string ta = a.out, tb = b.out;
  EXPECT_EQ(text(ta), text(tb));
  EXPECT_GT(text(ta).size(), 20u);
  // With the shipped draft model (speculative decoding) the text is the same; the summary
  // says how many drafts were kept.
  const Result c = run("generate --model " + model + " --prompt \"And the LORD said unto Moses,\" --max-tokens 24 --seed 7 " +
                       "--kv-cache-memory 64MiB --speculative-model " + model + "-draft --num-speculative-tokens 3");
  ASSERT_EQ(c.status, 0) << c.out;
  const size_t line = c.out.find("\n", c.out.find("speculative decoding: draft model"));
  ASSERT_NE(line, std::string::npos) << c.out;
  EXPECT_EQ(text(c.out.substr(line + 1)), text(ta)) << c.out;
  EXPECT_NE(c.out.find(" drafts accepted ("), std::string::npos) << c.out;
}

// A hub repository id as --model (vLLM's `--model Qwen/...`): the demo model served by a hub
// on loopback (tests/io/fake_hub.h) is downloaded into --download-dir and generates what the
// local folder generates; then it loads from the cache with HF_HUB_OFFLINE=1, tokenize reads
// the same cache, and a wrong revision or a --revision on a local folder is a one-line error.
TEST(Cli, HubRepositoryIdsAsModels) {
  const std::string model = std::string(TLLM_SOURCE_DIR) + "/models/tiny-qwen2-demo";
  tllm::testing::FakeHub hub;
  hub.add_repo("tinyllm-test/demo", "89abcdef0123456789abcdef0123456789abcdef", tllm::testing::repo_files_of(model));
  hub.start();
  const fs::path cache = fs::temp_directory_path() / ("tinyllm_cli_hub_" + std::to_string(::getpid()));
  const std::string env = "HF_ENDPOINT=" + hub.endpoint() + " HF_TOKEN=";
  const std::string gen = " --prompt \"And the LORD said unto Moses,\" --max-tokens 24 --seed 7 --kv-cache-memory 64MiB";
  const Result local = run_stdout("generate --model " + model + gen);
  ASSERT_EQ(local.status, 0) << local.out;
  const Result fetched = run_shell(env + " " + TLLM_CLI_BINARY + " generate --model tinyllm-test/demo --download-dir " +
                                   cache.string() + gen + " 2>/dev/null");
  ASSERT_EQ(fetched.status, 0) << fetched.out;
  EXPECT_EQ(fetched.out, local.out);
  EXPECT_GT(local.out.size(), 20u);
  const std::string snapshot = (cache / "models--tinyllm-test--demo/snapshots/89abcdef0123456789abcdef0123456789abcdef").string();
  EXPECT_TRUE(fs::is_symlink(fs::path(snapshot) / "model.safetensors"));
  hub.stop();
  const std::string offline = "HF_HUB_OFFLINE=1 HF_HUB_CACHE=" + cache.string();
  const Result cached = run_shell(offline + " " + TLLM_CLI_BINARY + " generate --model tinyllm-test/demo" + gen + " 2>/dev/null");
  ASSERT_EQ(cached.status, 0) << cached.out;
  EXPECT_EQ(cached.out, local.out);
  const Result tok_local = run_stdout("tokenize --model " + model + " \"In the beginning\"");
  const Result tok_hub = run_shell(offline + " " + TLLM_CLI_BINARY + " tokenize --model tinyllm-test/demo \"In the beginning\"");
  ASSERT_EQ(tok_hub.status, 0) << tok_hub.out;
  EXPECT_EQ(tok_hub.out, tok_local.out);
  const Result missing = run("generate --model tinyllm-test/other --prompt hi", offline);
  EXPECT_EQ(missing.status, 1) << missing.out;
  EXPECT_NE(missing.out.find("error: tinyllm-test/other: no such local folder, and HF_HUB_OFFLINE is set"), std::string::npos)
      << missing.out;
  const Result local_rev = run("generate --model " + model + " --revision v2 --prompt hi");
  EXPECT_EQ(local_rev.status, 1) << local_rev.out;
  EXPECT_NE(local_rev.out.find("--revision v2 applies to a hub repository id"), std::string::npos) << local_rev.out;
  // A GGUF repository, llama.cpp's -hf form: REPO:QUANT fetches that one file.
  const fs::path ggufs = cache / "gguf-repo";
  fs::create_directories(ggufs);
  const std::string python = fs::exists("/usr/bin/python3") ? "/usr/bin/python3" : "python3";
  ASSERT_EQ(run_shell(python + " " + TLLM_SOURCE_DIR + "/scripts/gguf/write_gguf.py model " + model + " " +
                      (ggufs / "demo-q8_0.gguf").string() + " --type q8_0").status,
            0);
  tllm::testing::FakeHub hub2;
  hub2.add_repo("tinyllm-test/demo", "89abcdef0123456789abcdef0123456789abcdef", tllm::testing::repo_files_of(model));
  hub2.add_repo("tinyllm-test/demo-GGUF", "89abcdef0123456789abcdef0123456789abcdef",
                tllm::testing::repo_files_of(ggufs.string()));
  hub2.start();
  const std::string greedy = " --prompt \"And the LORD said unto Moses,\" --max-tokens 16 --temperature 0 --kv-cache-memory 64MiB";
  const std::string gguf_env = "XDG_CACHE_HOME=" + (cache / "xdg").string() + " HF_ENDPOINT=" + hub2.endpoint();
  const Result from_file = run_shell(gguf_env + " " + TLLM_CLI_BINARY + " generate --model " +
                                     (ggufs / "demo-q8_0.gguf").string() + greedy + " 2>/dev/null");
  const Result from_repo = run_shell(gguf_env + " " + TLLM_CLI_BINARY + " generate --model tinyllm-test/demo-GGUF:Q8_0 --download-dir " +
                                     (cache / "gguf-cache").string() + greedy + " 2>/dev/null");
  ASSERT_EQ(from_file.status, 0) << from_file.out;
  ASSERT_EQ(from_repo.status, 0) << from_repo.out;
  EXPECT_EQ(from_repo.out, from_file.out);
  EXPECT_GT(from_file.out.size(), 10u);
  const Result bad_rev = run("generate --model tinyllm-test/demo --revision v9 --download-dir " + (cache / "other").string() +
                                 " --prompt hi",
                             "HF_ENDPOINT=" + hub2.endpoint());
  EXPECT_EQ(bad_rev.status, 1) << bad_rev.out;
  EXPECT_NE(bad_rev.out.find("answered HTTP 404 for revision \"v9\": Invalid rev id: v9"), std::string::npos) << bad_rev.out;
  std::error_code ec;
  fs::remove_all(cache, ec);
}

// A llama.cpp GGUF file as --model: the demo model written as GGUF (f16, as llama.cpp's
// converter writes it; scripts/gguf/write_gguf.py) decodes greedily what the folder decodes,
// and a file cut short is a one-line error naming it.
TEST(Cli, GgufFilesAsModels) {
  const std::string model = std::string(TLLM_SOURCE_DIR) + "/models/tiny-qwen2-demo";
  const fs::path tmp = fs::temp_directory_path() / ("tinyllm_cli_gguf_" + std::to_string(::getpid()));
  fs::create_directories(tmp);
  const std::string python = fs::exists("/usr/bin/python3") ? "/usr/bin/python3" : "python3";
  const std::string gguf = (tmp / "demo-f16.gguf").string();
  ASSERT_EQ(run_shell(python + " " + TLLM_SOURCE_DIR + "/scripts/gguf/write_gguf.py model " + model + " " + gguf +
                      " --type f16").status,
            0);
  const std::string env = "XDG_CACHE_HOME=" + (tmp / "cache").string();
  const std::string gen = " --prompt \"And the LORD said unto Moses,\" --max-tokens 24 --temperature 0 --kv-cache-memory 64MiB";
  const Result local = run_stdout("generate --model " + model + gen);
  ASSERT_EQ(local.status, 0) << local.out;
  const Result file = run_shell(env + " " + TLLM_CLI_BINARY + " generate --model " + gguf + gen + " 2>/dev/null");
  ASSERT_EQ(file.status, 0) << file.out;
  EXPECT_EQ(file.out, local.out);
  EXPECT_GT(local.out.size(), 20u);
  // A q4_K / q6_K file (as llama.cpp's Q4_K_M mixes them): its blocks run as stored; with
  // --quantization none decoded to bf16, with int4 quantized again; each writes text, and in
  // f32 the blocks as stored write the text of the file's decoded twin.
  const std::string mixed = (tmp / "demo-mixed.gguf").string(), twin = (tmp / "demo-mixed-decoded.gguf").string();
  for (const auto& [out, extra] : {std::pair<std::string, std::string>{mixed, ""}, {twin, " --decoded"}})
    ASSERT_EQ(run_shell(python + " " + TLLM_SOURCE_DIR + "/scripts/gguf/write_gguf.py model " + model + " " + out +
                        " --type mixed" + extra).status,
              0);
  const Result stored = run("generate --model " + mixed + gen, env);
  ASSERT_EQ(stored.status, 0) << stored.out;
  EXPECT_NE(stored.out.find("weights: gguf blocks as stored: q4_K (31), q6_K (12)"), std::string::npos) << stored.out;
  const Result as_bf16 = run("generate --model " + mixed + gen + " --quantization none", env);
  ASSERT_EQ(as_bf16.status, 0) << as_bf16.out;
  EXPECT_EQ(as_bf16.out.find("gguf blocks"), std::string::npos) << as_bf16.out;
  EXPECT_NE(as_bf16.out.find("of weights (bf16)"), std::string::npos) << as_bf16.out;
  const Result as_int4 = run("generate --model " + mixed + gen + " --quantization int4", env);
  ASSERT_EQ(as_int4.status, 0) << as_int4.out;
  EXPECT_NE(as_int4.out.find("of weights (int4)"), std::string::npos) << as_int4.out;
  const std::string f32 = gen + " --dtype float32 2>/dev/null";
  const Result stored_f32 = run_shell(env + " " + TLLM_CLI_BINARY + " generate --model " + mixed + f32);
  const Result twin_f32 = run_shell(env + " " + TLLM_CLI_BINARY + " generate --model " + twin + f32);
  ASSERT_EQ(stored_f32.status, 0) << stored_f32.out;
  EXPECT_EQ(stored_f32.out, twin_f32.out);
  EXPECT_GT(stored_f32.out.size(), 20u);
  std::string bytes;
  {
    std::ifstream in(gguf, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  const std::string cut = (tmp / "cut.gguf").string();
  std::ofstream(cut, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size() / 2));
  const Result bad = run("generate --model " + cut + " --prompt hi", env);
  EXPECT_EQ(bad.status, 1) << bad.out;
  EXPECT_NE(bad.out.find("error: " + cut + ": tensor \""), std::string::npos) << bad.out;
  EXPECT_NE(bad.out.find("lies past the end of the file"), std::string::npos) << bad.out;
  std::error_code ec;
  fs::remove_all(tmp, ec);
}

// tinyllm chat: lines in, replies out (stdout holds only the replies, one per line); each turn
// is the engine's greedy reply to the whole conversation so far rendered with the model's chat
// template; /system sets a system prompt and starts over; an over-long message, or one that is
// not UTF-8, is refused with an error and the conversation goes on. (A bad first line used to
// erase from the empty history: a segfault; later, it erased the assistant's last reply.)
TEST(Cli, ChatKeepsTheConversation) {
  const std::string model = std::string(TLLM_SOURCE_DIR) + "/models/tiny-qwen2-demo";
  const std::string input = "\xff\nHello, who are you?\nTell me a fortune.\n\xff\xfe\n/system \xff\n"
                            "/system You are a preacher.\nWhat is love?\n" +
                            std::string(3000, 'x') + "\nAnd then?\n";
  const fs::path in = fs::temp_directory_path() / ("tinyllm_chat_in_" + std::to_string(::getpid()) + ".txt");
  std::ofstream(in) << input;
  const Result chat = run_stdout("chat --model " + model +
                                 " --temperature 0 --max-tokens 12 --max-model-len 512 --kv-cache-memory 64MiB < " +
                                 in.string());
  ASSERT_EQ(chat.status, 0) << chat.out;
  const std::string& out = chat.out;

  tllm::EngineConfig c;
  c.model_dir = model;
  c.threads = 2;
  c.kv_cache_memory = 64u << 20;
  tllm::LLMEngine engine(c);
  tllm::SamplingParams sp;
  sp.temperature = 0;
  sp.max_tokens = 12;
  const auto answer = [&](const nlohmann::ordered_json& messages) {
    const std::string r = engine.chat_template()->render(messages, nullptr, true);
    return engine.generate({engine.tokenizer()->encode(r, false)}, {sp})[0].text;
  };
  nlohmann::ordered_json m = nlohmann::ordered_json::array();
  std::string want;
  for (const char* user : {"Hello, who are you?", "Tell me a fortune."}) {
    m.push_back({{"role", "user"}, {"content", user}});
    const std::string a = answer(m);
    want += a + "\n";
    m.push_back({{"role", "assistant"}, {"content", a}});
  }
  m = nlohmann::ordered_json::array({{{"role", "system"}, {"content", "You are a preacher."}}});
  for (const char* user : {"What is love?", "And then?"}) {  // the 3000-character line is refused
    m.push_back({{"role", "user"}, {"content", user}});
    const std::string a = answer(m);
    want += a + "\n";
    m.push_back({{"role", "assistant"}, {"content", a}});
  }
  EXPECT_EQ(out, want);

  // The refusal names the limit on stderr.
  const Result r = run("chat --model " + model + " --max-tokens 12 --max-model-len 512 --kv-cache-memory 64MiB < " +
                       in.string());
  EXPECT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("error: This model's maximum context length is 512 tokens"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("error: the message is not valid UTF-8"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("error: the system prompt is not valid UTF-8"), std::string::npos) << r.out;
  fs::remove(in);
}

// vLLM's --chat-template and --generation-config: `tinyllm chat` renders with the given
// template (a file, or the template itself), as the in-process engine given the same template
// does; "vllm" sampling defaults are temperature 1 without top-p / top-k (the demo model's
// generation_config.json says 0.8 / 0.95 / 40), a folder's generation_config.json replaces the
// model's; the engine reports what it was given.
TEST(Cli, ChatTemplateAndGenerationConfigAsVllm) {
  const std::string model = std::string(TLLM_SOURCE_DIR) + "/models/tiny-qwen2-demo";
  const fs::path tmp = fs::temp_directory_path() / ("tinyllm_cli_tpl_" + std::to_string(::getpid()));
  fs::create_directories(tmp / "greedy");
  const std::string tpl = "{% for m in messages %}Q: {{ m.content }}\nA:{% endfor %}";
  std::ofstream(tmp / "t.jinja") << tpl;
  std::ofstream(tmp / "in.txt") << "Tell me a fortune.\n";
  std::ofstream(tmp / "greedy" / "generation_config.json") << R"({"do_sample": false, "eos_token_id": 2})";
  const std::string common = " --max-tokens 12 --kv-cache-memory 64MiB ";
  const Result file = run_stdout("chat --model " + model + " --temperature 0 --chat-template " + (tmp / "t.jinja").string() +
                                 common + "< " + (tmp / "in.txt").string());
  const Result inline_tpl = run_stdout("chat --model " + model + " --temperature 0 --chat-template '" + tpl + "'" +
                                       common + "< " + (tmp / "in.txt").string());
  ASSERT_EQ(file.status, 0) << file.out;
  ASSERT_EQ(inline_tpl.status, 0) << inline_tpl.out;
  // What the engine generates for the prompt that template renders.
  tllm::EngineConfig c;
  c.model_dir = model;
  c.threads = 2;
  c.kv_cache_memory = 64u << 20;
  c.chat_template = tpl;
  tllm::LLMEngine engine(c);
  const nlohmann::ordered_json messages = {{{"role", "user"}, {"content", "Tell me a fortune."}}};
  const std::string rendered = engine.chat_template()->render(messages, nullptr, true);
  EXPECT_EQ(rendered, "Q: Tell me a fortune.\nA:");
  tllm::SamplingParams sp;
  sp.temperature = 0;
  sp.max_tokens = 12;
  const std::string want = engine.generate({engine.tokenizer()->encode(rendered, false)}, {sp})[0].text + "\n";
  EXPECT_EQ(file.out, want);
  EXPECT_EQ(inline_tpl.out, want);

  // Sampling defaults: "vllm" is temperature 1 with no top-p / top-k; a folder's config replaces
  // the model's (do_sample false: greedy); the model's end ids stay.
  const std::string gen = "generate --model " + model + " --prompt 'Once upon a time' --seed 11" + common;
  const Result vllm = run_stdout(gen + "--generation-config vllm");
  const Result explicit_params = run_stdout(gen + "--temperature 1 --top-p 1 --top-k 0 --min-p 0");
  ASSERT_EQ(vllm.status, 0) << vllm.out;
  EXPECT_EQ(vllm.out, explicit_params.out);
  const Result folder = run_stdout(gen + "--generation-config " + (tmp / "greedy").string());
  const Result greedy = run_stdout(gen + "--temperature 0");
  ASSERT_EQ(folder.status, 0) << folder.out;
  EXPECT_EQ(folder.out, greedy.out);
  const tllm::GenerationConfig own = tllm::GenerationConfig::load(model);
  const tllm::GenerationConfig g = tllm::GenerationConfig::load(model, (tmp / "greedy").string());
  EXPECT_FALSE(g.do_sample);
  EXPECT_FALSE(g.temperature.has_value());
  std::vector<int> ends = own.eos_token_ids;
  if (std::find(ends.begin(), ends.end(), 2) == ends.end()) ends.push_back(2);
  EXPECT_EQ(g.eos_token_ids, ends);
  const tllm::GenerationConfig v = tllm::GenerationConfig::load(model, "vllm");
  EXPECT_TRUE(v.do_sample);
  EXPECT_FALSE(v.temperature || v.top_p || v.top_k || v.min_p || v.repetition_penalty || v.max_new_tokens);
  EXPECT_EQ(v.eos_token_ids, own.eos_token_ids);
  fs::remove_all(tmp);
}

// tinyllm embed: one JSON object per input with the pooling engine's vector (text and ids);
// --similarity gives their cosine similarities; --dimensions cuts and renormalises.
TEST(Cli, EmbedPrintsTheEnginesVectors) {
  const std::string model = std::string(TLLM_SOURCE_DIR) + "/models/tiny-qwen2-demo";
  const std::string base = "embed --model " + model + " --kv-cache-memory 64MiB ";
  const auto stdout_of = [](const std::string& args) {
    const Result r = run_stdout(args);
    EXPECT_EQ(r.status, 0) << args;
    return r.out;
  };
  const std::string out = stdout_of(base + "--input \"A computer\" --input-ids 11,22,33");
  tllm::EngineConfig c;
  c.model_dir = model;
  c.threads = 2;
  c.kv_cache_memory = 64u << 20;
  c.runner = "pooling";
  tllm::LLMEngine engine(c);
  const auto want = engine.embed({engine.tokenizer()->encode("A computer", true), {11, 22, 33}});
  std::istringstream lines(out);
  std::string line;
  size_t i = 0;
  for (; std::getline(lines, line); ++i) {
    const auto j = nlohmann::json::parse(line);
    ASSERT_LT(i, want.size());
    EXPECT_EQ(j["index"], i);
    const auto v = j["embedding"].get<std::vector<float>>();
    ASSERT_EQ(v.size(), want[i].size());
    for (size_t k = 0; k < v.size(); ++k) EXPECT_FLOAT_EQ(v[k], want[i][k]) << i << ", " << k;
  }
  EXPECT_EQ(i, 2u);
  const auto sim = nlohmann::json::parse(stdout_of(base + "--input \"A computer\" --input \"A computer\" --input-ids 11,22,33 --similarity"));
  const auto& m = sim["cosine_similarity"];
  EXPECT_NEAR(m[0][1].get<double>(), 1.0, 1e-6);
  double dot = 0;
  for (size_t k = 0; k < want[0].size(); ++k) dot += double(want[0][k]) * want[1][k];
  EXPECT_NEAR(m[0][2].get<double>(), dot, 1e-5);  // unit vectors: the dot product
  const auto short_v = nlohmann::json::parse(stdout_of(base + "--input-ids 11,22,33 --dimensions 8"))["embedding"].get<std::vector<double>>();
  ASSERT_EQ(short_v.size(), 8u);
  double n = 0, n8 = 0;
  for (double x : short_v) n += x * x;
  for (int k = 0; k < 8; ++k) n8 += double(want[1][k]) * want[1][k];
  EXPECT_NEAR(n, 1.0, 1e-5);
  EXPECT_NEAR(short_v[0], want[1][0] / std::sqrt(n8), 1e-6);
}

namespace {

// `generate --json` output: the text its per-token lines rebuild, and the summary's finish reason.
std::pair<std::string, std::string> text_and_finish(const std::string& out) {
  std::string text, finish;
  std::istringstream lines(out);
  for (std::string line; std::getline(lines, line);) {
    const nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_discarded()) continue;
    if (j.contains("text")) text += j["text"].get<std::string>();
    if (j.contains("summary")) finish = j["summary"]["finish_reasons"][0];
  }
  return {text, finish};
}

}  // namespace

// Structured output from the command line: --json-schema (inline or @FILE) and --choice; the
// per-token JSON lines rebuild the text, which the schema's validator accepts when it stopped.
TEST(Cli, GenerateFollowsAJsonSchemaOrAChoice) {
  const std::string model = std::string(TLLM_SOURCE_DIR) + "/models/tiny-qwen2-demo";
  const std::string schema = R"({"type": "object", "properties": {"name": {"type": "string", "maxLength": 12},
      "year": {"type": "integer", "minimum": 900, "maximum": 1100}}, "required": ["name", "year"]})";
  const std::filesystem::path file =
      std::filesystem::temp_directory_path() / ("tllm_cli_schema_" + std::to_string(::getpid()) + ".json");
  { std::ofstream(file) << schema; }
  int stopped = 0;
  for (int seed = 1; seed <= 4; ++seed) {
    const Result r = run("generate --model " + model + " --prompt \"The king of Israel\" --max-tokens 80 --seed " +
                         std::to_string(seed) + " --kv-cache-memory 64MiB --json --json-schema @" + file.string());
    ASSERT_EQ(r.status, 0) << r.out;
    const auto [text, finish] = text_and_finish(r.out);
    SCOPED_TRACE(text);
    if (finish != "stop") continue;
    ++stopped;
    const nlohmann::json v = nlohmann::json::parse(text);
    EXPECT_TRUE(tllm::testing::SchemaOracle(nlohmann::json::parse(schema)).valid(v));
  }
  EXPECT_GT(stopped, 0);
  std::filesystem::remove(file);
  const Result c = run("generate --model " + model + " --prompt \"Is it good?\" --max-tokens 8 --seed 3 --kv-cache-memory 64MiB "
                       "--choice yes --choice no --choice \"not sure\"");
  ASSERT_EQ(c.status, 0) << c.out;
  const std::string out = c.out.substr(c.out.find('\n') + 1);
  EXPECT_TRUE(out.rfind("yes[", 0) == 0 || out.rfind("no[", 0) == 0 || out.rfind("not sure[", 0) == 0) << out;
  // --regex: the JSON lines' text matches whole when the run stopped.
  const std::string pattern = "(Yes|No), [a-z]+ [a-z]+\\.";
  const Result g = run("generate --model " + model + " --prompt \"Is it good?\" --max-tokens 24 --seed 5 "
                       "--kv-cache-memory 64MiB --json --regex '" + pattern + "'");
  ASSERT_EQ(g.status, 0) << g.out;
  const auto [text, finish] = text_and_finish(g.out);
  EXPECT_EQ(finish, "stop") << text;
  EXPECT_TRUE(std::regex_match(text, std::regex(pattern))) << text;
  // --grammar, from a file: a sentence of the grammar when the run stopped; a grammar that
  // cannot be compiled is a one-line error naming the line.
  const std::string grammar = "root ::= (\"Yes\" | \"No\") \", \" word \" \" word \".\"\nword ::= [a-z]+\n";
  const std::filesystem::path gfile =
      std::filesystem::temp_directory_path() / ("tllm_cli_grammar_" + std::to_string(::getpid()) + ".gbnf");
  { std::ofstream(gfile) << grammar; }
  const Result gr = run("generate --model " + model + " --prompt \"Is it good?\" --max-tokens 24 --seed 5 "
                        "--kv-cache-memory 64MiB --json --grammar @" + gfile.string());
  std::filesystem::remove(gfile);
  ASSERT_EQ(gr.status, 0) << gr.out;
  const auto [gtext, gfinish] = text_and_finish(gr.out);
  EXPECT_EQ(gfinish, "stop") << gtext;
  EXPECT_TRUE(tllm::Grammar::compile(grammar)->full_match(gtext)) << gtext;
  const Result bad = run("generate --model " + model + " --prompt x --grammar 'root ::= \"a\"\nroot ::= \"b\"'");
  EXPECT_NE(bad.status, 0);
  EXPECT_NE(bad.out.find("--grammar: grammar: line 2, column 1: rule 'root' is defined twice"), std::string::npos) << bad.out;
}

// A structured output whose masks cost the engine loop too much ends its request with an error
// naming why (the engine waits for every mask, so one ambiguous grammar over a 150k vocabulary
// slowed every request ~1 s per token). The budget is set to nothing through the environment
// here; by default the same run completes. `generate` exits 1 on a request's error (it used
// to print what came and exit 0).
TEST(Cli, AStructuredOutputOverItsMaskBudgetEndsWithAnError) {
  const std::string model = std::string(TLLM_SOURCE_DIR) + "/models/tiny-qwen2-demo";
  const std::filesystem::path gfile =
      std::filesystem::temp_directory_path() / ("tllm_cli_ambiguous_" + std::to_string(::getpid()) + ".gbnf");
  { std::ofstream(gfile) << "root ::= p\np ::= [a-z ] p [0-9] | [a-z ] p [A-Z] | [a-z ] p \".\" | \"\"\n"; }
  const std::string args = "generate --model " + model + " --prompt The --max-tokens 12 --ignore-eos --temperature 1 "
                           "--seed 5 --kv-cache-memory 64MiB --grammar @" + gfile.string();
  const Result over = run(args, "TLLM_MASK_BUDGET_MS=0 TLLM_MASK_MEAN_LIMIT_MS=0");
  EXPECT_EQ(over.status, 1) << over.out;
  EXPECT_NE(over.out.find("error: request 0 failed: structured output stopped: its token masks took"),
            std::string::npos) << over.out;
  const Result within = run(args);
  EXPECT_EQ(within.status, 0) << within.out;
  EXPECT_NE(within.out.find("12 tokens in"), std::string::npos) << within.out;
  std::filesystem::remove(gfile);
}

// tinyllm rag: index two documents with the demo model as the embedder, query with a chunk's
// exact text (it comes first, at cosine 1), ask the demo model with the passages; one-line
// errors for a foreign index file and a missing generator.
TEST(Cli, RagIndexQueryAsk) {
  const std::string model = std::string(TLLM_SOURCE_DIR) + "/models/tiny-qwen2-demo";
  const std::filesystem::path root =
      std::filesystem::temp_directory_path() / ("tllm_cli_rag_" + std::to_string(::getpid()));
  std::filesystem::remove_all(root);
  std::filesystem::create_directories(root / "docs");
  { std::ofstream(root / "docs" / "a.txt") << "The lighthouse keeper lit the lamp at dusk. Ships passed the strait.\n"; }
  { std::ofstream(root / "docs" / "b.md") << "Mix flour, water and salt. Knead the dough for ten minutes.\n"; }
  const std::string index = (root / "x.idx").string();
  const Result built = run("rag index --model " + model + " --kv-cache-memory 64MiB --input " + (root / "docs").string() +
                           " --index " + index + " --chunk-tokens 16 --chunk-overlap 0");
  ASSERT_EQ(built.status, 0) << built.out;
  EXPECT_NE(built.out.find("chunks of 2 documents"), std::string::npos) << built.out;
  const Result q = run_stdout("rag query --model " + model + " --kv-cache-memory 64MiB --index " + index +
                              " --query \"Knead the dough for ten minutes.\" --passages 2");
  ASSERT_EQ(q.status, 0) << q.out;
  const nlohmann::json first = nlohmann::json::parse(q.out.substr(0, q.out.find('\n')));
  EXPECT_EQ(first["rank"], 1);
  EXPECT_EQ(first["text"], "Knead the dough for ten minutes.");
  EXPECT_NEAR(first["score"].get<double>(), 1.0, 1e-4);
  EXPECT_EQ(first["source"], (root / "docs" / "b.md").string());
  const Result a = run_stdout("rag ask --model " + model + " --kv-cache-memory 64MiB --index " + index +
                              " --generator " + model + " --query \"How long to knead?\" --max-tokens 8 --seed 1");
  ASSERT_EQ(a.status, 0) << a.out;
  EXPECT_NE(a.out.find("Sources:\n[1] "), std::string::npos) << a.out;
  { std::ofstream(root / "not.idx") << "hello"; }
  const Result bad = run("rag query --model " + model + " --index " + (root / "not.idx").string() + " --query x");
  EXPECT_EQ(bad.status, 1);
  EXPECT_NE(bad.out.find("not a tinyllm RAG index"), std::string::npos) << bad.out;
  // An index path that is a directory: refused, and no "<path>.tmp" left behind.
  std::filesystem::create_directories(root / "dir.idx");
  const Result into_dir = run("rag index --model " + model + " --kv-cache-memory 64MiB --input " +
                              (root / "docs").string() + " --index " + (root / "dir.idx").string());
  EXPECT_EQ(into_dir.status, 1) << into_dir.out;
  EXPECT_NE(into_dir.out.find("it is a directory"), std::string::npos) << into_dir.out;
  EXPECT_FALSE(std::filesystem::exists(root / "dir.idx.tmp"));
  const Result no_gen = run("rag ask --model " + model + " --index " + index + " --query x");
  EXPECT_NE(no_gen.status, 0);
  EXPECT_NE(no_gen.out.find("--generator"), std::string::npos) << no_gen.out;
  std::filesystem::remove_all(root);
}

// TLLM_STEP_TIMING=1: one timing line when the engine ends, counting every step that
// sampled (the prefill step and one per further token) and the rows it sampled.
TEST(Cli, StepTimingCountsTheSamplingSteps) {
  const std::string model = std::string(TLLM_SOURCE_DIR) + "/models/tiny-qwen2-demo";
  const std::string args = "generate --model " + model + " --prompt \"And the LORD said\" --max-tokens 17 " +
                           "--ignore-eos --kv-cache-memory 64MiB";
  const Result r = run(args, "TLLM_STEP_TIMING=1");
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("[step timing] 17 steps, median us per step: schedule+build "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("sampled rows per step: mean 1.0, max 1, 0 steps below the max"), std::string::npos) << r.out;
  const Result quiet = run(args);
  ASSERT_EQ(quiet.status, 0) << quiet.out;
  EXPECT_EQ(quiet.out.find("[step timing]"), std::string::npos) << quiet.out;
}

// Memory the machine does not have (TINYLLM_DEBUG_HOST_MEMORY: a machine with that much
// available) is refused with an error saying what to change, where the kernel would grant it
// and kill the process with SIGKILL once the pages are touched (a 7B model in float32 on this
// 24 GB machine did): weights (converted or quantized ones before any is loaded: the model's
// lower bound, qwen2.cpp check_weights_fit), an explicit --kv-cache-memory; the default cache
// shrinks.
TEST(Cli, MemoryTheMachineLacksIsRefusedNotKilled) {
  const std::string model = std::string(TLLM_SOURCE_DIR) + "/models/tiny-qwen2-demo";
  const std::string small = std::string(TLLM_SOURCE_DIR) + "/bench/configs/qwen2.5-0.5b";
  Result r = run("generate --load-format dummy --model " + small + " --dtype float32 --prompt-ids 1,2 --max-tokens 1",
                 "TINYLLM_DEBUG_HOST_MEMORY=" + std::to_string(size_t{300} << 20));
  EXPECT_EQ(r.status, 1) << r.out;
  for (const char* part : {"error: out of host memory: the weights of ", " need at least 1.8 GiB (0.49 billion matrix "
                           "elements as f32), and 0.", "use --dtype bfloat16 (half the bytes of float32), --quantization"})
    EXPECT_NE(r.out.find(part), std::string::npos) << part << "\n" << r.out;
  // int4 needs at least half a byte per element: 0.23 GiB, more than a 300 MiB machine has
  // beside its 256 MiB reserve.
  r = run("generate --load-format dummy --model " + small + " --quantization int4 --prompt-ids 1,2 --max-tokens 1",
          "TINYLLM_DEBUG_HOST_MEMORY=" + std::to_string(size_t{300} << 20));
  EXPECT_EQ(r.status, 1) << r.out;
  EXPECT_NE(r.out.find("need at least 0.2 GiB (0.49 billion matrix elements as 4-bit codes)"), std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("; use a smaller model"), std::string::npos) << r.out;
  r = run("generate --model " + model + " --prompt hi --max-tokens 2 --kv-cache-memory 1GiB",
          "TINYLLM_DEBUG_HOST_MEMORY=" + std::to_string(size_t{700} << 20));
  EXPECT_EQ(r.status, 1) << r.out;
  EXPECT_NE(r.out.find("error: --kv-cache-memory 1024 MiB is more than the "), std::string::npos) << r.out;
  r = run("generate --model " + model + " --prompt hi --max-tokens 2",
          "TINYLLM_DEBUG_HOST_MEMORY=" + std::to_string(size_t{1200} << 20));
  EXPECT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("MiB of memory available after the weights) instead of the default 2048 MiB"),
            std::string::npos)
      << r.out;
}

TEST(Cli, BadInputGivesOneLineErrors) {
  const std::string model = std::string(TLLM_SOURCE_DIR) + "/models/tiny-qwen2-demo";
  struct Bad {
    std::string args, expect;
  };
  const fs::path tmp = fs::temp_directory_path() / ("tinyllm_cli_bad_" + std::to_string(::getpid()));
  fs::create_directories(tmp);
  std::ofstream(tmp / "config.json") << "{\"architectures\": [\"MistralForCausalLM\"], \"hidden_size\": 8}";
  // The demo model with max_position_embeddings 2^31 - 1: its RoPE table would take 512 GiB.
  fs::create_directories(tmp / "long");
  for (const char* f : {"model.safetensors", "tokenizer.json", "tokenizer_config.json"})
    fs::copy_file(fs::path(model) / f, tmp / "long" / f);
  {
    nlohmann::json cfg = nlohmann::json::parse(std::ifstream(fs::path(model) / "config.json"));
    cfg["max_position_embeddings"] = 2147483647;
    std::ofstream(tmp / "long" / "config.json") << cfg.dump();
  }
  // A config.json that is not JSON, its bad literal the two-byte "\xc3\xbf": the parser's
  // message quotes the byte it stopped at, a lone UTF-8 lead byte, which the error line used to
  // print as it was (invalid UTF-8 on stderr).
  fs::create_directories(tmp / "notjson");
  std::ofstream(tmp / "notjson" / "config.json") << "{\"hidden_size\": \xc3\xbf}";
  const std::vector<Bad> bad = {
      {"generate --model " + (tmp / "notjson").string() + " --prompt hi", "config.json: invalid JSON: "},
      {"generate --model " + (tmp / "long").string() + " --prompt hi",
       "max_model_len 2147483647 (max_position_embeddings in config.json) needs a RoPE table of 512 GiB"},
      {"generate --model /nonexistent/dir --prompt hi", "does not exist"},
      // What needs no model fails before the load: these name the flag, not the missing model.
      {"generate --model /nonexistent/dir --prompt hi --temperature -1", "temperature must be a finite number >= 0"},
      {"generate --model /nonexistent/dir --prompt \"$(printf 'ab\\200c')\"", "--prompt is not valid UTF-8"},
      {"generate --model /nonexistent/dir --prompt-ids 1,x", "\"x\" is not a token id"},
      {"generate --model /nonexistent/dir --prompt hi --choice \"$(printf 'y\\377')\"", "--choice is not valid UTF-8"},
      {"generate --model /nonexistent/dir --prompt hi --logprobs 2", "--logprobs are printed with --json"},
      {"generate --model /nonexistent/dir --prompt hi --stop \"$(printf '\\377')\"", "--stop is not valid UTF-8"},
      {"generate --model /nonexistent/dir --prompt hi --regex '[a'", "--regex: regex: missing ']'"},
      {"chat --model /nonexistent/dir --top-p 2", "top_p must be in (0, 1], got 2"},
      {"chat --model /nonexistent/dir --logprobs 2", "chat does not print log-probs"},
      {"embed --model /nonexistent/dir --input \"$(printf 'x\\377')\"", "--input is not valid UTF-8"},
      {"generate --model " + tmp.string() + " --prompt-ids 1", "MistralForCausalLM"},
      {"generate --model " + model + " --prompt-ids 1,x,3", "not a token id"},
      {"generate --model " + model + " --prompt-ids 99999 --kv-cache-memory 64MiB",
       "--prompt-ids: token id 99999 is outside the model's vocabulary [0, "},
      {"generate --model " + model + " --prompt hi --temperature -1 --kv-cache-memory 64MiB", "temperature"},
      {"generate --model " + model + " --prompt hi --max-tokens 5000 --kv-cache-memory 64MiB", "maximum context length"},
      {"generate --model " + model + " --prompt hi --device tpu", "unknown device"},
      {"generate --model " + model + " --prompt hi --gpu-memory-utilization 1.5 --kv-cache-memory 64MiB",
       "gpu_memory_utilization must be in (0, 1], got 1.5"},
      // Checked before any device is opened: the CUDA kernels take bf16 weights.
      {"generate --model " + model + " --prompt hi --device cuda --dtype float16",
       "--dtype float16: the CUDA backend computes in bfloat16"},
      {"generate --model " + model + " --prompt hi --device cuda --kv-cache-dtype float16",
       "--kv-cache-dtype float16: the CUDA backend keeps its KV cache in bfloat16"},
      {"generate --model " + model + " --prompt hi --kv-cache-dtype fp8_e4m3", "fp8 KV caches are not supported"},
      {"generate --model " + model + " --prompt hi --kv-cache-dtype float8", "--kv-cache-dtype must be auto, float32, bfloat16 or float16, got \"float8\""},
      {"generate --model " + model + " --prompt hi --kv-cache-memory 3XB", "unknown size unit"},
      {"generate --model " + model + " --prompt hi --kv-cache-memory 1.5.5GiB", "\"1.5.5GiB\" is not a size"},
      {"bench --model " + model + " -p 0", "-p/--n-prompt values must be >= 1, got 0"},
      {"tokenize --model " + model + " --file " + tmp.string(), "it is a directory"},
      {"generate --model " + model + "/config.json --prompt hi", "is not a directory (give the folder with config.json)"},
      {"rag index --model /nonexistent/dir --input /nonexistent --index /tmp/x --document-prefix \"$(printf 'x\\377')\"",
       "--document-prefix is not valid UTF-8"},
      {"bench --model " + model + " -r 0", "-r/--repetitions must be >= 1, got 0"},
      {"generate --model " + model + " --prompt hi --kv-cache-memory 0.5", "\"0.5\" is less than one byte"},
      {"generate --model " + model + " --prompt hi --kv-cache-memory 99999999999GiB", "more bytes than any machine"},
      // Invalid UTF-8 (a lone continuation byte after "ab"; a truncated 3-byte sequence):
      // refused naming the byte, as the server refuses such a body, not encoded as U+FFFD.
      {"generate --model " + model + " --prompt \"$(printf 'ab\\200c')\" --kv-cache-memory 64MiB",
       "--prompt is not valid UTF-8: the sequence at byte 2 (0x80) is invalid"},
      {"tokenize --model " + model + " \"$(printf 'x\\342\\202')\"", "TEXT is not valid UTF-8: the sequence at byte 1 (0xE2)"},
      {"generate --model " + model + " --prompt hi --num-speculative-tokens 3", "needs a draft model"},
      {"generate --model " + model + " --prompt hi --runner pooling", "generate generates text, and --runner pooling"},
      {"chat --model " + model + " --task embed", "chat generates text"},
      {"embed --model " + model + " --kv-cache-memory 64MiB", "give --input TEXT or --input-ids"},
      {"embed --model " + model + " --kv-cache-memory 64MiB --input x --dimensions 999", "--dimensions must be in [1, 256]"},
      {"generate --model " + model + " --prompt hi --speculative-model /nonexistent/draft",
       "speculative model directory \"/nonexistent/draft\" does not exist"},
      {"generate --model " + model + " --prompt hi --speculative-config '{\"model\": \"d\", \"k\": 1}'",
       "--speculative-config: unknown field \"k\""},
      {"generate --model " + model + " --prompt hi --speculative-config '{\"model\": \"d\"}' --speculative-model d", "not both"},
      {"generate --model " + model + " --prompt hi --kv-cache-memory 64MiB --chat-template /nonexistent/t.jinja",
       "--chat-template \"/nonexistent/t.jinja\" is neither a file nor a template"},
      {"generate --model " + model + " --prompt hi --kv-cache-memory 64MiB --chat-template '{% if %}'", "--chat-template"},
      {"generate --model " + model + " --prompt hi --kv-cache-memory 64MiB --generation-config /nonexistent",
       "/nonexistent/generation_config.json does not exist"},
      {"serve " + model + " --tensor-parallel-size 3 --kv-cache-memory 64MiB",
       "num_attention_heads 4 is not divisible by the tensor parallel size 3"},
      {"serve " + model + " --enable-log-requests --disable-log-requests", "not both"},
  };
  // Flag values CLI11 itself refuses (its exit status, one line naming the flag).
  const std::vector<Bad> refused = {
      {"generate --model " + model + " --prompt hi --seed -1", "--seed: must be an integer in [0, 18446744073709551615]"},
      {"generate --model " + model + " --prompt hi --seed 18446744073709551616", "--seed: must be an integer"},
      {"generate --model " + model + " --prompt hi --max-model-len -1", "--max-model-len: must be an integer >= 0"},
      {"generate --model " + model + " --prompt hi --kv-cache-memory 64MiB --json-schema '{\"type\": \"number\", \"multipleOf\": 2}'",
       "--json-schema: schema: 'multipleOf' is not supported"},
      {"generate --model " + model + " --prompt hi --kv-cache-memory 64MiB --json-schema '{\"type\":'", "--json-schema: the schema"},
      {"generate --model " + model + " --prompt hi --kv-cache-memory 64MiB --json-schema @/nonexistent.json",
       "--json-schema: cannot read /nonexistent.json"},
      {"generate --model " + model + " --prompt hi --kv-cache-memory 64MiB --choice a --json-schema '{}'", "give one of"},
      {"generate --model " + model + " --prompt hi --kv-cache-memory 64MiB --regex '[a'", "--regex: regex: missing ']'"},
      {"serve --model " + model + " --port 99999", "--port: Value 99999 not in range 0 to 65535"},
      {"serve --model " + model + " --http-threads -1", "--http-threads: must be an integer >= 0"},
      {"serve --model " + model + " --reasoning-parser granite", "--reasoning-parser: granite not in {qwen3,deepseek_r1}"},
      {"serve " + model + " --tool-call-parser pythonic", "--tool-call-parser: \"pythonic\" is not supported"},
      {"generate --model " + model + " --prompt hi --speculative-model d --num-speculative-tokens 17",
       "--num-speculative-tokens: Value 17 not in range 1 to 16"},
  };
  // Engine settings that need no model, the model directory among them, fail before the
  // server listens (they failed after, as "could not load the model", with the port taken).
  const std::vector<Bad> before_listening = {
      {"serve --model " + model + " --max-num-seqs 0 --port 0", "error: max_num_seqs must be >= 1, got 0"},
      {"serve --model /nonexistent/model --device cpu --host 127.0.0.1 --port 0",
       "error: model directory \"/nonexistent/model\" does not exist"},
  };
  for (const Bad& b : before_listening) {
    const Result r = run(b.args);
    EXPECT_EQ(r.status, 1) << b.args << "\n" << r.out;
    EXPECT_NE(r.out.find(b.expect), std::string::npos) << b.args << "\n" << r.out;
    EXPECT_EQ(r.out.find("listening"), std::string::npos) << b.args << "\n" << r.out;
  }
  for (const Bad& b : refused) {
    const Result r = run(b.args);
    EXPECT_NE(r.status, 0) << b.args << "\n" << r.out;
    EXPECT_NE(r.out.find(b.expect), std::string::npos) << b.args << "\n" << r.out;
  }
  {
    const Result r = run(bad[0].args);
    EXPECT_NE(r.out.find("\\xc3'"), std::string::npos) << r.out;  // the byte, written out
    EXPECT_EQ(std::count_if(r.out.begin(), r.out.end(), [](char c) { return static_cast<unsigned char>(c) >= 0x80; }), 0)
        << r.out;
  }
  for (const Bad& b : bad) {
    const Result r = run(b.args);
    EXPECT_EQ(r.status, 1) << b.args << "\n" << r.out;
    EXPECT_NE(r.out.find("error: "), std::string::npos) << b.args << "\n" << r.out;
    EXPECT_NE(r.out.find(b.expect), std::string::npos) << b.args << "\n" << r.out;
  }
  // What the command-line parser refuses (a flag's validator, an unknown flag): the same
  // "error: " line, exit status 2 (usage), as argparse gives.
  for (const auto& [args, expect] : std::vector<std::pair<std::string, std::string>>{
           {"rag query --model " + model + " --index /tmp/x --query q --passages 0", "--passages: Value 0 not in range 1"},
           {"generate --model " + model + " --seed -1", "--seed: must be an integer in [0, 18446744073709551615]"},
           {"generate --model " + model + " --no-such-flag", "The following argument was not expected: --no-such-flag"}}) {
    const Result r = run(args);
    EXPECT_EQ(r.status, 2) << args << "\n" << r.out;
    EXPECT_EQ(r.out.rfind("error: " + expect, 0), 0u) << args << "\n" << r.out;
  }
  // No command: the commands there are, then the error (it said only "A subcommand is required").
  for (const auto& [args, commands] : std::vector<std::pair<std::string, std::vector<std::string>>>{
           {"", {"generate", "chat", "serve", "bench", "quantize"}}, {"rag", {"index", "query", "ask"}}}) {
    const Result r = run(args);
    EXPECT_EQ(r.status, 2) << args << "\n" << r.out;
    for (const std::string& c : commands) EXPECT_NE(r.out.find("\n  " + c + " "), std::string::npos) << args << "\n" << r.out;
    EXPECT_NE(r.out.find("error: name a command"), std::string::npos) << args << "\n" << r.out;
  }
  fs::remove_all(tmp);
}

// tinyllm bench on the shipped model, int4 on load: a pp and a tg row, each beside a limit
// measured in the same run; the tg row's limit is bytes per step over a bandwidth no lower
// than the start-up reading (on the CPU the higher of it and a reading after the row).
// tinyllm quantize loads what it wrote before it reports success: a float checkpoint that
// lacks a tensor used to give exit 0 and an output that `generate` refused.
TEST(Cli, QuantizeChecksThatItsOutputLoads) {
  const fs::path tmp = fs::temp_directory_path() / ("tinyllm_quantize_" + std::to_string(::getpid()));
  fs::remove_all(tmp);
  const fs::path src = std::string(TLLM_SOURCE_DIR) + "/models/tiny-qwen2-demo";
  fs::create_directories(tmp / "in");
  for (const char* f : {"config.json", "tokenizer.json", "tokenizer_config.json"})
    if (fs::exists(src / f)) fs::copy_file(src / f, tmp / "in" / f);
  const tllm::Checkpoint ck = tllm::Checkpoint::open(src.string());
  const std::string dropped = "model.layers.1.self_attn.o_proj.weight";
  std::vector<std::pair<std::string, tllm::Tensor>> kept;
  for (const std::string& n : ck.names())
    if (n != dropped) kept.emplace_back(n, ck.get(n));
  ASSERT_EQ(kept.size() + 1, ck.names().size());
  tllm::write_safetensors((tmp / "in" / "model.safetensors").string(), kept, {});

  const Result bad = run("quantize --model " + (tmp / "in").string() + " --out " + (tmp / "out").string());
  EXPECT_EQ(bad.status, 1) << bad.out;
  EXPECT_NE(bad.out.find("does not load"), std::string::npos) << bad.out;
  EXPECT_NE(bad.out.find(dropped), std::string::npos) << bad.out;
  const Result good = run("quantize --model " + src.string() + " --out " + (tmp / "good").string());
  EXPECT_EQ(good.status, 0) << good.out;
  EXPECT_NE(good.out.find("weights quantized to 4 bits"), std::string::npos) << good.out;
  fs::remove_all(tmp);
}

TEST(Cli, BenchRowsCarryTheirLimits) {
  const std::string model = std::string(TLLM_SOURCE_DIR) + "/models/tiny-qwen2-demo";
  const Result r = run("bench --model " + model + " -p 16 -n 8 -r 1 --json --quantization int4 --quant-group-size 32");
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("quantize-on-load 4-bit, group 32 weights"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find(" s: "), std::string::npos) << "the load line names the load time\n" << r.out;
  const size_t brace = r.out.rfind("\n{");
  ASSERT_NE(brace, std::string::npos) << r.out;
  const nlohmann::json j = nlohmann::json::parse(r.out.substr(brace + 1));
  const double bw = j.at("bandwidth_Bps").get<double>();
  EXPECT_GT(bw, 1e8);
  EXPECT_GT(j.at("matmul_peak_flops").get<double>(), 1e8);
  ASSERT_EQ(j.at("rows").size(), 2u) << j.dump();
  for (const auto& row : j.at("rows")) {
    const double tps = row.at("tokens_per_s").get<double>(), limit = row.at("limit_tokens_per_s").get<double>();
    EXPECT_GT(tps, 0.0) << row.dump();
    EXPECT_GT(limit, 0.0) << row.dump();
    EXPECT_NEAR(row.at("ratio").get<double>(), tps / limit, 1e-9) << row.dump();
  }
  const auto& tg = j.at("rows")[1];
  EXPECT_EQ(tg.at("test"), "tg8");
  const std::string note = tg.at("note");
  ASSERT_EQ(note.rfind("roofline ", 0), 0u) << note;
  const double mb = std::stod(note.substr(9));
  EXPECT_GT(mb, 1.0) << note;  // the demo model's int4 layers + int8 lm_head: ~4 MB per step
  EXPECT_LT(mb, 8.0) << note;
  EXPECT_GE(tg.at("limit_tokens_per_s").get<double>() * mb * 1e6, bw * (1 - 1e-5)) << note;
}

// The tg roofline counts the KV cache in the dtype it is stored in: bf16 instead of the CPU's
// default f32 halves the KV bytes per step (demo model: 6 layers x 2 kv heads x 64 dims).
TEST(Cli, BenchCountsTheKvCacheDtype) {
  const std::string model = std::string(TLLM_SOURCE_DIR) + "/models/tiny-qwen2-demo";
  auto step_mb = [&](const std::string& kv) {
    const Result r = run("bench --model " + model + " -p 16 -n 4 -d 256 -r 1 --kv-cache-dtype " + kv);
    EXPECT_EQ(r.status, 0) << r.out;
    const size_t at = r.out.find("| tg4 | 1 | 256 |");
    const size_t rl = r.out.find("roofline ", at);
    if (at == std::string::npos || rl == std::string::npos) {
      ADD_FAILURE() << r.out;
      return 0.0;
    }
    return std::stod(r.out.substr(rl + 9));
  };
  const double f32 = step_mb("float32"), bf16 = step_mb("bfloat16");
  const double kv_f32 = 2.0 * 6 * 2 * 64 * 4 * (256 + 4 / 2.0) / 1e6;  // K and V, layers, kv heads, dims, bytes, mean context
  EXPECT_NEAR(f32 - bf16, kv_f32 / 2, 1e-3) << f32 << " vs " << bf16;
}

// A CPU decode row whose step fits in the last-level cache says so (its ratio may pass 100% of
// the DRAM roofline; the demo model's does on a server CPU), and says nothing of it where the
// step does not fit or sysfs reports no cache: the cache as sysfs reports it for cpu0 on the
// machine running the test.
TEST(Cli, BenchNamesTheCacheWhereTheStepFitsInIt) {
  const int64_t llc = tllm::cpu_last_level_cache_bytes();
  const std::string model = std::string(TLLM_SOURCE_DIR) + "/models/tiny-qwen2-demo";  // ~12 MB per step
  const Result r = run("bench --model " + model + " -p 16 -n 2 -r 1");
  ASSERT_EQ(r.status, 0) << r.out;
  const size_t at = r.out.find("| tg2 | 1 | 0 |");
  const size_t rl = r.out.find("roofline ", at);
  ASSERT_NE(rl, std::string::npos) << r.out;
  const double mb = std::stod(r.out.substr(rl + 9));
  const std::string line = r.out.substr(at, r.out.find('\n', at) - at);
  const bool fits = llc > 0 && mb * 1e6 <= static_cast<double>(llc);
  EXPECT_EQ(line.find("last-level cache") != std::string::npos, fits) << line << " llc " << llc;
}
