// A Hugging Face hub on loopback, for the hub tests (huggingface.co cannot be reached here).
// It answers as the hub does: GET /api/models/REPO/revision/REV?blobs=true lists the commit
// and the files with their sizes, git blob ids and LFS sha256; GET REPO/resolve/COMMIT/FILE
// redirects LFS files to a CDN on another origin (localhost instead of 127.0.0.1) and other
// files to a relative /api/resolve-cache path; the CDN honours Range. Faults on demand: a
// download that breaks off halfway, a corrupted byte. The hashes the hub lists come from
// coreutils' sha256sum and `git hash-object`, not from the code under test.
#pragma once

#include <httplib.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

namespace tllm::testing {

struct HubRepoFile {
  std::string path;
  std::shared_ptr<const std::string> bytes;
  bool lfs = false;
  std::string sha256, blob_id;
};

inline std::string shell_word(const std::string& cmd) {
  std::string out;
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return out;
  std::array<char, 256> buf;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) out.append(buf.data(), n);
  pclose(p);
  return out.substr(0, out.find_first_of(" \n"));
}

// Every regular file of `dir` as a repository file; *.safetensors and *.gguf are LFS files.
inline std::vector<HubRepoFile> repo_files_of(const std::string& dir) {
  std::vector<HubRepoFile> files;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    if (!e.is_regular_file()) continue;
    HubRepoFile f;
    f.path = e.path().filename().string();
    std::ifstream in(e.path(), std::ios::binary);
    f.bytes = std::make_shared<const std::string>(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    f.lfs = f.path.ends_with(".safetensors") || f.path.ends_with(".gguf");
    f.sha256 = shell_word("sha256sum '" + e.path().string() + "'");
    f.blob_id = shell_word("git hash-object '" + e.path().string() + "'");
    files.push_back(std::move(f));
  }
  return files;
}

class FakeHub {
 public:
  void add_repo(const std::string& repo, const std::string& commit, std::vector<HubRepoFile> files) {
    repos_[repo] = Repo{commit, std::move(files)};
  }

  int start() {
    routes();
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    // Until it listens, stop() finds nothing to stop and the listener it then starts is never
    // told to end (a test that makes no request hung in its destructor).
    while (!server_.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    return port_;
  }
  void stop() {
    server_.stop();
    if (thread_.joinable()) thread_.join();
  }
  ~FakeHub() { stop(); }

  std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(port_); }

  // What clients sent.
  struct Seen {
    std::vector<std::string> api_auth, cdn_auth, cdn_ranges;
    int requests = 0;
  };
  Seen seen() {
    std::lock_guard<std::mutex> lock(mu_);
    return seen_;
  }
  std::atomic<int> break_next{0};    // CDN (LFS) answers that stop halfway through their bytes
  std::atomic<int> corrupt_next{0};  // CDN (LFS) answers with one byte flipped

 private:
  struct Repo {
    std::string commit;
    std::vector<HubRepoFile> files;
  };

  const HubRepoFile* find(const std::string& repo, const std::string& commit, const std::string& path) const {
    auto it = repos_.find(repo);
    if (it == repos_.end() || it->second.commit != commit) return nullptr;
    for (const HubRepoFile& f : it->second.files)
      if (f.path == path) return &f;
    return nullptr;
  }

  static void error(httplib::Response& res, int status, const char* code, const std::string& message) {
    res.status = status;
    res.set_header("X-Error-Code", code);
    res.set_content(nlohmann::json{{"error", message}}.dump(), "application/json");
  }

  void routes() {
    server_.set_logger([this](const httplib::Request&, const httplib::Response&) {
      std::lock_guard<std::mutex> lock(mu_);
      ++seen_.requests;
    });
    server_.Get(R"(/api/models/([^/]+/[^/]+)/revision/(.+))", [this](const httplib::Request& req, httplib::Response& res) {
      {
        std::lock_guard<std::mutex> lock(mu_);
        seen_.api_auth.push_back(req.get_header_value("Authorization"));
      }
      auto it = repos_.find(req.matches[1]);
      if (it == repos_.end()) return error(res, 401, "RepoNotFound", "Repository not found");
      const std::string rev = req.matches[2];
      if (rev != "main" && rev != it->second.commit) return error(res, 404, "RevisionNotFound", "Invalid rev id: " + rev);
      nlohmann::json siblings = nlohmann::json::array();
      for (const HubRepoFile& f : it->second.files) {
        nlohmann::json s{{"rfilename", f.path}};
        if (req.get_param_value("blobs") == "true") {
          s["size"] = f.bytes->size();
          s["blobId"] = f.blob_id;
          if (f.lfs) s["lfs"] = {{"sha256", f.sha256}, {"size", f.bytes->size()}, {"pointerSize", 134}};
        }
        siblings.push_back(s);
      }
      res.set_content(nlohmann::json{{"id", it->first}, {"sha", it->second.commit}, {"siblings", siblings}}.dump(),
                      "application/json");
    });
    server_.Get(R"(/([^/]+/[^/]+)/resolve/([0-9a-f]{40})/(.+))", [this](const httplib::Request& req, httplib::Response& res) {
      const HubRepoFile* f = find(req.matches[1], req.matches[2], req.matches[3]);
      if (!f) return error(res, 404, "EntryNotFound", "Entry not found");
      res.set_header("X-Repo-Commit", std::string(req.matches[2]));
      if (f->lfs) {
        res.status = 302;
        res.set_header("X-Linked-Etag", "\"" + f->sha256 + "\"");
        res.set_header("Location", "http://localhost:" + std::to_string(port_) + "/cdn/" + f->sha256);
      } else {
        res.status = 307;
        res.set_header("Location", "/api/resolve-cache/models/" + std::string(req.matches[1]) + "/" +
                                       std::string(req.matches[2]) + "/" + f->path);
      }
      // No body: httplib would apply a download's Range header to it (416).
    });
    server_.Get(R"(/api/resolve-cache/models/([^/]+/[^/]+)/([0-9a-f]{40})/(.+))",
                [this](const httplib::Request& req, httplib::Response& res) {
                  const HubRepoFile* f = find(req.matches[1], req.matches[2], req.matches[3]);
                  if (!f) return error(res, 404, "EntryNotFound", "Entry not found");
                  serve(f->bytes, res, /*faults=*/false);
                });
    server_.Get(R"(/cdn/([0-9a-f]{64}))", [this](const httplib::Request& req, httplib::Response& res) {
      {
        std::lock_guard<std::mutex> lock(mu_);
        seen_.cdn_auth.push_back(req.get_header_value("Authorization"));
        seen_.cdn_ranges.push_back(req.get_header_value("Range"));
      }
      for (const auto& [name, repo] : repos_)
        for (const HubRepoFile& f : repo.files)
          if (f.lfs && f.sha256 == std::string(req.matches[1])) return serve(f.bytes, res, /*faults=*/true);
      error(res, 404, "EntryNotFound", "no such blob");
    });
  }

  // The bytes with httplib's own Range handling (a content provider of known length); faults
  // on the CDN's answers only.
  void serve(std::shared_ptr<const std::string> bytes, httplib::Response& res, bool faults) {
    if (faults && corrupt_next.load() > 0) {
      --corrupt_next;
      auto copy = std::make_shared<std::string>(*bytes);
      (*copy)[copy->size() / 2] ^= 0x5a;
      bytes = copy;
    }
    const bool cut = faults && break_next.load() > 0;
    if (cut) --break_next;
    res.set_content_provider(bytes->size(), "application/octet-stream",
                             [bytes, cut](size_t offset, size_t length, httplib::DataSink& sink) {
                               const size_t end = cut ? offset + length / 2 : offset + length;
                               for (size_t at = offset; at < end;) {
                                 const size_t n = std::min<size_t>(65536, end - at);
                                 if (!sink.write(bytes->data() + at, n)) return false;
                                 at += n;
                               }
                               return !cut;
                             });
  }

  httplib::Server server_;
  std::thread thread_;
  int port_ = 0;
  std::map<std::string, Repo> repos_;
  std::mutex mu_;
  Seen seen_;
};

}  // namespace tllm::testing
