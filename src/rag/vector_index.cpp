#include "rag/vector_index.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>

#include "core/error.h"

namespace tllm {

namespace {

constexpr char kMagic[8] = {'T', 'L', 'L', 'M', 'R', 'A', 'G', '1'};
constexpr uint32_t kVersion = 1;

template <typename T>
void put(std::ofstream& f, T v) {
  f.write(reinterpret_cast<const char*>(&v), sizeof v);
}

// Reads from a whole file held in memory, naming the file and the part that is missing.
class Reader {
 public:
  Reader(std::string path, std::string data) : path_(std::move(path)), d_(std::move(data)) {}
  const char* take(uint64_t n, const char* what) {
    TLLM_CHECK_ARG(n <= d_.size() - pos_, path_, ": not a tinyllm RAG index, or cut short (", what, " needs ", n,
                   " bytes, ", d_.size() - pos_, " left)");
    const char* p = d_.data() + pos_;
    pos_ += n;
    return p;
  }
  template <typename T>
  T get(const char* what) {
    T v;
    std::memcpy(&v, take(sizeof v, what), sizeof v);
    return v;
  }
  nlohmann::json json(const char* what) {
    const uint64_t n = get<uint64_t>(what);
    const char* p = take(n, what);
    nlohmann::json j = nlohmann::json::parse(p, p + n, nullptr, /*allow_exceptions=*/false);
    TLLM_CHECK_ARG(!j.is_discarded(), path_, ": its ", what, " is not valid JSON");
    return j;
  }
  bool at_end() const { return pos_ == d_.size(); }
  const std::string& path() const { return path_; }

 private:
  std::string path_, d_;
  uint64_t pos_ = 0;
};

}  // namespace

VectorIndex::VectorIndex(int dim, nlohmann::json meta) : dim_(dim), meta_(std::move(meta)) {
  TLLM_CHECK_ARG(dim > 0, "a vector index needs a positive dimension, got ", dim);
}

void VectorIndex::add(std::span<const float> v, IndexEntry entry) {
  TLLM_CHECK_ARG(static_cast<int>(v.size()) == dim_, "vector of ", v.size(), " values for an index of dimension ", dim_);
  double n = 0;
  for (float x : v) n += double(x) * x;
  TLLM_CHECK_ARG(n > 0 && std::isfinite(n), "cannot index a zero or non-finite vector (", entry.source, ")");
  const float inv = static_cast<float>(1.0 / std::sqrt(n));
  for (float x : v) vectors_.push_back(x * inv);
  entries_.push_back(std::move(entry));
}

std::vector<VectorIndex::Hit> VectorIndex::search(std::span<const float> q, int k) const {
  TLLM_CHECK_ARG(static_cast<int>(q.size()) == dim_, "query vector of ", q.size(), " values for an index of dimension ",
                 dim_);
  TLLM_CHECK_ARG(k > 0, "top-k must be positive, got ", k);
  double n = 0;
  for (float x : q) n += double(x) * x;
  TLLM_CHECK_ARG(n > 0 && std::isfinite(n), "the query's vector is zero or not finite");
  const float inv = static_cast<float>(1.0 / std::sqrt(n));
  std::vector<Hit> hits(entries_.size());
  for (size_t i = 0; i < entries_.size(); ++i) {
    const float* v = vectors_.data() + i * static_cast<size_t>(dim_);
    float s = 0.0f;
    for (int j = 0; j < dim_; ++j) s += v[j] * q[static_cast<size_t>(j)];
    hits[i] = {i, s * inv};
  }
  const size_t top = std::min(hits.size(), static_cast<size_t>(k));
  std::partial_sort(hits.begin(), hits.begin() + static_cast<std::ptrdiff_t>(top), hits.end(),
                    [](const Hit& a, const Hit& b) { return a.score != b.score ? a.score > b.score : a.id < b.id; });
  hits.resize(top);
  return hits;
}

void VectorIndex::save(const std::string& path) const {
  std::error_code ec;
  TLLM_CHECK_ARG(!std::filesystem::is_directory(path, ec), "cannot write the index to ", path, ": it is a directory");
  const std::string tmp = path + ".tmp";
  try {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    TLLM_CHECK_ARG(f.good(), "cannot write ", tmp);
    f.write(kMagic, sizeof kMagic);
    put(f, kVersion);
    put(f, static_cast<uint32_t>(dim_));
    put(f, static_cast<uint64_t>(entries_.size()));
    // Paths are bytes: a document or model path that is not UTF-8 (a Latin-1 file name) is
    // kept with U+FFFD in place of its bad bytes (JSON holds UTF-8 only; dump() threw, after
    // every chunk had been embedded).
    constexpr auto kReplace = nlohmann::json::error_handler_t::replace;
    const std::string meta = meta_.dump(-1, ' ', false, kReplace);
    put(f, static_cast<uint64_t>(meta.size()));
    f.write(meta.data(), static_cast<std::streamsize>(meta.size()));
    f.write(reinterpret_cast<const char*>(vectors_.data()), static_cast<std::streamsize>(vectors_.size() * sizeof(float)));
    nlohmann::json store = nlohmann::json::array();
    for (const IndexEntry& e : entries_)
      store.push_back({{"source", e.source}, {"begin", e.begin}, {"end", e.end}, {"text", e.text}});
    const std::string s = store.dump(-1, ' ', false, kReplace);
    put(f, static_cast<uint64_t>(s.size()));
    f.write(s.data(), static_cast<std::streamsize>(s.size()));
    TLLM_CHECK_ARG(f.good(), "writing ", tmp, " failed (disk full?)");
    f.close();
    TLLM_CHECK_ARG(std::rename(tmp.c_str(), path.c_str()) == 0, "cannot move ", tmp, " to ", path);
  } catch (...) {
    std::filesystem::remove(tmp, ec);  // no half-written file left beside the index
    throw;
  }
}

VectorIndex VectorIndex::load(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  TLLM_CHECK_ARG(f.good(), "cannot read the index ", path);
  std::string data((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  Reader r(path, std::move(data));
  TLLM_CHECK_ARG(std::memcmp(r.take(sizeof kMagic, "the header"), kMagic, sizeof kMagic) == 0, path,
                 ": not a tinyllm RAG index (no TLLMRAG1 header)");
  const uint32_t version = r.get<uint32_t>("the header");
  TLLM_CHECK_ARG(version == kVersion, path, ": index version ", version, ", this build reads version ", kVersion);
  const uint32_t dim = r.get<uint32_t>("the header");
  const uint64_t count = r.get<uint64_t>("the header");
  TLLM_CHECK_ARG(dim > 0 && dim <= (1u << 20), path, ": dimension ", dim, " out of range");
  nlohmann::json meta = r.json("metadata");
  TLLM_CHECK_ARG(meta.is_object(), path, ": its metadata is not a JSON object");
  VectorIndex index(static_cast<int>(dim), std::move(meta));
  TLLM_CHECK_ARG(count <= (uint64_t{1} << 40) / dim, path, ": ", count, " vectors is not a plausible count");
  const char* v = r.take(count * dim * sizeof(float), "the vectors");
  index.vectors_.resize(count * dim);
  std::memcpy(index.vectors_.data(), v, count * dim * sizeof(float));
  // add() stored them with unit length: anything else (NaN, which no ranking can order, or a
  // scale that would put scores beyond [-1, 1]) is damage.
  for (uint64_t i = 0; i < count; ++i) {
    double n = 0;
    for (uint32_t j = 0; j < dim; ++j) n += double(index.vectors_[i * dim + j]) * index.vectors_[i * dim + j];
    TLLM_CHECK_ARG(std::isfinite(n) && std::abs(n - 1.0) < 1e-3, path, ": vector ", i,
                   std::isfinite(n) ? " does not have unit length" : " is not finite", " (a damaged file)");
  }
  const nlohmann::json store = r.json("document store");
  TLLM_CHECK_ARG(store.is_array() && store.size() == count, path, ": the document store holds ",
                 store.is_array() ? store.size() : 0, " entries for ", count, " vectors");
  for (const nlohmann::json& e : store) {
    const auto offset = [&](const char* key) {
      const auto it = e.find(key);
      return it == e.end() || !it->is_number_unsigned() ? std::optional<uint64_t>() : it->get<uint64_t>();
    };
    const bool ok = e.is_object() && e.contains("text") && e["text"].is_string() && e.contains("source") &&
                    e["source"].is_string() && offset("begin") && offset("end") && *offset("begin") <= *offset("end");
    TLLM_CHECK_ARG(ok, path, ": a document store entry is malformed (it needs \"source\" and \"text\" strings and "
                             "byte offsets \"begin\" <= \"end\"): ", e.dump().substr(0, 200));
    index.entries_.push_back({e["source"], *offset("begin"), *offset("end"), e["text"]});
  }
  TLLM_CHECK_ARG(r.at_end(), path, ": bytes after the document store (a damaged or foreign file)");
  return index;
}

}  // namespace tllm
