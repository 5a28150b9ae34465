// Free functions of the CPU backend, llm.c style: raw pointers, explicit sizes, and an Exec
// that names the thread pool and instruction set to run on. CpuBackend (cpu_backend.cpp)
// checks tensors and forwards here; tests and benchmarks call these directly too.
// Each op lives in its own file (rms_norm.cpp, matmul.cpp, attention.cpp, ...); the
// instruction-set specific inner loops are in isa_kernels.h.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "core/dtype.h"
#include "kernels/backend.h"

namespace tllm {
class ThreadPool;
}

namespace tllm::cpu {

enum class Isa : uint8_t { Scalar, Avx2, Avx512 };
Isa best_isa();                 // the best that cpu_features() allows (TLLM_CPU_ISA caps it)
const char* isa_name(Isa isa);  // "scalar", "avx2", "avx512"
bool isa_supported(Isa isa);    // by this machine, ignoring TLLM_CPU_ISA

// Memory that grows to the largest request and is then reused, so steady-state decode
// allocates nothing. One per backend: ops of one backend run one at a time.
class Scratch {
 public:
  Scratch() = default;
  ~Scratch();
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
  // 64-byte aligned, contents undefined; valid until the next call.
  void* bytes(size_t n);
  float* floats(size_t n) { return static_cast<float*>(bytes(n * sizeof(float))); }

 private:
  void* data_ = nullptr;
  size_t size_ = 0;
};

struct Exec {
  ThreadPool& pool;
  Isa isa;
  Scratch& scratch;
};

// out[T, H] = table[tokens[t], :]; table [vocab, H] in f32, bf16 or f16.
void embedding(float* out, const void* table, DType table_dtype, int64_t vocab, int64_t hidden,
               const int32_t* tokens, int64_t n_tokens, const Exec& ex);

// out[r, :] = x[r, :] / sqrt(mean(x[r, :]^2) + eps) * weight; out may alias x.
void rms_norm(float* out, const float* x, const float* weight, int64_t rows, int64_t dim,
              float eps, const Exec& ex);
// residual += x; out = rms_norm(residual) * weight.
void add_rms_norm(float* residual, const float* x, float* out, const float* weight, int64_t rows,
                  int64_t dim, float eps, const Exec& ex);

// out[T, N] = x[T, K] @ w[N, K]^T (+ bias[N]). w is f32, bf16 or f16 and is converted in
// registers; products and sums are f32.
void linear(float* out, const float* x, const void* w, DType w_dtype, const float* bias, int64_t T,
            int64_t N, int64_t K, const Exec& ex);

struct RopeKvWriteParams {
  float* qkv = nullptr;  // [T, layout.row_stride()], updated in place
  int64_t n_tokens = 0;
  QKVLayout layout;
  const float* q_norm = nullptr;  // [head_dim] or null
  const float* k_norm = nullptr;  // [head_dim] or null
  float eps = 1e-6f;
  RopeSpec rope;
  const float* cos_sin = nullptr;  // [cos_sin_rows, rotary_dim]: [cos(rd/2) | sin(rd/2)]
  int64_t cos_sin_rows = 0;
  const int32_t* rope_rows = nullptr;     // [T] row of cos_sin per token
  const int64_t* slot_mapping = nullptr;  // [T], < 0: not written
  void* k_cache = nullptr;                // [num_slots, n_kv_heads, head_dim]
  void* v_cache = nullptr;
  DType cache_dtype = DType::F32;
  int64_t num_slots = 0;
};
void qk_norm_rope_kv_write(const RopeKvWriteParams& p, const Exec& ex);

struct AttentionParams {
  float* out = nullptr;        // [T, n_q_heads * head_dim]
  const float* q = nullptr;    // q of token t, head h at q + t * q_stride + h * head_dim
  int64_t q_stride = 0;
  const void* k_cache = nullptr;  // [num_blocks, block_size, n_kv_heads, head_dim]
  const void* v_cache = nullptr;
  DType cache_dtype = DType::F32;
  int n_q_heads = 0;
  int n_kv_heads = 0;
  int head_dim = 0;
  int num_seqs = 0;
  int num_tokens = 0;
  int block_size = 16;
  int max_blocks_per_seq = 0;
  const int32_t* cu_seqlens_q = nullptr;  // [B+1]
  const int32_t* seq_lens_k = nullptr;    // [B]
  const int32_t* block_tables = nullptr;  // [B, max_blocks_per_seq]
  float scale = 1.0f;
  int sliding_window = 0;
};
// Checks the metadata (offsets, lengths, block ids against num_blocks); throws naming the
// field. attention() assumes it passed.
void validate_attention(const AttentionParams& p, int64_t num_blocks);
void attention(const AttentionParams& p, const Exec& ex);

// out[T, I] = silu(gate_up[:, :I]) * gate_up[:, I:]
void silu_mul(float* out, const float* gate_up, int64_t T, int64_t inter, const Exec& ex);

// out[i, :] = x[indices[i], :] for rows of row_bytes bytes.
void gather_rows(void* out, const void* x, int64_t row_bytes, const int64_t* indices, int64_t n,
                 const Exec& ex);

// Row-wise log-softmax of logits[R, V] into out (may alias logits).
void log_softmax(float* out, const float* logits, int64_t rows, int64_t vocab, const Exec& ex);

// See SamplingRow / SampleBatch in backend.h.
SampleResult sample(const float* logits, int64_t rows, int64_t vocab, const SampleBatch& batch,
                    const Exec& ex);
// The token ids (ascending) that row r may draw from after penalties, bans, temperature,
// top-k, top-p and min-p; {greedy token} when temperature == 0. For tests.
std::vector<int32_t> sample_keep_set(const float* logits_row, int64_t vocab, const SampleBatch& batch,
                                     int64_t r);

}  // namespace tllm::cpu
