#include "kernels/quant_layout.h"

#include <cmath>
#include <cstring>
#include <ios>

#include "core/thread_pool.h"

namespace tllm::quant {

namespace {

// Byte offset and nibble shift (0 or 4; always 0 for 8 bits) of code (r, k) within the
// codes of its panel (16 rows).
struct CodePos {
  int64_t byte;
  int shift;
};

CodePos cpu_pos(int bits, int64_t kp, int r, int64_t k) {
  if (bits == 8) return {(k / 4) * 64 + r * 4 + (k % 4), 0};
  (void)kp;
  return {(k / 8) * 64 + r * 4 + (k % 4), static_cast<int>((k % 8) / 4) * 4};
}

CodePos cuda_pos(int bits, int r, int64_t k) {
  const int tile = cuda_k_tile(bits);
  const int64_t kt = k / tile;
  const int kin = static_cast<int>(k % tile);
  const int g = r % 8, half = r / 8;
  const int m = kin / 16, kk = kin % 16;
  const int c = (kk % 8) / 2, e = kk % 2, pslot = kk / 8;
  const int lane = g * 4 + c;
  const int64_t base = kt * 1024 + half * 512 + lane * 16;
  if (bits == 4) {
    const int w = m / 2, p = (m % 2) * 2 + pslot;
    const int bit = 16 * e + 4 * p;
    return {base + w * 4 + bit / 8, bit % 8};
  }
  return {base + m * 4 + pslot + 2 * e, 0};
}

bool all_f16(const float* v, int64_t n) {
  for (int64_t i = 0; i < n; ++i)
    if (f16_to_f32(f32_to_f16(v[i])) != v[i]) return false;
  return true;
}

float load_scale(const Tensor& t, int64_t i) {
  return t.dtype() == DType::F16 ? f16_to_f32(t.data<uint16_t>()[i]) : t.data<float>()[i];
}

int64_t sidx(int64_t groups, int64_t row, int64_t group) {
  return ((row / kPanelRows) * groups + group) * kPanelRows + row % kPanelRows;
}

}  // namespace

QuantScheme scheme_of(const QuantizedMatrix& m) {
  if (m.fp8) return QuantScheme::Fp8E4M3;
  if (m.bits == 4) return QuantScheme::Int4Group;
  return m.groups() == 1 ? QuantScheme::Int8PerChannel : QuantScheme::Int8Group;
}

void validate(const QuantizedMatrix& m, const std::string& what) {
  TLLM_CHECK(m.bits == 4 || m.bits == 8, what, ": ", m.bits, "-bit weights are not supported (4 or 8 bits)");
  TLLM_CHECK(!m.fp8 || m.bits == 8, what, ": FP8 codes are 8 bits, not ", m.bits);
  TLLM_CHECK(m.rows > 0 && m.cols > 0, what, ": empty quantized matrix [", m.rows, ", ", m.cols, "]");
  TLLM_CHECK(m.group_size > 0 && (m.group_size % 32 == 0 || m.group_size >= m.cols), what, ": group size ",
             m.group_size, " is not supported (a multiple of 32, or one group per row of ", m.cols, ")");
  TLLM_CHECK(m.codes.defined() && m.codes.dtype() == DType::U8 && m.codes.device() == Device::CPU &&
                 m.codes.shape() == Shape({m.rows, m.cols}),
             what, ": codes must be host u8 [", m.rows, ", ", m.cols, "], got ", m.codes.str());
  const Shape sshape{m.rows, m.groups()};
  for (const Tensor* t : {&m.scales, &m.offsets})
    TLLM_CHECK(t->defined() && t->dtype() == DType::F32 && t->device() == Device::CPU && t->shape() == sshape,
               what, ": scales and offsets must be host f32 ", shape_str(sshape), ", got ",
               t->defined() ? t->str() : std::string("undefined"));
  if (m.bits == 4) {
    const uint8_t* c = m.codes.data<uint8_t>();
    const int64_t n = m.codes.numel();
    uint64_t any = 0;  // 8 codes at a time (this loop runs over every code of a model loaded)
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
      uint64_t w;
      std::memcpy(&w, c + i, 8);
      any |= w;
    }
    for (; i < n; ++i) any |= c[i];
    TLLM_CHECK((any & 0xf0f0f0f0f0f0f0f0ull) == 0, what, ": 4-bit codes must be in [0, 15]");
  }
  if (m.fp8) {  // e4m3 has no infinities; 0x7f / 0xff are its NaNs
    const uint8_t* c = m.codes.data<uint8_t>();
    const int64_t i = fp8_first_non_finite(DType::F8E4M3, c, m.codes.numel());
    TLLM_CHECK(i < 0, what, ": FP8 code 0x", std::hex, static_cast<int>(c[i < 0 ? 0 : i]), std::dec, " at [",
               i / m.cols, ", ", i % m.cols, "] is not a finite number");
    for (int64_t i = 0; i < m.offsets.numel(); ++i)
      TLLM_CHECK(m.offsets.data<float>()[i] == 0.0f, what, ": FP8 weights have no offsets");
  }
  for (const Tensor* t : {&m.scales, &m.offsets}) {
    const float* v = t->data<float>();
    const int64_t n = t->numel();
    bool finite = true;
    for (int64_t i = 0; i < n; ++i) finite &= std::isfinite(v[i]);
    if (finite) continue;
    for (int64_t i = 0; i < n; ++i)
      TLLM_CHECK(std::isfinite(v[i]), what, ": non-finite scale or offset ", v[i], " at index ", i);
  }
}

LinearWeight pack(const QuantizedMatrix& m, Layout layout, ThreadPool* pool) {
  validate(m, "pack_quantized");
  const int bits = m.bits;
  const int64_t N = m.rows, K = m.cols, G = m.groups();
  const int64_t Np = padded_rows(N), Kp = padded_cols(layout, bits, K);
  const int64_t rb = row_bytes(layout, bits, K);
  const int64_t panels = Np / kPanelRows;
  const int64_t panel_bytes = rb * kPanelRows;

  LinearWeight w;
  w.quant = scheme_of(m);
  w.group_size = static_cast<int>(std::min<int64_t>(m.group_size, K));
  w.out_features = N;
  w.in_features = K;
  w.weight = Tensor::empty({Np, rb}, DType::U8);
  // FP8 weights have no offsets: no zeros tensor (the kernels never read one).
  const bool offsets = !m.fp8;
  const bool f16 = all_f16(m.scales.data<float>(), m.scales.numel()) &&
                   (!offsets || all_f16(m.offsets.data<float>(), m.offsets.numel()));
  const DType sdt = f16 ? DType::F16 : DType::F32;
  w.scales = Tensor::empty({Np, G}, sdt);
  if (offsets) w.zeros = Tensor::empty({Np, G}, sdt);

  const uint8_t* codes = m.codes.data<uint8_t>();
  const float* sc = m.scales.data<float>();
  const float* of = m.offsets.data<float>();
  uint8_t* out = w.weight.data<uint8_t>();
  auto run_panels = [&](int64_t pb, int64_t pe) {
    for (int64_t p = pb; p < pe; ++p) {
      uint8_t* dst = out + p * panel_bytes;
      std::memset(dst, 0, static_cast<size_t>(panel_bytes));
      for (int r = 0; r < kPanelRows; ++r) {
        const int64_t row = p * kPanelRows + r;
        if (row >= N) break;
        const uint8_t* src = codes + row * K;
        if (layout == Layout::Cpu && bits == 8) {
          for (int64_t k = 0; k < K; ++k) dst[(k / 4) * 64 + r * 4 + (k % 4)] = src[k];
        } else if (layout == Layout::Cuda) {
          // Word by word in the order a lane reads them (same positions as cuda_pos).
          const int tile = cuda_k_tile(bits);
          const int g = r % 8, half = r / 8;
          for (int64_t kt = 0; kt < Kp / tile; ++kt)
            for (int c = 0; c < 4; ++c) {
              uint8_t* lane_dst = dst + kt * 1024 + half * 512 + (g * 4 + c) * 16;
              for (int w = 0; w < 4; ++w) {
                uint32_t word = 0;
                for (int pp = 0; pp < 4; ++pp)
                  for (int e = 0; e < 2; ++e) {
                    int64_t k;
                    int shift;
                    if (bits == 4) {
                      k = kt * tile + 16 * (2 * w + pp / 2) + (pp % 2) * 8 + 2 * c + e;
                      shift = 16 * e + 4 * pp;
                    } else {
                      if (pp >= 2) continue;
                      k = kt * tile + 16 * w + pp * 8 + 2 * c + e;
                      shift = 8 * (pp + 2 * e);
                    }
                    if (k < K) word |= static_cast<uint32_t>(src[k]) << shift;
                  }
                std::memcpy(lane_dst + 4 * w, &word, 4);
              }
            }
        } else {  // 4 bits: byte j of step s holds k = 8 s + j (low nibble) and 8 s + 4 + j (high)
          const int64_t full = K / 8;
          for (int64_t st = 0; st < full; ++st)
            for (int j = 0; j < 4; ++j)
              dst[st * 64 + r * 4 + j] = static_cast<uint8_t>(src[8 * st + j] | src[8 * st + 4 + j] << 4);
          for (int64_t k = full * 8; k < K; ++k) {  // a K that is not a multiple of 8
            const CodePos pos = cpu_pos(bits, Kp, r, k);
            dst[pos.byte] |= static_cast<uint8_t>(src[k] << pos.shift);
          }
        }
      }
      for (int64_t g = 0; g < G; ++g)
        for (int r = 0; r < kPanelRows; ++r) {
          const int64_t row = p * kPanelRows + r;
          const int64_t i = (p * G + g) * kPanelRows + r;
          const float s = row < N ? sc[row * G + g] : 0.0f, o = row < N ? of[row * G + g] : 0.0f;
          if (f16) {
            w.scales.data<uint16_t>()[i] = f32_to_f16(s);
            if (offsets) w.zeros.data<uint16_t>()[i] = f32_to_f16(o);
          } else {
            w.scales.data<float>()[i] = s;
            if (offsets) w.zeros.data<float>()[i] = o;
          }
        }
    }
  };
  if (pool) pool->parallel_for(panels, 16, run_panels);
  else run_panels(0, panels);
  return w;
}

QuantizedMatrix unpack(const LinearWeight& w, Layout layout) {
  TLLM_CHECK(w.quant != QuantScheme::None, "unpack: weight is not quantized");
  TLLM_CHECK(w.weight.device() == Device::CPU, "unpack: needs host tensors, got ", w.weight.str());
  QuantizedMatrix m;
  m.bits = w.quant_bits();
  m.fp8 = w.quant == QuantScheme::Fp8E4M3;
  m.rows = w.out_features;
  m.cols = w.in_features;
  m.group_size = w.group_size;
  const int64_t G = m.groups();
  const int64_t rb = row_bytes(layout, m.bits, m.cols);
  const int64_t Kp = padded_cols(layout, m.bits, m.cols);
  TLLM_CHECK(w.weight.dtype() == DType::U8 && w.weight.shape() == Shape({padded_rows(m.rows), rb}),
             "unpack: codes ", w.weight.str(), " do not match [", padded_rows(m.rows), ", ", rb, "]");
  m.codes = Tensor::empty({m.rows, m.cols}, DType::U8);
  m.scales = Tensor::empty({m.rows, G}, DType::F32);
  m.offsets = Tensor::empty({m.rows, G}, DType::F32);
  const uint8_t* src = w.weight.data<uint8_t>();
  for (int64_t row = 0; row < m.rows; ++row) {
    const uint8_t* panel = src + (row / kPanelRows) * rb * kPanelRows;
    const int r = static_cast<int>(row % kPanelRows);
    for (int64_t k = 0; k < m.cols; ++k) {
      const CodePos pos = layout == Layout::Cpu ? cpu_pos(m.bits, Kp, r, k) : cuda_pos(m.bits, r, k);
      const uint8_t v = static_cast<uint8_t>(panel[pos.byte] >> pos.shift);
      m.codes.data<uint8_t>()[row * m.cols + k] = m.bits == 4 ? (v & 15) : v;
    }
    for (int64_t g = 0; g < G; ++g) {
      m.scales.data<float>()[row * G + g] = packed_scale(w, row, g);
      m.offsets.data<float>()[row * G + g] = packed_offset(w, row, g);
    }
  }
  return m;
}

float packed_scale(const LinearWeight& w, int64_t row, int64_t group) {
  return load_scale(w.scales, sidx(w.scales.dim(1), row, group));
}

float packed_offset(const LinearWeight& w, int64_t row, int64_t group) {
  if (!w.zeros.defined()) return 0.0f;  // FP8: no offsets
  return load_scale(w.zeros, sidx(w.zeros.dim(1), row, group));
}

}  // namespace tllm::quant
