// Device side of Backend::sample (kernels/cuda/sample.cu); CudaBackend packs SampleBatch
// into these arrays, launches, and copies SampleOutRow/TopEntry back.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace tllm::cuda {

struct SampleRowParams {
  float temperature;
  int top_k;
  float top_p;
  float min_p;
  float repetition_penalty;
  float presence_penalty;
  float frequency_penalty;
  int num_top_logprobs;
  uint64_t seed;
  uint64_t offset;
  int pen_begin, pen_end;  // into penalty_tokens / penalty_counts
  int ban_begin, ban_end;  // into banned_tokens
  int bias_begin, bias_end;  // into bias_tokens / bias_values (each token at most once)
  int allow_only;            // the ban entries are the only tokens allowed (SamplingRow::allow_only)
};

struct SampleOutRow {
  int32_t token;
  float logprob;
};

struct TopEntry {
  int32_t token;
  float logprob;
};

constexpr int kMaxTopLogprobs = 64;

// Partial results of the first pass over a chunk of a row (raw max / sum of exp, argmax).
struct RowPartial {
  float m, s, best;
  int id;
};
struct SamplePartials {
  int n = 0;      // chunks per row (0 or 1: no split)
  int chunk = 0;  // entries per chunk
};
// How the first pass over [R, V] logits is split; sample() needs R * n RowPartials of scratch.
SamplePartials sample_partials(int R, int V);

// The draw's per-row inputs as one block of bytes: [R SampleRowParams | penalty tokens |
// penalty counts | banned tokens | bias tokens] (int32) [bias values] (f32), the arrays at byte
// offsets off_pt / off_pc / off_bt / off_bi / off_bv (16-byte aligned). Either in device
// memory (device), or, up to kSampleInlineBytes, in host memory (host, device null): then they
// travel in the sampling kernel's launch parameters, with no upload before it (the host buffer
// may be reused on return).
constexpr size_t kSampleInlineBytes = 3840;
struct SampleInputs {
  const uint8_t* host = nullptr;
  const uint8_t* device = nullptr;
  size_t bytes = 0;
  size_t off_pt = 0, off_pc = 0, off_bt = 0, off_bi = 0, off_bv = 0;
};

// logits [R, V] f32; scratch [R, V] f32 (processed logits); top [R, max_top]; partials: room
// for R * sample_partials(R, V).n entries, or null (one block reads each row).
void sample(const float* logits, int R, int V, const SampleInputs& in, float* scratch, SampleOutRow* out, TopEntry* top,
            int max_top, RowPartial* partials, cudaStream_t stream);

// tokens[i] = out[rows[i]].token for every i < n with rows[i] >= 0; rows in host memory
// (carried in the launch parameters, 960 per kernel).
void feed_tokens(int32_t* tokens, const int32_t* rows, const SampleOutRow* out, int n, cudaStream_t stream);

}  // namespace tllm::cuda
