// The two paged-attention kernels behind cuda::attention, exposed for tests and
// bench/cuda: the generic one (prefill, decode, mixed batches, split-KV, split-keys decode)
// and the prefill specialisation (128-row tiles, 32 rows per warp) that prefill-heavy
// launches take.
#pragma once

#include "kernels/cuda/cuda_ops.h"

namespace tllm::cuda {

// kPrefill: mma.sync, 64-key tiles (what kAuto dispatches where kPrefillSm90 is not
// available); kPrefillN32: 32-key tiles, a tuning alternative kept for the benchmark;
// kPrefillSm90: wgmma (attention_prefill_sm90.cu), what kAuto dispatches on sm_90 when the
// binary has sm_90a code and TLLM_ATTN_SM90 is not 0 (throws elsewhere).
enum class AttentionKernel { kAuto, kGeneric, kPrefill, kPrefillN32, kPrefillSm90 };

// True when kPrefillSm90 can run on the current device.
bool attention_prefill_sm90_available();

// True when cuda::attention runs the prefill kernel for p: head_dim 64 or 128, some
// sequence with >= 128 query rows (q_len * n_q / n_kv), and enough tiles that the generic
// kernel would not split the keys.
bool attention_uses_prefill_kernel(const AttentionParams& p);

// True when the generic kernel runs in split-keys (decode) mode for p: every sequence's
// q_len * n_q / n_kv rows fit one 16-row tile. Its key partitions per (sequence, kv head):
// attention_splits(p) (1: no split-KV), read from num_seqs, num_tokens, max_seqlen_q,
// max_seqlen_k, the head counts and num_sms.
bool attention_uses_split_keys(const AttentionParams& p);
int attention_splits(const AttentionParams& p);

// cuda::attention with the kernel forced (kAuto: what cuda::attention picks). kPrefill
// handles any varlen batch (no split-KV) at head_dim 64 and 128 and throws otherwise; the
// workspace of attention_workspace_bytes(p) suffices for every choice.
void attention_with_kernel(const AttentionParams& p, AttentionKernel kernel, cudaStream_t stream);

}  // namespace tllm::cuda
