// Sampling, one block per row of logits, no sort of the vocabulary:
//   1. raw max and sum of exp (for the raw log-softmax of the chosen / top tokens);
//   2. processed row into scratch: NaN -> -inf, repetition, presence and frequency
//      penalties, bans (temperature enters as exp(w * inv_t - w_max * inv_t), as on the CPU);
//   3. top-k and top-p thresholds by radix select over order-preserving 32-bit keys of the
//      processed logits (4 passes of 8-bit digits with count and exp-mass histograms in
//      shared memory); min-p as a ratio to the max;
//   4. the exponential race argmax_i p_i / E_i with E_i = -log(sampling_uniform(...)),
//      lowest id on ties; greedy (temperature 0) is argmax, lowest id on ties;
//   5. top-N raw logprobs by another radix select (ties by lower id).
#include "kernels/cuda/cuda_common.cuh"
#include "kernels/cuda/sample.h"

namespace tllm::cuda {
namespace {

constexpr int kThreads = 1024;

__device__ __forceinline__ uint32_t float_key(float f) {
  const uint32_t u = __float_as_uint(f);
  return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

// Same bits as the host's sampling_uniform (backend.h).
__device__ __forceinline__ float uniform_hash(uint64_t seed, uint64_t offset, uint32_t token) {
  uint64_t z = seed * 0x9E3779B97F4A7C15ull ^ (offset + 0x632BE59BD9B4E019ull) * 0xD1B54A32D192ED03ull ^
               (static_cast<uint64_t>(token) + 1) * 0x94D049BB133111EBull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  return (static_cast<float>(z >> 40) + 0.5f) * (1.0f / 16777216.0f);
}

struct Shared {
  float red[32];
  int ired[32];
  unsigned int cnt[256];
  float mass[256];
  uint32_t sel_prefix;
  float sel_above;
  int n_list;
  TopEntry list[kMaxTopLogprobs];
};

// Finds, among elements with key >= floor_key, either
//   COUNT: the k-th largest key (count(key > t) < k <= count(key >= t)), or
//   MASS:  the lowest key t with mass(key > t) < target, mass = exp(v * inv_t - smax).
template <bool MASS>
__device__ uint32_t radix_select(const float* row, int V, uint32_t floor_key, int k, float target, float inv_t,
                                 float smax, Shared& sh) {
  uint32_t prefix = 0;
  float above = 0.0f;  // count or mass of eligible elements above the current prefix range
  for (int shift = 24; shift >= 0; shift -= 8) {
    for (int i = threadIdx.x; i < 256; i += blockDim.x) { sh.cnt[i] = 0; sh.mass[i] = 0.0f; }
    __syncthreads();
    const uint32_t hi_mask = shift == 24 ? 0u : (0xffffffffu << (shift + 8));
    for (int i = threadIdx.x; i < V; i += blockDim.x) {
      const float v = row[i];
      const uint32_t key = float_key(v);
      if (isnan(v) || key < floor_key || (key & hi_mask) != prefix) continue;
      const int d = (key >> shift) & 255;
      atomicAdd(&sh.cnt[d], 1u);
      if (MASS) atomicAdd(&sh.mass[d], expf(v * inv_t - smax));
    }
    __syncthreads();
    if (threadIdx.x == 0) {
      int best = -1;
      float best_above = above;
      float acc = above;
      for (int d = 255; d >= 0; --d) {
        if (sh.cnt[d] == 0) continue;
        if (MASS) {
          if (acc < target) { best = d; best_above = acc; } else break;
          acc += sh.mass[d];
        } else {
          if (acc + static_cast<float>(sh.cnt[d]) >= static_cast<float>(k)) { best = d; best_above = acc; break; }
          acc += static_cast<float>(sh.cnt[d]);
        }
      }
      if (best < 0) best = 0;  // unreachable for valid k / target
      sh.sel_prefix = prefix | (static_cast<uint32_t>(best) << shift);
      sh.sel_above = best_above;
    }
    __syncthreads();
    prefix = sh.sel_prefix;
    above = sh.sel_above;
  }
  return prefix;
}

// argmax of score over i with key(row[i]) >= floor; lowest id on ties. Returns the id.
template <typename F>
__device__ int block_argmax(int V, F score, Shared& sh) {
  float best = -INFINITY;
  int best_id = 0x7fffffff;
  for (int i = threadIdx.x; i < V; i += blockDim.x) {
    const float s = score(i);
    if (s > best || (s == best && i < best_id)) { best = s; best_id = i; }
  }
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) {
    const float ob = __shfl_xor_sync(0xffffffffu, best, o);
    const int oi = __shfl_xor_sync(0xffffffffu, best_id, o);
    if (ob > best || (ob == best && oi < best_id)) { best = ob; best_id = oi; }
  }
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  __syncthreads();
  if (lane == 0) { sh.red[warp] = best; sh.ired[warp] = best_id; }
  __syncthreads();
  if (warp == 0) {
    const int nw = blockDim.x >> 5;
    best = lane < nw ? sh.red[lane] : -INFINITY;
    best_id = lane < nw ? sh.ired[lane] : 0x7fffffff;
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) {
      const float ob = __shfl_xor_sync(0xffffffffu, best, o);
      const int oi = __shfl_xor_sync(0xffffffffu, best_id, o);
      if (ob > best || (ob == best && oi < best_id)) { best = ob; best_id = oi; }
    }
    if (lane == 0) sh.ired[0] = best_id;
  }
  __syncthreads();
  const int r = sh.ired[0];
  __syncthreads();
  return r == 0x7fffffff ? 0 : r;
}

__global__ void __launch_bounds__(kThreads)
    sample_kernel(const float* __restrict__ logits, int V, const SampleRowParams* __restrict__ rows,
                  const int32_t* __restrict__ pen_tokens, const int32_t* __restrict__ pen_counts,
                  const int32_t* __restrict__ ban_tokens, float* __restrict__ scratch,
                  SampleOutRow* __restrict__ out, TopEntry* __restrict__ top, int max_top) {
  __shared__ Shared sh;
  const int r = blockIdx.x;
  const SampleRowParams prm = rows[r];
  const float* raw = logits + static_cast<int64_t>(r) * V;
  float* row = scratch + static_cast<int64_t>(r) * V;

  // 1. raw max / sum exp.
  float mx = -INFINITY;
  for (int i = threadIdx.x; i < V; i += blockDim.x) mx = fmaxf(mx, raw[i]);
  const float raw_max = block_max(mx, sh.red);
  float se = 0.0f;
  for (int i = threadIdx.x; i < V; i += blockDim.x) se += isnan(raw[i]) ? 0.0f : expf(raw[i] - raw_max);
  const float raw_lse = raw_max + logf(block_sum(se, sh.red));

  // 2. processed logits: NaN -> -inf, penalties (the host merged duplicate ids), bans.
  for (int i = threadIdx.x; i < V; i += blockDim.x) {
    const float v = raw[i];
    row[i] = isnan(v) ? -INFINITY : v;
  }
  __syncthreads();
  for (int j = prm.pen_begin + static_cast<int>(threadIdx.x); j < prm.pen_end; j += blockDim.x) {
    const int tok = pen_tokens[j];
    if (tok < 0 || tok >= V) continue;
    float l = row[tok];
    if (prm.repetition_penalty != 1.0f) l = l > 0.0f ? l / prm.repetition_penalty : l * prm.repetition_penalty;
    const int c = pen_counts[j];
    if (c > 0) l -= prm.presence_penalty;
    l -= prm.frequency_penalty * static_cast<float>(c);
    row[tok] = l;
  }
  __syncthreads();
  for (int j = prm.ban_begin + static_cast<int>(threadIdx.x); j < prm.ban_end; j += blockDim.x) {
    const int tok = ban_tokens[j];
    if (tok >= 0 && tok < V) row[tok] = -INFINITY;
  }
  __syncthreads();

  int token;
  if (prm.temperature <= 0.0f) {
    token = block_argmax(V, [&](int i) { return row[i]; }, sh);
  } else {
    // Temperature as in the CPU backend: p_i ~ exp(w_i * inv_t - w_max * inv_t); the order of
    // the logits (top-k, top-p) does not depend on it.
    const float inv_t = 1.0f / prm.temperature;
    float pm = -INFINITY;
    for (int i = threadIdx.x; i < V; i += blockDim.x) pm = fmaxf(pm, row[i]);
    const float smax = block_max(pm, sh.red) * inv_t;
    // 3. thresholds as keys: keep key >= floor.
    uint32_t floor_key = float_key(-INFINITY);
    if (prm.top_k > 0 && prm.top_k < V) floor_key = radix_select<false>(row, V, 0u, prm.top_k, 0.0f, 0.0f, 0.0f, sh);
    if (prm.top_p < 1.0f) {
      float z = 0.0f;
      for (int i = threadIdx.x; i < V; i += blockDim.x)
        if (float_key(row[i]) >= floor_key) z += expf(row[i] * inv_t - smax);
      z = block_sum(z, sh.red);
      const uint32_t t = radix_select<true>(row, V, floor_key, 0, prm.top_p * z, inv_t, smax, sh);
      floor_key = max(floor_key, t);
    }
    const float min_p = prm.min_p;
    // 4. exponential race over kept tokens.
    token = block_argmax(
        V,
        [&](int i) {
          const float v = row[i];
          if (float_key(v) < floor_key || v == -INFINITY) return -INFINITY;
          const float pr = expf(v * inv_t - smax);
          if (min_p > 0.0f && pr < min_p) return -INFINITY;
          const float e = -logf(uniform_hash(prm.seed, prm.offset, static_cast<uint32_t>(i)));
          return pr / e;
        },
        sh);
  }
  if (threadIdx.x == 0) out[r] = SampleOutRow{token, raw[token] - raw_lse};

  // 5. top-N raw logprobs.
  const int n_top = min(prm.num_top_logprobs, max_top);
  if (n_top > 0) {
    const int nt = min(n_top, V);
    const uint32_t t = radix_select<false>(raw, V, 0u, nt, 0.0f, 0.0f, 0.0f, sh);
    if (threadIdx.x == 0) sh.n_list = 0;
    __syncthreads();
    for (int i = threadIdx.x; i < V; i += blockDim.x) {
      if (!isnan(raw[i]) && float_key(raw[i]) > t) {
        const int slot = atomicAdd(&sh.n_list, 1);
        if (slot < kMaxTopLogprobs) sh.list[slot] = TopEntry{i, raw[i] - raw_lse};
      }
    }
    __syncthreads();
    // Ties at the threshold: the lowest ids, in order (chunks of blockDim with a ballot scan).
    for (int base = 0; base < V && sh.n_list < nt; base += blockDim.x) {
      const int i = base + threadIdx.x;
      const bool hit = i < V && !isnan(raw[i]) && float_key(raw[i]) == t;
      const unsigned ball = __ballot_sync(0xffffffffu, hit);
      const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
      if (lane == 0) sh.cnt[warp] = __popc(ball);
      __syncthreads();
      int before = 0;
      for (int w = 0; w < warp; ++w) before += sh.cnt[w];
      const int pos = sh.n_list + before + __popc(ball & ((1u << lane) - 1));
      if (hit && pos < nt) sh.list[pos] = TopEntry{i, raw[i] - raw_lse};
      __syncthreads();
      if (threadIdx.x == 0) {
        int total = 0;
        for (int w = 0; w < (int)(blockDim.x >> 5); ++w) total += sh.cnt[w];
        sh.n_list = min(nt, sh.n_list + total);
      }
      __syncthreads();
    }
    if (threadIdx.x == 0) {
      const int n = min(sh.n_list, nt);
      for (int a = 1; a < n; ++a) {  // insertion sort: logprob desc, id asc
        TopEntry e = sh.list[a];
        int b = a - 1;
        while (b >= 0 && (sh.list[b].logprob < e.logprob ||
                          (sh.list[b].logprob == e.logprob && sh.list[b].token > e.token))) {
          sh.list[b + 1] = sh.list[b];
          --b;
        }
        sh.list[b + 1] = e;
      }
      for (int a = 0; a < n; ++a) top[static_cast<int64_t>(r) * max_top + a] = sh.list[a];
    }
  }
}

}  // namespace

void sample(const float* logits, int R, int V, const SampleRowParams* rows, const int32_t* pen_tokens,
            const int32_t* pen_counts, const int32_t* ban_tokens, float* scratch, SampleOutRow* out,
            TopEntry* top, int max_top, cudaStream_t stream) {
  if (R == 0) return;
  sample_kernel<<<R, kThreads, 0, stream>>>(logits, V, rows, pen_tokens, pen_counts, ban_tokens, scratch, out,
                                            top, max_top);
  CUDA_CHECK_LAUNCH("sample");
}

}  // namespace tllm::cuda
