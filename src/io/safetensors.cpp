#include "io/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <set>

#include "core/error.h"
#include "io/gguf.h"
#include "io/json.h"

namespace tllm {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// The limit HF's safetensors applies to the JSON header (MAX_HEADER_SIZE).
constexpr uint64_t kMaxHeaderBytes = 100'000'000;

const char* kSupportedDtypes = "F32, F16, BF16, F64, I8, U8, I16, I32, I64, U32, BOOL, F8_E4M3, F8_E5M2";

const char* safetensors_dtype_name(DType t) {
  switch (t) {
    case DType::F32: return "F32";
    case DType::F16: return "F16";
    case DType::BF16: return "BF16";
    case DType::F64: return "F64";
    case DType::I8: return "I8";
    case DType::U8: return "U8";
    case DType::I16: return "I16";
    case DType::I32: return "I32";
    case DType::I64: return "I64";
    case DType::U32: return "U32";
    case DType::BOOL: return "BOOL";
    case DType::F8E4M3: return "F8_E4M3";
    case DType::F8E5M2: return "F8_E5M2";
    case DType::I4: break;
  }
  return nullptr;  // no safetensors spelling
}

std::optional<DType> parse_dtype(const std::string& s) {
  for (DType t : {DType::F32, DType::F16, DType::BF16, DType::F64, DType::I8, DType::U8, DType::I16,
                  DType::I32, DType::I64, DType::U32, DType::BOOL, DType::F8E4M3, DType::F8E5M2})
    if (s == safetensors_dtype_name(t)) return t;
  return std::nullopt;
}

// A non-negative JSON integer (safetensors shapes and offsets are usize).
std::optional<uint64_t> as_u64(const json& v) {
  if (v.is_number_unsigned()) return v.get<uint64_t>();
  return std::nullopt;
}

std::string offsets_str(size_t b, size_t e) { return detail::concat("[", b, ", ", e, "]"); }

}  // namespace

// ---------------------------------------------------------------------------------------
// SafetensorsFile

SafetensorsFile::~SafetensorsFile() {
  if (map_ && map_size_) ::munmap(map_, map_size_);
}

std::shared_ptr<SafetensorsFile> SafetensorsFile::open(const std::string& path) {
  std::shared_ptr<SafetensorsFile> f(new SafetensorsFile());
  f->path_ = path;
  f->self_ = f;

  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  TLLM_CHECK_ARG(fd >= 0, "cannot open safetensors file ", path, ": ", std::strerror(errno));
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    TLLM_CHECK_ARG(false, "cannot stat safetensors file ", path, ": ", std::strerror(err));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    TLLM_CHECK_ARG(false, "cannot open safetensors file ", path, ": not a regular file");
  }
  const uint64_t file_size = static_cast<uint64_t>(st.st_size);
  if (file_size < 8) {
    ::close(fd);
    TLLM_CHECK_ARG(false, path, ": not a safetensors file: ", file_size,
                   " bytes, shorter than the 8-byte header length (truncated?)");
  }
  // Read-only private mapping: tensors handed out view it directly.
  void* p = ::mmap(nullptr, file_size, PROT_READ, MAP_PRIVATE, fd, 0);
  const int map_err = errno;
  ::close(fd);
  TLLM_CHECK_ARG(p != MAP_FAILED, "cannot mmap ", path, " (", file_size, " bytes): ", std::strerror(map_err));
  f->map_ = p;
  f->map_size_ = file_size;
  const char* base = static_cast<const char*>(p);

  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<unsigned char>(base[i]);  // little endian
  TLLM_CHECK_ARG(n <= kMaxHeaderBytes, path, ": header length ", n, " exceeds the ", kMaxHeaderBytes,
                 "-byte limit (not a safetensors file?)");
  TLLM_CHECK_ARG(n <= file_size - 8, path, ": header length ", n, " runs past the end of the file (",
                 file_size, " bytes; truncated?)");
  const uint64_t data_size = file_size - 8 - n;
  f->data_ = base + 8 + n;

  const json header = parse_json(std::string_view(base + 8, n), path + " (safetensors header)");
  TLLM_CHECK_ARG(header.is_object(), path, ": safetensors header must be a JSON object, got ",
                 json_brief(header));

  for (const auto& [name, entry] : header.items()) {
    if (name == "__metadata__") {
      TLLM_CHECK_ARG(entry.is_object(), path, ": __metadata__ must be an object of strings, got ",
                     json_brief(entry));
      for (const auto& [k, v] : entry.items()) {
        TLLM_CHECK_ARG(v.is_string(), path, ": __metadata__ value for \"", k, "\" must be a string, got ",
                       json_brief(v));
        f->metadata_[k] = v.get<std::string>();
      }
      continue;
    }
    auto bad = [&](const std::string& what) {
      throw InvalidArgument(detail::concat(path, ": tensor '", name, "': ", what));
    };
    if (!entry.is_object()) bad("header entry must be an object with dtype, shape and data_offsets, got " +
                                json_brief(entry));
    TensorInfo info;
    info.name = name;
    info.file = path;

    auto dt = entry.find("dtype");
    if (dt == entry.end()) bad("missing \"dtype\"");
    if (!dt->is_string()) bad("\"dtype\" must be a string, got " + json_brief(*dt));
    const auto dtype = parse_dtype(dt->get<std::string>());
    if (!dtype) bad("unsupported dtype \"" + dt->get<std::string>() + "\" (supported: " + kSupportedDtypes + ")");
    info.dtype = *dtype;

    auto sh = entry.find("shape");
    if (sh == entry.end()) bad("missing \"shape\"");
    if (!sh->is_array()) bad("\"shape\" must be a list of integers, got " + json_brief(*sh));
    // numel in 128 bits so that a hostile shape cannot overflow the size check.
    unsigned __int128 numel = 1;
    for (const auto& d : *sh) {
      if (d.is_number_integer() && !d.is_number_unsigned())
        bad("negative dimension " + json_brief(d) + " in shape " + json_brief(*sh));
      const auto u = as_u64(d);
      if (!u) bad("\"shape\" must be a list of non-negative integers, got " + json_brief(*sh));
      if (*u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) bad("dimension too large in shape " + json_brief(*sh));
      info.shape.push_back(static_cast<int64_t>(*u));
      numel *= *u;
      if (numel > (static_cast<unsigned __int128>(1) << 64)) bad("shape " + json_brief(*sh) + " is too large");
    }

    auto off = entry.find("data_offsets");
    if (off == entry.end()) bad("missing \"data_offsets\"");
    if (!off->is_array() || off->size() != 2 || !as_u64((*off)[0]) || !as_u64((*off)[1]))
      bad("\"data_offsets\" must be [begin, end] with non-negative integers, got " + json_brief(*off));
    const uint64_t b = *as_u64((*off)[0]);
    const uint64_t e = *as_u64((*off)[1]);
    if (b > e) bad("data_offsets " + offsets_str(b, e) + " have begin > end");
    if (e > data_size)
      bad(detail::concat("data_offsets ", offsets_str(b, e), " extend past the end of the data block (",
                         data_size, " bytes): file truncated?"));
    const unsigned __int128 need = numel * dtype_size(info.dtype);
    if (need != e - b)
      bad(detail::concat("dtype ", dt->get<std::string>(), " shape ", shape_str(info.shape), " needs ",
                         static_cast<uint64_t>(need), " bytes but data_offsets ", offsets_str(b, e), " span ",
                         e - b));
    info.offset = b;
    info.nbytes = e - b;
    f->tensors_.emplace(name, std::move(info));
  }

  // As HF's safetensors: the tensors, sorted by offset, must tile the data block exactly
  // (no overlap, no hole, nothing after the last one).
  std::vector<const TensorInfo*> order;
  order.reserve(f->tensors_.size());
  for (const auto& [name, info] : f->tensors_) order.push_back(&info);
  std::sort(order.begin(), order.end(), [](const TensorInfo* a, const TensorInfo* b) {
    return std::tie(a->offset, a->nbytes, a->name) < std::tie(b->offset, b->nbytes, b->name);
  });
  size_t expected = 0;
  const TensorInfo* prev = nullptr;
  for (const TensorInfo* t : order) {
    const size_t b = t->offset, e = t->offset + t->nbytes;
    TLLM_CHECK_ARG(b >= expected, path, ": tensor '", t->name, "' data_offsets ", offsets_str(b, e),
                   " overlap tensor '", prev ? prev->name : "", "' ",
                   prev ? offsets_str(prev->offset, prev->offset + prev->nbytes) : "");
    TLLM_CHECK_ARG(b == expected, path, ": hole in the data block: bytes [", expected, ", ", b,
                   ") before tensor '", t->name, "' belong to no tensor",
                   prev ? " (previous tensor '" + prev->name + "' ends at " + std::to_string(expected) + ")"
                        : std::string(" (the first tensor must start at offset 0)"));
    expected = e;
    prev = t;
  }
  TLLM_CHECK_ARG(expected == data_size, path, ": data block is ", data_size, " bytes but the tensors cover ",
                 expected, prev ? " (" + std::to_string(data_size - expected) +
                                      " trailing bytes after tensor '" + prev->name + "')"
                                : std::string(" (no tensors)"));
  return f;
}

const TensorInfo& SafetensorsFile::info(const std::string& name) const {
  auto it = tensors_.find(name);
  TLLM_CHECK_ARG(it != tensors_.end(), "tensor '", name, "' not found in ", path_, " (", tensors_.size(),
                 " tensors)");
  return it->second;
}

Tensor SafetensorsFile::get(const std::string& name) const {
  const TensorInfo& ti = info(name);
  std::shared_ptr<SafetensorsFile> keep = self_.lock();
  TLLM_ASSERT(keep != nullptr);
  // The mapping is PROT_READ: the view must be treated as read-only (writing faults).
  return Tensor::wrap(const_cast<char*>(data_ + ti.offset), ti.shape, ti.dtype, Device::CPU, std::move(keep));
}

// ---------------------------------------------------------------------------------------
// Checkpoint

namespace {

// A shard name from an index must stay inside the checkpoint directory.
bool safe_relative_name(const std::string& s) {
  if (s.empty() || s.front() == '/') return false;
  for (const auto& part : fs::path(s)) {
    if (part == "..") return false;
  }
  return true;
}

}  // namespace

Checkpoint Checkpoint::open(const std::string& dir) {
  std::error_code ec;
  TLLM_CHECK_ARG(fs::is_directory(dir, ec), "checkpoint directory ", dir, " does not exist or is not a directory");
  Checkpoint ck;
  ck.dir_ = dir;
  const fs::path root(dir);
  const std::string index_path = (root / "model.safetensors.index.json").string();
  const std::string single_path = (root / "model.safetensors").string();

  // Shard file name -> tensors the index assigns to it (ordered for stable errors).
  std::map<std::string, std::vector<std::string>> index_shards;
  if (file_exists(index_path)) {
    const json index = read_json_file(index_path);
    TLLM_CHECK_ARG(index.is_object(), index_path, ": expected a JSON object, got ", json_brief(index));
    auto wm = index.find("weight_map");
    TLLM_CHECK_ARG(wm != index.end() && wm->is_object(), index_path,
                   ": expected an object \"weight_map\" mapping tensor names to shard files");
    for (const auto& [tensor, shard] : wm->items()) {
      TLLM_CHECK_ARG(shard.is_string(), index_path, ": weight_map entry for tensor '", tensor,
                     "' must be a file name, got ", json_brief(shard));
      const std::string s = shard.get<std::string>();
      TLLM_CHECK_ARG(safe_relative_name(s), index_path, ": weight_map entry for tensor '", tensor,
                     "' names shard \"", s, "\", which is not a file inside the checkpoint directory");
      index_shards[s].push_back(tensor);
    }
    TLLM_CHECK_ARG(!index_shards.empty(), index_path, ": weight_map is empty");
    for (const auto& [shard, tensors] : index_shards) {
      const std::string p = (root / shard).string();
      TLLM_CHECK_ARG(file_exists(p), index_path, " lists shard ", shard, " (for tensor '", tensors.front(), "'",
                     tensors.size() > 1 ? " and " + std::to_string(tensors.size() - 1) + " others" : std::string(),
                     ") but ", p, " does not exist");
      ck.files_.push_back(SafetensorsFile::open(p));
      const SafetensorsFile& f = *ck.files_.back();
      for (const auto& t : tensors)
        TLLM_CHECK_ARG(f.has(t), index_path, " assigns tensor '", t, "' to ", shard, " but ", p,
                       " does not contain it");
    }
  } else if (file_exists(single_path)) {
    ck.files_.push_back(SafetensorsFile::open(single_path));
  } else if (file_exists((root / "gguf_tensors.json").string())) {
    ck.open_gguf((root / "gguf_tensors.json").string());
    return ck;
  } else {
    std::vector<std::string> found, unreadable;
    for (const auto& e : fs::directory_iterator(root, ec)) {
      if (e.path().extension() != ".safetensors") continue;
      (file_exists(e.path().string()) ? found : unreadable).push_back(e.path().string());
    }
    // A weights file that is there but no file (an interrupted download leaves a dangling
    // link in the HF cache) is named, not taken for an absent one.
    if (found.empty() && !unreadable.empty()) {
      std::sort(unreadable.begin(), unreadable.end());
      const std::string& p = unreadable.front();
      std::error_code e2;
      const fs::file_status st = fs::status(p, e2);
      std::string what = "is not a regular file";
      if (fs::is_directory(st)) what = "is a directory";
      else if (e2 == std::errc::no_such_file_or_directory) what = "is a symbolic link to nothing (an interrupted download?)";
      else if (e2 == std::errc::too_many_symbolic_link_levels) what = "is a loop of symbolic links";
      else if (e2) what += " (" + e2.message() + ")";
      TLLM_CHECK_ARG(false, "no readable safetensors weights in ", dir, ": ", p, " ", what);
    }
    TLLM_CHECK_ARG(!found.empty(), "no safetensors weights in ", dir,
                   ": looked for model.safetensors.index.json, model.safetensors and *.safetensors");
    std::sort(found.begin(), found.end());
    for (const auto& p : found) ck.files_.push_back(SafetensorsFile::open(p));
  }

  for (const auto& f : ck.files_) {
    for (const auto& [name, info] : f->tensors()) {
      auto [it, inserted] = ck.where_.emplace(name, f.get());
      TLLM_CHECK_ARG(inserted, "tensor '", name, "' appears in two shards of ", dir, ": ", it->second->path(),
                     " and ", f->path());
    }
  }
  return ck;
}

// The stored row of row r of a GGUF tensor: llama.cpp's converter stores row i of each of a
// Llama q / k weight's `heads` heads' first half at 2i and of its second half at 2i + 1 (its
// rotary pairs neighbours); HF's order pairs i with i + half. heads 0: the same row.
static int64_t gguf_stored_row(int64_t r, int64_t rows, int64_t heads) {
  if (heads == 0) return r;
  const int64_t head = rows / heads, half = head / 2, in = r % head;
  return r - in + 2 * (in % half) + in / half;
}

void Checkpoint::open_gguf(const std::string& map_path) {
  const json m = read_json_file(map_path);
  TLLM_CHECK_ARG(m.is_object() && m.contains("gguf") && m["gguf"].is_string() && m.contains("tensors") &&
                     m["tensors"].is_object(),
                 map_path, ": expected {\"gguf\": FILE, \"tensors\": {...}}");
  const std::string file = m["gguf"].get<std::string>();
  TLLM_CHECK_ARG(safe_relative_name(file), map_path, ": \"gguf\" names ", file, ", not a file of ", dir_);
  gguf_ = GgufFile::open((fs::path(dir_) / file).string());
  for (const auto& [hf, entry] : m["tensors"].items()) {
    TLLM_CHECK_ARG(entry.is_object() && entry.contains("name") && entry["name"].is_string(), map_path, ": entry \"",
                   hf, "\" has no GGUF name");
    GgufTensor t;
    t.gguf_name = entry["name"].get<std::string>();
    t.permute_heads = entry.value("permute_heads", int64_t{0});
    t.slice = entry.value("slice", int64_t{-1});
    const GgufTensorInfo& gi = gguf_->tensor(t.gguf_name);
    t.info.name = hf;
    t.info.shape = Shape(gi.shape.begin(), gi.shape.end());
    if (t.slice >= 0) {
      TLLM_CHECK_ARG(gi.shape.size() == 3 && t.slice < gi.shape[0] && t.permute_heads == 0, map_path, ": \"", hf,
                     "\" takes slice ", t.slice, " of ", t.gguf_name, ", which is not a stack of that many matrices");
      t.info.shape = Shape(gi.shape.begin() + 1, gi.shape.end());
    }
    if (entry.contains("shape")) {
      TLLM_CHECK_ARG(entry["shape"].is_array(), map_path, ": \"", hf, "\" has a shape that is not a list");
      const Shape shape = entry["shape"].get<std::vector<int64_t>>();
      TLLM_CHECK_ARG(shape_numel(shape) == shape_numel(t.info.shape), map_path, ": \"", hf, "\" as ",
                     shape_str(shape), " is not the ", shape_numel(t.info.shape), " elements of ", t.gguf_name);
      t.info.shape = shape;
      t.reshaped = true;
    }
    t.info.dtype = gguf_->float_dtype(t.gguf_name);
    t.info.nbytes = dtype_nbytes(t.info.dtype, shape_numel(t.info.shape));
    t.info.file = gguf_->path();
    t.info.offset = gi.offset;
    if (t.permute_heads > 0) {
      const int64_t rows = t.info.shape[0];
      TLLM_CHECK_ARG(rows % (2 * t.permute_heads) == 0, gguf_->path(), ": tensor ", t.gguf_name, " has ", rows,
                     " rows, not ", t.permute_heads, " heads of an even size");
    }
    gguf_tensors_.emplace(hf, std::move(t));
  }
}

const TensorInfo& Checkpoint::info(const std::string& name) const {
  if (auto g = gguf_tensors_.find(name); g != gguf_tensors_.end()) return g->second.info;
  auto it = where_.find(name);
  TLLM_CHECK_ARG(it != where_.end(), "tensor '", name, "' not found in checkpoint ", dir_, " (", where_.size(),
                 " tensors in ", files_.size(), " file", files_.size() == 1 ? "" : "s", ")");
  return it->second->info(name);
}

Tensor Checkpoint::get(const std::string& name) const {
  info(name);  // error naming the checkpoint when absent
  if (auto g = gguf_tensors_.find(name); g != gguf_tensors_.end()) {
    Tensor t = g->second.slice >= 0 ? gguf_->tensor_floats(g->second.gguf_name, g->second.slice)
                                    : gguf_->tensor_floats(g->second.gguf_name);
    if (g->second.reshaped) t = t.view(g->second.info.shape);
    const int64_t heads = g->second.permute_heads;
    if (heads == 0) return t;
    const int64_t rows = t.dim(0), cols = t.numel() / rows;
    const size_t row_bytes = dtype_nbytes(t.dtype(), cols);
    Tensor out = Tensor::empty(t.shape(), t.dtype());
    const auto* src = static_cast<const char*>(t.raw());
    auto* dst = static_cast<char*>(out.raw());
    for (int64_t r = 0; r < rows; ++r)
      std::memcpy(dst + r * row_bytes, src + gguf_stored_row(r, rows, heads) * row_bytes, row_bytes);
    return out;
  }
  return where_.at(name)->get(name);
}

std::optional<uint32_t> Checkpoint::gguf_type(const std::string& name) const {
  info(name);  // error naming the checkpoint when absent
  auto g = gguf_tensors_.find(name);
  if (g == gguf_tensors_.end()) return std::nullopt;
  return gguf_->tensor(g->second.gguf_name).type;
}

std::optional<Checkpoint::GgufRows> Checkpoint::gguf_rows(const std::string& name) const {
  info(name);  // error naming the checkpoint when absent
  auto g = gguf_tensors_.find(name);
  if (g == gguf_tensors_.end()) return std::nullopt;
  const GgufTensorInfo& gi = gguf_->tensor(g->second.gguf_name);
  const Shape& shape = g->second.info.shape;
  GgufRows out;
  out.type = gi.type;
  out.rows = shape.empty() ? 1 : shape[0];
  out.cols = out.rows == 0 ? 0 : static_cast<int64_t>(shape_numel(shape)) / out.rows;
  const uint64_t row_bytes = ggml_row_bytes(gi.type, out.cols);
  const uint8_t* base = gguf_->tensor_bytes(g->second.gguf_name);
  if (g->second.slice >= 0) base += static_cast<uint64_t>(g->second.slice) * static_cast<uint64_t>(out.rows) * row_bytes;
  out.row.resize(static_cast<size_t>(out.rows));
  for (int64_t r = 0; r < out.rows; ++r)
    out.row[r] = base + gguf_stored_row(r, out.rows, g->second.permute_heads) * row_bytes;
  return out;
}

std::vector<std::string> Checkpoint::names() const {
  std::vector<std::string> out;
  out.reserve(where_.size() + gguf_tensors_.size());
  for (const auto& [name, f] : where_) out.push_back(name);
  for (const auto& [name, t] : gguf_tensors_) out.push_back(name);
  return out;
}

// ---------------------------------------------------------------------------------------
// Writer

void write_safetensors(const std::string& path, const std::vector<std::pair<std::string, Tensor>>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  // HF's layout: tensors ordered by dtype alignment (largest first), then by name, packed
  // back to back; with an 8-byte aligned header every tensor is aligned to its element size.
  std::vector<const std::pair<std::string, Tensor>*> order;
  std::set<std::string> seen;
  for (const auto& item : tensors) {
    const auto& [name, t] = item;
    TLLM_CHECK_ARG(name != "__metadata__", "write_safetensors ", path, ": \"__metadata__\" is not a tensor name");
    TLLM_CHECK_ARG(seen.insert(name).second, "write_safetensors ", path, ": duplicate tensor name '", name, "'");
    TLLM_CHECK_ARG(safetensors_dtype_name(t.dtype()) != nullptr, "write_safetensors ", path, ": tensor '", name,
                   "' has dtype ", dtype_name(t.dtype()), ", which safetensors cannot store (supported: ",
                   kSupportedDtypes, ")");
    TLLM_CHECK_ARG(t.device() == Device::CPU, "write_safetensors ", path, ": tensor '", name, "' is on ",
                   device_name(t.device()), "; copy it to the host first");
    TLLM_CHECK_ARG(t.numel() == 0 || t.defined(), "write_safetensors ", path, ": tensor '", name, "' has no data");
    order.push_back(&item);
  }
  std::stable_sort(order.begin(), order.end(), [](const auto* a, const auto* b) {
    const size_t sa = dtype_size(a->second.dtype()), sb = dtype_size(b->second.dtype());
    if (sa != sb) return sa > sb;
    return a->first < b->first;
  });

  std::string header = "{";
  bool first = true;
  if (!metadata.empty()) {
    header += "\"__metadata__\":" + json(metadata).dump();
    first = false;
  }
  size_t offset = 0;
  for (const auto* item : order) {
    const Tensor& t = item->second;
    const size_t nbytes = t.nbytes();
    if (!first) header += ',';
    first = false;
    header += json(item->first).dump();
    header += ":{\"dtype\":\"";
    header += safetensors_dtype_name(t.dtype());
    header += "\",\"shape\":";
    header += json(t.shape()).dump();
    header += detail::concat(",\"data_offsets\":[", offset, ",", offset + nbytes, "]}");
    offset += nbytes;
  }
  header += '}';
  header.append((8 - header.size() % 8) % 8, ' ');

  // Write beside the target and rename, so a reader (or a live mapping of the old file)
  // never sees a half-written file.
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    TLLM_CHECK(out.good(), "write_safetensors: cannot create ", tmp, ": ", std::strerror(errno));
    unsigned char len[8];
    uint64_t n = header.size();
    for (int i = 0; i < 8; ++i) len[i] = static_cast<unsigned char>((n >> (8 * i)) & 0xff);
    out.write(reinterpret_cast<const char*>(len), 8);
    out.write(header.data(), static_cast<std::streamsize>(header.size()));
    for (const auto* item : order) {
      const Tensor& t = item->second;
      if (t.nbytes()) out.write(static_cast<const char*>(t.raw()), static_cast<std::streamsize>(t.nbytes()));
    }
    out.flush();
    if (!out.good()) {
      std::remove(tmp.c_str());
      TLLM_THROW("write_safetensors: error while writing ", tmp);
    }
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) {
    std::remove(tmp.c_str());
    TLLM_THROW("write_safetensors: cannot rename ", tmp, " to ", path, ": ", ec.message());
  }
}

}  // namespace tllm
