// Sampling, one block per row of logits, no sort of the vocabulary:
//   1. one fused pass: raw max and sum of exp (online) for the raw log-softmax of the
//      chosen / top tokens, plus the processed argmax (greedy);
//   2. processed logits: NaN -> -inf, logit biases, repetition / presence / frequency
//      penalties, bans (copied to scratch only when the row has biases, penalties or bans);
//   3. top-k / top-p: the candidate path (candidate_select: distance-bin histogram, gather
//      of <= 4096 tokens, bitonic sort in shared memory, filtering in the CPU backend's
//      order); when the cut holds more tokens, radix select over order-preserving 32-bit
//      keys (4 passes of 8-bit digits, warp-private histograms); min-p as a ratio to the max;
//   4. the exponential race argmax_i p_i / E_i, E_i = -log(sampling_uniform(seed, offset, i)),
//      lowest id on ties; temperature enters as exp(w * inv_t - w_max * inv_t), as on the CPU;
//   5. top-N raw logprobs through the same candidate buffer (radix select as the fallback),
//      ties by lower id.
// Row passes use float4 loads, four in flight per thread. A large row's first pass is split
// over chunks of >= 2,048 entries (row_partials_kernel, about 64 blocks for one 151,936-entry
// row), merged by the row's block; the per-row parameters travel in the launch parameters
// when they fit (SampleInline), so a batch-1 draw is two kernels and no upload.
#include <algorithm>
#include <cstring>

#include "kernels/cuda/cuda_common.cuh"
#include "kernels/cuda/sample.h"

namespace tllm::cuda {
namespace {

constexpr int kThreads = 512;
constexpr int kWarps = kThreads / 32;

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

__device__ __forceinline__ float proc(float v) { return isnan(v) ? -INFINITY : v; }

__device__ __forceinline__ float key_float(uint32_t key) {
  return __uint_as_float((key & 0x80000000u) ? (key ^ 0x80000000u) : ~key);
}

// Candidate path for top-k / top-p rows: one pass bins the processed logits by scaled
// distance to the max, d = (w_max - w) / temperature, in 256 bins of 1/8 over [0, 32) (count
// and exp-mass, warp-private); the bins nearest the max that hold the top-k (or the top-p
// mass) give a cut; a second pass gathers the (at most kMaxCand) tokens above it, which are
// sorted in shared memory and filtered exactly as the CPU backend does. Returns false (and
// leaves the shared state free) when the cut would exceed kMaxCand tokens or is not within
// 32 units of the max; the caller then runs the radix-select path.
__device__ bool candidate_select(const float* row, int V, const SampleRowParams& prm, float wmax, float inv_t,
                                 float smax, struct Shared& sh);

constexpr int kMaxCand = 4096;

struct Shared {
  union {
    struct {
      unsigned int cnt[kWarps][256];  // radix digits or distance bins, per warp
      float mass[kWarps][256];
    };
    unsigned long long cand[kMaxCand];  // candidates: float_key << 32 | ~id (sorted descending)
  };
  int n_cand, n_keep, b_cut;
  double dred[32];
  double z_all;  // sum over the whole row of exp(w * inv_t - smax), in double as the CPU backend
  float red[32];
  float red2[32];
  int ired[32];
  uint32_t sel_prefix;
  float sel_above;
  unsigned int sel_count;
  int n_list;
  TopEntry list[kMaxTopLogprobs];
};

// f(i, v) for every element of row[0, V): float4 loads, 4 in flight per thread, when aligned.
template <typename F>
__device__ __forceinline__ void for_each(const float* row, int V, F&& f) {
  const int bd = blockDim.x;
  int done = 0;
  if ((reinterpret_cast<uintptr_t>(row) & 15) == 0) {
    const float4* r4 = reinterpret_cast<const float4*>(row);
    const int n4 = V / 4;
    int i = threadIdx.x;
    for (; i + 3 * bd < n4; i += 4 * bd) {
      float4 q[4];
#pragma unroll
      for (int u = 0; u < 4; ++u) q[u] = r4[i + u * bd];
#pragma unroll
      for (int u = 0; u < 4; ++u) {
        const int b = 4 * (i + u * bd);
        f(b, q[u].x); f(b + 1, q[u].y); f(b + 2, q[u].z); f(b + 3, q[u].w);
      }
    }
    for (; i < n4; i += bd) {
      const float4 q = r4[i];
      f(4 * i, q.x); f(4 * i + 1, q.y); f(4 * i + 2, q.z); f(4 * i + 3, q.w);
    }
    done = n4 * 4;
  }
  for (int i = done + threadIdx.x; i < V; i += bd) f(i, row[i]);
}

struct Selected {
  uint32_t key;
  float above;          // count (COUNT) or mass (MASS) of eligible elements with key > `key`
  unsigned int count;   // eligible elements with key == `key`
};

// Among elements with key >= floor_key (NaN excluded), either
//   COUNT: the k-th largest key (count(key > t) < k <= count(key >= t)), or
//   MASS:  the lowest key t with mass(key > t) < target, mass = exp(v * inv_t - smax).
template <bool MASS>
__device__ Selected radix_select(const float* row, int V, uint32_t floor_key, int k, float target, float inv_t,
                                 float smax, Shared& sh) {
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  uint32_t prefix = 0;
  float above = 0.0f;
  for (int shift = 24; shift >= 0; shift -= 8) {
    for (int i = threadIdx.x; i < kWarps * 256; i += blockDim.x) {
      (&sh.cnt[0][0])[i] = 0;
      (&sh.mass[0][0])[i] = 0.0f;
    }
    __syncthreads();
    const uint32_t hi_mask = shift == 24 ? 0u : (0xffffffffu << (shift + 8));
    for_each(row, V, [&](int, float v) {
      const uint32_t key = float_key(v);
      const bool in = !isnan(v) && key >= floor_key && (key & hi_mask) == prefix;
      const unsigned int d = in ? (key >> shift) & 255u : 256u;
      // One atomic per distinct digit of the warp for the counts.
      const unsigned int same = __match_any_sync(__activemask(), d);
      if (in && lane == __ffs(same) - 1) atomicAdd(&sh.cnt[warp][d], static_cast<unsigned>(__popc(same)));
      if (MASS && in) atomicAdd(&sh.mass[warp][d], expf(v * inv_t - smax));
    });
    __syncthreads();
    for (int d = threadIdx.x; d < 256; d += blockDim.x) {
      unsigned int c = 0;
      float m = 0.0f;
      for (int w = 0; w < kWarps; ++w) {
        c += sh.cnt[w][d];
        if (MASS) m += sh.mass[w][d];
      }
      sh.cnt[0][d] = c;
      sh.mass[0][d] = m;
    }
    __syncthreads();
    if (threadIdx.x == 0) {
      int best = -1;
      float best_above = above;
      float acc = above;
      for (int d = 255; d >= 0; --d) {
        const unsigned int c = sh.cnt[0][d];
        if (c == 0) continue;
        if (MASS) {
          if (acc < target) { best = d; best_above = acc; } else break;
          acc += sh.mass[0][d];
        } else {
          if (acc + static_cast<float>(c) >= static_cast<float>(k)) { best = d; best_above = acc; break; }
          acc += static_cast<float>(c);
        }
      }
      if (best < 0) best = 0;  // unreachable for valid k / target
      sh.sel_prefix = prefix | (static_cast<uint32_t>(best) << shift);
      sh.sel_above = best_above;
      sh.sel_count = sh.cnt[0][best];
    }
    __syncthreads();
    prefix = sh.sel_prefix;
    above = sh.sel_above;
  }
  Selected s{prefix, above, sh.sel_count};
  __syncthreads();
  return s;
}

// Block-wide argmax of (value, id), lowest id on ties.
__device__ int block_argmax(float best, int best_id, Shared& sh) {
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

// Block-wide online (max, sum of exp(v - max)).
__device__ void block_max_sumexp(float& m, float& s, Shared& sh) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) {
    const float om = __shfl_xor_sync(0xffffffffu, m, o), os = __shfl_xor_sync(0xffffffffu, s, o);
    const float nm = fmaxf(m, om);
    s = (nm == -INFINITY) ? 0.0f : s * expf(m - nm) + os * expf(om - nm);
    m = nm;
  }
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  __syncthreads();
  if (lane == 0) { sh.red[warp] = m; sh.red2[warp] = s; }
  __syncthreads();
  if (warp == 0) {
    const int nw = blockDim.x >> 5;
    m = lane < nw ? sh.red[lane] : -INFINITY;
    s = lane < nw ? sh.red2[lane] : 0.0f;
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) {
      const float om = __shfl_xor_sync(0xffffffffu, m, o), os = __shfl_xor_sync(0xffffffffu, s, o);
      const float nm = fmaxf(m, om);
      s = (nm == -INFINITY) ? 0.0f : s * expf(m - nm) + os * expf(om - nm);
      m = nm;
    }
    if (lane == 0) { sh.red[0] = m; sh.red2[0] = s; }
  }
  __syncthreads();
  m = sh.red[0];
  s = sh.red2[0];
  __syncthreads();
}

// Distance bin of v: 8 bins per unit of d = (ref - v) * scale over [0, 32); -1 beyond (and
// for -inf / NaN).
__device__ __forceinline__ int distance_bin(float v, float ref, float scale) {
  const float d = (ref - proc(v)) * scale;
  return d < 32.0f ? min(255, static_cast<int>(d * 8.0f)) : -1;
}

// Gathers the tokens whose distance bin is <= cut into sh.cand as float_key << 32 | ~id and
// sorts them descending (larger logit first, then lower id). Returns their number.
__device__ int gather_sorted(const float* row, int V, float ref, float scale, int cut, Shared& sh) {
  if (threadIdx.x == 0) sh.n_cand = 0;
  __syncthreads();
  for_each(row, V, [&](int i, float v) {
    const int b = distance_bin(v, ref, scale);
    if (b < 0 || b > cut) return;
    const int slot = atomicAdd(&sh.n_cand, 1);
    if (slot < kMaxCand)
      sh.cand[slot] = (static_cast<unsigned long long>(float_key(v)) << 32) | (0xffffffffu - static_cast<uint32_t>(i));
  });
  __syncthreads();
  const int n = min(sh.n_cand, kMaxCand);
  int n2 = 1;
  while (n2 < n) n2 <<= 1;
  for (int i = n + threadIdx.x; i < n2; i += blockDim.x) sh.cand[i] = 0ull;
  __syncthreads();
  for (int k = 2; k <= n2; k <<= 1) {  // bitonic sort
    for (int j = k >> 1; j > 0; j >>= 1) {
      for (int i = threadIdx.x; i < n2; i += blockDim.x) {
        const int ixj = i ^ j;
        if (ixj > i) {
          const unsigned long long a = sh.cand[i], b = sh.cand[ixj];
          const bool desc = (i & k) == 0;
          if (desc ? a < b : a > b) {
            sh.cand[i] = b;
            sh.cand[ixj] = a;
          }
        }
      }
      __syncthreads();
    }
  }
  return n;
}

__device__ bool candidate_select(const float* row, int V, const SampleRowParams& prm, float wmax, float inv_t,
                                 float smax, Shared& sh) {
  const int warp = threadIdx.x >> 5;
  const bool use_k = prm.top_k > 0 && prm.top_k < V;
  for (int i = threadIdx.x; i < kWarps * 256; i += blockDim.x) {
    (&sh.cnt[0][0])[i] = 0;
    (&sh.mass[0][0])[i] = 0.0f;
  }
  __syncthreads();
  double zt = 0.0;  // top-p without top-k normalises over the whole row, not the candidates
  for_each(row, V, [&](int, float v) {
    v = proc(v);
    if (v == -INFINITY) return;
    const float e = expf(v * inv_t - smax);
    zt += static_cast<double>(e);
    const int b = distance_bin(v, wmax, inv_t);
    if (b < 0) return;
    atomicAdd(&sh.cnt[warp][b], 1u);
    atomicAdd(&sh.mass[warp][b], e);
  });
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) zt += __shfl_xor_sync(0xffffffffu, zt, o);
  if ((threadIdx.x & 31) == 0) sh.dred[warp] = zt;
  __syncthreads();
  if (threadIdx.x == 0) {
    double z = 0.0;
    for (int w = 0; w < kWarps; ++w) z += sh.dred[w];
    sh.z_all = z;
  }
  for (int b = threadIdx.x; b < 256; b += blockDim.x) {
    unsigned int c = 0;
    float m = 0.0f;
    for (int w = 0; w < kWarps; ++w) {
      c += sh.cnt[w][b];
      m += sh.mass[w][b];
    }
    sh.cnt[0][b] = c;
    sh.mass[0][b] = m;
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    const float target = static_cast<float>(prm.top_p * sh.z_all);
    int cut = -1;
    unsigned int count = 0;
    float mass = 0.0f;
    for (int b = 0; b < 256; ++b) {
      count += sh.cnt[0][b];
      mass += sh.mass[0][b];
      if (use_k ? count >= static_cast<unsigned>(prm.top_k) : mass >= target) {
        cut = b;
        break;
      }
    }
    // One more bin than needed for top-p, so float rounding of the bin sums cannot cut short.
    if (cut >= 0 && !use_k && cut < 255) count += sh.cnt[0][++cut];
    sh.b_cut = (cut < 0 || count > static_cast<unsigned>(kMaxCand)) ? -1 : cut;
  }
  __syncthreads();
  const int cut = sh.b_cut;
  if (cut < 0) return false;
  const int n = gather_sorted(row, V, wmax, inv_t, cut, sh);
  if (threadIdx.x == 0) {
    auto val = [&](int j) { return key_float(static_cast<uint32_t>(sh.cand[j] >> 32)); };
    int keep = n;
    if (use_k) {
      const float kth = val(prm.top_k - 1);
      keep = prm.top_k;
      while (keep < n && val(keep) >= kth) ++keep;
    }
    if (prm.top_p < 1.0f && keep > 1) {  // as the CPU backend: double sums of float exps
      double z = sh.z_all;  // without top-k: the whole row
      if (use_k) {          // with top-k: the kept top-k set
        z = 0.0;
        for (int j = 0; j < keep; ++j) z += expf(val(j) * inv_t - smax);
      }
      const double target = static_cast<double>(prm.top_p) * z;
      double cum = 0.0;
      int kp = 0;
      while (kp < keep && (kp == 0 || cum < target)) cum += expf(val(kp++) * inv_t - smax);
      keep = kp;
    }
    sh.n_keep = keep;
  }
  __syncthreads();
  return true;
}

// Top-N raw logits through the candidate buffer: bins of the distance to the raw max, a cut
// that holds >= N tokens, gather, bitonic sort (larger first, lower id on ties). Writes the
// first N to sh.list and returns true; false (nothing written) when the cut would exceed
// kMaxCand tokens, for the radix-select path.
__device__ bool top_n_candidates(const float* raw, int V, int nt, float raw_max, float raw_lse, Shared& sh) {
  const int warp = threadIdx.x >> 5;
  for (int i = threadIdx.x; i < kWarps * 256; i += blockDim.x) (&sh.cnt[0][0])[i] = 0;
  __syncthreads();
  for_each(raw, V, [&](int, float v) {
    const int b = distance_bin(v, raw_max, 1.0f);
    if (b >= 0) atomicAdd(&sh.cnt[warp][b], 1u);
  });
  __syncthreads();
  for (int b = threadIdx.x; b < 256; b += blockDim.x) {
    unsigned int c = 0;
    for (int w = 0; w < kWarps; ++w) c += sh.cnt[w][b];
    sh.cnt[0][b] = c;
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    unsigned int count = 0;
    int cut = -1;
    for (int b = 0; b < 256; ++b) {
      count += sh.cnt[0][b];
      if (count >= static_cast<unsigned>(nt)) { cut = b; break; }
    }
    sh.b_cut = (cut < 0 || count > static_cast<unsigned>(kMaxCand)) ? -1 : cut;
  }
  __syncthreads();
  const int cut = sh.b_cut;
  if (cut < 0) return false;
  const int n = gather_sorted(raw, V, raw_max, 1.0f, cut, sh);
  for (int j = threadIdx.x; j < min(nt, n); j += blockDim.x) {
    const unsigned long long c = sh.cand[j];
    sh.list[j] = TopEntry{static_cast<int32_t>(0xffffffffu - static_cast<uint32_t>(c)),
                          key_float(static_cast<uint32_t>(c >> 32)) - raw_lse};
  }
  if (threadIdx.x == 0) sh.n_list = min(nt, n);
  __syncthreads();
  return true;
}

// Pass 1 split over many blocks: chunk c of row r gives the raw (max, sum exp) and the
// argmax of its part (lowest id on ties). One block per row would stream a 152k-entry row
// (0.6 MB) from one SM at ~10 GB/s; the partials let the whole GPU read it.
__device__ __forceinline__ void scan_raw(float v, int i, float& rm, float& rs, float& best, int& best_id) {
  if (!isnan(v)) {
    if (v > rm) {
      rs = (rm == -INFINITY ? 0.0f : rs * expf(rm - v)) + 1.0f;
      rm = v;
    } else {
      rs += expf(v - rm);
    }
  }
  const float p = proc(v);
  if (p > best || (p == best && i < best_id)) { best = p; best_id = i; }
}

__global__ void __launch_bounds__(kThreads)
    row_partials_kernel(const float* __restrict__ logits, int V, int chunk, RowPartial* __restrict__ part) {
  __shared__ Shared sh;
  pdl_launch_dependents();  // the sampling kernel's launch overlaps this pass (it waits for it)
  const int r = blockIdx.y, c = blockIdx.x;
  const int begin = c * chunk, len = min(chunk, V - begin);
  const float* raw = logits + static_cast<int64_t>(r) * V;
  float rm = -INFINITY, rs = 0.0f, best = -INFINITY;
  int best_id = 0x7fffffff;
  if (len > 0) for_each(raw + begin, len, [&](int j, float v) { scan_raw(v, begin + j, rm, rs, best, best_id); });
  block_max_sumexp(rm, rs, sh);
  const int id = block_argmax(best, best_id, sh);
  if (threadIdx.x == 0)
    part[static_cast<int64_t>(r) * gridDim.x + c] =
        len > 0 ? RowPartial{rm, rs, proc(raw[id]), id} : RowPartial{-INFINITY, 0.0f, -INFINITY, 0x7fffffff};
}

// Row blockIdx.x of the draw (one block per row).
__device__ __forceinline__ void sample_row(const float* __restrict__ logits, int V, const SampleRowParams* __restrict__ rows,
                                           const int32_t* __restrict__ pen_tokens, const int32_t* __restrict__ pen_counts,
                                           const int32_t* __restrict__ ban_tokens, const int32_t* __restrict__ bias_tokens,
                                           const float* __restrict__ bias_values, float* __restrict__ scratch,
                                           SampleOutRow* __restrict__ out, TopEntry* __restrict__ top, int max_top,
                                           const RowPartial* __restrict__ part, int n_part) {
  __shared__ Shared sh;
  // Launched with PDL (behind the row partials, or an upload): nothing of the previous kernels
  // is read before the wait; the next stream operation may launch at once.
  pdl_launch_dependents();
  pdl_wait();
  const int r = blockIdx.x;
  const SampleRowParams prm = rows[r];
  const float* raw = logits + static_cast<int64_t>(r) * V;
  const bool edited =
      prm.pen_end > prm.pen_begin || prm.ban_end > prm.ban_begin || prm.bias_end > prm.bias_begin || prm.allow_only;

  // 1. raw (max, sum exp) and, for unedited rows, the processed argmax, in one pass.
  float rm = -INFINITY, rs = 0.0f, best = -INFINITY;
  int best_id = 0x7fffffff;
  float* row = nullptr;
  if (edited) row = scratch + static_cast<int64_t>(r) * V;
  if (!edited && n_part > 1) {  // merge the partials of row_partials_kernel
    for (int j = threadIdx.x; j < n_part; j += blockDim.x) {
      const RowPartial q = part[static_cast<int64_t>(r) * n_part + j];
      const float nm = fmaxf(rm, q.m);
      rs = nm == -INFINITY ? 0.0f : rs * expf(rm - nm) + q.s * expf(q.m - nm);
      rm = nm;
      if (q.best > best || (q.best == best && q.id < best_id)) { best = q.best; best_id = q.id; }
    }
  } else {
    for_each(raw, V, [&](int i, float v) {
      scan_raw(v, i, rm, rs, best, best_id);
      if (edited) row[i] = prm.allow_only ? -INFINITY : proc(v);
    });
  }
  block_max_sumexp(rm, rs, sh);
  const float raw_lse = rm + logf(rs);

  // 2. biases, penalties and bans on the scratch copy (an allow_only row: its listed tokens
  // restored over the -inf of step 1 first, and nothing banned after).
  if (edited) {
    __syncthreads();
    if (prm.allow_only) {
      for (int j = prm.ban_begin + static_cast<int>(threadIdx.x); j < prm.ban_end; j += blockDim.x) {
        const int tok = ban_tokens[j];
        if (tok >= 0 && tok < V) row[tok] = proc(raw[tok]);
      }
      __syncthreads();
    }
    for (int j = prm.bias_begin + static_cast<int>(threadIdx.x); j < prm.bias_end; j += blockDim.x) {
      const int tok = bias_tokens[j];
      if (tok >= 0 && tok < V) row[tok] += bias_values[j];
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
    for (int j = prm.ban_begin + static_cast<int>(threadIdx.x); j < prm.ban_end && !prm.allow_only; j += blockDim.x) {
      const int tok = ban_tokens[j];
      if (tok >= 0 && tok < V) row[tok] = -INFINITY;
    }
    __syncthreads();
    best = -INFINITY;
    best_id = 0x7fffffff;
    for_each(row, V, [&](int i, float v) {
      if (v > best || (v == best && i < best_id)) { best = v; best_id = i; }
    });
  } else {
    row = const_cast<float*>(raw);  // read-only from here on; NaN handled by proc()
  }
  int token = block_argmax(best, best_id, sh);

  if (prm.temperature > 0.0f) {
    const float inv_t = 1.0f / prm.temperature;
    const float wmax = proc(row[token]);
    const float smax = wmax * inv_t;
    const float min_p = prm.min_p;
    const bool filtered = (prm.top_k > 0 && prm.top_k < V) || prm.top_p < 1.0f;
    if (filtered && candidate_select(row, V, prm, wmax, inv_t, smax, sh)) {
      // 4a. the race over the kept prefix of the sorted candidates.
      float rb = -INFINITY;
      int rid = 0x7fffffff;
      for (int j = threadIdx.x; j < sh.n_keep; j += blockDim.x) {
        const unsigned long long c = sh.cand[j];
        const float v = key_float(static_cast<uint32_t>(c >> 32));
        const int i = static_cast<int>(0xffffffffu - static_cast<uint32_t>(c));
        if (v == -INFINITY) continue;
        const float pr = expf(v * inv_t - smax);
        if (min_p > 0.0f && pr < min_p) continue;
        const float score = pr / -logf(uniform_hash(prm.seed, prm.offset, static_cast<uint32_t>(i)));
        if (score > rb || (score == rb && i < rid)) { rb = score; rid = i; }
      }
      token = block_argmax(rb, rid, sh);
    } else {
      // 3. thresholds as keys (radix select): keep key >= floor.
      uint32_t floor_key = float_key(-INFINITY);
      if (prm.top_k > 0 && prm.top_k < V)
        floor_key = radix_select<false>(row, V, 0u, prm.top_k, 0.0f, 0.0f, 0.0f, sh).key;
      if (prm.top_p < 1.0f) {
        float z = 0.0f;
        for_each(row, V, [&](int, float v) {
          v = proc(v);
          if (float_key(v) >= floor_key && v != -INFINITY) z += expf(v * inv_t - smax);
        });
        z = block_sum(z, sh.red);
        const uint32_t t = radix_select<true>(row, V, floor_key, 0, prm.top_p * z, inv_t, smax, sh).key;
        floor_key = max(floor_key, t);
      }
      // 4. exponential race over kept tokens.
      float rb = -INFINITY;
      int rid = 0x7fffffff;
      for_each(row, V, [&](int i, float v) {
        v = proc(v);
        if (float_key(v) < floor_key || v == -INFINITY) return;
        const float pr = expf(v * inv_t - smax);
        if (min_p > 0.0f && pr < min_p) return;
        const float score = pr / -logf(uniform_hash(prm.seed, prm.offset, static_cast<uint32_t>(i)));
        if (score > rb || (score == rb && i < rid)) { rb = score; rid = i; }
      });
      // With nothing kept (every token banned) this is id 0, which is also the greedy choice.
      token = block_argmax(rb, rid, sh);
    }
  }
  if (threadIdx.x == 0) out[r] = SampleOutRow{token, raw[token] - raw_lse};

  // 5. top-N raw logprobs.
  const int n_top = min(prm.num_top_logprobs, max_top);
  if (n_top > 0) {
    const int nt = min(n_top, V);
    if (!top_n_candidates(raw, V, nt, rm, raw_lse, sh)) {
      const Selected sel = radix_select<false>(raw, V, 0u, nt, 0.0f, 0.0f, 0.0f, sh);
      const uint32_t t = sel.key;
      const int need_ties = nt - static_cast<int>(sel.above);
      const bool all_ties = static_cast<int>(sel.count) <= need_ties;
      if (threadIdx.x == 0) sh.n_list = 0;
      __syncthreads();
      for_each(raw, V, [&](int i, float v) {
        if (isnan(v)) return;
        const uint32_t key = float_key(v);
        if (key > t || (all_ties && key == t)) {
          const int slot = atomicAdd(&sh.n_list, 1);
          if (slot < kMaxTopLogprobs) sh.list[slot] = TopEntry{i, v - raw_lse};
        }
      });
      __syncthreads();
      // More ties at the threshold than places: the lowest ids, in order (ballot scan).
      for (int base = 0; !all_ties && base < V && sh.n_list < nt; base += blockDim.x) {
        const int i = base + threadIdx.x;
        const bool hit = i < V && !isnan(raw[i]) && float_key(raw[i]) == t;
        const unsigned ball = __ballot_sync(0xffffffffu, hit);
        const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
        if (lane == 0) sh.cnt[0][warp] = __popc(ball);
        __syncthreads();
        int before = 0;
        for (int w = 0; w < warp; ++w) before += sh.cnt[0][w];
        const int pos = sh.n_list + before + __popc(ball & ((1u << lane) - 1));
        if (hit && pos < nt) sh.list[pos] = TopEntry{i, raw[i] - raw_lse};
        __syncthreads();
        if (threadIdx.x == 0) {
          int total = 0;
          for (int w = 0; w < kWarps; ++w) total += sh.cnt[0][w];
          sh.n_list = min(nt, sh.n_list + total);
        }
        __syncthreads();
      }
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

// The sampling kernel's arguments. sample_kernel reads the per-row inputs ([row params |
// penalty tokens | penalty counts | banned tokens]) from device memory; sample_inline_kernel
// gets them in its launch parameters (SampleInline::bytes, the pointers set from the offsets):
// no upload before the draw, one kernel fewer in the chain between two decode steps.
struct SampleArgs {
  const float* logits;
  int V;
  const SampleRowParams* rows;
  const int32_t* pen_tokens;
  const int32_t* pen_counts;
  const int32_t* ban_tokens;
  const int32_t* bias_tokens;
  const float* bias_values;
  float* scratch;
  SampleOutRow* out;
  TopEntry* top;
  int max_top;
  const RowPartial* part;
  int n_part;
};
struct SampleInline {
  SampleArgs a;
  uint32_t off_pt, off_pc, off_bt, off_bi, off_bv;
  alignas(16) unsigned char bytes[kSampleInlineBytes];
};
static_assert(sizeof(SampleInline) <= 4096, "kernel parameters are limited to 4 KB (without the large-parameter mode)");

__global__ void __launch_bounds__(kThreads) sample_kernel(const __grid_constant__ SampleArgs a) {
  sample_row(a.logits, a.V, a.rows, a.pen_tokens, a.pen_counts, a.ban_tokens, a.bias_tokens, a.bias_values, a.scratch,
             a.out, a.top, a.max_top, a.part, a.n_part);
}

__global__ void __launch_bounds__(kThreads) sample_inline_kernel(const __grid_constant__ SampleInline in) {
  const SampleArgs& a = in.a;
  sample_row(a.logits, a.V, reinterpret_cast<const SampleRowParams*>(in.bytes),
             reinterpret_cast<const int32_t*>(in.bytes + in.off_pt), reinterpret_cast<const int32_t*>(in.bytes + in.off_pc),
             reinterpret_cast<const int32_t*>(in.bytes + in.off_bt), reinterpret_cast<const int32_t*>(in.bytes + in.off_bi),
             reinterpret_cast<const float*>(in.bytes + in.off_bv), a.scratch, a.out, a.top, a.max_top, a.part, a.n_part);
}

}  // namespace

SamplePartials sample_partials(int R, int V) {
  // About two blocks per SM of a large GPU in all, each chunk at least 8k entries and a
  // multiple of 4 (float4 alignment of the chunk starts).
  if (R <= 0 || V < 16384) return {};
  const int want = std::max(1, std::min(64, (264 + R - 1) / R));
  int chunk = std::max(2048, (V + want - 1) / want);
  chunk = (chunk + 3) / 4 * 4;
  const int n = (V + chunk - 1) / chunk;
  if (n <= 1) return {};
  return SamplePartials{n, chunk};
}

void sample(const float* logits, int R, int V, const SampleInputs& in, float* scratch, SampleOutRow* out, TopEntry* top,
            int max_top, RowPartial* partials, cudaStream_t stream) {
  if (R == 0) return;
  const SamplePartials sp = partials ? sample_partials(R, V) : SamplePartials{};
  if (sp.n > 1) {
    row_partials_kernel<<<dim3(sp.n, R), kThreads, 0, stream>>>(logits, V, sp.chunk, partials);
    CUDA_CHECK_LAUNCH("sample_partials");
  }
  SampleArgs a{logits, V, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, scratch, out, top, max_top, partials, sp.n};
  if (in.device) {
    a.rows = reinterpret_cast<const SampleRowParams*>(in.device);
    a.pen_tokens = reinterpret_cast<const int32_t*>(in.device + in.off_pt);
    a.pen_counts = reinterpret_cast<const int32_t*>(in.device + in.off_pc);
    a.ban_tokens = reinterpret_cast<const int32_t*>(in.device + in.off_bt);
    a.bias_tokens = reinterpret_cast<const int32_t*>(in.device + in.off_bi);
    a.bias_values = reinterpret_cast<const float*>(in.device + in.off_bv);
    launch_pdl(sample_kernel, dim3(R), dim3(kThreads), 0, stream, a);
  } else {
    TLLM_CHECK(in.host && in.bytes <= kSampleInlineBytes, "sample: ", in.bytes, " bytes of inputs on the host (at most ",
               kSampleInlineBytes, " go in the launch parameters)");
    SampleInline p;
    p.a = a;
    p.off_pt = static_cast<uint32_t>(in.off_pt);
    p.off_pc = static_cast<uint32_t>(in.off_pc);
    p.off_bt = static_cast<uint32_t>(in.off_bt);
    p.off_bi = static_cast<uint32_t>(in.off_bi);
    p.off_bv = static_cast<uint32_t>(in.off_bv);
    std::memcpy(p.bytes, in.host, in.bytes);
    launch_pdl(sample_inline_kernel, dim3(R), dim3(kThreads), 0, stream, p);
  }
  CUDA_CHECK_LAUNCH("sample");
}

// tokens[i] = out[rows[i]].token where rows[i] >= 0 (async scheduling's feed of drawn ids),
// for up to kFeedRows rows carried in the launch's parameters (no copy of the rows first).
constexpr int kFeedRows = 960;
struct FeedChunk {
  int32_t* tokens;
  const SampleOutRow* out;
  int n;
  int32_t rows[kFeedRows];
};

__global__ void feed_tokens_kernel(const __grid_constant__ FeedChunk p) {
  pdl_launch_dependents();
  pdl_wait();  // launched with PDL behind the draw or an upload
  for (int i = threadIdx.x; i < p.n; i += blockDim.x)
    if (p.rows[i] >= 0) p.tokens[i] = p.out[p.rows[i]].token;
}

void feed_tokens(int32_t* tokens, const int32_t* rows, const SampleOutRow* out, int n, cudaStream_t stream) {
  for (int off = 0; off < n; off += kFeedRows) {
    FeedChunk p;
    p.tokens = tokens + off;
    p.out = out;
    p.n = std::min(kFeedRows, n - off);
    std::memcpy(p.rows, rows + off, sizeof(int32_t) * p.n);
    launch_pdl(feed_tokens_kernel, dim3(1), dim3(256), 0, stream, p);
    CUDA_CHECK_LAUNCH("feed_tokens");
  }
}

}  // namespace tllm::cuda
