#include "io/hub.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <optional>

#include <httplib.h>
#include <openssl/evp.h>

#include "core/error.h"
#include "core/logging.h"
#include "io/gguf.h"
#include "io/json.h"

namespace tllm {
namespace fs = std::filesystem;

namespace {

constexpr const char* kDefaultEndpoint = "https://huggingface.co";
constexpr int kMaxRedirects = 10;

std::string env_or(const char* name, const std::string& fallback = {}) {
  const char* v = std::getenv(name);
  return v && *v ? std::string(v) : fallback;
}

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

bool env_true(const char* name) {
  const std::string v = lower(env_or(name));
  return v == "1" || v == "on" || v == "yes" || v == "true";
}

std::string hf_home() {
  if (std::string h = env_or("HF_HOME"); !h.empty()) return h;
  if (std::string x = env_or("XDG_CACHE_HOME"); !x.empty()) return x + "/huggingface";
  return env_or("HOME", ".") + "/.cache/huggingface";
}

bool is_commit(const std::string& s) {
  return s.size() == 40 && std::all_of(s.begin(), s.end(), [](char c) { return std::isxdigit(static_cast<unsigned char>(c)) && !std::isupper(static_cast<unsigned char>(c)); });
}

// Percent-encoding of a URL path piece (RFC 3986 unreserved characters stay; '/' where kept).
std::string url_quote(const std::string& s, bool keep_slash) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~' || (keep_slash && c == '/')) {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

// "https://host:port/path?q" -> origin "https://host:port", target "/path?q".
struct Url {
  std::string origin, target;
};

std::optional<Url> parse_url(const std::string& url) {
  const size_t scheme_end = url.find("://");
  if (scheme_end == std::string::npos) return std::nullopt;
  const std::string scheme = url.substr(0, scheme_end);
  if (scheme != "http" && scheme != "https") return std::nullopt;
  const size_t path_at = url.find('/', scheme_end + 3);
  Url u;
  u.origin = url.substr(0, path_at);
  u.target = path_at == std::string::npos ? "/" : url.substr(path_at);
  if (u.origin.size() <= scheme_end + 3) return std::nullopt;
  return u;
}

// A redirect's Location against the URL that answered it.
std::string follow(const Url& from, const std::string& location) {
  if (location.rfind("http://", 0) == 0 || location.rfind("https://", 0) == 0) return location;
  if (location.rfind("//", 0) == 0) return from.origin.substr(0, from.origin.find(':')) + ":" + location;
  if (!location.empty() && location[0] == '/') return from.origin + location;
  std::string dir = from.target.substr(0, from.target.find('?'));
  dir = dir.substr(0, dir.rfind('/') + 1);
  return from.origin + dir + location;
}

std::string brief_body(const std::string& body) {
  std::string b = body.substr(0, 300);
  for (char& c : b)
    if (c == '\n' || c == '\r') c = ' ';
  return b;
}

std::string hex_digest(const unsigned char* d, unsigned n) {
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (unsigned i = 0; i < n; ++i) {
    out += hex[d[i] >> 4];
    out += hex[d[i] & 15];
  }
  return out;
}

// The digest of `prefix` then the file's bytes.
std::string digest_file(const std::string& path, const EVP_MD* md, const std::string& prefix) {
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  TLLM_CHECK(ctx && EVP_DigestInit_ex(ctx.get(), md, nullptr) == 1, "OpenSSL: cannot start a digest");
  EVP_DigestUpdate(ctx.get(), prefix.data(), prefix.size());
  std::ifstream in(path, std::ios::binary);
  TLLM_CHECK(in, "cannot read ", path);
  std::vector<char> buf(4 << 20);
  while (in) {
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    if (in.gcount() > 0) EVP_DigestUpdate(ctx.get(), buf.data(), static_cast<size_t>(in.gcount()));
  }
  TLLM_CHECK(in.eof(), "error reading ", path);
  unsigned char d[EVP_MAX_MD_SIZE];
  unsigned n = 0;
  EVP_DigestFinal_ex(ctx.get(), d, &n);
  return hex_digest(d, n);
}

// An exclusive flock held for this object's life (two processes fetching one blob).
class FileLock {
 public:
  explicit FileLock(const fs::path& path) {
    fs::create_directories(path.parent_path());
    fd_ = ::open(path.c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0644);
    TLLM_CHECK(fd_ >= 0, "cannot open the lock file ", path.string());
    TLLM_CHECK(::flock(fd_, LOCK_EX) == 0, "cannot lock ", path.string());
  }
  ~FileLock() { ::close(fd_); }
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;

 private:
  int fd_ = -1;
};

// One file of the repository as the hub lists it.
struct RepoFile {
  std::string path;
  uint64_t size = 0;
  std::string blob_id;  // git blob id (sha1)
  std::string sha256;   // LFS files only
  std::string etag() const { return sha256.empty() ? blob_id : sha256; }
};

struct RepoListing {
  std::string commit;
  std::vector<RepoFile> files;
};

// Talks to one hub endpoint with one token.
class HubClient {
 public:
  HubClient(const HubOptions& o, std::string repo) : opts_(o), repo_(std::move(repo)) {
    auto u = parse_url(opts_.endpoint);
    TLLM_CHECK_ARG(u, "HF_ENDPOINT \"", opts_.endpoint, "\" is not an http:// or https:// URL");
    endpoint_origin_ = u->origin;
  }

  RepoListing list(const std::string& revision) {
    const std::string url = opts_.endpoint + "/api/models/" + url_quote(repo_, true) + "/revision/" +
                            url_quote(revision, false) + "?blobs=true";
    std::string body;
    const int status = get(url, body, nullptr, 0);
    if (status != 200) fail_status(status, body, "revision \"" + revision + "\"");
    nlohmann::json j;
    try {
      j = parse_json(body, url);
    } catch (const Error& e) {
      TLLM_THROW(repo_, ": the hub's file list is not JSON (", e.what(), ")");
    }
    RepoListing r;
    TLLM_CHECK(j.is_object() && j.contains("sha") && j["sha"].is_string() && is_commit(j["sha"].get<std::string>()),
               repo_, ": the hub's answer for revision \"", revision, "\" names no commit (", url, ")");
    r.commit = j["sha"].get<std::string>();
    TLLM_CHECK(j.contains("siblings") && j["siblings"].is_array(), repo_, ": the hub's answer lists no files (", url, ")");
    for (const nlohmann::json& s : j["siblings"]) {
      TLLM_CHECK(s.is_object() && s.contains("rfilename") && s["rfilename"].is_string(), repo_,
                 ": a file of the hub's list has no name: ", json_brief(s));
      RepoFile f;
      f.path = s["rfilename"].get<std::string>();
      if (s.contains("size") && s["size"].is_number_unsigned()) f.size = s["size"].get<uint64_t>();
      if (s.contains("blobId") && s["blobId"].is_string()) f.blob_id = s["blobId"].get<std::string>();
      if (s.contains("lfs") && s["lfs"].is_object()) {
        const nlohmann::json& lfs = s["lfs"];
        if (lfs.contains("sha256") && lfs["sha256"].is_string()) f.sha256 = lfs["sha256"].get<std::string>();
        if (lfs.contains("size") && lfs["size"].is_number_unsigned()) f.size = lfs["size"].get<uint64_t>();
      }
      r.files.push_back(std::move(f));
    }
    return r;
  }

  // Fetches `f` at `commit` into `part`, appending where `part` already holds a prefix.
  void download(const std::string& commit, const RepoFile& f, const fs::path& part) {
    uint64_t have = fs::exists(part) ? fs::file_size(part) : 0;
    if (have > f.size) have = 0;
    if (have == f.size && f.size > 0) return;
    const std::string url =
        opts_.endpoint + "/" + url_quote(repo_, true) + "/resolve/" + commit + "/" + url_quote(f.path, true);
    std::string body;
    FILE* out = nullptr;
    uint64_t written = have;
    auto t0 = std::chrono::steady_clock::now(), last_report = t0;
    auto sink = [&](const httplib::Response& res) {
      // 200: the whole file from byte 0; 206: the rest from `have`.
      const bool resumed = res.status == 206;
      TLLM_CHECK(!resumed || (have > 0 && res.get_header_value("Content-Range")
                                                  .rfind("bytes " + std::to_string(have) + "-", 0) == 0),
                 repo_, "/", f.path, ": asked for its bytes from ", have, " on, the server sent the range \"",
                 res.get_header_value("Content-Range"), "\"");
      if (!resumed) written = 0;
      out = std::fopen(part.c_str(), resumed ? "ab" : "wb");
      TLLM_CHECK(out, "cannot write ", part.string(), ": ", std::strerror(errno));
    };
    int write_errno = 0;
    auto receive = [&](const char* data, size_t n) {
      if (std::fwrite(data, 1, n, out) != n) {
        write_errno = errno;
        return false;
      }
      written += n;
      const auto now = std::chrono::steady_clock::now();
      if (now - last_report > std::chrono::seconds(10)) {
        last_report = now;
        TLLM_LOG(Info, "hub: ", repo_, "/", f.path, ": ", written >> 20, " of ", f.size >> 20, " MiB");
      }
      return true;
    };
    int status = 0;
    try {
      status = get(url, body, sink, have, receive);
    } catch (...) {
      if (out) std::fclose(out);
      TLLM_CHECK(write_errno == 0, "cannot write ", part.string(), ": ", std::strerror(write_errno));
      throw;
    }
    const bool closed_ok = out && std::fclose(out) == 0;
    if (status != 200 && status != 206) fail_status(status, body, "file \"" + f.path + "\"");
    TLLM_CHECK(closed_ok, "cannot write ", part.string());
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (f.size >= (64u << 20))
      TLLM_LOG(Info, "hub: ", repo_, "/", f.path, ": ", f.size >> 20, " MiB in ", static_cast<int>(s), " s");
  }

 private:
  // GET url, following redirects. The token goes to the endpoint's own host only (a
  // redirect to a CDN carries its own signature). on_body: called with the 2xx response
  // before its body, which then goes to `receive`; other bodies land in `body`.
  int get(const std::string& first_url, std::string& body, const std::function<void(const httplib::Response&)>& on_body,
          uint64_t range_from, const std::function<bool(const char*, size_t)>& receive = nullptr) {
    std::string url = first_url;
    for (int hop = 0; hop <= kMaxRedirects; ++hop) {
      auto u = parse_url(url);
      TLLM_CHECK(u, repo_, ": the hub redirected to \"", url, "\", which is not an http(s) URL");
      httplib::Client cli(u->origin);
      cli.set_connection_timeout(15, 0);
      cli.set_read_timeout(120, 0);
      cli.set_follow_location(false);
      httplib::Headers h = {{"User-Agent", "tinyllm"}, {"Accept-Encoding", "identity"}};
      if (!opts_.token.empty() && u->origin == endpoint_origin_) h.emplace("Authorization", "Bearer " + opts_.token);
      if (range_from > 0 && receive) h.emplace("Range", "bytes=" + std::to_string(range_from) + "-");
      int status = 0;
      std::string location;
      bool to_sink = false;
      std::exception_ptr failed;  // thrown inside httplib's callback: rethrown here
      body.clear();
      auto res = cli.Get(
          u->target, h,
          [&](const httplib::Response& r) {
            status = r.status;
            location = r.get_header_value("Location");
            to_sink = receive && (status == 200 || status == 206);
            try {
              if (to_sink && on_body) on_body(r);
            } catch (...) {
              failed = std::current_exception();
              return false;
            }
            return true;
          },
          [&](const char* data, size_t n) {
            if (to_sink) return receive(data, n);
            if (body.size() < 65536) body.append(data, std::min<size_t>(n, 65536 - body.size()));
            return true;
          });
      if (failed) std::rethrow_exception(failed);
      if (!res) {
        if (status >= 200 && status < 300 && to_sink)
          TLLM_THROW(repo_, ": the download from ", u->origin, " broke off (", httplib::to_string(res.error()),
                     "); run the command again to resume it");
        TLLM_THROW(repo_, ": cannot reach ", u->origin, " (", httplib::to_string(res.error()), ")");
      }
      if (status >= 300 && status < 400 && status != 304) {
        TLLM_CHECK(!location.empty(), repo_, ": the hub answered HTTP ", status, " without a Location");
        url = follow(*u, location);
        continue;
      }
      return status;
    }
    TLLM_THROW(repo_, ": more than ", kMaxRedirects, " redirects from ", first_url);
  }

  [[noreturn]] void fail_status(int status, const std::string& body, const std::string& what) const {
    std::string reason;
    if (!body.empty()) {
      try {
        nlohmann::json j = parse_json(body, "the hub's error");
        if (j.is_object() && j.contains("error") && j["error"].is_string()) reason = j["error"].get<std::string>();
      } catch (const Error&) {
        reason = brief_body(body);
      }
    }
    std::string hint;
    if (status == 401 || status == 403)
      hint = opts_.token.empty() ? "; a gated or private repository needs a token with access to it (set HF_TOKEN)"
                                 : "; the token (HF_TOKEN) has no access to it";
    else if (status == 404)
      hint = "; check the repository id and --revision";
    TLLM_THROW(repo_, ": the hub (", opts_.endpoint, ") answered HTTP ", status, " for ", what,
               reason.empty() ? "" : ": " + reason, hint);
  }

  HubOptions opts_;
  std::string repo_;
  std::string endpoint_origin_;
};

// refs/<revision> -> commit, or the revision itself where it is a commit.
std::optional<std::string> cached_commit(const fs::path& repo_dir, const std::string& revision) {
  if (is_commit(revision)) return revision;
  std::ifstream in(repo_dir / "refs" / revision);
  std::string commit;
  if (!(in >> commit) || !is_commit(commit)) return std::nullopt;
  return commit;
}

// The snapshot of `revision` where it holds what the command reads first.
std::optional<fs::path> cached_snapshot(const fs::path& repo_dir, const std::string& revision, HubFiles files) {
  const auto commit = cached_commit(repo_dir, revision);
  if (!commit) return std::nullopt;
  const fs::path snap = repo_dir / "snapshots" / *commit;
  const char* first = files != HubFiles::Tokenizer ? "config.json" : "tokenizer_config.json";
  std::error_code ec;
  if (!fs::exists(snap / first, ec) && !(files == HubFiles::Tokenizer && fs::exists(snap / "tokenizer.json", ec)))
    return std::nullopt;
  return snap;
}

void verify_blob(const std::string& repo, const RepoFile& f, const fs::path& part) {
  const uint64_t got = fs::file_size(part);
  TLLM_CHECK(got == f.size, repo, "/", f.path, ": downloaded ", got, " bytes, the hub lists ", f.size,
             "; run the command again to resume the download");
  if (!f.sha256.empty()) {
    const std::string h = sha256_file_hex(part.string());
    if (h != f.sha256) {
      fs::remove(part);
      TLLM_THROW(repo, "/", f.path, ": the download's sha256 is ", h, ", the hub lists ", f.sha256,
                 " (removed; run the command again)");
    }
  } else if (!f.blob_id.empty()) {
    const std::string h = git_blob_id_file_hex(part.string());
    if (h != f.blob_id) {
      fs::remove(part);
      TLLM_THROW(repo, "/", f.path, ": the download's git blob id is ", h, ", the hub lists ", f.blob_id,
                 " (removed; run the command again)");
    }
  }
}

// An etag names a file inside blobs/: hex digits only.
bool safe_etag(const std::string& e) {
  return !e.empty() && e.size() <= 128 &&
         std::all_of(e.begin(), e.end(), [](char c) { return std::isxdigit(static_cast<unsigned char>(c)); });
}

// A repository path that stays inside the snapshot folder.
bool safe_repo_path(const std::string& p) {
  if (p.empty() || p[0] == '/' || p.find('\\') != std::string::npos) return false;
  for (const fs::path& part : fs::path(p))
    if (part == ".." || part == "." || part.empty()) return false;
  return true;
}

// The .gguf files a repository lists, for hints.
std::vector<std::string> gguf_files(const RepoListing& listing) {
  std::vector<std::string> out;
  for (const RepoFile& f : listing.files)
    if (f.path.ends_with(".gguf")) out.push_back(f.path);
  return out;
}

// The files of `listing` a command reads, checked for what it needs.
std::vector<RepoFile> select_files(const std::string& repo, const HubOptions& o, const RepoListing& listing) {
  std::vector<RepoFile> wanted;
  bool config = false, tokenizer = false;
  for (const RepoFile& f : listing.files) {
    if (!hub_wants_file(f.path, o.files)) continue;
    config |= f.path == "config.json";
    tokenizer |= f.path == "tokenizer.json" || f.path == "tokenizer_config.json";
    wanted.push_back(f);
  }
  if (o.files != HubFiles::Tokenizer) {
    const std::vector<std::string> ggufs = gguf_files(listing);
    const std::string hint = ggufs.empty() ? std::string()
                                           : "; it holds GGUF files (" + ggufs.front() +
                                                 (ggufs.size() > 1 ? ", ..." : "") + "): name one as " + repo +
                                                 ":QUANT (e.g. " + repo + ":Q4_K_M) or " + repo + "/FILE.gguf";
    TLLM_CHECK_ARG(config, repo, " (revision ", o.revision, ") has no config.json: not a transformers checkpoint",
                   hint);
    bool weights = false;  // listed, whether or not this command reads them
    for (const RepoFile& f : listing.files) weights |= hub_wants_file(f.path, HubFiles::Model) && f.path.ends_with(".safetensors");
    TLLM_CHECK_ARG(weights, repo, " (revision ", o.revision,
                   ") has no .safetensors weights; tinyllm reads safetensors only (not .bin or ONNX)", hint);
  } else {
    TLLM_CHECK_ARG(tokenizer, repo, " (revision ", o.revision, ") has no tokenizer.json or tokenizer_config.json");
  }
  return wanted;
}

// The paths of a split file's parts (first first), given one of them; the path alone
// otherwise. The first names the file a part belongs to.
std::vector<std::string> gguf_parts_of(const std::string& path) {
  const fs::path p(path);
  const std::optional<GgufSplitName> n = parse_gguf_split_name(p.filename().string());
  if (!n) return {path};
  std::vector<std::string> out;
  for (int i = 1; i <= n->count; ++i) out.push_back((p.parent_path() / gguf_split_name(n->prefix, i, n->count)).string());
  return out;
}

// The files a GGUF reference takes from the listing: the file it names by path, or the single
// model file (not a projector) whose name holds the quantization tag, case-insensitively; of a
// split file every part, its first part first (a path must name that part).
std::vector<RepoFile> select_gguf(const HubGgufRef& ref, const HubOptions& o, const RepoListing& listing) {
  std::vector<const RepoFile*> hits;
  for (const RepoFile& f : listing.files) {
    if (!f.path.ends_with(".gguf")) continue;
    const std::string name = lower(fs::path(f.path).filename().string());
    if (!ref.file.empty() ? f.path == ref.file
                          : name.find(lower(ref.quant)) != std::string::npos && !name.starts_with("mmproj"))
      hits.push_back(&f);
  }
  std::string listed;
  for (const std::string& g : gguf_files(listing)) listed += (listed.empty() ? "" : ", ") + g;
  if (listed.empty()) listed = "none";
  const std::string what = ref.file.empty() ? "quantization \"" + ref.quant + "\"" : "\"" + ref.file + "\"";
  TLLM_CHECK_ARG(!hits.empty(), ref.repo, " (revision ", o.revision, ") has no GGUF file for ", what,
                 " (its GGUF files: ", listed, ")");
  // The parts of one split file are one hit.
  std::vector<const RepoFile*> sets;
  for (const RepoFile* f : hits)
    if (std::none_of(sets.begin(), sets.end(),
                     [&](const RepoFile* g) { return gguf_parts_of(g->path)[0] == gguf_parts_of(f->path)[0]; }))
      sets.push_back(f);
  TLLM_CHECK_ARG(sets.size() == 1, ref.repo, ": ", what, " matches several files (", sets[0]->path, ", ", sets[1]->path,
                 "); name one as ", ref.repo, "/FILE.gguf");
  const std::vector<std::string> parts = gguf_parts_of(sets[0]->path);
  if (parts.size() > 1 && !ref.file.empty())
    TLLM_CHECK_ARG(ref.file == parts[0], ref.repo, ": ", ref.file, " is one part of a split GGUF; name its first part, ",
                   parts[0]);
  std::vector<RepoFile> out;
  for (const std::string& part : parts) {
    auto it = std::find_if(listing.files.begin(), listing.files.end(), [&](const RepoFile& f) { return f.path == part; });
    TLLM_CHECK_ARG(it != listing.files.end(), ref.repo, " (revision ", o.revision, "): ", parts[0], " is part 1 of ",
                   parts.size(), ", but the repository has no ", part);
    out.push_back(*it);
  }
  return out;
}

// Fetches `wanted` into the snapshot of `listing`'s commit; returns the snapshot folder.
fs::path fetch_snapshot(const std::string& repo, const HubOptions& o, const fs::path& cache, HubClient& client,
                        const RepoListing& listing, const std::vector<RepoFile>& wanted) {
  const fs::path repo_dir = cache / hub_repo_folder(repo);
  for (const RepoFile& f : wanted)
    TLLM_CHECK(safe_repo_path(f.path) && safe_etag(f.etag()), repo, ": the hub lists a file \"", f.path,
               "\" with blob \"", f.etag(), "\", which cannot be stored safely");
  const fs::path snap = repo_dir / "snapshots" / listing.commit;
  uint64_t total = 0, missing = 0;
  std::vector<const RepoFile*> to_fetch;
  for (const RepoFile& f : wanted) {
    total += f.size;
    std::error_code ec;
    const fs::path blob = repo_dir / "blobs" / f.etag();
    if (fs::is_regular_file(blob, ec) && fs::file_size(blob, ec) == f.size) continue;
    missing += f.size;
    to_fetch.push_back(&f);
  }
  if (!to_fetch.empty())
    TLLM_LOG(Info, "hub: ", repo, " at ", listing.commit.substr(0, 12), " (", o.revision, "): fetching ",
             to_fetch.size(), " of ", wanted.size(), " files, ", missing >> 20, " of ", total >> 20, " MiB, into ",
             repo_dir.string());
  for (const RepoFile* f : to_fetch) {
    const fs::path blob = repo_dir / "blobs" / f->etag();
    FileLock lock(cache / ".locks" / hub_repo_folder(repo) / (f->etag() + ".lock"));
    std::error_code ec;
    if (fs::is_regular_file(blob, ec) && fs::file_size(blob, ec) == f->size) continue;  // another process fetched it
    fs::create_directories(blob.parent_path());
    const fs::path part = blob.string() + ".incomplete";
    client.download(listing.commit, *f, part);
    verify_blob(repo, *f, part);
    fs::rename(part, blob);
  }
  for (const RepoFile& f : wanted) {
    const fs::path link = snap / f.path;
    fs::path target = "../../blobs/" + f.etag();
    for (size_t i = 0; i < f.path.size(); ++i)
      if (f.path[i] == '/') target = "../" + target.string();
    std::error_code ec;
    if (fs::is_symlink(link, ec) && fs::read_symlink(link, ec) == target) continue;
    fs::create_directories(link.parent_path());
    fs::remove(link, ec);
    fs::create_symlink(target, link);
  }
  if (!is_commit(o.revision)) {
    fs::create_directories(repo_dir / "refs" / fs::path(o.revision).parent_path());
    const fs::path ref = repo_dir / "refs" / o.revision, tmp = ref.string() + ".tmp";
    {
      std::ofstream out(tmp, std::ios::trunc);
      out << listing.commit;
      TLLM_CHECK(out.good(), "cannot write ", tmp.string());
    }
    fs::rename(tmp, ref);
  }
  return snap;
}

fs::path download_snapshot(const std::string& repo, const HubOptions& o, const fs::path& cache) {
  HubClient client(o, repo);
  const RepoListing listing = client.list(o.revision);
  return fetch_snapshot(repo, o, cache, client, listing, select_files(repo, o, listing));
}

// What `fetch` gets from the hub, or `cached` where the hub cannot answer (a warning), or
// only `cached` offline. A repository the hub answered for but tinyllm cannot read
// (InvalidArgument) is an error whatever the cache holds; without a cache, other errors are
// thrown after `miss_prefix`.
fs::path fetch_or_cached(const HubOptions& o, const fs::path& cache, const std::optional<fs::path>& cached,
                         const std::string& offline_miss, const std::string& miss_prefix, const char* kind,
                         const std::function<fs::path()>& fetch) {
  if (o.offline) {
    TLLM_CHECK_ARG(cached, offline_miss);
    return *cached;
  }
  try {
    return fetch();
  } catch (const InvalidArgument&) {
    throw;
  } catch (const Error& e) {
    if (!cached) TLLM_THROW(miss_prefix, e.what());
    TLLM_LOG(Warn, "hub: ", e.what(), "; using the cached ", kind, " ", cached->string());
    return *cached;
  } catch (const fs::filesystem_error& e) {
    TLLM_THROW(miss_prefix, "the hub cache (", cache.string(), "): ", e.what());
  }
}

}  // namespace

HubOptions HubOptions::with_environment() const {
  HubOptions o = *this;
  if (o.revision.empty()) o.revision = "main";
  if (o.endpoint.empty()) o.endpoint = env_or("HF_ENDPOINT", kDefaultEndpoint);
  while (o.endpoint.size() > 1 && o.endpoint.back() == '/') o.endpoint.pop_back();
  if (o.token.empty()) o.token = env_or("HF_TOKEN", env_or("HUGGING_FACE_HUB_TOKEN"));
  if (o.token.empty()) {
    std::ifstream in(env_or("HF_TOKEN_PATH", hf_home() + "/token"));
    std::getline(in, o.token);
    while (!o.token.empty() && std::isspace(static_cast<unsigned char>(o.token.back()))) o.token.pop_back();
  }
  o.offline = o.offline || env_true("HF_HUB_OFFLINE");
  return o;
}

std::string hub_cache_dir(const HubOptions& opts) {
  if (!opts.cache_dir.empty()) return opts.cache_dir;
  if (std::string c = env_or("HF_HUB_CACHE", env_or("HUGGINGFACE_HUB_CACHE")); !c.empty()) return c;
  return hf_home() + "/hub";
}

std::string hub_repo_folder(const std::string& repo_id) {
  std::string out = "models--";
  for (char c : repo_id) {
    if (c == '/') out += "--";
    else out += c;
  }
  return out;
}

bool is_hub_repo_id(const std::string& s) {
  if (s.empty() || s.find("--") != std::string::npos || s.find("..") != std::string::npos) return false;
  const size_t slash = s.find('/');
  if (slash != std::string::npos && s.find('/', slash + 1) != std::string::npos) return false;
  auto part_ok = [](std::string_view p) {
    if (p.empty() || p.size() > 96) return false;
    auto word = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0; };
    if (!word(p.front()) || !word(p.back())) return false;
    return std::all_of(p.begin(), p.end(), [&](char c) { return word(c) || c == '-' || c == '_' || c == '.'; });
  };
  if (slash == std::string::npos) return part_ok(s);
  return part_ok(std::string_view(s).substr(0, slash)) && part_ok(std::string_view(s).substr(slash + 1));
}

bool hub_wants_file(const std::string& path, HubFiles files) {
  if (path == "1_Pooling/config.json") return files != HubFiles::Tokenizer;  // sentence-transformers pooling
  if (path.find('/') != std::string::npos) return false;               // original/, onnx/, ...
  auto ends = [&](const char* e) { return path.ends_with(e); };
  if (files == HubFiles::Tokenizer)
    return path == "tokenizer.json" || path == "tokenizer_config.json" || path == "special_tokens_map.json" ||
           path == "added_tokens.json" || path == "chat_template.json" || ends(".jinja");
  return ends(".json") || ends(".jinja") || (files == HubFiles::Model && ends(".safetensors"));
}

std::string sha256_file_hex(const std::string& path) { return digest_file(path, EVP_sha256(), ""); }

std::string git_blob_id_file_hex(const std::string& path) {
  std::string header = "blob " + std::to_string(fs::file_size(path));
  header.push_back('\0');
  return digest_file(path, EVP_sha1(), header);
}

std::optional<HubGgufRef> parse_hub_gguf_ref(const std::string& s) {
  std::error_code ec;
  if (s.empty() || fs::exists(fs::symlink_status(s, ec))) return std::nullopt;
  const size_t colon = s.find(':');
  if (colon != std::string::npos) {
    HubGgufRef r{s.substr(0, colon), s.substr(colon + 1), ""};
    const bool tag_ok = !r.quant.empty() && r.quant.size() <= 64 && std::all_of(r.quant.begin(), r.quant.end(), [](char c) {
      return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.';
    });
    if (r.repo.find('/') != std::string::npos && is_hub_repo_id(r.repo) && tag_ok) return r;
    return std::nullopt;
  }
  if (!s.ends_with(".gguf")) return std::nullopt;
  const size_t first = s.find('/'), second = first == std::string::npos ? first : s.find('/', first + 1);
  if (second == std::string::npos) return std::nullopt;
  HubGgufRef r{s.substr(0, second), "", s.substr(second + 1)};
  if (!is_hub_repo_id(r.repo) || !safe_repo_path(r.file)) return std::nullopt;
  return r;
}

std::string resolve_hub_gguf(const HubGgufRef& ref, const HubOptions& opts) {
  const HubOptions o = opts.with_environment();
  const fs::path cache = hub_cache_dir(o);
  const fs::path repo_dir = cache / hub_repo_folder(ref.repo);
  const std::string what = ref.file.empty() ? ref.repo + ":" + ref.quant : ref.repo + "/" + ref.file;
  // The cache: the revision's snapshot, holding the file named or one matching the tag.
  auto cached = [&]() -> std::optional<fs::path> {
    const auto commit = cached_commit(repo_dir, o.revision);
    if (!commit) return std::nullopt;
    const fs::path snap = repo_dir / "snapshots" / *commit;
    std::error_code ec;
    // A file (every part of a split one) that is there.
    auto whole = [&](const fs::path& p) -> std::optional<fs::path> {
      const std::vector<std::string> parts = gguf_parts_of(p.string());
      for (const std::string& part : parts)
        if (!fs::exists(part, ec)) return std::nullopt;
      return fs::path(parts[0]);
    };
    if (!ref.file.empty()) return whole(snap / ref.file);
    std::optional<fs::path> hit;
    for (auto it = fs::recursive_directory_iterator(snap, ec); !ec && it != fs::recursive_directory_iterator();
         it.increment(ec)) {
      const std::string name = lower(it->path().filename().string());
      if (name.ends_with(".gguf") && name.find(lower(ref.quant)) != std::string::npos && !name.starts_with("mmproj") &&
          fs::exists(it->path(), ec)) {
        if (hit && gguf_parts_of(hit->string())[0] != gguf_parts_of(it->path().string())[0])
          return std::nullopt;  // ambiguous: ask the hub
        hit = it->path();
      }
    }
    return hit ? whole(*hit) : std::nullopt;
  }();
  const std::string offline_miss = what + ": HF_HUB_OFFLINE is set and the hub cache (" + cache.string() +
                                   ") holds no such file for revision \"" + o.revision + "\"";
  return fetch_or_cached(o, cache, cached, offline_miss, what + ": ", "file", [&] {
           HubClient client(o, ref.repo);
           const RepoListing listing = client.list(o.revision);
           const std::vector<RepoFile> files = select_gguf(ref, o, listing);
           return fetch_snapshot(ref.repo, o, cache, client, listing, files) / files[0].path;
         }).string();
}

ResolvedModel resolve_model(const std::string& model, const HubOptions& opts) {
  std::error_code ec;
  if (model.empty() || fs::exists(fs::symlink_status(model, ec)) || !is_hub_repo_id(model)) return {model, false};
  const HubOptions o = opts.with_environment();
  const fs::path cache = hub_cache_dir(o);
  const fs::path repo_dir = cache / hub_repo_folder(model);
  const std::optional<fs::path> cached = cached_snapshot(repo_dir, o.revision, o.files);
  const std::string offline_miss = model + ": no such local folder, and HF_HUB_OFFLINE is set while the hub cache (" +
                                   cache.string() + ") holds no snapshot of its revision \"" + o.revision + "\"";
  const std::string miss = "no such local folder \"" + model + "\"; as a hub repository: ";
  return {fetch_or_cached(o, cache, cached, offline_miss, miss, "snapshot",
                          [&] { return download_snapshot(model, o, cache); })
              .string(),
          true};
}

}  // namespace tllm
