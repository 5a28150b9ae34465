// Free functions of the CUDA backend: raw device pointers, explicit sizes, one stream.
// The launchers pick grids and variants and check every launch; CudaBackend (cuda_backend.cu)
// validates tensors and forwards here. Activations are bf16 ([T, H] row-major).
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "core/dtype.h"

namespace tllm::cuda {

using bf16 = __nv_bfloat16;

// dst[0, bytes) = src[0, bytes) (host memory, any kind) in stream order, the bytes carried in
// the launch parameters of one kernel per 4,000 (inline_upload.cu): for uploads of a few KB,
// where a pinned cudaMemcpyAsync costs more than its bytes. src may be reused on return.
// release_early: the next kernel may start (PDL) before the bytes land, so it must read them
// only after its griddepcontrol.wait (a step's metadata: every kernel that reads it before
// its wait comes after the step's embedding, which is not launched with PDL). Without it the
// next kernel starts when the copy has completed: for data that a kernel may read before its
// wait (weights, biases, norm weights: the decode GEMVs fetch them ahead of the wait).
constexpr size_t kInlineUploadMaxBytes = 8000;
void upload_inline(void* dst, const void* src, size_t bytes, cudaStream_t stream, bool release_early = true);

// dst[i] = convert(src[i]) between f32 / bf16 / f16 (same dtype: plain copy).
void convert(void* dst, DType dst_dtype, const void* src, DType src_dtype, int64_t n,
             cudaStream_t stream);

// out[T, H] = table[tokens[t], :]; table f32/bf16/f16, out f32/bf16.
void embedding(void* out, DType out_dtype, const void* table, DType table_dtype,
               const int32_t* tokens, int T, int H, int64_t vocab, cudaStream_t stream);

// out = x * rsqrt(mean(x^2) + eps) * w, per row of H; weight f32 or bf16; out may alias x.
void rms_norm(bf16* out, const bf16* x, const void* weight, DType weight_dtype, int T, int H,
              float eps, cudaStream_t stream);
// residual = bf16(residual + x); out = rms_norm(residual) * w.
void add_rms_norm(bf16* residual, const bf16* x, bf16* out, const void* weight,
                  DType weight_dtype, int T, int H, float eps, cudaStream_t stream);

// out[T, I] = silu(gate_up[:, :I]) * gate_up[:, I:]
void silu_mul(bf16* out, const bf16* gate_up, int T, int I, cudaStream_t stream);

// True when the current device is an sm_90 GPU and this binary holds sm_90a code for it (the
// wgmma / TMA kernels); probed once per device with a one-thread kernel.
bool sm90a_available();

// Prefill's gate|up projection with the activation in its epilogue (gemm_silu_sm90.cu, TMA +
// wgmma): act[T, I] = silu(bf16(x Wg^T)) * bf16(x Wu^T) for w = [Wg; Wu] [2I, K], no bias.
// supported: an sm_90 device with sm_90a code in this build, even I, K % 8 == 0, x and w
// 16-byte aligned, act 4-byte aligned.
bool gemm_silu_sm90_supported(int T, int I, int K, const void* act, const void* x, const void* w);
void gemm_silu_sm90(bf16* act, const bf16* x, const bf16* w, int T, int I, int K, int num_sms, cudaStream_t stream);

// out[i, :] = x[indices[i], :] for rows of row_bytes bytes.
void gather_rows(void* out, const void* x, const int32_t* indices, int n, int64_t x_rows,
                 int64_t row_bytes, cudaStream_t stream);

// Skinny GEMM for T <= 32 tokens that streams W at memory speed with tensor cores:
// out[T, N] = x[T, K] @ W[N, K]^T (+ bias). Needs K % 8 == 0 and 16-byte aligned rows.
constexpr int kGemvMaxTokens = 32;
bool gemv_supported(int T, int64_t N, int64_t K);
// num_sms and T pick the launch shape (gemv.cu, gemv_cfg).
void gemv_bf16(void* out, DType out_dtype, const bf16* x, const bf16* w, const void* bias,
               DType bias_dtype, int T, int N, int K, int num_sms, cudaStream_t stream);

// The decoder's residual update fused after a skinny GEMM's output out[T, N] (N = hidden):
// residual = bf16(residual + out); normed = rms_norm(residual) * weight (f32 weight), done by
// the grid's last block. counter: a device word that is 0 between launches (the kernel
// leaves it 0); one per stream suffices, launches on a stream being ordered.
struct GemvNorm {
  bf16* residual = nullptr;
  bf16* normed = nullptr;
  const float* weight = nullptr;
  float eps = 0.0f;
  unsigned int* counter = nullptr;
};
constexpr int kGemvNormMaxTokens = 4;  // normalised by the grid's last block
bool gemv_norm_supported(int T, int64_t N, int64_t K, int num_sms);

// act[T, N/2] = silu(gate) * up for [gate | up] = x[T, K] @ W[N, K]^T (+ bias), T <= 32: the
// gate|up projection with the activation in its epilogue (the bits of gemv_bf16 + silu_mul).
void gemv_silu_bf16(bf16* act, const bf16* x, const bf16* w, const void* bias, DType bias_dtype, int T, int N, int K,
                    int num_sms, cudaStream_t stream);
// out = x @ W^T (+ bias) followed by norm's residual update (T <= kGemvNormMaxTokens).
void gemv_norm_bf16(bf16* out, const bf16* x, const bf16* w, const void* bias, DType bias_dtype, int T, int N,
                    int K, const GemvNorm& norm, int num_sms, cudaStream_t stream);

// out[T, N] += bias (used where the GEMM could not fuse it).
void add_bias(void* out, DType out_dtype, const void* bias, DType bias_dtype, int T, int N,
              cudaStream_t stream);

struct QkNormRopeParams {
  bf16* qkv;                 // [T, row_stride]
  int64_t row_stride;
  int T, n_q_heads, n_kv_heads, head_dim;
  const void* q_norm;        // [head_dim] or null
  const void* k_norm;        // [head_dim] or null
  DType norm_dtype;
  float eps;
  int rotary_dim;
  bool interleaved;
  const float* cos_sin;      // [rows, rotary_dim] = [cos(rot/2) | sin(rot/2)]
  const int32_t* rope_rows;  // [T], each < rows of cos_sin (not checked on the device)
  const void* slot_mapping;  // [T] i64 or i32 (slot_i64); < 0: skip the cache write
  bool slot_i64;
  bf16* k_cache;             // [num_blocks, block_size, n_kv_heads, head_dim]
  bf16* v_cache;
  int64_t num_slots;         // num_blocks * block_size
  bool release_at_entry;     // launch the dependent (decode attention) before the wait (the rope
                             // kernel; gemv_rope_kv_bf16 sets it per head width above 8 tokens)
  bool token_blocks = true;  // the rope kernel: one block per token where it can (false: a warp
                             // per head everywhere; TLLM_ROPE_TOKEN_BLOCKS=0, a measurement knob)
  // The projection's bias [row_stride] (f32, or bf16 with bias_bf16), not yet added to qkv:
  // the kernel adds it to every q, k and v element it reads, with add_bias's rounding
  // (bf16(qkv + bias)), and writes the sums back, so qkv and the cache hold the bits of
  // add_bias followed by this op. Null: qkv already holds the biased projection.
  const void* bias = nullptr;
  bool bias_bf16 = false;
};
void qk_norm_rope_kv_write(const QkNormRopeParams& p, cudaStream_t stream);
#ifdef __CUDACC__
// Token t's cache slot from p.slot_mapping (i64 or i32); < 0: no write. A slot past the cache
// (the host validates the mapping) reads as -1, so no kernel writes out of bounds.
__device__ __forceinline__ int64_t cache_slot(const QkNormRopeParams& p, int t) {
  const int64_t s = p.slot_i64 ? static_cast<const int64_t*>(p.slot_mapping)[t]
                               : static_cast<const int32_t*>(p.slot_mapping)[t];
  return s >= p.num_slots ? -1 : s;
}
#endif

// The q|k|v projection of a decode step (x[T, K] @ w^T, + bias) with the rotation and the
// cache writes of qk_norm_rope_kv_write in its epilogue, for the case without q/k norms:
// split-half RoPE over the whole head (rotary_dim = head_dim, head_dim % 16 == 0), rows of
// (n_q + 2 n_kv) heads, T <= 32. A block takes dims [8j, 8j + 8) and their partners
// [D/2 + 8j, ...) of one q or k head, so both halves of every rotated pair end in the same
// block; v heads keep 16-row panels. p is qk_norm_rope_kv_write's (p.qkv is the output; its
// norm and release fields are not read). Same bits as gemv_bf16 followed by
// qk_norm_rope_kv_write.
bool gemv_rope_supported(int T, int n_q_heads, int n_kv_heads, int head_dim, int64_t K);
void gemv_rope_kv_bf16(const QkNormRopeParams& p, const bf16* x, const bf16* w, const void* bias, DType bias_dtype,
                       int K, int num_sms, cudaStream_t stream);

struct AttentionParams {
  const bf16* q;              // q rows of qkv, head h at q + t*q_stride + h*head_dim
  int64_t q_stride;
  const bf16* k_cache;        // [num_blocks, block_size, n_kv_heads, head_dim]
  const bf16* v_cache;
  bf16* out;                  // [T, n_q_heads*head_dim]
  const int32_t* cu_seqlens_q;  // [B+1]
  const int32_t* seq_lens_k;    // [B]
  const int32_t* block_tables;  // [B, max_blocks_per_seq]
  // max_seqlen_q / max_seqlen_k must bound every sequence: max_seqlen_q * (n_q / n_kv) <= 16
  // selects the split-keys decode kernel, which computes only the first 16 rows per sequence.
  int num_seqs, num_tokens, max_seqlen_q, max_seqlen_k;
  int block_size, max_blocks_per_seq;
  int n_q_heads, n_kv_heads, head_dim;
  float scale;
  int sliding_window;         // 0: off
  int num_sms;
  int release_early;          // decode: launch the dependent kernel after the key loop
  // Scratch for split-KV partials; the launcher asks for its size first.
  float* workspace;
  size_t workspace_bytes;
};
bool attention_supported_head_dim(int head_dim);
// Bytes of f32 scratch the split-KV path needs for this call (0: none).
size_t attention_workspace_bytes(const AttentionParams& p);
void attention(const AttentionParams& p, cudaStream_t stream);

// Row-wise log-softmax of f32 logits [R, V].
void log_softmax(float* out, const float* logits, int R, int V, cudaStream_t stream);

}  // namespace tllm::cuda
