// Naive double-precision references of the backend ops (see reference.h).
#include "kernels/reference/reference.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>
#include <random>

namespace tllm::ref {

namespace {

double load(const Tensor& t, int64_t i) {
  switch (t.dtype()) {
    case DType::F32: return t.data<float>()[i];
    case DType::F64: return t.data<double>()[i];
    case DType::BF16: return bf16_to_f32(t.data<uint16_t>()[i]);
    case DType::F16: return f16_to_f32(t.data<uint16_t>()[i]);
    case DType::I32: return t.data<int32_t>()[i];
    case DType::I64: return static_cast<double>(t.data<int64_t>()[i]);
    default: TLLM_THROW("reference: unsupported dtype ", dtype_name(t.dtype()));
  }
}

int64_t load_int(const Tensor& t, int64_t i) { return static_cast<int64_t>(load(t, i)); }

void store(Tensor& t, int64_t i, double v) {
  const float f = static_cast<float>(v);
  switch (t.dtype()) {
    case DType::F32: t.data<float>()[i] = f; break;
    case DType::BF16: t.data<uint16_t>()[i] = f32_to_bf16(f); break;
    case DType::F16: t.data<uint16_t>()[i] = f32_to_f16(f); break;
    default: TLLM_THROW("reference: unsupported output dtype ", dtype_name(t.dtype()));
  }
}

int64_t cols(const Tensor& t) { return t.ndim() == 0 ? 1 : t.dim(-1); }
int64_t rows(const Tensor& t) { return cols(t) == 0 ? 0 : t.numel() / cols(t); }

void rms_row(double* h, int64_t n, const Tensor& w, double eps) {
  double ss = 0;
  for (int64_t i = 0; i < n; ++i) ss += h[i] * h[i];
  const double inv = 1.0 / std::sqrt(ss / static_cast<double>(n) + eps);
  for (int64_t i = 0; i < n; ++i) h[i] = h[i] * inv * load(w, i);
}

void rope_row(double* h, const Tensor& cs, int64_t row, int rd, bool interleaved) {
  const int half = rd / 2;
  for (int i = 0; i < half; ++i) {
    const double c = load(cs, row * rd + i), s = load(cs, row * rd + half + i);
    const int a = interleaved ? 2 * i : i, b = interleaved ? 2 * i + 1 : i + half;
    const double x1 = h[a], x2 = h[b];
    h[a] = x1 * c - x2 * s;
    h[b] = x2 * c + x1 * s;
  }
}

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

// Processed logits (float, as the contract states the formulas) of row r.
std::vector<float> processed(const float* x, int64_t V, const SampleBatch& batch, int64_t r) {
  std::vector<float> w(x, x + V);
  for (float& f : w)
    if (std::isnan(f)) f = kNegInf;
  const SamplingRow& row = batch.rows[r];
  if (!batch.bias_offsets.empty())
    for (int32_t j = batch.bias_offsets[r]; j < batch.bias_offsets[r + 1]; ++j)
      w[batch.bias_tokens[j]] += batch.bias_values[j];
  if (!batch.penalty_offsets.empty()) {
    std::vector<int64_t> count(static_cast<size_t>(V), -1);  // -1: not listed
    for (int32_t j = batch.penalty_offsets[r]; j < batch.penalty_offsets[r + 1]; ++j) {
      int64_t& c = count[batch.penalty_tokens[j]];
      c = std::max<int64_t>(c, 0) + batch.penalty_counts[j];
    }
    for (int64_t i = 0; i < V; ++i) {
      if (count[i] < 0) continue;
      float v = w[i];
      if (row.repetition_penalty != 1.0f) v = v > 0.0f ? v / row.repetition_penalty : v * row.repetition_penalty;
      if (count[i] > 0) v -= row.presence_penalty;
      v -= row.frequency_penalty * static_cast<float>(count[i]);
      w[i] = v;
    }
  }
  if (row.allow_only) {
    std::vector<uint8_t> allowed(static_cast<size_t>(V), 0);
    if (!batch.banned_offsets.empty())
      for (int32_t j = batch.banned_offsets[r]; j < batch.banned_offsets[r + 1]; ++j) allowed[batch.banned_tokens[j]] = 1;
    for (int64_t i = 0; i < V; ++i)
      if (!allowed[i]) w[i] = kNegInf;
  } else if (!batch.banned_offsets.empty()) {
    for (int32_t j = batch.banned_offsets[r]; j < batch.banned_offsets[r + 1]; ++j) w[batch.banned_tokens[j]] = kNegInf;
  }
  return w;
}

std::vector<int32_t> sorted_ids(const std::vector<float>& w) {
  std::vector<int32_t> ids(w.size());
  std::iota(ids.begin(), ids.end(), 0);
  std::stable_sort(ids.begin(), ids.end(), [&](int32_t a, int32_t b) { return w[a] > w[b]; });
  return ids;
}

}  // namespace

void embedding(Tensor& out, const Tensor& table, const Tensor& tokens) {
  const int64_t H = table.dim(1);
  for (int64_t t = 0; t < tokens.numel(); ++t) {
    const int64_t id = load_int(tokens, t);
    for (int64_t h = 0; h < H; ++h) store(out, t * H + h, load(table, id * H + h));
  }
}

void rms_norm(Tensor& out, const Tensor& x, const Tensor& weight, float eps) {
  const int64_t H = cols(x);
  std::vector<double> h(static_cast<size_t>(H));
  for (int64_t r = 0; r < rows(x); ++r) {
    for (int64_t i = 0; i < H; ++i) h[i] = load(x, r * H + i);
    rms_row(h.data(), H, weight, eps);
    for (int64_t i = 0; i < H; ++i) store(out, r * H + i, h[i]);
  }
}

void add_rms_norm(Tensor& residual, const Tensor& x, Tensor& out, const Tensor& weight, float eps) {
  const int64_t H = cols(x);
  std::vector<double> h(static_cast<size_t>(H));
  for (int64_t r = 0; r < rows(x); ++r) {
    for (int64_t i = 0; i < H; ++i) {
      h[i] = load(residual, r * H + i) + load(x, r * H + i);
      store(residual, r * H + i, h[i]);
      h[i] = static_cast<float>(h[i]);  // the sum as stored
    }
    rms_row(h.data(), H, weight, eps);
    for (int64_t i = 0; i < H; ++i) store(out, r * H + i, h[i]);
  }
}

void linear(Tensor& out, const Tensor& x, const LinearWeight& w) {
  const int64_t N = w.weight.dim(0), K = w.weight.dim(1), T = rows(x);
  for (int64_t t = 0; t < T; ++t)
    for (int64_t n = 0; n < N; ++n) {
      double s = w.bias.defined() ? load(w.bias, n) : 0.0;
      for (int64_t k = 0; k < K; ++k) s += load(x, t * K + k) * load(w.weight, n * K + k);
      store(out, t * N + n, s);
    }
}

void qk_norm_rope_kv_write(Tensor& qkv, const QKVLayout& L, const Tensor& q_norm, const Tensor& k_norm, float eps,
                           const RopeSpec& rope, const Tensor& cos_sin, const Tensor& rope_rows,
                           const Tensor& slot_mapping, Tensor& k_cache, Tensor& v_cache) {
  const int D = L.head_dim;
  const int64_t stride = L.row_stride(), kv_width = static_cast<int64_t>(L.n_kv_heads) * D;
  std::vector<double> h(static_cast<size_t>(D));
  for (int64_t t = 0; t < rows(qkv); ++t) {
    const int64_t cs_row = load_int(rope_rows, t);
    for (int head = 0; head < L.n_q_heads + L.n_kv_heads; ++head) {
      const bool is_q = head < L.n_q_heads;
      const int64_t base = t * stride + static_cast<int64_t>(head) * D;
      for (int d = 0; d < D; ++d) h[d] = load(qkv, base + d);
      const Tensor& nw = is_q ? q_norm : k_norm;
      if (nw.defined()) rms_row(h.data(), D, nw, eps);
      rope_row(h.data(), cos_sin, cs_row, rope.rotary_dim, rope.interleaved);
      for (int d = 0; d < D; ++d) store(qkv, base + d, h[d]);
    }
    const int64_t slot = load_int(slot_mapping, t);
    if (slot < 0) continue;
    for (int64_t i = 0; i < kv_width; ++i) {
      store(k_cache, slot * kv_width + i, load(qkv, t * stride + L.k_offset() + i));
      store(v_cache, slot * kv_width + i, load(qkv, t * stride + L.v_offset() + i));
    }
  }
}

void attention_dense(Tensor& out, const Tensor& qkv, const QKVLayout& L, const std::vector<Tensor>& k,
                     const std::vector<Tensor>& v, const std::vector<int32_t>& cu, float scale, int window) {
  const int D = L.head_dim, group = L.n_q_heads / L.n_kv_heads;
  const int64_t stride = L.row_stride();
  for (size_t b = 0; b + 1 < cu.size(); ++b) {
    const int q_len = cu[b + 1] - cu[b];
    const int k_len = static_cast<int>(k[b].dim(0));
    for (int i = 0; i < q_len; ++i) {
      const int64_t t = cu[b] + i;
      const int pos = k_len - q_len + i;
      const int lo = window > 0 ? std::max(0, pos - window + 1) : 0;
      for (int h = 0; h < L.n_q_heads; ++h) {
        const int g = h / group;
        std::vector<double> s(static_cast<size_t>(pos + 1 - lo));
        double mx = -std::numeric_limits<double>::infinity();
        for (int j = lo; j <= pos; ++j) {
          double acc = 0;
          for (int d = 0; d < D; ++d)
            acc += load(qkv, t * stride + static_cast<int64_t>(h) * D + d) *
                   load(k[b], (static_cast<int64_t>(j) * L.n_kv_heads + g) * D + d);
          s[j - lo] = acc * scale;
          mx = std::max(mx, s[j - lo]);
        }
        double z = 0;
        for (double& e : s) z += (e = std::exp(e - mx));
        for (int d = 0; d < D; ++d) {
          double acc = 0;
          for (int j = lo; j <= pos; ++j)
            acc += s[j - lo] * load(v[b], (static_cast<int64_t>(j) * L.n_kv_heads + g) * D + d);
          store(out, t * L.n_q_heads * D + static_cast<int64_t>(h) * D + d, acc / z);
        }
      }
    }
  }
}

void silu_mul(Tensor& out, const Tensor& gate_up) {
  const int64_t I = cols(gate_up) / 2;
  for (int64_t t = 0; t < rows(gate_up); ++t)
    for (int64_t i = 0; i < I; ++i) {
      const double g = load(gate_up, t * 2 * I + i), u = load(gate_up, t * 2 * I + I + i);
      store(out, t * I + i, g / (1.0 + std::exp(-g)) * u);
    }
}

void gather_rows(Tensor& out, const Tensor& x, const Tensor& indices) {
  const int64_t row_bytes = static_cast<int64_t>(x.nbytes()) / x.dim(0);
  for (int64_t i = 0; i < indices.numel(); ++i)
    std::memcpy(static_cast<char*>(out.raw()) + i * row_bytes,
                static_cast<const char*>(x.raw()) + load_int(indices, i) * row_bytes, static_cast<size_t>(row_bytes));
}

Tensor log_softmax(const Tensor& logits) {
  Tensor out = Tensor::empty(logits.shape(), DType::F32);
  const int64_t V = cols(logits);
  for (int64_t r = 0; r < rows(logits); ++r) {
    double mx = -std::numeric_limits<double>::infinity();
    for (int64_t i = 0; i < V; ++i) mx = std::max(mx, load(logits, r * V + i));
    double z = 0;
    for (int64_t i = 0; i < V; ++i) z += std::exp(load(logits, r * V + i) - mx);
    const double lse = mx + std::log(z);
    for (int64_t i = 0; i < V; ++i) store(out, r * V + i, load(logits, r * V + i) - lse);
  }
  return out;
}

std::vector<int32_t> sample_keep_set(const float* x, int64_t V, const SampleBatch& batch, int64_t r) {
  const SamplingRow& row = batch.rows[r];
  const std::vector<float> w = processed(x, V, batch, r);
  const std::vector<int32_t> order = sorted_ids(w);  // larger first, lower id first on ties
  if (row.temperature == 0.0f) return {order[0]};
  std::vector<int32_t> kept;
  for (int32_t id : order)
    if (w[id] > kNegInf) kept.push_back(id);
  if (kept.empty()) return {order[0]};
  if (row.top_k > 0 && row.top_k < V) {
    const float kth = w[order[row.top_k - 1]];
    std::vector<int32_t> k2;
    for (int32_t id : kept)
      if (w[id] >= kth) k2.push_back(id);
    kept = k2;
  }
  const double smax = static_cast<double>(w[kept[0]]) / row.temperature;
  auto e = [&](int32_t id) { return std::exp(static_cast<double>(w[id]) / row.temperature - smax); };
  if (row.top_p < 1.0f) {
    double z = 0;
    for (int32_t id : kept) z += e(id);
    double cum = 0;
    size_t n = 0;
    while (n < kept.size() && (n == 0 || cum / z < row.top_p)) cum += e(kept[n++]);
    kept.resize(n);
  }
  if (row.min_p > 0.0f) {
    std::vector<int32_t> k3;
    for (int32_t id : kept)
      if (e(id) >= row.min_p) k3.push_back(id);
    if (k3.empty()) k3.push_back(kept[0]);
    kept = k3;
  }
  std::sort(kept.begin(), kept.end());
  return kept;
}

SampleResult sample(const Tensor& logits, const SampleBatch& batch) {
  const int64_t V = cols(logits), R = rows(logits);
  SampleResult res;
  for (int64_t r = 0; r < R; ++r) {
    const float* x = logits.data<float>() + r * V;
    const SamplingRow& row = batch.rows[r];
    double mx = -std::numeric_limits<double>::infinity();
    for (int64_t i = 0; i < V; ++i) mx = std::max(mx, static_cast<double>(x[i]));
    double z = 0;
    for (int64_t i = 0; i < V; ++i) z += std::exp(x[i] - mx);
    const double lse = mx + std::log(z);
    const std::vector<int32_t> kept = sample_keep_set(x, V, batch, r);
    int32_t tok = kept[0];
    if (row.temperature != 0.0f && kept.size() > 1) {
      // The exponential race, in the float formula of the contract.
      const std::vector<float> w = processed(x, V, batch, r);
      const float inv_t = 1.0f / row.temperature;
      float wmax = kNegInf;
      for (int32_t id : kept) wmax = std::max(wmax, w[id]);
      float best = -1.0f;
      for (int32_t id : kept) {
        const float p = std::exp(w[id] * inv_t - wmax * inv_t);
        const float key = p / -std::log(sampling_uniform(row.seed, row.offset, static_cast<uint32_t>(id)));
        if (key > best) {  // ids ascend, so ties keep the lower id
          best = key;
          tok = id;
        }
      }
    }
    res.tokens.push_back(tok);
    res.logprobs.push_back(static_cast<float>(x[tok] - lse));
    std::vector<float> raw(x, x + V);
    for (float& f : raw)
      if (std::isnan(f)) f = kNegInf;
    const std::vector<int32_t> order = sorted_ids(raw);
    std::vector<std::pair<int32_t, float>> top;
    for (int i = 0; i < std::min<int64_t>(row.num_top_logprobs, V); ++i)
      top.emplace_back(order[i], static_cast<float>(x[order[i]] - lse));
    res.top_logprobs.push_back(std::move(top));
  }
  return res;
}

PagedKV make_paged_kv(const std::vector<Tensor>& k, const std::vector<Tensor>& v, const std::vector<int32_t>& cu,
                      int block_size, DType cache_dtype, int spare_blocks, uint64_t seed) {
  const int B = static_cast<int>(k.size());
  TLLM_CHECK(B > 0 && static_cast<int>(cu.size()) == B + 1, "make_paged_kv: ", B, " sequences, ", cu.size(),
             " offsets");
  const int64_t n_kv = k[0].dim(1), D = k[0].dim(2);
  int max_blocks = 1, total = spare_blocks;
  std::vector<int> nblocks(B);
  for (int b = 0; b < B; ++b) {
    nblocks[b] = static_cast<int>((k[b].dim(0) + block_size - 1) / block_size);
    max_blocks = std::max(max_blocks, nblocks[b]);
    total += nblocks[b];
  }
  total = std::max(total, 1);
  std::vector<int32_t> perm(static_cast<size_t>(total));
  std::iota(perm.begin(), perm.end(), 0);
  std::mt19937_64 rng(seed);
  std::shuffle(perm.begin(), perm.end(), rng);

  PagedKV kv;
  kv.k_cache = Tensor::empty({total, block_size, n_kv, D}, cache_dtype);
  kv.v_cache = Tensor::empty({total, block_size, n_kv, D}, cache_dtype);
  // Poison: a kernel reading a slot it should not turns the output into NaN.
  const double nan = std::numeric_limits<double>::quiet_NaN();
  for (int64_t i = 0; i < kv.k_cache.numel(); ++i) {
    store(kv.k_cache, i, nan);
    store(kv.v_cache, i, nan);
  }
  kv.block_tables.assign(static_cast<size_t>(B) * max_blocks, 0);
  int next = 0;
  const int64_t kv_width = n_kv * D;
  for (int b = 0; b < B; ++b) {
    for (int j = 0; j < nblocks[b]; ++j) kv.block_tables[static_cast<size_t>(b) * max_blocks + j] = perm[next++];
    for (int64_t pos = 0; pos < k[b].dim(0); ++pos) {
      const int64_t slot = static_cast<int64_t>(kv.block_tables[b * max_blocks + pos / block_size]) * block_size +
                           pos % block_size;
      for (int64_t i = 0; i < kv_width; ++i) {
        store(kv.k_cache, slot * kv_width + i, load(k[b], pos * kv_width + i));
        store(kv.v_cache, slot * kv_width + i, load(v[b], pos * kv_width + i));
      }
    }
  }
  AttentionMeta& m = kv.meta;
  m.num_seqs = B;
  m.num_tokens = cu[B];
  m.block_size = block_size;
  m.max_blocks_per_seq = max_blocks;
  m.cu_seqlens_q = Tensor::empty({B + 1}, DType::I32);
  m.seq_lens_k = Tensor::empty({B}, DType::I32);
  m.block_tables = Tensor::empty({B, max_blocks}, DType::I32);
  for (int b = 0; b <= B; ++b) m.cu_seqlens_q.data<int32_t>()[b] = cu[b];
  for (int b = 0; b < B; ++b) {
    m.seq_lens_k.data<int32_t>()[b] = static_cast<int32_t>(k[b].dim(0));
    m.max_seqlen_q = std::max(m.max_seqlen_q, cu[b + 1] - cu[b]);
    m.max_seqlen_k = std::max(m.max_seqlen_k, static_cast<int>(k[b].dim(0)));
  }
  std::memcpy(m.block_tables.raw(), kv.block_tables.data(), kv.block_tables.size() * sizeof(int32_t));
  return kv;
}

void round_to(Tensor& t, DType dtype) {
  TLLM_CHECK(t.dtype() == DType::F32, "round_to: ", t.str(), " must be f32");
  float* p = t.data<float>();
  for (int64_t i = 0; i < t.numel(); ++i) {
    if (dtype == DType::BF16) p[i] = bf16_to_f32(f32_to_bf16(p[i]));
    if (dtype == DType::F16) p[i] = f16_to_f32(f32_to_f16(p[i]));
  }
}

}  // namespace tllm::ref
