// GGUF files (io/gguf.h, io/gguf_model.h): the block decoders against floats computed by
// scripts/gguf/write_gguf.py from ggml's block layouts; headers that are not GGUF or are cut
// short; a model file's folder (config, tokenizer, chat template) against the checkpoint it
// was written from. The models' logits: tests/engine/test_gguf_parity.cpp.
#include "io/gguf.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <cstdlib>
#include <functional>
#include <filesystem>
#include <fstream>
#include <set>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "io/gguf_model.h"
#include "io/json.h"
#include "io/safetensors.h"
#include "test_helpers.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"

namespace tllm {
namespace {

namespace fs = std::filesystem;
using testing::read_bytes;
using testing::write_bytes;

// The script's interpreter: Debian's, which has NumPy (scripts/install_deps.sh).
std::string python() { return fs::exists("/usr/bin/python3") ? "/usr/bin/python3" : "python3"; }

int write_gguf(const std::string& args) {
  const std::string cmd = python() + " " + TLLM_SOURCE_DIR + "/scripts/gguf/write_gguf.py " + args;
  return std::system(cmd.c_str());
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

class Gguf : public testing::TempDirTest {};

TEST_F(Gguf, BlockDecodersMatchTheLayouts) {
  ASSERT_EQ(write_gguf("blocks " + path("b.gguf") + " " + path("b.f32") + " --seed 3"), 0);
  const auto g = GgufFile::open(path("b.gguf"));
  const std::string expected = read_bytes(path("b.f32"));
  const auto* want = reinterpret_cast<const float*>(expected.data());
  size_t at = 0;
  int types = 0;
  for (const auto& [name, info] : g->tensors()) {  // name order, as the script wrote them
    const Tensor t = g->tensor_floats(name);
    ASSERT_EQ(t.dtype(), DType::F32) << name;
    ASSERT_EQ(t.shape(), (Shape{3, 512})) << name;
    ASSERT_LE((at + t.numel()) * 4, expected.size());
    int bad = 0;
    for (int64_t i = 0; i < t.numel(); ++i) {
      const float a = t.data<float>()[i], b = want[at + i];
      if (std::abs(a - b) > 1e-6f * std::max(1.f, std::abs(b)) && ++bad < 5)
        ADD_FAILURE() << name << "[" << i << "] = " << a << ", expected " << b;
    }
    EXPECT_EQ(bad, 0) << name << " (" << ggml_type_name(info.type) << ")";
    at += t.numel();
    ++types;
  }
  EXPECT_EQ(types, 11);
  EXPECT_EQ(at * 4, expected.size());
}

// A split file (llama.cpp's gguf-split layout, write_gguf.py --split): its first part opens
// every part as one file with the single file's tensors, byte for byte, also through a model
// folder's link; a later part or a missing one is an error naming the part.
TEST_F(Gguf, SplitFilesReadAsOne) {
  const std::string demo = std::string(TLLM_SOURCE_DIR) + "/models/tiny-qwen2-demo";
  ASSERT_EQ(write_gguf("model " + demo + " " + path("one.gguf") + " --type q4_K"), 0);
  ASSERT_EQ(write_gguf("model " + demo + " " + path("s.gguf") + " --type q4_K --split 3"), 0);
  const auto one = GgufFile::open(path("one.gguf"));
  const auto split = GgufFile::open(path("s-00001-of-00003.gguf"));
  EXPECT_EQ(one->parts(), 1);
  EXPECT_EQ(split->parts(), 3);
  ASSERT_EQ(split->tensors().size(), one->tensors().size());
  std::set<int> parts;
  for (const auto& [name, info] : one->tensors()) {
    ASSERT_TRUE(split->has_tensor(name)) << name;
    const GgufTensorInfo& s = split->tensor(name);
    parts.insert(s.part);
    ASSERT_EQ(s.nbytes, info.nbytes) << name;
    EXPECT_EQ(std::memcmp(split->tensor_bytes(name), one->tensor_bytes(name), info.nbytes), 0) << name;
  }
  EXPECT_EQ(parts, (std::set<int>{0, 1, 2}));
  EXPECT_EQ(split->get_string("general.architecture"), "qwen2");
  // Through the model folder (model.gguf links to the first part).
  const std::string dir = materialize_gguf(path("s-00001-of-00003.gguf"), path("cache"));
  const Checkpoint ck = Checkpoint::open(dir);
  const Tensor a = ck.get("model.layers.1.mlp.down_proj.weight");
  const Tensor b = one->tensor_floats("blk.1.ffn_down.weight");
  ASSERT_EQ(a.numel(), b.numel());
  EXPECT_EQ(std::memcmp(a.raw(), b.raw(), a.nbytes()), 0);
  EXPECT_NE(error_of([&] { GgufFile::open(path("s-00002-of-00003.gguf")); })
                .find("part 2 of a split GGUF of 3 parts; give its first part, s-00001-of-00003.gguf"),
            std::string::npos);
  fs::rename(path("s-00003-of-00003.gguf"), path("elsewhere.gguf"));
  const std::string missing = error_of([&] { GgufFile::open(path("s-00001-of-00003.gguf")); });
  EXPECT_NE(missing.find("part 3 of the split GGUF's 3 is missing (" + path("s-00003-of-00003.gguf") + ")"),
            std::string::npos)
      << missing;
  // A part renamed out of llama.cpp's pattern cannot find its siblings.
  fs::rename(path("s-00001-of-00003.gguf"), path("renamed.gguf"));
  const std::string renamed = error_of([&] { GgufFile::open(path("renamed.gguf")); });
  EXPECT_NE(renamed.find("whose name does not follow llama.cpp's PREFIX-00001-of-00003.gguf"), std::string::npos)
      << renamed;
  EXPECT_FALSE(parse_gguf_split_name("a-00001-of-0003.gguf"));
  EXPECT_FALSE(parse_gguf_split_name("a-00004-of-00003.gguf"));
  const auto n = parse_gguf_split_name("qwen2.5-7b-instruct-q4_k_m-00002-of-00002.gguf");
  ASSERT_TRUE(n);
  EXPECT_EQ(n->prefix, "qwen2.5-7b-instruct-q4_k_m");
  EXPECT_EQ(n->part, 2);
  EXPECT_EQ(n->count, 2);
  EXPECT_EQ(gguf_split_name(n->prefix, 1, 2), "qwen2.5-7b-instruct-q4_k_m-00001-of-00002.gguf");
}

TEST_F(Gguf, BadFilesAreNamed) {
  write_bytes(path("not.gguf"), "GGML\x03\0\0\0");
  EXPECT_NE(error_of([&] { GgufFile::open(path("not.gguf")); }).find("not a GGUF file"), std::string::npos);
  write_bytes(path("v1.gguf"), std::string("GGUF\x01\0\0\0", 8) + std::string(16, '\0'));
  EXPECT_NE(error_of([&] { GgufFile::open(path("v1.gguf")); }).find("GGUF version 1 is not supported"),
            std::string::npos);
  ASSERT_EQ(write_gguf("blocks " + path("b.gguf") + " " + path("b.f32")), 0);
  const std::string whole = read_bytes(path("b.gguf"));
  write_bytes(path("header.gguf"), whole.substr(0, 100));
  EXPECT_NE(error_of([&] { GgufFile::open(path("header.gguf")); }).find("GGUF header truncated"), std::string::npos);
  write_bytes(path("data.gguf"), whole.substr(0, whole.size() - 1000));
  const std::string m = error_of([&] { GgufFile::open(path("data.gguf")); });
  EXPECT_NE(m.find("lies past the end of the file"), std::string::npos) << m;
  // A type this reader does not decode is refused by name (q2_K is 10).
  std::string q2 = whole;
  const size_t at = q2.find("t_q4_0");
  ASSERT_NE(at, std::string::npos);
  const size_t type_at = at + 6 + 4 + 2 * 8;  // name, n_dims, ne[2]
  q2[type_at] = 10;
  write_bytes(path("q2.gguf"), q2);
  const std::string q2_error = error_of([&] { GgufFile::open(path("q2.gguf")); });
  EXPECT_NE(q2_error.find("type q2_K, which tinyllm does not read"), std::string::npos) << q2_error;
  EXPECT_NE(q2_error.find("a Q3_K_M, IQ4_XS, Q4_K_M or larger file of the same model loads"), std::string::npos)
      << q2_error;
  // A tensor whose offset points into another tensor's bytes (q4_1 moved onto q4_0's block).
  std::string overlap = whole;
  auto offset_at = [&](const std::string& name) {
    const size_t n = overlap.find(name);
    return n + name.size() + 4 + 2 * 8 + 4;  // name, n_dims, ne[2], type
  };
  ASSERT_NE(overlap.find("t_q4_1"), std::string::npos);
  overlap.replace(offset_at("t_q4_1"), 8, overlap.substr(offset_at("t_q4_0"), 8));
  write_bytes(path("overlap.gguf"), overlap);
  const std::string o = error_of([&] { GgufFile::open(path("overlap.gguf")); });
  EXPECT_NE(o.find("overlap in the data block"), std::string::npos) << o;
  EXPECT_NE(o.find("t_q4_1"), std::string::npos) << o;
  EXPECT_FALSE(is_gguf_file(path("not.gguf")));
  EXPECT_TRUE(is_gguf_file(path("b.gguf")));
  EXPECT_FALSE(is_gguf_file(path("missing.gguf")));
  EXPECT_NE(error_of([&] { materialize_gguf(path("b.gguf"), path("cache")); }).find("general.architecture \"blocks\""),
            std::string::npos);
}

// The shipped demo model as GGUF: the folder made from it tokenizes and renders its chat
// template as the original does, and its tensors are the checkpoint's (q8_0 within half a
// quantization step, norms exactly).
TEST_F(Gguf, ModelFolderCarriesConfigTokenizerAndTemplate) {
  const std::string demo = std::string(TLLM_SOURCE_DIR) + "/models/tiny-qwen2-demo";
  ASSERT_EQ(write_gguf("model " + demo + " " + path("demo.gguf") + " --type q8_0"), 0);
  const std::string dir = materialize_gguf(path("demo.gguf"), path("cache"));
  EXPECT_EQ(materialize_gguf(path("demo.gguf"), path("cache")), dir);  // written once
  const nlohmann::json want = read_json_file(demo + "/config.json"), got = read_json_file(dir + "/config.json");
  for (const char* k : {"hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
                        "num_key_value_heads", "vocab_size", "max_position_embeddings", "tie_word_embeddings"})
    EXPECT_EQ(got[k], want[k]) << k;
  EXPECT_NEAR(got["rms_norm_eps"].get<double>(), want["rms_norm_eps"].get<double>(), 1e-12);
  EXPECT_EQ(got["architectures"][0], "Qwen2ForCausalLM");

  const auto a = Tokenizer::load(demo), b = Tokenizer::load(dir);
  std::ifstream corpus(std::string(TLLM_SOURCE_DIR) + "/tests/data/tokenizer/corpus.jsonl");
  std::string line;
  int n = 0;
  while (std::getline(corpus, line)) {
    const std::string text = nlohmann::json::parse(line)["text"].get<std::string>();
    ASSERT_EQ(a->encode(text), b->encode(text)) << text;
    ++n;
  }
  EXPECT_GT(n, 20);
  const std::string special = "<|im_start|>user\nhi<|im_end|>";
  EXPECT_EQ(a->encode(special), b->encode(special));
  EXPECT_EQ(a->eos_token(), b->eos_token());
  const auto ta = ChatTemplate::load(demo, ""), tb = ChatTemplate::load(dir, "");
  ASSERT_TRUE(ta && tb);
  const nlohmann::ordered_json msgs = {{{"role", "user"}, {"content", "Who was Moses?"}}};
  EXPECT_EQ(ta->render(msgs, nullptr, true), tb->render(msgs, nullptr, true));

  const Checkpoint orig = Checkpoint::open(demo), conv = Checkpoint::open(dir);
  EXPECT_EQ(conv.names().size(), orig.names().size());
  for (const std::string& name : {std::string("model.layers.0.input_layernorm.weight"),
                                  std::string("model.layers.1.mlp.down_proj.weight")}) {
    const Tensor x = orig.get(name), y = conv.get(name);
    ASSERT_EQ(x.shape(), y.shape()) << name;
    ASSERT_EQ(y.dtype(), DType::F32) << name;
    std::vector<float> xf(x.numel());
    for (int64_t i = 0; i < x.numel(); ++i) xf[i] = bf16_to_f32(x.data<uint16_t>()[i]);
    double worst = 0;
    for (int64_t r = 0; r < x.numel(); r += 32) {  // per 32-value block: within half a step of its scale
      float amax = 0;
      for (int64_t i = r; i < std::min<int64_t>(r + 32, x.numel()); ++i) amax = std::max(amax, std::abs(xf[i]));
      for (int64_t i = r; i < std::min<int64_t>(r + 32, x.numel()); ++i)
        worst = std::max(worst, std::abs(xf[i] - y.data<float>()[i]) / (amax / 127 + 1e-30));
    }
    EXPECT_LE(worst, name.find("norm") != std::string::npos ? 0.0 : 0.51) << name;
  }
}

}  // namespace
}  // namespace tllm
