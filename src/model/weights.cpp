#include "model/weights.h"

#include <algorithm>
#include <cstring>
#include <random>

#include "core/logging.h"
#include "core/thread_pool.h"
#include "model/quant.h"

namespace tllm {

namespace {
bool is_norm_weight(const std::string& name) {
  return name.size() >= 11 && name.compare(name.size() - 11, 11, "norm.weight") == 0;
}
}  // namespace

void host_to_f32(const Tensor& src, float* dst, ThreadPool* pool) {
  TLLM_CHECK(dtype_is_float(src.dtype()), "not a float tensor: ", src.str());
  auto run = [&](int64_t b, int64_t e) {
    switch (src.dtype()) {
      case DType::F32: std::memcpy(dst + b, src.data<float>() + b, sizeof(float) * static_cast<size_t>(e - b)); break;
      case DType::BF16:
        for (int64_t i = b; i < e; ++i) dst[i] = bf16_to_f32(src.data<uint16_t>()[i]);
        break;
      case DType::F16:
        for (int64_t i = b; i < e; ++i) dst[i] = f16_to_f32(src.data<uint16_t>()[i]);
        break;
      default:  // F64
        for (int64_t i = b; i < e; ++i) dst[i] = static_cast<float>(src.data<double>()[i]);
    }
  };
  const int64_t n = src.numel();
  if (pool) pool->parallel_for(n, 1 << 16, run);
  else run(0, n);
}

void fill_from_pool(uint16_t* dst, int64_t n, const std::vector<uint16_t>& pool, size_t& offset,
                    ThreadPool* threads) {
  struct Piece {
    int64_t at;
    size_t from;
    int64_t len;
  };
  std::vector<Piece> pieces;  // the chunks, cut into <= 1 Mi-element pieces to share out
  for (int64_t i = 0; i < n;) {
    const size_t off = offset % pool.size();
    const int64_t len = std::min<int64_t>(n - i, static_cast<int64_t>(pool.size() - off));
    for (int64_t k = 0; k < len; k += int64_t{1} << 20)
      pieces.push_back({i + k, off + static_cast<size_t>(k), std::min<int64_t>(len - k, int64_t{1} << 20)});
    i += len;
    offset += static_cast<size_t>(len) + 7919;
  }
  auto copy = [&](int64_t b, int64_t e) {
    for (int64_t j = b; j < e; ++j)
      std::memcpy(dst + pieces[j].at, pool.data() + pieces[j].from, static_cast<size_t>(pieces[j].len) * 2);
  };
  if (threads && pieces.size() > 1) threads->parallel_for(static_cast<int64_t>(pieces.size()), 1, copy);
  else copy(0, static_cast<int64_t>(pieces.size()));
}

WeightLoader::WeightLoader(const Checkpoint* ckpt, Backend& backend, DType weight_dtype)
    : ckpt_(ckpt), backend_(backend), weight_dtype_(weight_dtype) {
  if (!ckpt_) {
    std::mt19937_64 rng(0x7111);
    std::normal_distribution<float> dist(0.0f, 0.02f);
    dummy_pool_.resize(size_t{1} << 22);
    for (uint16_t& v : dummy_pool_) v = f32_to_bf16(dist(rng));
    // First touches of tens of GB of fresh host pages and their copies (a 30B-A3B benchmark)
    // were one thread's work: spread over the cores.
    dummy_threads_ = std::make_unique<ThreadPool>(0);
  }
}

WeightLoader::~WeightLoader() = default;

Tensor WeightLoader::dummy(const std::string& name, const Shape& shape) {
  // Distinct memory per tensor (no aliasing that would let caches flatter a benchmark),
  // filled from the pool at a rotating offset; norm weights around 1.
  Tensor t = Tensor::empty(shape, DType::BF16);
  uint16_t* p = t.data<uint16_t>();
  const int64_t n = t.numel();
  const bool norm = is_norm_weight(name);
  fill_from_pool(p, n, dummy_pool_, dummy_offset_, dummy_threads_.get());
  if (norm)
    for (int64_t i = 0; i < n; ++i) p[i] = f32_to_bf16(1.0f + bf16_to_f32(p[i]));
  used_.insert(name);
  return t;
}

Tensor WeightLoader::dummy_rows(const std::vector<std::string>& names, const std::vector<int64_t>& rows,
                                int64_t cols) {
  int64_t total = 0;
  for (int64_t r : rows) total += r;
  Tensor t = Tensor::empty({total, cols}, DType::BF16);
  uint16_t* p = t.data<uint16_t>();
  for (size_t i = 0; i < names.size(); ++i) {
    TLLM_ASSERT(!is_norm_weight(names[i]));
    fill_from_pool(p, rows[i] * cols, dummy_pool_, dummy_offset_, dummy_threads_.get());
    p += rows[i] * cols;
    used_.insert(names[i]);
  }
  return t;
}

Tensor WeightLoader::host(const std::string& name, const Shape& shape) {
  if (!ckpt_) return dummy(name, shape);
  // Stored quantized but read as a dense tensor (a MoE router of an MLX checkpoint): dequantize.
  if (quant_ && (!ckpt_->has(name) || !dtype_is_float(ckpt_->info(name).dtype)))
    if (std::optional<Tensor> t = quant_->dequantized(*this, name, shape)) return std::move(*t);
  TLLM_CHECK(ckpt_->has(name), "checkpoint ", ckpt_->dir(), " has no tensor \"", name,
             "\" (expected shape ", shape_str(shape), ")");
  const TensorInfo& info = ckpt_->info(name);
  TLLM_CHECK(info.shape == shape, "tensor \"", name, "\" in ", info.file, ": expected shape ",
             shape_str(shape), ", got ", shape_str(info.shape));
  TLLM_CHECK(!dtype_is_fp8(info.dtype), "tensor \"", name, "\" in ", info.file,
             " is stored as FP8 (", dtype_name(info.dtype), ") but ", ckpt_->dir(),
             "/config.json has no quantization_config with quant_method \"fp8\" (its block scales are needed)");
  TLLM_CHECK(dtype_is_float(info.dtype), "tensor \"", name, "\" in ", info.file,
             ": expected a float dtype (F32, BF16, F16), got ", dtype_name(info.dtype));
  used_.insert(name);
  return ckpt_->get(name);
}

Tensor WeightLoader::tensor(const std::string& name, const Shape& shape, DType dtype) {
  Tensor h = host(name, shape);
  uploaded_bytes_ += dtype_nbytes(dtype, h.numel());
  return backend_.upload(h, dtype);
}

Tensor concat_rows(const std::vector<Tensor>& parts) {
  TLLM_ASSERT(!parts.empty());
  DType dt = parts[0].dtype();
  int64_t rows = 0;
  const int64_t cols = parts[0].ndim() == 1 ? 1 : parts[0].dim(1);
  for (const Tensor& p : parts) {
    if (p.dtype() != dt) dt = DType::F32;
    rows += p.dim(0);
  }
  Shape shape = parts[0].ndim() == 1 ? Shape{rows} : Shape{rows, cols};
  Tensor out = Tensor::empty(shape, dt);
  char* dst = static_cast<char*>(out.raw());
  for (const Tensor& p : parts) {
    if (p.dtype() == dt) {
      std::memcpy(dst, p.raw(), p.nbytes());
      dst += p.nbytes();
    } else {
      host_to_f32(p, reinterpret_cast<float*>(dst));
      dst += p.numel() * sizeof(float);
    }
  }
  return out;
}

WeightSlice WeightSlice::rows_of(const std::vector<int64_t>& local_rows, int rank, int n) {
  WeightSlice s;
  if (n == 1) return s;
  for (int64_t r : local_rows) {
    s.row0.push_back(r * rank);
    s.full_rows.push_back(r * n);
  }
  return s;
}

WeightSlice WeightSlice::cols_of(int64_t local_cols, int rank, int n) {
  WeightSlice s;
  if (n == 1) return s;
  s.col0 = local_cols * rank;
  s.full_cols = local_cols * n;
  return s;
}

namespace {
// Rows [r0, r0 + nr) and columns [c0, c0 + nc) of a host tensor [rows, cols] (or [rows]):
// a view when every column is kept, else a copy.
Tensor host_block(const Tensor& t, int64_t r0, int64_t nr, int64_t c0, int64_t nc) {
  const int64_t cols = t.ndim() == 1 ? 1 : t.dim(1);
  if (c0 == 0 && nc == cols) return t.slice_rows(r0, r0 + nr);
  Tensor out = Tensor::empty({nr, nc}, t.dtype());
  const size_t es = dtype_size(t.dtype());
  const char* src = static_cast<const char*>(t.raw());
  char* dst = static_cast<char*>(out.raw());
  for (int64_t r = 0; r < nr; ++r)
    std::memcpy(dst + static_cast<size_t>(r * nc) * es, src + static_cast<size_t>((r0 + r) * cols + c0) * es,
                static_cast<size_t>(nc) * es);
  return out;
}
}  // namespace

LinearWeight WeightLoader::linear(const std::vector<std::string>& names, const std::vector<int64_t>& rows,
                                  int64_t in_features, const std::vector<std::string>& bias_names,
                                  const WeightSlice& slice) {
  TLLM_ASSERT(names.size() == rows.size());
  TLLM_ASSERT(slice.row0.empty() || (slice.row0.size() == names.size() && slice.full_rows.size() == names.size()));
  // The checkpoint's shape of part i and where this load's block starts in it.
  auto full_rows = [&](size_t i) { return slice.rows_in_checkpoint(i, rows[i]); };
  auto row0 = [&](size_t i) { return slice.row_start(i); };
  const int64_t full_cols = slice.cols_in_checkpoint(in_features);
  LinearWeight w;
  w.in_features = in_features;
  std::optional<LinearWeight> q = quant_ ? quant_->linear(*this, names, rows, in_features, slice) : std::nullopt;
  if (q) {
    w = std::move(*q);
  } else {
    Tensor h;
    for (size_t i = 0; i < names.size(); ++i) w.out_features += rows[i];
    if (!ckpt_ && names.size() > 1 && slice.whole()) {
      h = dummy_rows(names, rows, in_features);  // no per-part tensors and no stacking copy
    } else {
      std::vector<Tensor> parts;
      for (size_t i = 0; i < names.size(); ++i)
        parts.push_back(host_block(host(names[i], {full_rows(i), full_cols}), row0(i), rows[i], slice.col0, in_features));
      h = parts.size() == 1 ? parts[0] : concat_rows(parts);
    }
    w.weight = backend_.upload(h, weight_dtype_);
    uploaded_bytes_ += dtype_nbytes(weight_dtype_, h.numel());
  }
  if (!bias_names.empty()) {
    TLLM_ASSERT(bias_names.size() == names.size());
    std::vector<Tensor> bparts;
    for (size_t i = 0; i < bias_names.size(); ++i)
      bparts.push_back(host(bias_names[i], {full_rows(i)}).slice_rows(row0(i), row0(i) + rows[i]));
    Tensor hb = bparts.size() == 1 ? bparts[0] : concat_rows(bparts);
    w.bias = backend_.upload(hb, DType::F32);
    uploaded_bytes_ += w.bias.nbytes();
  }
  return w;
}

LinearWeight WeightLoader::embedding(const std::string& name, int64_t vocab, int64_t hidden) {
  if (quant_)
    if (std::optional<LinearWeight> q = quant_->embedding(*this, name, vocab, hidden)) return std::move(*q);
  LinearWeight e;
  e.weight = tensor(name, {vocab, hidden}, weight_dtype_);
  e.out_features = vocab;
  e.in_features = hidden;
  return e;
}

std::vector<std::string> WeightLoader::unused() const {
  std::vector<std::string> out;
  if (!ckpt_) return out;
  for (const std::string& n : ckpt_->names())
    if (!used_.count(n)) out.push_back(n);
  return out;
}

}  // namespace tllm
