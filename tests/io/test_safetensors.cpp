#include <gtest/gtest.h>

#include <cstring>
#include <numeric>

#include "core/dtype.h"
#include "io/safetensors.h"
#include "test_helpers.h"

using namespace tllm;
using tllm::testing::expect_error_with;
using tllm::testing::read_bytes;
using tllm::testing::safetensors_bytes;
using tllm::testing::write_bytes;

namespace {

// Tensor whose bytes are 0, 1, 2, ... (mod 251) so every byte position is distinguishable.
Tensor patterned(Shape shape, DType dtype, int seed = 0) {
  Tensor t = Tensor::empty(std::move(shape), dtype);
  auto* p = static_cast<unsigned char*>(t.raw());
  for (size_t i = 0; i < t.nbytes(); ++i) p[i] = static_cast<unsigned char>((i * 7 + seed) % 251);
  return t;
}

bool same_bytes(const Tensor& a, const Tensor& b) {
  return a.dtype() == b.dtype() && a.shape() == b.shape() && a.nbytes() == b.nbytes() &&
         (a.nbytes() == 0 || std::memcmp(a.raw(), b.raw(), a.nbytes()) == 0);
}

std::string bytes_of(std::initializer_list<int> v) {
  std::string s;
  for (int c : v) s.push_back(static_cast<char>(c));
  return s;
}

std::string f32_bytes(std::initializer_list<float> v) {
  std::string s;
  for (float f : v) s.append(reinterpret_cast<const char*>(&f), 4);
  return s;
}

class Safetensors : public tllm::testing::TempDirTest {};

}  // namespace

TEST_F(Safetensors, RoundTripEveryDtype) {
  std::vector<std::pair<std::string, Tensor>> ts;
  int seed = 0;
  for (DType t : {DType::F32, DType::F16, DType::BF16, DType::F64, DType::I8, DType::U8, DType::I16, DType::I32,
                  DType::I64, DType::U32, DType::BOOL, DType::F8E4M3, DType::F8E5M2})
    ts.emplace_back(std::string("w.") + dtype_name(t), patterned({3, 5}, t, seed++));
  ts.emplace_back("scalar", patterned({}, DType::F32, 9));
  ts.emplace_back("empty", patterned({0, 4}, DType::BF16, 10));
  ts.emplace_back("odd.shape", patterned({7, 1, 3}, DType::I8, 11));
  const std::map<std::string, std::string> meta = {{"format", "pt"}, {"note", "hello \"quoted\" \xc3\xa9"}};
  const std::string p = path("rt.safetensors");
  write_safetensors(p, ts, meta);

  auto f = SafetensorsFile::open(p);
  EXPECT_EQ(f->path(), p);
  EXPECT_EQ(f->metadata(), meta);
  ASSERT_EQ(f->tensors().size(), ts.size());
  for (const auto& [name, t] : ts) {
    ASSERT_TRUE(f->has(name)) << name;
    const TensorInfo& info = f->info(name);
    EXPECT_EQ(info.name, name);
    EXPECT_EQ(info.file, p);
    EXPECT_EQ(info.dtype, t.dtype());
    EXPECT_EQ(info.shape, t.shape());
    EXPECT_EQ(info.nbytes, t.nbytes());
    Tensor back = f->get(name);
    EXPECT_EQ(back.device(), Device::CPU);
    EXPECT_TRUE(same_bytes(back, t)) << name;
    // HF's layout (largest element size first, 8-byte aligned header) aligns every tensor.
    if (back.nbytes()) {
      EXPECT_EQ(reinterpret_cast<uintptr_t>(back.raw()) % dtype_size(back.dtype()), 0u) << name;
    }
  }
}

// Byte-exact agreement with HF's serializer, using the expected outputs of the tests in
// huggingface/safetensors (safetensors/src/tensor.rs: test_serialization_forced_alignement, test_empty).
TEST_F(Safetensors, WriterMatchesHuggingFaceBytes) {
  const std::string hf_attn0 = bytes_of(
      {72,  0,   0,   0,   0,   0,   0,   0,   123, 34,  97,  116, 116, 110, 48,  34,  58,  123, 34,  100, 116,
       121, 112, 101, 34,  58,  34,  70,  51,  50,  34,  44,  34,  115, 104, 97,  112, 101, 34,  58,  91,  49,
       44,  49,  44,  50,  44,  51,  93,  44,  34,  100, 97,  116, 97,  95,  111, 102, 102, 115, 101, 116, 115,
       34,  58,  91,  48,  44,  50,  52,  93,  125, 125, 32,  32,  32,  32,  32,  32,  32,  0,   0,   0,   0,
       0,   0,   128, 63,  0,   0,   0,   64,  0,   0,   64,  64,  0,   0,   128, 64,  0,   0,   160, 64});
  Tensor t = Tensor::empty({1, 1, 2, 3}, DType::F32);
  for (int i = 0; i < 6; ++i) t.data<float>()[i] = static_cast<float>(i);
  write_safetensors(path("a.safetensors"), {{"attn0", t}});
  EXPECT_EQ(read_bytes(path("a.safetensors")), hf_attn0);

  // And we read HF's bytes back.
  write_bytes(path("hf.safetensors"), hf_attn0);
  auto f = SafetensorsFile::open(path("hf.safetensors"));
  Tensor back = f->get("attn0");
  EXPECT_EQ(back.shape(), (Shape{1, 1, 2, 3}));
  for (int i = 0; i < 6; ++i) EXPECT_EQ(back.data<float>()[i], static_cast<float>(i));

  write_safetensors(path("empty.safetensors"), {});
  EXPECT_EQ(read_bytes(path("empty.safetensors")), bytes_of({8, 0, 0, 0, 0, 0, 0, 0, 123, 125, 32, 32, 32, 32, 32, 32}));
  write_safetensors(path("meta.safetensors"), {}, {{"framework", "pt"}});
  EXPECT_EQ(read_bytes(path("meta.safetensors")),
            bytes_of({40, 0,  0,   0,   0,   0,   0,   0,   123, 34, 95, 95,  109, 101, 116, 97,
                      100, 97, 116, 97,  95,  95,  34,  58,  123, 34, 102, 114, 97,  109, 101, 119,
                      111, 114, 107, 34,  58,  34,  112, 116, 34,  125, 125, 32, 32, 32,  32,  32}));
  EXPECT_TRUE(SafetensorsFile::open(path("empty.safetensors"))->tensors().empty());
}

TEST_F(Safetensors, ViewsOutliveFileAndCheckpoint) {
  Tensor t = patterned({64, 33}, DType::BF16, 3);
  write_safetensors(path("model.safetensors"), {{"w", t}});
  Tensor v1, v2;
  {
    auto f = SafetensorsFile::open(path("model.safetensors"));
    v1 = f->get("w");
  }
  {
    Checkpoint ck = Checkpoint::open(dir_);
    v2 = ck.get("w").slice_rows(10, 20);
  }
  // The files are gone from our hands; the mappings live on through the views.
  EXPECT_TRUE(same_bytes(v1, t));
  EXPECT_EQ(std::memcmp(v2.raw(), t.slice_rows(10, 20).raw(), v2.nbytes()), 0);
  // Rewriting the file (write + rename) does not disturb a live view.
  write_safetensors(path("model.safetensors"), {{"w", patterned({64, 33}, DType::BF16, 99)}});
  EXPECT_TRUE(same_bytes(v1, t));
}

TEST_F(Safetensors, WriterRejectsBadInput) {
  const std::string p = path("w.safetensors");
  expect_error_with([&] { write_safetensors(p, {{"a", patterned({2}, DType::F32)}, {"a", patterned({2}, DType::F32)}}); },
                    {p, "duplicate", "'a'"});
  expect_error_with([&] { write_safetensors(p, {{"q", patterned({4}, DType::I4)}}); }, {p, "'q'", "i4"});
  expect_error_with([&] { write_safetensors(p, {{"__metadata__", patterned({1}, DType::F32)}}); }, {p, "__metadata__"});
}

// ---------------------------------------------------------------------------------------
// Corrupt files: every one is rejected at open with the file name and, where one is at
// fault, the tensor name.

namespace {
// A valid two-tensor file: a = F32[2] at [0, 8], b = I16[3] at [8, 14].
const std::string kData14 = std::string(14, '\x01');
const char* kGoodHeader =
    R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"I16","shape":[3],"data_offsets":[8,14]}})";
}  // namespace

TEST_F(Safetensors, ValidHandMadeFileOpens) {
  write_bytes(path("ok.safetensors"), safetensors_bytes(kGoodHeader, kData14));
  auto f = SafetensorsFile::open(path("ok.safetensors"));
  EXPECT_EQ(f->info("b").offset, 8u);
  EXPECT_EQ(f->info("b").nbytes, 6u);
  // Tensors may be listed in any order; only the offsets must tile the data block.
  write_bytes(path("ok2.safetensors"),
              safetensors_bytes(R"({"b":{"dtype":"I16","shape":[3],"data_offsets":[8,14]},)"
                                R"("a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}, "__metadata__":{}}  )",
                                kData14));
  EXPECT_EQ(SafetensorsFile::open(path("ok2.safetensors"))->tensors().size(), 2u);
  // Zero-sized tensors occupy empty ranges.
  write_bytes(path("ok3.safetensors"),
              safetensors_bytes(R"({"z":{"dtype":"BF16","shape":[0,5],"data_offsets":[0,0]},)"
                                R"("a":{"dtype":"F32","shape":[],"data_offsets":[0,4]}})",
                                f32_bytes({2.5f})));
  auto f3 = SafetensorsFile::open(path("ok3.safetensors"));
  EXPECT_EQ(f3->get("z").numel(), 0);
  EXPECT_EQ(f3->get("a").data<float>()[0], 2.5f);
}

TEST_F(Safetensors, CorruptionsNameFileAndTensor) {
  struct Case {
    const char* what;
    std::string bytes;
    std::vector<std::string> needles;  // besides the file name
  };
  const std::string good = safetensors_bytes(kGoodHeader, kData14);
  auto with_header = [&](const std::string& h, const std::string& data = kData14) {
    return safetensors_bytes(h, data);
  };
  std::string huge_len = good;
  huge_len[3] = 0x7f;  // length ~2 GB
  const std::vector<Case> cases = {
      {"shorter than 8 bytes", std::string("\x10\0\0", 3), {"shorter than the 8-byte"}},
      {"empty file", std::string(), {"shorter than the 8-byte"}},
      {"header over 100 MB", huge_len, {"exceeds the 100000000-byte limit"}},
      {"header beyond the file", safetensors_bytes("{}", "", 64), {"runs past the end of the file"}},
      {"header not JSON", with_header(R"({"a":{"dtype":"F32",)"), {"invalid JSON"}},
      {"header with trailing garbage", with_header(std::string(R"({})") + std::string(6, '\0'), ""), {"invalid JSON"}},
      {"header not an object", with_header("[1, 2]", ""), {"must be a JSON object"}},
      {"entry not an object", with_header(R"({"a":[0,8]})", std::string(8, 'x')), {"'a'", "must be an object"}},
      {"missing dtype", with_header(R"({"a":{"shape":[2],"data_offsets":[0,8]}})", std::string(8, 'x')),
       {"'a'", "missing \"dtype\""}},
      {"missing shape", with_header(R"({"a":{"dtype":"F32","data_offsets":[0,8]}})", std::string(8, 'x')),
       {"'a'", "missing \"shape\""}},
      {"missing data_offsets", with_header(R"({"a":{"dtype":"F32","shape":[2]}})", std::string(8, 'x')),
       {"'a'", "missing \"data_offsets\""}},
      {"dtype not a string", with_header(R"({"a":{"dtype":4,"shape":[2],"data_offsets":[0,8]}})", std::string(8, 'x')),
       {"'a'", "\"dtype\" must be a string"}},
      {"shape not a list", with_header(R"({"a":{"dtype":"F32","shape":"2","data_offsets":[0,8]}})", std::string(8, 'x')),
       {"'a'", "\"shape\""}},
      {"shape with a float", with_header(R"({"a":{"dtype":"F32","shape":[2.5],"data_offsets":[0,8]}})", std::string(8, 'x')),
       {"'a'", "non-negative integers"}},
      {"offsets with three numbers",
       with_header(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8,8]}})", std::string(8, 'x')),
       {"'a'", "\"data_offsets\" must be [begin, end]"}},
      {"negative offset", with_header(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[-8,0]}})", std::string(8, 'x')),
       {"'a'", "\"data_offsets\""}},
      {"unknown dtype", with_header(R"({"a":{"dtype":"F8_E8M0","shape":[8],"data_offsets":[0,8]}})", std::string(8, 'x')),
       {"'a'", "unsupported dtype \"F8_E8M0\"", "supported: F32"}},
      {"negative dimension", with_header(R"({"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", std::string(8, 'x')),
       {"'a'", "negative dimension -2"}},
      {"begin > end", with_header(R"({"a":{"dtype":"F32","shape":[0],"data_offsets":[8,0]}})", std::string(8, 'x')),
       {"'a'", "begin > end"}},
      {"truncated data", good.substr(0, good.size() - 3), {"'b'", "past the end of the data block", "truncated"}},
      {"size mismatch", with_header(R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", std::string(8, 'x')),
       {"'a'", "needs 12 bytes", "span 8"}},
      {"overlap",
       with_header(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"I16","shape":[3],"data_offsets":[6,12]}})",
                   std::string(12, 'x')),
       {"'b'", "overlap", "'a'"}},
      {"hole",
       with_header(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"I16","shape":[3],"data_offsets":[10,16]}})",
                   std::string(16, 'x')),
       {"'b'", "hole", "[8, 10)"}},
      {"hole at the start", with_header(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", std::string(8, 'x')),
       {"'a'", "hole", "offset 0"}},
      {"trailing bytes", good + "zz", {"'b'", "2 trailing bytes"}},
      {"data without tensors", with_header("{}", "abc"), {"no tensors"}},
      {"duplicate tensor name",
       with_header(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"a":{"dtype":"I16","shape":[3],"data_offsets":[8,14]}})"),
       {"duplicate key \"a\""}},
      {"metadata not strings",
       with_header(R"({"__metadata__":{"step":3},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", std::string(8, 'x')),
       {"__metadata__", "step", "must be a string"}},
      {"invalid UTF-8 in a name", with_header("{\"a\xff\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}",
                                               std::string(8, 'x')),
       {"invalid JSON"}},
  };
  for (size_t i = 0; i < cases.size(); ++i) {
    SCOPED_TRACE(cases[i].what);
    const std::string p = path("bad" + std::to_string(i) + ".safetensors");
    write_bytes(p, cases[i].bytes);
    std::vector<std::string> needles = cases[i].needles;
    needles.push_back(p);
    expect_error_with([&] { SafetensorsFile::open(p); }, needles);
  }
  expect_error_with([&] { SafetensorsFile::open(path("nope.safetensors")); }, {path("nope.safetensors"), "cannot open"});
  expect_error_with([&] { SafetensorsFile::open(dir_); }, {dir_});
}

TEST_F(Safetensors, MissingTensorNamesFile) {
  write_bytes(path("ok.safetensors"), safetensors_bytes(kGoodHeader, kData14));
  auto f = SafetensorsFile::open(path("ok.safetensors"));
  expect_error_with([&] { f->get("c"); }, {"'c'", path("ok.safetensors")});
}

// ---------------------------------------------------------------------------------------
// Checkpoints

namespace {
void write_index(const std::string& p, const std::string& weight_map_json) {
  write_bytes(p, R"({"metadata": {"total_size": 0}, "weight_map": )" + weight_map_json + "}");
}
}  // namespace

TEST_F(Safetensors, ShardedCheckpoint) {
  Tensor a = patterned({4, 4}, DType::BF16, 1), b = patterned({8}, DType::F32, 2), c = patterned({2, 3}, DType::I32, 3);
  write_safetensors(path("model-00001-of-00002.safetensors"), {{"a", a}, {"b", b}});
  write_safetensors(path("model-00002-of-00002.safetensors"), {{"c", c}});
  write_index(path("model.safetensors.index.json"),
              R"({"a": "model-00001-of-00002.safetensors", "b": "model-00001-of-00002.safetensors",
                  "c": "model-00002-of-00002.safetensors"})");
  // A stray file that the index does not list is ignored.
  write_safetensors(path("other.safetensors"), {{"a", c}});
  Checkpoint ck = Checkpoint::open(dir_);
  EXPECT_EQ(ck.dir(), dir_);
  EXPECT_EQ(ck.names(), (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_TRUE(same_bytes(ck.get("a"), a));
  EXPECT_TRUE(same_bytes(ck.get("b"), b));
  EXPECT_TRUE(same_bytes(ck.get("c"), c));
  EXPECT_EQ(ck.info("c").file, path("model-00002-of-00002.safetensors"));
  expect_error_with([&] { ck.get("d"); }, {"'d'", dir_});
  EXPECT_FALSE(ck.has("d"));
}

TEST_F(Safetensors, ShardedCheckpointErrors) {
  write_safetensors(path("s1.safetensors"), {{"a", patterned({2}, DType::F32)}, {"b", patterned({2}, DType::F32)}});
  write_safetensors(path("s2.safetensors"), {{"b", patterned({2}, DType::F32)}, {"c", patterned({2}, DType::F32)}});
  const std::string idx = path("model.safetensors.index.json");

  write_index(idx, R"({"a": "s1.safetensors", "x": "missing.safetensors"})");
  expect_error_with([&] { Checkpoint::open(dir_); }, {idx, "missing.safetensors", "'x'", "does not exist"});

  write_index(idx, R"({"a": "s1.safetensors", "z": "s1.safetensors"})");
  expect_error_with([&] { Checkpoint::open(dir_); }, {idx, "'z'", "s1.safetensors", "does not contain it"});

  write_index(idx, R"({"a": "s1.safetensors", "c": "s2.safetensors"})");  // b lives in both shards
  expect_error_with([&] { Checkpoint::open(dir_); }, {"'b'", "two shards", "s1.safetensors", "s2.safetensors"});

  write_index(idx, R"({"a": "s1.safetensors", "a": "s2.safetensors"})");
  expect_error_with([&] { Checkpoint::open(dir_); }, {idx, "duplicate key \"a\""});

  write_index(idx, R"({"a": "../s1.safetensors"})");
  expect_error_with([&] { Checkpoint::open(dir_); }, {idx, "'a'", "not a file inside"});

  write_index(idx, R"({"a": 3})");
  expect_error_with([&] { Checkpoint::open(dir_); }, {idx, "'a'", "must be a file name"});

  write_bytes(idx, R"({"metadata": {}})");
  expect_error_with([&] { Checkpoint::open(dir_); }, {idx, "weight_map"});

  write_bytes(idx, R"({"weight_map": {)");
  expect_error_with([&] { Checkpoint::open(dir_); }, {idx, "invalid JSON"});

  // A corrupt shard reports the shard's own name.
  write_index(idx, R"({"a": "s3.safetensors"})");
  write_bytes(path("s3.safetensors"), "abc");
  expect_error_with([&] { Checkpoint::open(dir_); }, {path("s3.safetensors"), "shorter than the 8-byte"});
}

TEST_F(Safetensors, CheckpointLayouts) {
  expect_error_with([&] { Checkpoint::open(dir_); },
                    {dir_, "model.safetensors.index.json", "model.safetensors", "*.safetensors"});
  expect_error_with([&] { Checkpoint::open(path("no_such_dir")); }, {path("no_such_dir"), "not a directory"});

  // A weights file that is there but unreadable is named, not reported as absent: a dangling
  // link (an interrupted download in the HF cache), a loop of links, a directory.
  std::filesystem::create_symlink(path("gone.bin"), path("model.safetensors"));
  expect_error_with([&] { Checkpoint::open(dir_); }, {path("model.safetensors"), "symbolic link to nothing"});
  std::filesystem::remove(path("model.safetensors"));
  std::filesystem::create_symlink(path("model.safetensors"), path("model.safetensors"));
  expect_error_with([&] { Checkpoint::open(dir_); }, {path("model.safetensors"), "loop of symbolic links"});
  std::filesystem::remove(path("model.safetensors"));
  std::filesystem::create_directory(path("model.safetensors"));
  expect_error_with([&] { Checkpoint::open(dir_); }, {path("model.safetensors"), "is a directory"});
  std::filesystem::remove(path("model.safetensors"));

  // No index and no model.safetensors: every *.safetensors file.
  write_safetensors(path("x.safetensors"), {{"x", patterned({3}, DType::U8)}});
  write_safetensors(path("y.safetensors"), {{"y", patterned({3}, DType::U8)}});
  EXPECT_EQ(Checkpoint::open(dir_).names(), (std::vector<std::string>{"x", "y"}));
  write_safetensors(path("z.safetensors"), {{"y", patterned({3}, DType::U8)}});
  expect_error_with([&] { Checkpoint::open(dir_); }, {"'y'", "two shards"});

  // model.safetensors wins over other files.
  write_safetensors(path("model.safetensors"), {{"m", patterned({3}, DType::U8)}});
  EXPECT_EQ(Checkpoint::open(dir_).names(), (std::vector<std::string>{"m"}));
}
