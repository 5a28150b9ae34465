// quant_linear / quant_embedding: checks, activation preparation and threading; the scalar
// kernels (the instruction-set ones are in avx512/quant_avx512.cpp, avx2/quant_avx2.cpp and
// compute bit-identical results, see quant_ops.h).
#include "kernels/cpu/quant_ops.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/cpu_features.h"
#include "core/thread_pool.h"
#include "kernels/cpu/isa_kernels.h"
#include "kernels/quant_layout.h"

namespace tllm::cpu {

namespace {

using quant::kPanelRows;

inline float scale_at(const void* p, bool f16, int64_t i) {
  return f16 ? f16_to_f32(static_cast<const uint16_t*>(p)[i]) : static_cast<const float*>(p)[i];
}

// Code of row r (0..15) of a panel at column k.
inline int code_at(const uint8_t* panel, int bits, int r, int64_t k) {
  if (bits == 8) return panel[(k / 4) * 64 + r * 4 + (k % 4)];
  const uint8_t b = panel[(k / 8) * 64 + r * 4 + (k % 4)];
  return (k % 8) < 4 ? (b & 15) : (b >> 4);
}

void check_packed(const LinearWeight& w, const char* op) {
  TLLM_CHECK(w.quant != QuantScheme::None, op, ": weight is not quantized");
  const int bits = w.quant_bits();
  const int64_t N = w.out_features, K = w.in_features;
  TLLM_CHECK(N > 0 && K > 0, op, ": quantized weight has no shape (out_features ", N, ", in_features ", K, ")");
  for (const Tensor* t : {&w.weight, &w.scales, &w.zeros})
    TLLM_CHECK(t->defined() && t->device() == Device::CPU, op, ": quantized weight tensors must be host tensors");
  const int64_t rb = quant::row_bytes(quant::Layout::Cpu, bits, K);
  TLLM_CHECK(w.weight.dtype() == DType::U8 && w.weight.ndim() == 2 && w.weight.dim(1) == rb &&
                 w.weight.dim(0) >= quant::padded_rows(N),
             op, ": codes ", w.weight.str(), " are not in the CPU layout for [", N, ", ", K, "] ", bits,
             "-bit (expected u8 [", quant::padded_rows(N), ", ", rb, "]); pack with the CPU backend");
  const int64_t G = w.scales.ndim() == 2 ? w.scales.dim(1) : 0;
  const int64_t want_g = w.group_size >= K ? 1 : (K + w.group_size - 1) / std::max(w.group_size, 1);
  TLLM_CHECK(w.group_size > 0 && (w.group_size % 32 == 0 || w.group_size >= K) && G == want_g, op,
             ": group size ", w.group_size, " and scales ", w.scales.str(), " do not match in_features ", K);
  TLLM_CHECK((w.scales.dtype() == DType::F16 || w.scales.dtype() == DType::F32) &&
                 w.zeros.dtype() == w.scales.dtype() && w.zeros.shape() == w.scales.shape() &&
                 w.scales.dim(0) >= quant::padded_rows(N),
             op, ": scales ", w.scales.str(), " and offsets ", w.zeros.str(), " must be f16 or f32 [",
             quant::padded_rows(N), ", ", G, "]");
}

QuantTask make_task(const LinearWeight& w) {
  QuantTask t;
  t.bits = w.quant_bits();
  t.K = w.in_features;
  t.N = w.out_features;
  t.kp = quant::padded_cols(quant::Layout::Cpu, t.bits, t.K);
  t.nblocks = t.kp / quant::kCpuBlock;
  t.panel_bytes = w.weight.dim(1) * kPanelRows;
  t.codes = w.weight.data<uint8_t>();
  t.scales = w.scales.raw();
  t.offsets = w.zeros.raw();
  t.scales_f16 = w.scales.dtype() == DType::F16;
  t.groups = w.scales.dim(1);
  t.blocks_per_group = t.groups == 1 ? t.nblocks : w.group_size / quant::kCpuBlock;
  t.vnni = cpu_features().avx512vnni;
  t.amx = cpu_features().amx_int8;
  return t;
}

}  // namespace

namespace scalar {

void quant_prepare_acts(const float* x, int64_t K, int64_t kp, int8_t* xq, float* d, int32_t* bsum) {
  for (int64_t j = 0; j < kp / 32; ++j) {
    const int64_t k0 = j * 32, k1 = std::min(K, k0 + 32);
    float amax = 0.0f;
    bool finite = true;
    for (int64_t k = k0; k < k1; ++k) {
      amax = std::max(amax, std::fabs(x[k]));
      finite = finite && std::isfinite(x[k]);
    }
    if (!finite) {
      poison_block(xq + k0, d + j, bsum + j);
      continue;
    }
    const float id = amax > 0.0f ? 127.0f / amax : 0.0f;
    d[j] = amax / 127.0f;
    int32_t s = 0;
    for (int64_t k = k0; k < k0 + 32; ++k) {
      const int q = k < k1 ? static_cast<int>(std::nearbyint(x[k] * id)) : 0;
      xq[k] = static_cast<int8_t>(q);
      s += q;
    }
    bsum[j] = s;
  }
}

void quant_panels(const QuantTask& t, int64_t p_begin, int64_t p_end) {
  const int64_t G = t.groups;
  for (int64_t p = p_begin; p < p_end; ++p) {
    const uint8_t* panel = t.codes + p * t.panel_bytes;
    for (int64_t tok = 0; tok < t.T; ++tok) {
      const int8_t* xq = t.xq + tok * t.kp;
      const float* d = t.d + tok * t.nblocks;
      for (int r = 0; r < kPanelRows; ++r) {
        const int64_t row = p * kPanelRows + r;
        if (row >= t.N) break;
        float acc = 0.0f;
        for (int64_t g = 0; g < G; ++g) {
          const float s = scale_at(t.scales, t.scales_f16, (p * G + g) * kPanelRows + r);
          const int64_t jb = g * t.blocks_per_group, je = std::min(t.nblocks, jb + t.blocks_per_group);
          for (int64_t j = jb; j < je; ++j) {
            int32_t isum = 0;
            for (int64_t k = j * 32; k < j * 32 + 32; ++k) isum += code_at(panel, t.bits, r, k) * xq[k];
            acc = std::fma(static_cast<float>(isum), s * d[j], acc);
          }
          const float o = scale_at(t.offsets, t.scales_f16, (p * G + g) * kPanelRows + r);
          acc = std::fma(o, t.xsum[tok * G + g], acc);
        }
        t.out[tok * t.N + row] = t.bias ? acc + t.bias[row] : acc;
      }
    }
  }
}

void quant_panels_f32(const QuantTask& t, int64_t p_begin, int64_t p_end, float* ws) {
  const int64_t G = t.groups;
  for (int64_t p = p_begin; p < p_end; ++p) {
    const uint8_t* panel = t.codes + p * t.panel_bytes;
    const int rows = static_cast<int>(std::min<int64_t>(kPanelRows, t.N - p * kPanelRows));
    for (int r = 0; r < rows; ++r) {
      float* wr = ws + r * t.kp;
      for (int64_t k = 0; k < t.K; ++k) {
        const int64_t g = std::min(G - 1, k / (t.blocks_per_group * 32));
        const int64_t si = (p * G + g) * kPanelRows + r;
        wr[k] = scale_at(t.scales, t.scales_f16, si) * static_cast<float>(code_at(panel, t.bits, r, k)) +
                scale_at(t.offsets, t.scales_f16, si);
      }
    }
    for (int64_t tok = 0; tok < t.T; ++tok) {
      const float* x = t.x + tok * t.K;
      for (int r = 0; r < rows; ++r) {
        const float* wr = ws + r * t.kp;
        float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        int64_t k = 0;
        for (; k + 8 <= t.K; k += 8)
          for (int i = 0; i < 8; ++i) acc[i] += x[k + i] * wr[k + i];
        for (; k < t.K; ++k) acc[0] += x[k] * wr[k];
        float s = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
        const int64_t row = p * kPanelRows + r;
        if (t.bias) s += t.bias[row];
        t.out[tok * t.N + row] = s;
      }
    }
  }
}

}  // namespace scalar

void quant_linear(float* out, const float* x, int64_t T, const LinearWeight& w, const float* bias,
                  const Exec& ex, bool use_vnni, bool use_amx) {
  check_packed(w, "linear");
  if (T <= 0) return;
  QuantTask task = make_task(w);
  task.vnni = task.vnni && use_vnni;
  task.amx = task.amx && task.vnni && use_amx;
  task.T = T;
  task.out = out;
  task.bias = bias;
  const int64_t panels = (task.N + kPanelRows - 1) / kPanelRows;

  if (w.f32_activations) {
    task.x = x;
    const int n = ex.pool.size();
    const size_t per = static_cast<size_t>(20 * task.kp);
    float* ws = ex.scratch.floats(per * static_cast<size_t>(n));
    const auto kernel = isa_kernel(ex.isa, quant_panels_f32);
    ex.pool.parallel_for_shares(panels, 1, [&](int64_t b, int64_t e, int i) {
      kernel(task, b, e, ws + per * static_cast<size_t>(i));
    });
    return;
  }

  // Scratch: xq [T, kp] | d [T, nblocks] | bsum [T, nblocks] | xsum [T, groups], 64-byte aligned parts.
  auto al = [](size_t b) { return (b + 63) / 64 * 64; };
  const size_t xq_b = al(static_cast<size_t>(T * task.kp));
  const size_t d_b = al(static_cast<size_t>(T * task.nblocks) * sizeof(float));
  const size_t bs_b = al(static_cast<size_t>(T * task.nblocks) * sizeof(int32_t));
  const size_t xs_b = al(static_cast<size_t>(T * task.groups) * sizeof(float));
  char* buf = static_cast<char*>(ex.scratch.bytes(xq_b + d_b + bs_b + xs_b));
  int8_t* xq = reinterpret_cast<int8_t*>(buf);
  float* d = reinterpret_cast<float*>(buf + xq_b);
  int32_t* bsum = reinterpret_cast<int32_t*>(buf + xq_b + d_b);
  float* xsum = reinterpret_cast<float*>(buf + xq_b + d_b + bs_b);
  const auto prepare = isa_kernel(ex.isa, quant_prepare_acts);
  ex.pool.parallel_for(T, std::max<int64_t>(1, 16384 / task.kp), [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) {
      prepare(x + r * task.K, task.K, task.kp, xq + r * task.kp, d + r * task.nblocks, bsum + r * task.nblocks);
      // X[t, g] = sum_{j in g} d_j * bsum_j, in block order (the same on every instruction set).
      for (int64_t g = 0; g < task.groups; ++g) {
        const int64_t jb = g * task.blocks_per_group, je = std::min(task.nblocks, jb + task.blocks_per_group);
        float s = 0.0f;
        for (int64_t j = jb; j < je; ++j) {
          const float term = d[r * task.nblocks + j] * static_cast<float>(bsum[r * task.nblocks + j]);
          s += term;
        }
        xsum[r * task.groups + g] = s;
      }
    }
  });
  task.xq = xq;
  task.d = d;
  task.xsum = xsum;
  task.bsum = bsum;
  // Each thread streams its own contiguous share of the panels, helping with the others'
  // when done (ThreadPool::parallel_for_shares). Against one shared counter (both threads'
  // chunks interleaved in memory): int4 decode of the 0.5B shape +11% tok/s, alternated A/B
  // on the 2-vCPU development VM (docs/performance.md).
  const auto kernel = isa_kernel(ex.isa, quant_panels);
  const int64_t chunk = std::clamp<int64_t>(panels / (16 * ex.pool.size()), 1, 8);
  ex.pool.parallel_for_shares(panels, chunk, [&](int64_t b, int64_t e, int) { kernel(task, b, e); });
}

void quant_embedding(float* out, const LinearWeight& table, const int32_t* tokens, int64_t T, const Exec& ex) {
  check_packed(table, "embedding");
  const QuantTask t = make_task(table);
  const int64_t V = table.out_features, H = table.in_features;
  for (int64_t i = 0; i < T; ++i)
    TLLM_CHECK_ARG(tokens[i] >= 0 && tokens[i] < V, "embedding: token id ", tokens[i], " at position ", i,
                   " is outside the vocabulary [0, ", V, ")");
  ex.pool.parallel_for(T, 4, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      const int64_t row = tokens[i];
      const int64_t p = row / kPanelRows;
      const int r = static_cast<int>(row % kPanelRows);
      const uint8_t* panel = t.codes + p * t.panel_bytes;
      float* o = out + i * H;
      for (int64_t k = 0; k < H; ++k) {
        const int64_t g = std::min(t.groups - 1, k / (t.blocks_per_group * 32));
        const int64_t si = (p * t.groups + g) * kPanelRows + r;
        o[k] = scale_at(t.scales, t.scales_f16, si) * static_cast<float>(code_at(panel, t.bits, r, k)) +
               scale_at(t.offsets, t.scales_f16, si);
      }
    }
  });
}

}  // namespace tllm::cpu
