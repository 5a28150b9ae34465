// Hub repository ids as model folders (io/hub.h) against a hub on loopback (fake_hub.h).
#include "io/hub.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "core/error.h"
#include "fake_hub.h"
#include "test_helpers.h"

namespace tllm {
namespace {

namespace fs = std::filesystem;
using testing::FakeHub;
using testing::read_bytes;

const char* kRepo = "tinyllm-test/demo";
const char* kCommit = "0123456789abcdef0123456789abcdef01234567";
const std::string kDemo = std::string(TLLM_SOURCE_DIR) + "/models/tiny-qwen2-demo";

class HubTest : public testing::TempDirTest {
 protected:
  void SetUp() override {
    TempDirTest::SetUp();
    files_ = testing::repo_files_of(kDemo);
    ASSERT_GE(files_.size(), 5u);
    fs::create_directories(path("extra"));  // a file the engine does not read
    testing::write_bytes(path("extra/README.md"), "# demo\n");
    for (auto& f : testing::repo_files_of(path("extra"))) files_.push_back(f);
    hub_.add_repo(kRepo, kCommit, files_);
    hub_.start();
    opts_.endpoint = hub_.endpoint();
    opts_.cache_dir = path("hub");
    opts_.token = "hf_test_token";
  }
  std::string snapshot() const { return path(std::string("hub/models--tinyllm-test--demo/snapshots/") + kCommit); }

  std::vector<testing::HubRepoFile> files_;
  FakeHub hub_;
  HubOptions opts_;
};

TEST(HubIds, RepositoryIdRule) {
  EXPECT_TRUE(is_hub_repo_id("Qwen/Qwen2.5-0.5B-Instruct"));
  EXPECT_TRUE(is_hub_repo_id("gpt2"));
  EXPECT_TRUE(is_hub_repo_id("a_b/c.d-e"));
  EXPECT_FALSE(is_hub_repo_id(""));
  EXPECT_FALSE(is_hub_repo_id("/abs/path"));
  EXPECT_FALSE(is_hub_repo_id("./local"));
  EXPECT_FALSE(is_hub_repo_id("a/b/c"));
  EXPECT_FALSE(is_hub_repo_id("a--b/c"));
  EXPECT_FALSE(is_hub_repo_id("a/b..c"));
  EXPECT_FALSE(is_hub_repo_id("-a/b"));
  EXPECT_FALSE(is_hub_repo_id("a/b."));
  EXPECT_FALSE(is_hub_repo_id("~/models/x"));
  EXPECT_FALSE(is_hub_repo_id(std::string(97, 'a')));
  EXPECT_EQ(hub_repo_folder("Qwen/Qwen2.5-0.5B"), "models--Qwen--Qwen2.5-0.5B");
}

TEST(HubIds, FileSelection) {
  EXPECT_TRUE(hub_wants_file("model-00001-of-00002.safetensors", HubFiles::Model));
  EXPECT_TRUE(hub_wants_file("config.json", HubFiles::Model));
  EXPECT_TRUE(hub_wants_file("chat_template.jinja", HubFiles::Model));
  EXPECT_TRUE(hub_wants_file("1_Pooling/config.json", HubFiles::Model));
  EXPECT_FALSE(hub_wants_file("pytorch_model.bin", HubFiles::Model));
  EXPECT_FALSE(hub_wants_file("original/consolidated.00.pth", HubFiles::Model));
  EXPECT_FALSE(hub_wants_file("onnx/model.onnx", HubFiles::Model));
  EXPECT_FALSE(hub_wants_file("README.md", HubFiles::Model));
  EXPECT_FALSE(hub_wants_file("model.safetensors", HubFiles::NoWeights));
  EXPECT_TRUE(hub_wants_file("config.json", HubFiles::NoWeights));
  EXPECT_TRUE(hub_wants_file("tokenizer.json", HubFiles::Tokenizer));
  EXPECT_FALSE(hub_wants_file("config.json", HubFiles::Tokenizer));
}

TEST_F(HubTest, LocalPathsStayAsTheyAre) {
  EXPECT_EQ(resolve_model(kDemo, opts_).dir, kDemo);
  EXPECT_FALSE(resolve_model(kDemo, opts_).from_hub);
  // A relative path that exists wins over the repository id it spells.
  fs::create_directories(path("tinyllm-test/demo"));
  const fs::path cwd = fs::current_path();
  fs::current_path(dir_);
  const ResolvedModel m = resolve_model(kRepo, opts_);
  fs::current_path(cwd);
  EXPECT_EQ(m.dir, kRepo);
  EXPECT_FALSE(m.from_hub);
  EXPECT_EQ(hub_.seen().requests, 0);
}

TEST_F(HubTest, DownloadsASnapshotInTheHfCacheLayout) {
  const ResolvedModel m = resolve_model(kRepo, opts_);
  EXPECT_TRUE(m.from_hub);
  EXPECT_EQ(m.dir, snapshot());
  const std::string repo_dir = path("hub/models--tinyllm-test--demo");
  EXPECT_EQ(read_bytes(repo_dir + "/refs/main"), kCommit);
  for (const testing::HubRepoFile& f : files_) {
    const fs::path link = fs::path(m.dir) / f.path;
    if (!hub_wants_file(f.path, HubFiles::Model)) {  // README.md
      EXPECT_FALSE(fs::exists(link)) << f.path;
      continue;
    }
    ASSERT_TRUE(fs::is_symlink(link)) << f.path;
    // LFS files are stored under their sha256, others under their git blob id, as huggingface_hub does.
    EXPECT_EQ(fs::read_symlink(link), fs::path("../../blobs") / (f.lfs ? f.sha256 : f.blob_id)) << f.path;
    EXPECT_TRUE(read_bytes(link.string()) == *f.bytes) << f.path;
  }
  EXPECT_TRUE(fs::exists(fs::path(m.dir) / "model.safetensors"));
  // The token went to the hub's API, not to the CDN it redirects to.
  const FakeHub::Seen seen = hub_.seen();
  ASSERT_FALSE(seen.api_auth.empty());
  EXPECT_EQ(seen.api_auth[0], "Bearer hf_test_token");
  ASSERT_EQ(seen.cdn_auth.size(), 1u);
  EXPECT_EQ(seen.cdn_auth[0], "");
  EXPECT_EQ(seen.cdn_ranges[0], "");
}

TEST_F(HubTest, CachedSnapshotServesOfflineAndWhenTheHubIsDown) {
  const std::string dir = resolve_model(kRepo, opts_).dir;
  // Counted as the handlers start (the server's logger runs after the answer is sent).
  const size_t lists = hub_.seen().api_auth.size(), fetches = hub_.seen().cdn_auth.size();
  HubOptions offline = opts_;
  offline.offline = true;
  EXPECT_EQ(resolve_model(kRepo, offline).dir, dir);
  EXPECT_EQ(hub_.seen().api_auth.size(), lists);  // offline asks nothing
  // Online again: one file list, no file fetched (every blob is there).
  EXPECT_EQ(resolve_model(kRepo, opts_).dir, dir);
  EXPECT_EQ(hub_.seen().api_auth.size(), lists + 1);
  EXPECT_EQ(hub_.seen().cdn_auth.size(), fetches);
  hub_.stop();
  EXPECT_EQ(resolve_model(kRepo, opts_).dir, dir);  // unreachable: the cache, with a warning
  // Offline without a cached snapshot: an error naming the cache.
  offline.cache_dir = path("empty-cache");
  try {
    resolve_model(kRepo, offline);
    FAIL() << "no error";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("HF_HUB_OFFLINE"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("empty-cache"), std::string::npos) << e.what();
  }
}

TEST_F(HubTest, ErrorsNameTheRepositoryAndTheCause) {
  auto message = [&](const std::string& repo, HubOptions o) {
    try {
      resolve_model(repo, o);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  HubOptions rev = opts_;
  rev.revision = "v9";
  std::string m = message(kRepo, rev);
  EXPECT_NE(m.find("HTTP 404"), std::string::npos) << m;
  EXPECT_NE(m.find("v9"), std::string::npos) << m;
  HubOptions anonymous = opts_;
  anonymous.token.clear();
  ::setenv("HF_TOKEN_PATH", path("no-token").c_str(), 1);
  ::unsetenv("HF_TOKEN");
  m = message("nobody/nothing", anonymous);
  ::unsetenv("HF_TOKEN_PATH");
  EXPECT_NE(m.find("no such local folder \"nobody/nothing\""), std::string::npos) << m;
  EXPECT_NE(m.find("HTTP 401"), std::string::npos) << m;
  EXPECT_NE(m.find("HF_TOKEN"), std::string::npos) << m;
  HubOptions down = opts_;
  down.endpoint = "http://127.0.0.1:1";
  m = message(kRepo, down);
  EXPECT_NE(m.find("cannot reach http://127.0.0.1:1"), std::string::npos) << m;
  down.endpoint = "ftp://example";
  m = message(kRepo, down);
  EXPECT_NE(m.find("not an http:// or https:// URL"), std::string::npos) << m;
}

TEST_F(HubTest, RefusesRepositoriesWithoutWhatTinyllmReads) {
  std::vector<testing::HubRepoFile> bin_only;
  for (testing::HubRepoFile f : files_) {
    if (f.path == "model.safetensors") f.path = "pytorch_model.bin";
    bin_only.push_back(f);
  }
  hub_.add_repo("tinyllm-test/bin-only", kCommit, bin_only);
  try {
    resolve_model("tinyllm-test/bin-only", opts_);
    FAIL() << "no error";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("has no .safetensors weights"), std::string::npos) << e.what();
  }
  // Random weights (--load-format dummy) need the config and tokenizer only.
  HubOptions no_weights = opts_;
  no_weights.files = HubFiles::NoWeights;
  const ResolvedModel m = resolve_model(kRepo, no_weights);
  EXPECT_TRUE(fs::exists(fs::path(m.dir) / "config.json"));
  EXPECT_TRUE(fs::exists(fs::path(m.dir) / "tokenizer.json"));
  EXPECT_FALSE(fs::exists(fs::path(m.dir) / "model.safetensors"));
  EXPECT_TRUE(hub_.seen().cdn_auth.empty());
}

TEST_F(HubTest, ABrokenDownloadResumesWhereItStopped) {
  hub_.break_next = 1;
  try {
    resolve_model(kRepo, opts_);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("broke off"), std::string::npos) << e.what();
  }
  const testing::HubRepoFile* weights = nullptr;
  for (const auto& f : files_)
    if (f.lfs) weights = &f;
  ASSERT_NE(weights, nullptr);
  const std::string part = path("hub/models--tinyllm-test--demo/blobs/") + weights->sha256 + ".incomplete";
  ASSERT_TRUE(fs::exists(part));
  const uint64_t have = fs::file_size(part);
  EXPECT_GT(have, 0u);
  EXPECT_LT(have, weights->bytes->size());
  const ResolvedModel m = resolve_model(kRepo, opts_);
  EXPECT_TRUE(read_bytes(m.dir + "/model.safetensors") == *weights->bytes);
  EXPECT_FALSE(fs::exists(part));
  const FakeHub::Seen seen = hub_.seen();
  ASSERT_EQ(seen.cdn_ranges.size(), 2u);
  EXPECT_EQ(seen.cdn_ranges[1], "bytes=" + std::to_string(have) + "-");
}

TEST_F(HubTest, CorruptDownloadsAreRefusedAndNotKept) {
  hub_.corrupt_next = 1;
  std::string m;
  try {
    resolve_model(kRepo, opts_);
  } catch (const Error& e) {
    m = e.what();
  }
  EXPECT_NE(m.find("model.safetensors: the download's sha256 is"), std::string::npos) << m;
  for (const auto& e : fs::directory_iterator(path("hub/models--tinyllm-test--demo/blobs"))) {
    EXPECT_EQ(e.path().extension(), "") << e.path();  // no .incomplete left behind
  }
  EXPECT_FALSE(fs::exists(path("hub/models--tinyllm-test--demo/refs/main")));
  const ResolvedModel again = resolve_model(kRepo, opts_);
  for (const testing::HubRepoFile& f : files_) {
    if (!hub_wants_file(f.path, HubFiles::Model)) continue;
    EXPECT_TRUE(read_bytes(again.dir + "/" + f.path) == *f.bytes) << f.path;
  }
}

TEST(HubIds, GgufReferences) {
  auto ref = parse_hub_gguf_ref("Qwen/Qwen2.5-0.5B-Instruct-GGUF:Q4_K_M");
  ASSERT_TRUE(ref);
  EXPECT_EQ(ref->repo, "Qwen/Qwen2.5-0.5B-Instruct-GGUF");
  EXPECT_EQ(ref->quant, "Q4_K_M");
  ref = parse_hub_gguf_ref("Qwen/Qwen2.5-0.5B-Instruct-GGUF/qwen2.5-0.5b-instruct-q8_0.gguf");
  ASSERT_TRUE(ref);
  EXPECT_EQ(ref->repo, "Qwen/Qwen2.5-0.5B-Instruct-GGUF");
  EXPECT_EQ(ref->file, "qwen2.5-0.5b-instruct-q8_0.gguf");
  EXPECT_FALSE(parse_hub_gguf_ref("Qwen/Qwen2.5-0.5B-Instruct"));
  EXPECT_FALSE(parse_hub_gguf_ref("model.gguf"));
  EXPECT_FALSE(parse_hub_gguf_ref("/abs/dir/model.gguf"));
  EXPECT_FALSE(parse_hub_gguf_ref("a/b/../c.gguf"));
  EXPECT_FALSE(parse_hub_gguf_ref("gpt2:Q4_0"));       // a namespace is required
  EXPECT_FALSE(parse_hub_gguf_ref("a/b:Q4 K"));        // not a tag
  EXPECT_FALSE(parse_hub_gguf_ref("C:/models/x.gguf"));
}

// One GGUF file of a repository of several (llama.cpp's -hf form): only that file is fetched,
// into the same cache layout, or every part of a split file; a tag that matches none or
// several, a split file with a part missing, or a later part named, is an error naming it.
TEST_F(HubTest, FetchesOneGgufFileOfARepository) {
  fs::create_directories(path("ggufs"));
  testing::write_bytes(path("ggufs/demo-q8_0.gguf"), "GGUF q8_0 bytes");
  testing::write_bytes(path("ggufs/demo-f16.gguf"), "GGUF f16 bytes, longer");
  testing::write_bytes(path("ggufs/mmproj-demo-q8_0.gguf"), "a projector");
  testing::write_bytes(path("ggufs/big-q4_0-00001-of-00002.gguf"), "part one");
  testing::write_bytes(path("ggufs/split-q5_0-00001-of-00002.gguf"), "split part one");
  testing::write_bytes(path("ggufs/split-q5_0-00002-of-00002.gguf"), "split part two");
  hub_.add_repo("tinyllm-test/demo-GGUF", kCommit, testing::repo_files_of(path("ggufs")));
  const std::string file = resolve_hub_gguf({"tinyllm-test/demo-GGUF", "Q8_0", ""}, opts_);
  EXPECT_EQ(file, path(std::string("hub/models--tinyllm-test--demo-GGUF/snapshots/") + kCommit + "/demo-q8_0.gguf"));
  EXPECT_EQ(read_bytes(file), "GGUF q8_0 bytes");
  EXPECT_EQ(hub_.seen().cdn_auth.size(), 1u);  // the one file
  EXPECT_FALSE(fs::exists(fs::path(file).parent_path() / "demo-f16.gguf"));
  EXPECT_EQ(resolve_hub_gguf({"tinyllm-test/demo-GGUF", "", "demo-f16.gguf"}, opts_),
            (fs::path(file).parent_path() / "demo-f16.gguf").string());
  HubOptions offline = opts_;
  offline.offline = true;
  EXPECT_EQ(resolve_hub_gguf({"tinyllm-test/demo-GGUF", "q8_0", ""}, offline), file);
  auto message = [&](const HubGgufRef& r) {
    try {
      resolve_hub_gguf(r, opts_);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  std::string m = message({"tinyllm-test/demo-GGUF", "Q3_K_S", ""});
  EXPECT_NE(m.find("has no GGUF file for quantization \"Q3_K_S\""), std::string::npos) << m;
  EXPECT_NE(m.find("demo-f16.gguf"), std::string::npos) << m;
  m = message({"tinyllm-test/demo-GGUF", "demo", ""});
  EXPECT_NE(m.find("matches several files"), std::string::npos) << m;
  m = message({"tinyllm-test/demo-GGUF", "q4_0", ""});
  EXPECT_NE(m.find("big-q4_0-00001-of-00002.gguf is part 1 of 2, but the repository has no "
                   "big-q4_0-00002-of-00002.gguf"),
            std::string::npos)
      << m;
  m = message({"tinyllm-test/demo-GGUF", "", "split-q5_0-00002-of-00002.gguf"});
  EXPECT_NE(m.find("is one part of a split GGUF; name its first part, split-q5_0-00001-of-00002.gguf"),
            std::string::npos)
      << m;
  // A split file: both parts fetched, the first part's path returned (the cache answers
  // offline).
  const size_t fetched = hub_.seen().cdn_auth.size();
  const std::string split = resolve_hub_gguf({"tinyllm-test/demo-GGUF", "Q5_0", ""}, opts_);
  EXPECT_EQ(split, (fs::path(file).parent_path() / "split-q5_0-00001-of-00002.gguf").string());
  EXPECT_EQ(read_bytes(fs::path(file).parent_path() / "split-q5_0-00002-of-00002.gguf"), "split part two");
  EXPECT_EQ(hub_.seen().cdn_auth.size(), fetched + 2);
  EXPECT_EQ(resolve_hub_gguf({"tinyllm-test/demo-GGUF", "q5_0", ""}, offline), split);
  EXPECT_EQ(resolve_hub_gguf({"tinyllm-test/demo-GGUF", "", "split-q5_0-00001-of-00002.gguf"}, offline), split);
  // The repository as a checkpoint: no config.json, and a hint at the GGUF form.
  m = [&] {
    try {
      resolve_model("tinyllm-test/demo-GGUF", opts_);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  }();
  EXPECT_NE(m.find("name one as tinyllm-test/demo-GGUF:QUANT"), std::string::npos) << m;
}

TEST(HubHashes, MatchCoreutilsAndGit) {
  const std::string f = kDemo + "/config.json";
  EXPECT_EQ(sha256_file_hex(f), testing::shell_word("sha256sum '" + f + "'"));
  EXPECT_EQ(git_blob_id_file_hex(f), testing::shell_word("git hash-object '" + f + "'"));
}

}  // namespace
}  // namespace tllm
