#include "kernels/cuda/cuda_backend.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string>

#include "core/env.h"
#include "kernels/cuda/attention_variants.h"
#include "kernels/cuda/cuda_common.cuh"
#include "kernels/cuda/cuda_ops.h"
#include "kernels/cuda/quant_ops.h"
#include "kernels/cuda/sample.h"

namespace tllm {
namespace cuda {
namespace {

void expect_cuda(const Tensor& t, const char* op, const char* what) {
  TLLM_CHECK(t.defined(), op, ": ", what, " is undefined");
  TLLM_CHECK(t.device() == Device::CUDA, op, ": ", what, " must be a CUDA tensor, got ", t.str());
}
void expect_dtype(const Tensor& t, DType dt, const char* op, const char* what) {
  TLLM_CHECK(t.dtype() == dt, op, ": ", what, " must be ", dtype_name(dt), ", got ", t.str());
}
void expect_numel(const Tensor& t, int64_t n, const char* op, const char* what) {
  TLLM_CHECK(t.numel() == n, op, ": ", what, " must have ", n, " elements, got ", t.str());
}
int64_t last_dim(const Tensor& t) { return t.ndim() == 0 ? 1 : t.dim(-1); }

class CudaGraph final : public CapturedGraph {
 public:
  CudaGraph(cudaGraph_t g, cudaGraphExec_t e, cudaStream_t s) : graph_(g), exec_(e), stream_(s) {}
  ~CudaGraph() override {
    if (exec_) cudaGraphExecDestroy(exec_);
    if (graph_) cudaGraphDestroy(graph_);
  }
  void replay() override { CUDA_CHECK(cudaGraphLaunch(exec_, stream_)); }

 private:
  cudaGraph_t graph_;
  cudaGraphExec_t exec_;
  cudaStream_t stream_;
};

}  // namespace

// --- DeviceWorkspace -----------------------------------------------------------------
DeviceWorkspace::~DeviceWorkspace() {
  // Graphs captured over these buffers may still be replayed by their owner; the backend
  // synchronises before it is destroyed, and the buffers go with it.
  if (ptr_) cudaFree(ptr_);
  for (void* p : retired_) cudaFree(p);
}

void* DeviceWorkspace::get(size_t bytes) {
  if (bytes <= bytes_ && ptr_) return ptr_;
  const size_t want = std::max(bytes, bytes_ * 2);
  void* p = nullptr;
  CUDA_CHECK(cudaMalloc(&p, std::max<size_t>(want, 1 << 20)));
  if (ptr_) retired_.push_back(ptr_);
  ptr_ = p;
  bytes_ = std::max<size_t>(want, 1 << 20);
  zeroed_ = 0;
  return ptr_;
}

void* DeviceWorkspace::get_counters_zeroed(size_t bytes, size_t counters, cudaStream_t stream) {
  void* p = get(std::max(bytes, counters));
  if (counters > zeroed_) {
    CUDA_CHECK(cudaMemsetAsync(p, 0, counters, stream));
    zeroed_ = counters;
  }
  return p;
}

// --- PinnedRing -------------------------------------------------------------------------
PinnedRing::PinnedRing(size_t bytes) : size_(bytes) {
  CUDA_CHECK(cudaHostAlloc(reinterpret_cast<void**>(&base_), bytes, cudaHostAllocDefault));
}

PinnedRing::~PinnedRing() {
  for (auto& r : live_) {
    cudaEventSynchronize(r.done);
    cudaEventDestroy(r.done);
  }
  for (auto e : event_pool_) cudaEventDestroy(e);
  if (base_) cudaFreeHost(base_);
}

void PinnedRing::upload(void* dst, const void* src, size_t bytes, cudaStream_t stream) {
  if (bytes == 0) return;
  TLLM_ASSERT(bytes <= size_);
  const size_t need = (bytes + 255) / 256 * 256;
  if (head_ + need > size_) head_ = 0;
  const size_t begin = head_, end = head_ + need;
  // Wait for (and retire) earlier copies that read the region we are about to overwrite.
  while (!live_.empty()) {
    Region& r = live_.front();
    const bool overlap = r.begin < end && begin < r.end;
    const bool done = cudaEventQuery(r.done) == cudaSuccess;
    if (!overlap && !done) break;
    if (!done) CUDA_CHECK(cudaEventSynchronize(r.done));
    event_pool_.push_back(r.done);
    live_.pop_front();
  }
  for (auto& r : live_)  // regions behind the front (ring order is FIFO, so rare)
    if (r.begin < end && begin < r.end) CUDA_CHECK(cudaEventSynchronize(r.done));
  std::memcpy(base_ + begin, src, bytes);
  CUDA_CHECK(cudaMemcpyAsync(dst, base_ + begin, bytes, cudaMemcpyHostToDevice, stream));
  cudaEvent_t e;
  if (event_pool_.empty()) {
    CUDA_CHECK(cudaEventCreateWithFlags(&e, cudaEventDisableTiming));
  } else {
    e = event_pool_.back();
    event_pool_.pop_back();
  }
  CUDA_CHECK(cudaEventRecord(e, stream));
  live_.push_back(Region{begin, end, e});
  head_ = end;
}

// --- CudaBackend ------------------------------------------------------------------------
CudaBackend::CudaBackend(const CudaBackendOptions& opts) : device_(opts.device) {
  int count = 0;
  CUDA_CHECK(cudaGetDeviceCount(&count));
  TLLM_CHECK_ARG(device_ >= 0 && device_ < count, "cuda device ", device_, " does not exist (", count,
                 " visible)");
  CUDA_CHECK(cudaSetDevice(device_));
  cudaDeviceProp prop{};
  CUDA_CHECK(cudaGetDeviceProperties(&prop, device_));
  num_sms_ = prop.multiProcessorCount;
  name_ = detail::concat("cuda:", device_, " (", prop.name, ", ", num_sms_, " SMs, sm_", prop.major, prop.minor,
                         ", ", prop.totalGlobalMem >> 30, " GiB)");
  CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
  CUDA_CHECK(cudaStreamCreateWithFlags(&copy_stream_, cudaStreamNonBlocking));
  alloc_ = &DeviceCachingAllocator::for_device(device_);
  fused_rope_ = env_switch_on("TLLM_FUSED_ROPE");
  rope_token_blocks_ = env_switch_on("TLLM_ROPE_TOKEN_BLOCKS");
  rope_release_early_ = env_switch_on("TLLM_ROPE_RELEASE_EARLY");
  gemm_silu_sm90_on_ = env_flag("TLLM_GEMM_SILU");  // off: slower than cuBLASLt + silu_mul (runs 229-231)
  gemm_silu_min_tokens_ = env_int("TLLM_GEMM_SILU_MIN_T", 256);
  lt_ = std::make_unique<LtMatmul>(opts.gemm_autotune && env_switch_on("TLLM_GEMM_TUNE"));
  ring_ = std::make_unique<PinnedRing>(16u << 20);
  for (int i = 0; i < 2; ++i) CUDA_CHECK(cudaEventCreateWithFlags(&chunk_done_[i], cudaEventDisableTiming));
  CUDA_CHECK(cudaMalloc(&norm_counter_, sizeof(unsigned int)));
  CUDA_CHECK(cudaMemset(norm_counter_, 0, sizeof(unsigned int)));
  // Probe once now whether the wgmma prefill attention runs here (a kernel launch and a
  // sync on a private stream), so that the first prefill never does it, capture or not.
  attention_prefill_sm90_available();
}

CudaBackend::~CudaBackend() {
  cudaStreamSynchronize(stream_);
  cudaStreamSynchronize(copy_stream_);
  ring_.reset();
  lt_.reset();
  for (int i = 0; i < 2; ++i) {
    if (pinned_chunk_[i]) cudaFreeHost(pinned_chunk_[i]);
    if (dev_stage_[i]) cudaFree(dev_stage_[i]);
    if (chunk_done_[i]) cudaEventDestroy(chunk_done_[i]);
  }
  for (Draw& d : draws_) {
    if (d.pinned) cudaFreeHost(d.pinned);
    if (d.done) cudaEventDestroy(d.done);
    if (d.ready) cudaEventDestroy(d.ready);
  }
  if (norm_counter_) cudaFree(norm_counter_);
  if (copy_stream_) cudaStreamDestroy(copy_stream_);
  if (stream_) cudaStreamDestroy(stream_);
}

void CudaBackend::check_capturable(const char* op) const {
  cudaStreamCaptureStatus st = cudaStreamCaptureStatusNone;
  CUDA_CHECK(cudaStreamIsCapturing(stream_, &st));
  TLLM_CHECK(st == cudaStreamCaptureStatusNone, op,
             " synchronises with the host and cannot run inside a captured CUDA graph");
}

void CudaBackend::synchronize() { CUDA_CHECK(cudaStreamSynchronize(stream_)); }

std::pair<size_t, size_t> CudaBackend::memory_info() {
  size_t free_b = 0, total_b = 0;
  CUDA_CHECK(cudaMemGetInfo(&free_b, &total_b));
  // Blocks cached by our allocator are free for our tensors too.
  return {free_b + alloc_->stats().cached_bytes, total_b};
}

// A few KB ride in a kernel's launch parameters (cheaper than a copy-engine transfer between
// two kernels); up to kRingCopyBytes go through the pinned ring. Neither waits for the stream.
void CudaBackend::upload_small(void* dst, const void* src, size_t bytes, bool release_early) {
  if (bytes <= cuda::kInlineUploadMaxBytes) cuda::upload_inline(dst, src, bytes, stream_, release_early);
  else ring_->upload(dst, src, bytes, stream_);
}

void CudaBackend::copy(Tensor& dst, const Tensor& src) {
  TLLM_CHECK(dst.dtype() == src.dtype() && dst.numel() == src.numel(), "copy: ", src.str(), " -> ", dst.str(),
             ": dtype and element count must match");
  const size_t bytes = src.nbytes();
  if (bytes == 0) return;
  const bool host = dst.device() == Device::CPU || src.device() == Device::CPU;
  if (host) check_capturable("copy to/from the host");
  if (src.device() == Device::CPU && dst.device() != Device::CPU && bytes <= kRingCopyBytes) {
    // Small uploads (a step's batch metadata): the host does not wait for the work queued
    // before them (async scheduling overlaps exactly that).
    upload_small(dst.raw(), src.raw(), bytes);
    return;
  }
  CUDA_CHECK(cudaMemcpyAsync(dst.raw(), src.raw(), bytes, cudaMemcpyDefault, stream_));
  if (host) synchronize();
}

Tensor CudaBackend::upload(const Tensor& host, DType dtype) {
  TLLM_CHECK(host.defined(), "upload: undefined tensor");
  const DType sd = host.dtype();
  const bool convert_needed = sd != dtype;
  if (convert_needed) {
    auto ok = [](DType d) { return d == DType::F32 || d == DType::BF16 || d == DType::F16; };
    TLLM_CHECK(ok(sd) && ok(dtype), "upload: cannot convert ", dtype_name(sd), " to ", dtype_name(dtype),
               " (conversions between f32, bf16 and f16 only)");
  }
  // From the host: a capture would bake the bytes (or the ring slot) into the graph.
  if (host.device() == Device::CPU) check_capturable("upload from the host");
  Tensor out = empty(host.shape(), dtype);
  const int64_t n = host.numel();
  if (n == 0) return out;
  if (host.device() == Device::CUDA) {
    cuda::convert(out.raw(), dtype, host.raw(), sd, n, stream_);
    return out;
  }
  if (!convert_needed && host.nbytes() <= kRingCopyBytes) {
    // A weight or bias may be read by the next kernel before its griddepcontrol.wait (the
    // decode GEMVs fetch the bias ahead of it), which PDL orders only against the previous
    // kernel's trigger: that kernel starts once the bytes landed.
    upload_small(out.raw(), host.raw(), host.nbytes(), false);
    return out;
  }
  const size_t se = dtype_size(sd), de = dtype_size(dtype);
  TLLM_CHECK(se > 0 && de > 0, "upload: packed dtype ", dtype_name(sd), " is not supported here");
  for (int i = 0; i < 2; ++i) {
    if (!pinned_chunk_[i]) CUDA_CHECK(cudaHostAlloc(&pinned_chunk_[i], kChunk, cudaHostAllocDefault));
    if (convert_needed && !dev_stage_[i]) CUDA_CHECK(cudaMalloc(&dev_stage_[i], kChunk));
  }
  const int64_t per_chunk = static_cast<int64_t>(kChunk / se);
  const uint8_t* src = static_cast<const uint8_t*>(host.raw());
  uint8_t* dst = static_cast<uint8_t*>(out.raw());
  int buf = 0;
  for (int64_t off = 0; off < n; off += per_chunk, buf ^= 1) {
    const int64_t cnt = std::min(per_chunk, n - off);
    CUDA_CHECK(cudaEventSynchronize(chunk_done_[buf]));
    std::memcpy(pinned_chunk_[buf], src + off * se, cnt * se);
    if (!convert_needed) {
      CUDA_CHECK(cudaMemcpyAsync(dst + off * de, pinned_chunk_[buf], cnt * se, cudaMemcpyHostToDevice, stream_));
    } else {
      CUDA_CHECK(cudaMemcpyAsync(dev_stage_[buf], pinned_chunk_[buf], cnt * se, cudaMemcpyHostToDevice, stream_));
      cuda::convert(dst + off * de, dtype, dev_stage_[buf], sd, cnt, stream_);
    }
    CUDA_CHECK(cudaEventRecord(chunk_done_[buf], stream_));
  }
  return out;
}

Tensor CudaBackend::download(const Tensor& t) {
  TLLM_CHECK(t.defined(), "download: undefined tensor");
  check_capturable("download");
  const bool is_float = dtype_is_float(t.dtype());
  const DType hd = is_float ? DType::F32 : t.dtype();
  Tensor out = Tensor::empty(t.shape(), hd);
  if (t.numel() == 0) return out;
  if (t.device() == Device::CPU) {
    TLLM_CHECK(!is_float || t.dtype() == DType::F32 || t.dtype() == DType::BF16 || t.dtype() == DType::F16,
               "download: unsupported dtype ", t.str());
    Tensor tmp = upload(t, hd);
    return download(tmp);
  }
  if (hd == t.dtype()) {
    CUDA_CHECK(cudaMemcpyAsync(out.raw(), t.raw(), t.nbytes(), cudaMemcpyDeviceToHost, stream_));
  } else {
    Tensor tmp = empty(t.shape(), DType::F32);
    cuda::convert(tmp.raw(), DType::F32, t.raw(), t.dtype(), t.numel(), stream_);
    CUDA_CHECK(cudaMemcpyAsync(out.raw(), tmp.raw(), tmp.nbytes(), cudaMemcpyDeviceToHost, stream_));
  }
  synchronize();
  return out;
}

void CudaBackend::fill_zero(Tensor& t) {
  if (!t.defined() || t.nbytes() == 0) return;
  if (t.device() == Device::CPU) {
    std::memset(t.raw(), 0, t.nbytes());
    return;
  }
  CUDA_CHECK(cudaMemsetAsync(t.raw(), 0, t.nbytes(), stream_));
}

std::unique_ptr<CapturedGraph> CudaBackend::capture(const std::function<void()>& fn) {
  CUDA_CHECK(cudaStreamBeginCapture(stream_, cudaStreamCaptureModeThreadLocal));
  try {
    fn();
  } catch (...) {
    cudaGraph_t g = nullptr;
    cudaStreamEndCapture(stream_, &g);
    if (g) cudaGraphDestroy(g);
    cudaGetLastError();
    throw;
  }
  cudaGraph_t graph = nullptr;
  CUDA_CHECK(cudaStreamEndCapture(stream_, &graph));
  cudaGraphExec_t exec = nullptr;
  const cudaError_t err = cudaGraphInstantiate(&exec, graph, 0);
  if (err != cudaSuccess) {
    cudaGraphDestroy(graph);
    CUDA_CHECK(err);
  }
  return std::make_unique<CudaGraph>(graph, exec, stream_);
}

// --- ops ------------------------------------------------------------------------------
void CudaBackend::embedding(Tensor& out, const Tensor& table, const Tensor& tokens) {
  const char* op = "embedding";
  expect_cuda(out, op, "out");
  expect_cuda(table, op, "table");
  expect_cuda(tokens, op, "tokens");
  expect_dtype(tokens, DType::I32, op, "tokens");
  TLLM_CHECK(table.ndim() == 2, op, ": table must be [vocab, hidden], got ", table.str());
  const int64_t T = tokens.numel(), H = table.dim(1);
  expect_numel(out, T * H, op, "out");
  cuda::embedding(out.raw(), out.dtype(), table.raw(), table.dtype(), tokens.data<int32_t>(), static_cast<int>(T),
                  static_cast<int>(H), table.dim(0), stream_);
}

void CudaBackend::rms_norm(Tensor& out, const Tensor& x, const Tensor& weight, float eps) {
  const char* op = "rms_norm";
  expect_cuda(out, op, "out");
  expect_cuda(x, op, "x");
  expect_cuda(weight, op, "weight");
  expect_dtype(x, DType::BF16, op, "x");
  expect_dtype(out, DType::BF16, op, "out");
  const int64_t H = last_dim(x);
  expect_numel(weight, H, op, "weight");
  expect_numel(out, x.numel(), op, "out");
  cuda::rms_norm(out.data<bf16>(), x.data<bf16>(), weight.raw(), weight.dtype(), static_cast<int>(x.numel() / H),
                 static_cast<int>(H), eps, stream_);
}

void CudaBackend::add_rms_norm(Tensor& residual, const Tensor& x, Tensor& out, const Tensor& weight, float eps) {
  const char* op = "add_rms_norm";
  expect_cuda(residual, op, "residual");
  expect_cuda(x, op, "x");
  expect_cuda(out, op, "out");
  expect_cuda(weight, op, "weight");
  expect_dtype(residual, DType::BF16, op, "residual");
  expect_dtype(x, DType::BF16, op, "x");
  expect_dtype(out, DType::BF16, op, "out");
  const int64_t H = last_dim(residual);
  expect_numel(weight, H, op, "weight");
  expect_numel(x, residual.numel(), op, "x");
  expect_numel(out, residual.numel(), op, "out");
  cuda::add_rms_norm(residual.data<bf16>(), x.data<bf16>(), out.data<bf16>(), weight.raw(), weight.dtype(),
                     static_cast<int>(residual.numel() / H), static_cast<int>(H), eps, stream_);
}

void CudaBackend::check_linear(const Tensor& out, const Tensor& x, const LinearWeight& w, int64_t& T) const {
  const char* op = "linear";
  TLLM_CHECK(w.quant == QuantScheme::None, op,
             ": the dense GEMV / cuBLASLt kernels take bf16 weights; a quantized (int8/int4) weight goes "
             "through linear(), which picks the quantized kernels");
  expect_cuda(out, op, "out");
  expect_cuda(x, op, "x");
  expect_cuda(w.weight, op, "weight");
  TLLM_CHECK(w.weight.ndim() == 2, op, ": weight must be [out_features, in_features], got ", w.weight.str());
  TLLM_CHECK(w.weight.dtype() == DType::BF16, op, ": the CUDA backend needs bf16 weights (upload with bf16), got ",
             w.weight.str());
  expect_dtype(x, DType::BF16, op, "x");
  const int64_t N = w.weight.dim(0), K = w.weight.dim(1);
  TLLM_CHECK(last_dim(x) == K, op, ": x ", x.str(), " does not match weight ", w.weight.str());
  T = x.numel() / K;
  expect_numel(out, T * N, op, "out");
  TLLM_CHECK(out.dtype() == DType::BF16 || out.dtype() == DType::F32, op, ": out must be bf16 or f32, got ",
             out.str());
  if (w.bias.defined()) {
    expect_cuda(w.bias, op, "bias");
    expect_numel(w.bias, N, op, "bias");
  }
  TLLM_CHECK(T < (1ll << 31) && N < (1ll << 31) && K < (1ll << 31), op, ": shape too large");
}

bool CudaBackend::linear_cublas(Tensor& out, const Tensor& x, const LinearWeight& w, bool leave_bias) {
  int64_t T = 0;
  check_linear(out, x, w, T);
  return lt_->run(out.raw(), out.dtype(), x.data<bf16>(), w.weight.data<bf16>(),
                  w.bias.defined() ? w.bias.raw() : nullptr, w.bias.defined() ? w.bias.dtype() : DType::F32,
                  static_cast<int>(T), static_cast<int>(w.weight.dim(0)), static_cast<int>(w.weight.dim(1)), stream_,
                  leave_bias);
}

void CudaBackend::linear_gemv(Tensor& out, const Tensor& x, const LinearWeight& w) {
  int64_t T = 0;
  check_linear(out, x, w, T);
  cuda::gemv_bf16(out.raw(), out.dtype(), x.data<bf16>(), w.weight.data<bf16>(),
                  w.bias.defined() ? w.bias.raw() : nullptr, w.bias.defined() ? w.bias.dtype() : DType::F32,
                  static_cast<int>(T), static_cast<int>(w.weight.dim(0)), static_cast<int>(w.weight.dim(1)), num_sms_,
                  stream_);
}

bool CudaBackend::skinny(const Tensor& x, const LinearWeight& w) const {
  if (w.quant != QuantScheme::None || x.device() != Device::CUDA || x.dtype() != DType::BF16 || x.ndim() < 1 ||
      w.weight.ndim() != 2 || w.weight.dtype() != DType::BF16 || last_dim(x) != w.weight.dim(1))
    return false;
  const int64_t T = x.numel() / last_dim(x), N = w.weight.dim(0), K = w.weight.dim(1);
  const bool aligned = (reinterpret_cast<uintptr_t>(x.raw()) | reinterpret_cast<uintptr_t>(w.weight.raw())) % 16 == 0;
  // Where the skinny GEMM beats cuBLASLt (H200 run 164, bench_kernels_cuda --batch, the
  // 0.5B / 1.5B / 7B linears): up to 8 tokens everywhere; 9..16 but the vocabulary-sized
  // heads (0.5B lm_head at T = 16: 78.4 against 72.0 us; 7B gate|up 71.6 against 74.5, 0.5B
  // down 6.5 against 11.8); 17..32 for small matrices only (0.5B q|k|v 4.6 against 7.9 us at
  // T = 32, 1.5B o 6.1 against 7.7; 0.5B gate|up, 8.7 M weights, 10.6 against 9.0 at best).
  // cuBLASLt there also needs the bias and activation kernels the skinny GEMM fuses.
  if (!aligned || !gemv_supported(static_cast<int>(T), N, K)) return false;
  if (T <= 8) return true;
  if (T <= 16) return N < 65536;
  return T <= 32 && N * K <= (int64_t{8} << 20);
}

void CudaBackend::linear(Tensor& out, const Tensor& x, const LinearWeight& w) {
  if (w.quant != QuantScheme::None) return linear_quantized(out, x, w);
  int64_t T = 0;
  check_linear(out, x, w, T);
  if (T == 0) return;
  if (skinny(x, w))
    linear_gemv(out, x, w);
  else
    linear_cublas(out, x, w);
}

void CudaBackend::qk_norm_rope_kv_write(Tensor& qkv, const QKVLayout& layout, const Tensor& q_norm,
                                        const Tensor& k_norm, float eps, const RopeSpec& rope, const Tensor& cos_sin,
                                        const Tensor& rope_rows, const Tensor& slot_mapping, Tensor& k_cache,
                                        Tensor& v_cache) {
  cuda::qk_norm_rope_kv_write(
      rope_params(qkv, layout, q_norm, k_norm, eps, rope, cos_sin, rope_rows, slot_mapping, k_cache, v_cache),
      stream_);
}

bool CudaBackend::rope_fusable(const Tensor& x, const LinearWeight& w, const RopeKvWrite& r) const {
  const QKVLayout& L = *r.layout;
  const int rot = r.rope->rotary_dim > 0 ? r.rope->rotary_dim : L.head_dim;
  if (!fused_rope_ || r.q_norm->defined() || r.k_norm->defined() || rot != L.head_dim || r.rope->interleaved)
    return false;
  if (w.quant != QuantScheme::None) return quantized_rope_fusable(x, w, L);
  return skinny(x, w) && L.row_stride() == w.weight.dim(0) &&
         cuda::gemv_rope_supported(static_cast<int>(x.numel() / last_dim(x)), L.n_q_heads, L.n_kv_heads, L.head_dim,
                                   w.weight.dim(1));
}

void CudaBackend::linear_rope_kv_write(Tensor& qkv, const Tensor& x, const LinearWeight& w, const RopeKvWrite& r) {
  QkNormRopeParams p = rope_params(qkv, *r.layout, *r.q_norm, *r.k_norm, r.eps, *r.rope, *r.cos_sin, *r.rope_rows,
                                   *r.slot_mapping, *r.k_cache, *r.v_cache);
  if (!rope_fusable(x, w, r)) {
    // cuBLASLt adds a bias with a kernel of its own (a pass over q|k|v: 62 us of each 7B
    // layer's 4,096-token prefill on an H100, run 224c); the rotation kernel, which reads
    // every element anyway, adds it instead, with the same rounding.
    const bool bias_here = w.bias.defined() && w.quant == QuantScheme::None && !skinny(x, w) &&
                           (w.bias.dtype() == DType::F32 || w.bias.dtype() == DType::BF16) &&
                           w.bias.numel() == r.layout->row_stride();
    if (!bias_here) {
      linear(qkv, x, w);
    } else if (linear_cublas(qkv, x, w, /*leave_bias=*/true)) {  // false: the bias is in (fallback GEMM)
      p.bias = w.bias.raw();
      p.bias_bf16 = w.bias.dtype() == DType::BF16;
    }
    // Only without q/k norms: with them the early release measured slower (H200 run 113:
    // Qwen3-8B int4 475.1 -> 464.0; run 111: bf16 234.3 -> 233.2), without them faster (7B
    // int4 540.5 -> 546.8, int8 382.2 -> 385.0). Not understood further.
    p.release_at_entry = r.release_attention_early && !r.q_norm->defined() && rope_release_early_;
    cuda::qk_norm_rope_kv_write(p, stream_);
    return;
  }
  if (w.quant != QuantScheme::None) {
    linear_quantized_rope(qkv, x, w, p);
    return;
  }
  int64_t T = 0;
  check_linear(qkv, x, w, T);
  cuda::gemv_rope_kv_bf16(p, x.data<bf16>(), w.weight.data<bf16>(), w.bias.defined() ? w.bias.raw() : nullptr,
                          w.bias.defined() ? w.bias.dtype() : DType::F32, static_cast<int>(w.weight.dim(1)), num_sms_,
                          stream_);
}

QkNormRopeParams CudaBackend::rope_params(Tensor& qkv, const QKVLayout& layout, const Tensor& q_norm,
                                          const Tensor& k_norm, float eps, const RopeSpec& rope,
                                          const Tensor& cos_sin, const Tensor& rope_rows,
                                          const Tensor& slot_mapping, Tensor& k_cache, Tensor& v_cache) const {
  const char* op = "qk_norm_rope_kv_write";
  expect_cuda(qkv, op, "qkv");
  expect_dtype(qkv, DType::BF16, op, "qkv");
  const int D = layout.head_dim;
  TLLM_CHECK(D > 0 && layout.n_q_heads > 0 && layout.n_kv_heads > 0, op, ": bad layout");
  const int64_t T = qkv.numel() / layout.row_stride();
  expect_numel(qkv, T * layout.row_stride(), op, "qkv");
  const int rot = rope.rotary_dim > 0 ? rope.rotary_dim : D;
  QkNormRopeParams p{};
  p.qkv = qkv.data<bf16>();
  p.row_stride = layout.row_stride();
  p.T = static_cast<int>(T);
  p.n_q_heads = layout.n_q_heads;
  p.n_kv_heads = layout.n_kv_heads;
  p.head_dim = D;
  p.norm_dtype = DType::F32;
  p.token_blocks = rope_token_blocks_;
  TLLM_CHECK(q_norm.defined() == k_norm.defined(), op, ": q_norm and k_norm must both be given or both undefined");
  if (q_norm.defined()) {
    expect_cuda(q_norm, op, "q_norm");
    expect_cuda(k_norm, op, "k_norm");
    expect_numel(q_norm, D, op, "q_norm");
    expect_numel(k_norm, D, op, "k_norm");
    TLLM_CHECK(q_norm.dtype() == k_norm.dtype(), op, ": q_norm and k_norm dtypes differ");
    p.q_norm = q_norm.raw();
    p.k_norm = k_norm.raw();
    p.norm_dtype = q_norm.dtype();
  }
  p.eps = eps;
  p.rotary_dim = rot;
  p.interleaved = rope.interleaved;
  expect_cuda(cos_sin, op, "cos_sin");
  expect_dtype(cos_sin, DType::F32, op, "cos_sin");
  TLLM_CHECK(last_dim(cos_sin) == rot, op, ": cos_sin rows must have rotary_dim = ", rot, " values, got ",
             cos_sin.str());
  expect_cuda(rope_rows, op, "rope_rows");
  expect_dtype(rope_rows, DType::I32, op, "rope_rows");
  expect_numel(rope_rows, T, op, "rope_rows");
  p.cos_sin = cos_sin.data<float>();
  p.rope_rows = rope_rows.data<int32_t>();
  expect_cuda(slot_mapping, op, "slot_mapping");
  TLLM_CHECK(slot_mapping.dtype() == DType::I64 || slot_mapping.dtype() == DType::I32, op,
             ": slot_mapping must be i64 or i32, got ", slot_mapping.str());
  expect_numel(slot_mapping, T, op, "slot_mapping");
  p.slot_mapping = slot_mapping.raw();
  p.slot_i64 = slot_mapping.dtype() == DType::I64;
  for (const Tensor* c : {&k_cache, &v_cache}) {
    expect_cuda(*c, op, "kv cache");
    expect_dtype(*c, DType::BF16, op, "kv cache");
    TLLM_CHECK(c->ndim() == 4 && c->dim(2) == layout.n_kv_heads && c->dim(3) == D, op,
               ": kv cache must be [num_blocks, block_size, ", layout.n_kv_heads, ", ", D, "], got ", c->str());
  }
  TLLM_CHECK(k_cache.shape() == v_cache.shape(), op, ": k_cache and v_cache shapes differ");
  p.k_cache = k_cache.data<bf16>();
  p.v_cache = v_cache.data<bf16>();
  p.num_slots = k_cache.dim(0) * k_cache.dim(1);
  return p;
}

void CudaBackend::attention(Tensor& out, const Tensor& qkv, const QKVLayout& layout, const Tensor& k_cache,
                            const Tensor& v_cache, const AttentionMeta& meta, float scale, int sliding_window) {
  const char* op = "attention";
  expect_cuda(out, op, "out");
  expect_cuda(qkv, op, "qkv");
  expect_dtype(qkv, DType::BF16, op, "qkv");
  expect_dtype(out, DType::BF16, op, "out");
  const int D = layout.head_dim;
  TLLM_CHECK(attention_supported_head_dim(D), op, ": head_dim ", D, " unsupported by the CUDA backend (32, 64, 128, 256)");
  TLLM_CHECK(layout.n_kv_heads > 0 && layout.n_q_heads % layout.n_kv_heads == 0, op, ": n_q_heads ",
             layout.n_q_heads, " not a multiple of n_kv_heads ", layout.n_kv_heads);
  const int64_t T = meta.num_tokens;
  expect_numel(qkv, T * layout.row_stride(), op, "qkv");
  expect_numel(out, T * layout.n_q_heads * D, op, "out");
  for (const Tensor* c : {&k_cache, &v_cache}) {
    expect_cuda(*c, op, "kv cache");
    expect_dtype(*c, DType::BF16, op, "kv cache");
    TLLM_CHECK(c->ndim() == 4 && c->dim(1) == meta.block_size && c->dim(2) == layout.n_kv_heads && c->dim(3) == D,
               op, ": kv cache must be [num_blocks, ", meta.block_size, ", ", layout.n_kv_heads, ", ", D, "], got ",
               c->str());
  }
  const int B = meta.num_seqs;
  expect_cuda(meta.cu_seqlens_q, op, "cu_seqlens_q");
  expect_cuda(meta.seq_lens_k, op, "seq_lens_k");
  expect_cuda(meta.block_tables, op, "block_tables");
  expect_dtype(meta.cu_seqlens_q, DType::I32, op, "cu_seqlens_q");
  expect_dtype(meta.seq_lens_k, DType::I32, op, "seq_lens_k");
  expect_dtype(meta.block_tables, DType::I32, op, "block_tables");
  expect_numel(meta.cu_seqlens_q, B + 1, op, "cu_seqlens_q");
  expect_numel(meta.seq_lens_k, B, op, "seq_lens_k");
  expect_numel(meta.block_tables, static_cast<int64_t>(B) * meta.max_blocks_per_seq, op, "block_tables");
  if (T == 0 || B == 0) return;
  AttentionParams p{};
  p.q = qkv.data<bf16>();
  p.q_stride = layout.row_stride();
  p.k_cache = k_cache.data<bf16>();
  p.v_cache = v_cache.data<bf16>();
  p.out = out.data<bf16>();
  p.cu_seqlens_q = meta.cu_seqlens_q.data<int32_t>();
  p.seq_lens_k = meta.seq_lens_k.data<int32_t>();
  p.block_tables = meta.block_tables.data<int32_t>();
  p.num_seqs = B;
  p.num_tokens = static_cast<int>(T);
  p.max_seqlen_q = meta.max_seqlen_q;
  p.max_seqlen_k = meta.max_seqlen_k;
  p.block_size = meta.block_size;
  p.max_blocks_per_seq = meta.max_blocks_per_seq;
  p.n_q_heads = layout.n_q_heads;
  p.n_kv_heads = layout.n_kv_heads;
  p.head_dim = D;
  p.scale = scale;
  p.sliding_window = sliding_window;
  p.release_early = meta.release_dependents_early ? 1 : 0;
  p.num_sms = num_sms_;
  p.workspace_bytes = attention_workspace_bytes(p);
  p.workspace = static_cast<float*>(attn_ws_.get(p.workspace_bytes));
  cuda::attention(p, stream_);
}

void CudaBackend::silu_mul(Tensor& out, const Tensor& gate_up) {
  const char* op = "silu_mul";
  expect_cuda(out, op, "out");
  expect_cuda(gate_up, op, "gate_up");
  expect_dtype(out, DType::BF16, op, "out");
  expect_dtype(gate_up, DType::BF16, op, "gate_up");
  const int64_t I2 = last_dim(gate_up);
  TLLM_CHECK(I2 % 2 == 0, op, ": gate_up last dim must be even, got ", gate_up.str());
  const int64_t T = gate_up.numel() / I2;
  expect_numel(out, T * I2 / 2, op, "out");
  cuda::silu_mul(out.data<bf16>(), gate_up.data<bf16>(), static_cast<int>(T), static_cast<int>(I2 / 2), stream_);
}

bool CudaBackend::fused_norm_args(const Tensor& out, const ResidualNorm& rn, int64_t T, int64_t K, cuda::GemvNorm& g,
                                  bool quantized) {
  Tensor& r = *rn.residual;
  Tensor& h = *rn.normed;
  const Tensor& w = *rn.weight;
  const int64_t N = out.ndim() >= 1 ? last_dim(out) : 0;
  auto dev_bf16 = [&](const Tensor& t) {
    return t.device() == Device::CUDA && t.dtype() == DType::BF16 && t.numel() == T * N &&
           reinterpret_cast<uintptr_t>(t.raw()) % 16 == 0;
  };
  if (!(T >= 1 && dev_bf16(out) && dev_bf16(r) && dev_bf16(h) && w.device() == Device::CUDA &&
        w.dtype() == DType::F32 && w.numel() == N && reinterpret_cast<uintptr_t>(w.raw()) % 16 == 0 &&
        (quantized ? cuda::quant_gemv_norm_supported(static_cast<int>(T), static_cast<int>(N))
                   : cuda::gemv_norm_supported(static_cast<int>(T), N, K, num_sms_))))
    return false;
  g = cuda::GemvNorm{r.data<bf16>(), h.data<bf16>(), w.data<float>(), rn.eps, norm_counter_};
  return true;
}

void CudaBackend::linear_residual_norm(Tensor& out, const Tensor& x, const LinearWeight& w, const ResidualNorm& rn) {
  // Decode-sized batches: the residual update runs in the skinny GEMM's last block.
  if (w.quant != QuantScheme::None && linear_quantized_fused(out, x, w, &rn)) return;
  cuda::GemvNorm g;
  if (skinny(x, w)) {
    const int64_t T = x.numel() / last_dim(x), N = w.weight.dim(0), K = w.weight.dim(1);
    if (fused_norm_args(out, rn, T, K, g)) {
      int64_t t = 0;
      check_linear(out, x, w, t);
      cuda::gemv_norm_bf16(out.data<bf16>(), x.data<bf16>(), w.weight.data<bf16>(),
                           w.bias.defined() ? w.bias.raw() : nullptr, w.bias.defined() ? w.bias.dtype() : DType::F32,
                           static_cast<int>(T), static_cast<int>(N), static_cast<int>(K), g, num_sms_, stream_);
      return;
    }
  }
  Backend::linear_residual_norm(out, x, w, rn);
}

void CudaBackend::linear_silu_mul(Tensor& act, const Tensor& x, const LinearWeight& gate_up, Tensor& gate_up_out) {
  // Decode-sized batches: the activation is the skinny GEMM's epilogue (gemv.cu, SILU).
  if (gate_up.quant != QuantScheme::None && linear_quantized_fused(act, x, gate_up, nullptr)) return;
  const LinearWeight& w = gate_up;
  if (skinny(x, w) && act.device() == Device::CUDA && act.dtype() == DType::BF16) {
    const int64_t T = x.numel() / last_dim(x), N = w.weight.dim(0), K = w.weight.dim(1);
    if (N % 2 == 0 && act.numel() == T * (N / 2) && (!w.bias.defined() || w.bias.numel() == N)) {
      cuda::gemv_silu_bf16(act.data<bf16>(), x.data<bf16>(), w.weight.data<bf16>(),
                           w.bias.defined() ? w.bias.raw() : nullptr, w.bias.defined() ? w.bias.dtype() : DType::F32,
                           static_cast<int>(T), static_cast<int>(N), static_cast<int>(K), num_sms_, stream_);
      return;
    }
  }
  // Prefill-sized batches on Hopper with TLLM_GEMM_SILU=1: the activation in the epilogue of
  // our own wgmma GEMM, so gate|up never goes through DRAM (gemm_silu_sm90.cu); gate_up_out
  // stays unwritten. Off by default: its main loop runs at ~77% of cuBLASLt's rate, which
  // costs more than silu_mul's pass saves (H200 runs 229-231, docs/cuda-notes.md session 40).
  if (gemm_silu_sm90_on_ && w.quant == QuantScheme::None && !w.bias.defined() && x.device() == Device::CUDA &&
      x.dtype() == DType::BF16 && w.weight.ndim() == 2 && w.weight.dtype() == DType::BF16 &&
      act.device() == Device::CUDA && act.dtype() == DType::BF16 && last_dim(x) == w.weight.dim(1)) {
    const int64_t T = x.numel() / last_dim(x), N = w.weight.dim(0), K = w.weight.dim(1);
    if (T >= gemm_silu_min_tokens_ && N % 2 == 0 && act.numel() == T * (N / 2) && T <= INT32_MAX && N <= INT32_MAX &&
        cuda::gemm_silu_sm90_supported(static_cast<int>(T), static_cast<int>(N / 2), static_cast<int>(K), act.raw(),
                                       x.raw(), w.weight.raw())) {
      cuda::gemm_silu_sm90(act.data<bf16>(), x.data<bf16>(), w.weight.data<bf16>(), static_cast<int>(T),
                           static_cast<int>(N / 2), static_cast<int>(K), num_sms_, stream_);
      return;
    }
  }
  Backend::linear_silu_mul(act, x, gate_up, gate_up_out);
}

void CudaBackend::gather_rows(Tensor& out, const Tensor& x, const Tensor& indices) {
  const char* op = "gather_rows";
  expect_cuda(out, op, "out");
  expect_cuda(x, op, "x");
  expect_cuda(indices, op, "indices");
  expect_dtype(indices, DType::I32, op, "indices");
  TLLM_CHECK(out.dtype() == x.dtype(), op, ": out ", out.str(), " and x ", x.str(), " dtypes differ");
  TLLM_CHECK(x.ndim() >= 1, op, ": x must have rows");
  const int64_t rows = x.dim(0), n = indices.numel();
  const int64_t row_elems = rows == 0 ? 0 : x.numel() / rows;
  expect_numel(out, n * row_elems, op, "out");
  cuda::gather_rows(out.raw(), x.raw(), indices.data<int32_t>(), static_cast<int>(n), rows,
                    static_cast<int64_t>(dtype_nbytes(x.dtype(), row_elems)), stream_);
}

SampleResult CudaBackend::sample(const Tensor& logits_in, const SampleBatch& batch) {
  launch_draw(logits_in, batch, draws_[2], /*deferred=*/false);
  return finish_draw(draws_[2]);
}

int CudaBackend::sample_deferred(const Tensor& logits, const SampleBatch& batch) {
  const int ticket = next_draw_;
  TLLM_CHECK(!draws_[ticket].live, "sample_deferred: both draws are outstanding; collect one first");
  launch_draw(logits, batch, draws_[ticket], /*deferred=*/true);  // a bad batch throws: nothing taken
  next_draw_ ^= 1;
  return ticket;
}

void CudaBackend::feed_tokens(Tensor& tokens, const std::vector<int32_t>& rows, int ticket) {
  const char* op = "feed_tokens";
  check_capturable(op);
  expect_cuda(tokens, op, "tokens");
  TLLM_CHECK(ticket == 0 || ticket == 1, op, ": ticket ", ticket, " is not 0 or 1");
  const Draw& d = draws_[ticket];
  TLLM_CHECK(d.live, op, ": no draw under ticket ", ticket);
  TLLM_CHECK(tokens.dtype() == DType::I32 && tokens.numel() == static_cast<int64_t>(rows.size()), op, ": tokens ",
             tokens.str(), " against ", rows.size(), " rows");
  for (int32_t r : rows) TLLM_CHECK(r < d.R, op, ": row ", r, " of a draw of ", d.R, " rows");
  cuda::feed_tokens(tokens.data<int32_t>(), rows.data(), static_cast<const SampleOutRow*>(d.out.raw()),
                    static_cast<int>(rows.size()), stream_);
}

SampleResult CudaBackend::collect_sample(int ticket) {
  TLLM_CHECK(ticket == 0 || ticket == 1, "collect_sample: ticket ", ticket, " is not 0 or 1");
  TLLM_CHECK(draws_[ticket].live, "collect_sample: no draw under ticket ", ticket);
  return finish_draw(draws_[ticket]);
}

void CudaBackend::launch_draw(const Tensor& logits_in, const SampleBatch& batch, Draw& draw, bool deferred) {
  const char* op = "sample";
  check_capturable(op);
  expect_cuda(logits_in, op, "logits");
  TLLM_CHECK(logits_in.ndim() == 2, op, ": logits must be [rows, vocab], got ", logits_in.str());
  const int R = static_cast<int>(logits_in.dim(0)), V = static_cast<int>(logits_in.dim(1));
  check_sample_batch(batch, R, V);
  Tensor logits = logits_in;
  if (logits.dtype() != DType::F32) logits = upload(logits_in, DType::F32);
  draw.live = false;  // until everything is queued
  draw.R = R;
  draw.n_top.assign(R, 0);
  if (R == 0) {
    draw.live = true;
    return;
  }

  const bool has_pen = !batch.penalty_offsets.empty(), has_ban = !batch.banned_offsets.empty();
  const bool has_bias = !batch.bias_offsets.empty();
  // Penalty entries merged per row: a duplicate id counts once for the repetition penalty
  // and sums its counts (as the CPU backend).
  std::vector<int32_t> pen_tokens, pen_counts, pen_offsets(R + 1, 0);
  if (has_pen) {
    std::vector<std::pair<int32_t, int64_t>> toks;
    for (int r = 0; r < R; ++r) {
      toks.clear();
      for (int32_t j = batch.penalty_offsets[r]; j < batch.penalty_offsets[r + 1]; ++j)
        toks.emplace_back(batch.penalty_tokens[j], batch.penalty_counts[j]);
      std::sort(toks.begin(), toks.end());
      for (size_t j = 0; j < toks.size();) {
        const int32_t tok = toks[j].first;
        int64_t count = 0;
        for (; j < toks.size() && toks[j].first == tok; ++j) count += toks[j].second;
        pen_tokens.push_back(tok);
        pen_counts.push_back(static_cast<int32_t>(std::min<int64_t>(count, INT32_MAX)));
      }
      pen_offsets[r + 1] = static_cast<int32_t>(pen_tokens.size());
    }
  }
  std::vector<SampleRowParams> rows(R);
  int max_top = 0;
  bool any_allow = false;
  for (int r = 0; r < R; ++r) {
    const SamplingRow& s = batch.rows[r];
    TLLM_CHECK_ARG(s.num_top_logprobs <= kMaxTopLogprobs, op, ": row ", r, " num_top_logprobs ",
                   s.num_top_logprobs, " out of range [0, ", kMaxTopLogprobs, "]");
    SampleRowParams& p = rows[r];
    p.temperature = s.temperature;
    p.top_k = s.top_k;
    p.top_p = s.top_p;
    p.min_p = s.min_p;
    p.repetition_penalty = s.repetition_penalty;
    p.presence_penalty = s.presence_penalty;
    p.frequency_penalty = s.frequency_penalty;
    p.num_top_logprobs = s.num_top_logprobs;
    p.seed = s.seed;
    p.offset = s.offset;
    p.pen_begin = pen_offsets[r];
    p.pen_end = pen_offsets[r + 1];
    p.ban_begin = has_ban ? batch.banned_offsets[r] : 0;
    p.ban_end = has_ban ? batch.banned_offsets[r + 1] : 0;
    p.bias_begin = has_bias ? batch.bias_offsets[r] : 0;
    p.bias_end = has_bias ? batch.bias_offsets[r + 1] : 0;
    p.allow_only = s.allow_only ? 1 : 0;
    any_allow |= s.allow_only;
    max_top = std::max(max_top, s.num_top_logprobs);
  }
  const int top_stride = std::max(max_top, 1);
  // One upload: [row params | penalty tokens | penalty counts | banned tokens | bias tokens |
  // bias values].
  auto align16 = [](size_t x) { return (x + 15) / 16 * 16; };
  const size_t off_pt = align16(R * sizeof(SampleRowParams));
  const size_t off_pc = off_pt + align16(pen_tokens.size() * 4);
  const size_t off_bt = off_pc + align16(pen_counts.size() * 4);
  const size_t off_bi = off_bt + align16(batch.banned_tokens.size() * 4);
  const size_t off_bv = off_bi + align16(batch.bias_tokens.size() * 4);
  const size_t in_bytes = off_bv + align16(batch.bias_values.size() * 4) + 16;
  std::vector<uint8_t> staged(in_bytes, 0);
  std::memcpy(staged.data(), rows.data(), R * sizeof(SampleRowParams));
  if (!pen_tokens.empty()) std::memcpy(staged.data() + off_pt, pen_tokens.data(), pen_tokens.size() * 4);
  if (!pen_counts.empty()) std::memcpy(staged.data() + off_pc, pen_counts.data(), pen_counts.size() * 4);
  if (!batch.banned_tokens.empty())
    std::memcpy(staged.data() + off_bt, batch.banned_tokens.data(), batch.banned_tokens.size() * 4);
  if (!batch.bias_tokens.empty()) {
    std::memcpy(staged.data() + off_bi, batch.bias_tokens.data(), batch.bias_tokens.size() * 4);
    std::memcpy(staged.data() + off_bv, batch.bias_values.data(), batch.bias_values.size() * 4);
  }
  // Up to kSampleInlineBytes (one row: 96 bytes without penalties) they travel in the sampling
  // kernel's launch parameters; otherwise one upload.
  cuda::SampleInputs inputs;
  inputs.bytes = in_bytes;
  inputs.off_pt = off_pt;
  inputs.off_pc = off_pc;
  inputs.off_bt = off_bt;
  inputs.off_bi = off_bi;
  inputs.off_bv = off_bv;
  Tensor d_in;
  if (in_bytes <= cuda::kSampleInlineBytes) {
    inputs.host = staged.data();
  } else {
    d_in = empty({static_cast<int64_t>(in_bytes)}, DType::U8);
    if (in_bytes <= kRingCopyBytes) upload_small(d_in.raw(), staged.data(), in_bytes);
    else CUDA_CHECK(cudaMemcpyAsync(d_in.raw(), staged.data(), in_bytes, cudaMemcpyHostToDevice, stream_));
    inputs.device = static_cast<const uint8_t*>(d_in.raw());
  }
  const bool any_edit = !pen_tokens.empty() || !batch.banned_tokens.empty() || !batch.bias_tokens.empty() || any_allow;
  Tensor scratch = empty({any_edit ? R : 1, any_edit ? V : 1}, DType::F32);
  const size_t out_bytes = R * sizeof(SampleOutRow), top_bytes = static_cast<size_t>(R) * top_stride * sizeof(TopEntry);
  draw.out = empty({static_cast<int64_t>(out_bytes + top_bytes)}, DType::U8);  // kept for feed_tokens
  draw.top_stride = top_stride;
  for (int r = 0; r < R; ++r) draw.n_top[r] = std::min(batch.rows[r].num_top_logprobs, V);
  auto* out_rows = static_cast<SampleOutRow*>(draw.out.raw());
  auto* out_top = reinterpret_cast<TopEntry*>(static_cast<uint8_t*>(draw.out.raw()) + out_bytes);
  const cuda::SamplePartials sp = cuda::sample_partials(R, V);
  Tensor partials =
      empty({std::max<int64_t>(1, static_cast<int64_t>(R) * sp.n * sizeof(cuda::RowPartial))}, DType::U8);
  cuda::sample(logits.data<float>(), R, V, inputs, scratch.data<float>(), out_rows, out_top, top_stride,
               reinterpret_cast<cuda::RowPartial*>(partials.raw()), stream_);
  if (draw.pinned_bytes < out_bytes + top_bytes) {
    if (draw.pinned) {
      CUDA_CHECK(cudaEventSynchronize(draw.done));  // an earlier copy may still land in it
      CUDA_CHECK(cudaFreeHost(draw.pinned));
    }
    draw.pinned_bytes = std::max<size_t>(out_bytes + top_bytes, 64u << 10);
    CUDA_CHECK(cudaHostAlloc(&draw.pinned, draw.pinned_bytes, cudaHostAllocDefault));
  }
  // A deferred draw's copy to the host runs on its own stream: the next step's kernels,
  // queued behind the draw on stream_, need the ids on the device only (feed_tokens), not
  // the copy (run 103: the chain between two decode graphs 36 -> 18 us with the uploads in
  // kernel parameters). sample()'s host waits at once, and the hop to another stream would
  // only delay it (~5 us).
  if (!draw.done) CUDA_CHECK(cudaEventCreateWithFlags(&draw.done, cudaEventDisableTiming));
  cudaStream_t copy_on = stream_;
  if (deferred) {
    if (!draw.ready) CUDA_CHECK(cudaEventCreateWithFlags(&draw.ready, cudaEventDisableTiming));
    CUDA_CHECK(cudaEventRecord(draw.ready, stream_));
    CUDA_CHECK(cudaStreamWaitEvent(copy_stream_, draw.ready, 0));
    copy_on = copy_stream_;
  }
  CUDA_CHECK(cudaMemcpyAsync(draw.pinned, draw.out.raw(), out_bytes + top_bytes, cudaMemcpyDeviceToHost, copy_on));
  CUDA_CHECK(cudaEventRecord(draw.done, copy_on));
  draw.live = true;
}

// Waits for the draw's copy to the host (not for work queued after it) and reads it.
SampleResult CudaBackend::finish_draw(Draw& draw) {
  const int R = draw.R;
  SampleResult res;
  res.tokens.resize(R);
  res.logprobs.resize(R);
  res.top_logprobs.resize(R);
  draw.live = false;
  if (R == 0) return res;
  CUDA_CHECK(cudaEventSynchronize(draw.done));
  const size_t out_bytes = R * sizeof(SampleOutRow);
  const auto* h_rows = static_cast<const SampleOutRow*>(draw.pinned);
  const auto* h_top = reinterpret_cast<const TopEntry*>(static_cast<const uint8_t*>(draw.pinned) + out_bytes);
  for (int r = 0; r < R; ++r) {
    res.tokens[r] = h_rows[r].token;
    res.logprobs[r] = h_rows[r].logprob;
    const int n = draw.n_top[r];
    res.top_logprobs[r].reserve(n);
    for (int i = 0; i < n; ++i) {
      const TopEntry& e = h_top[static_cast<size_t>(r) * draw.top_stride + i];
      res.top_logprobs[r].emplace_back(e.token, e.logprob);
    }
  }
  return res;
}

Tensor CudaBackend::log_softmax_to_host(const Tensor& logits_in) {
  const char* op = "log_softmax_to_host";
  check_capturable(op);
  expect_cuda(logits_in, op, "logits");
  TLLM_CHECK(logits_in.ndim() == 2, op, ": logits must be [rows, vocab], got ", logits_in.str());
  Tensor logits = logits_in;
  if (logits.dtype() != DType::F32) logits = upload(logits_in, DType::F32);
  const int R = static_cast<int>(logits.dim(0)), V = static_cast<int>(logits.dim(1));
  Tensor tmp = empty(logits.shape(), DType::F32);
  cuda::log_softmax(tmp.data<float>(), logits.data<float>(), R, V, stream_);
  return download(tmp);
}

}  // namespace cuda

std::unique_ptr<Backend> make_cuda_backend(const CudaBackendOptions& opts) {
  TLLM_CHECK(cuda_available(), "no CUDA device is visible (cudaGetDeviceCount found none); use --device cpu");
  return std::make_unique<cuda::CudaBackend>(opts);
}

bool cuda_available() {
  static const bool available = [] {
    int n = 0;
    const cudaError_t err = cudaGetDeviceCount(&n);
    if (err != cudaSuccess) {
      cudaGetLastError();
      return false;
    }
    return n > 0;
  }();
  return available;
}

}  // namespace tllm
