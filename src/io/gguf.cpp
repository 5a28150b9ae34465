#include "io/gguf.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <optional>
#include <limits>

#include "core/dtype.h"
#include "core/error.h"

#define TLLM_THROW_ARG(...) throw ::tllm::InvalidArgument(::tllm::detail::concat(__VA_ARGS__))

namespace tllm {
namespace fs = std::filesystem;
namespace {

// ggml type ids (ggml.h).
enum : uint32_t {
  kF32 = 0, kF16 = 1, kQ4_0 = 2, kQ4_1 = 3, kQ5_0 = 6, kQ5_1 = 7, kQ8_0 = 8, kQ8_1 = 9,
  kQ2_K = 10, kQ3_K = 11, kQ4_K = 12, kQ5_K = 13, kQ6_K = 14, kQ8_K = 15, kIQ4_NL = 20, kIQ4_XS = 23,
  kBF16 = 30,
};

// The 16 values a 4-bit index of iq4_nl and iq4_xs stands for (ggml's kvalues_iq4nl).
constexpr int kIq4Values[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};

struct TypeTraits {
  int block;        // elements per block
  int block_bytes;  // bytes per block; 0: not decoded here
};

TypeTraits traits(uint32_t t) {
  switch (t) {
    case kF32: return {1, 4};
    case kF16: return {1, 2};
    case kBF16: return {1, 2};
    case kQ4_0: return {32, 18};
    case kQ4_1: return {32, 20};
    case kQ5_0: return {32, 22};
    case kQ5_1: return {32, 24};
    case kQ8_0: return {32, 34};
    case kIQ4_NL: return {32, 18};
    case kIQ4_XS: return {256, 136};
    case kQ3_K: return {256, 110};
    case kQ4_K: return {256, 144};
    case kQ5_K: return {256, 176};
    case kQ6_K: return {256, 210};
    default: return {1, 0};
  }
}

float h2f(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return f16_to_f32(h);
}

// Reads the header with bounds checks; every error names the file and byte offset.
struct Cursor {
  const uint8_t* p;
  size_t size, at = 0;
  const std::string& path;
  void need(size_t n) const {
    TLLM_CHECK_ARG(n <= size && at <= size - n, path, ": GGUF header truncated at byte ", at, " (the file has ", size,
                   ")");
  }
  template <typename T>
  T read() {
    need(sizeof(T));
    T v;
    std::memcpy(&v, p + at, sizeof(T));
    at += sizeof(T);
    return v;
  }
  std::string str() {
    const uint64_t n = read<uint64_t>();
    TLLM_CHECK_ARG(n < (1u << 30), path, ": a GGUF string at byte ", at - 8, " claims ", n, " bytes");
    need(n);
    std::string s(reinterpret_cast<const char*>(p + at), n);
    at += n;
    return s;
  }
};

enum : uint32_t { kU8, kI8, kU16, kI16, kU32, kI32, kF32v, kBool, kString, kArray, kU64, kI64, kF64 };

GgufValue read_value(Cursor& c, uint32_t type, const std::string& key, int depth) {
  GgufValue out;
  switch (type) {
    case kU8: out.v = static_cast<uint64_t>(c.read<uint8_t>()); break;
    case kI8: out.v = static_cast<int64_t>(c.read<int8_t>()); break;
    case kU16: out.v = static_cast<uint64_t>(c.read<uint16_t>()); break;
    case kI16: out.v = static_cast<int64_t>(c.read<int16_t>()); break;
    case kU32: out.v = static_cast<uint64_t>(c.read<uint32_t>()); break;
    case kI32: out.v = static_cast<int64_t>(c.read<int32_t>()); break;
    case kU64: out.v = c.read<uint64_t>(); break;
    case kI64: out.v = c.read<int64_t>(); break;
    case kF32v: out.v = static_cast<double>(c.read<float>()); break;
    case kF64: out.v = c.read<double>(); break;
    case kBool: out.v = c.read<uint8_t>() != 0; break;
    case kString: out.v = c.str(); break;
    case kArray: {
      TLLM_CHECK_ARG(depth == 0, c.path, ": metadata \"", key, "\" nests arrays, which tinyllm does not read");
      const uint32_t et = c.read<uint32_t>();
      const uint64_t n = c.read<uint64_t>();
      TLLM_CHECK_ARG(n <= c.size, c.path, ": metadata \"", key, "\" claims ", n, " elements");
      GgufValue::Array a;
      if (et == kString) {
        std::vector<std::string> v;
        v.reserve(n);
        for (uint64_t i = 0; i < n; ++i) v.push_back(c.str());
        a = std::move(v);
      } else if (et == kF32v || et == kF64) {
        std::vector<double> v(n);
        for (uint64_t i = 0; i < n; ++i) v[i] = std::get<double>(read_value(c, et, key, 1).v);
        a = std::move(v);
      } else if (et == kBool) {
        std::vector<bool> v(n);
        for (uint64_t i = 0; i < n; ++i) v[i] = c.read<uint8_t>() != 0;
        a = std::move(v);
      } else if (et == kU8 || et == kU16 || et == kU32 || et == kU64) {
        std::vector<uint64_t> v(n);
        for (uint64_t i = 0; i < n; ++i) v[i] = std::get<uint64_t>(read_value(c, et, key, 1).v);
        a = std::move(v);
      } else if (et == kI8 || et == kI16 || et == kI32 || et == kI64) {
        std::vector<int64_t> v(n);
        for (uint64_t i = 0; i < n; ++i) v[i] = std::get<int64_t>(read_value(c, et, key, 1).v);
        a = std::move(v);
      } else {
        TLLM_THROW_ARG(c.path, ": metadata \"", key, "\" is an array of unknown type ", et);
      }
      out.v = std::move(a);
      break;
    }
    default:
      TLLM_CHECK_ARG(false, c.path, ": metadata \"", key, "\" has unknown value type ", type);
  }
  return out;
}

// The K-quants' packed 6-bit scale and min of sub-block j (ggml's get_scale_min_k4).
void scale_min_k4(int j, const uint8_t* q, int& sc, int& m) {
  if (j < 4) {
    sc = q[j] & 63;
    m = q[j + 4] & 63;
  } else {
    sc = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
    m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
  }
}

// q3_K's packed 6-bit scale of sub-block j (of 16): its low 4 bits in the nibbles of bytes 0-7
// (j < 8: low nibble of byte j; else the high nibble of byte j - 8), its high 2 bits in the
// bit pairs of bytes 8-11 (pair j / 4 of byte 8 + j % 4).
int scale_q3_K(int j, const uint8_t* s) {
  const int low = j < 8 ? s[j] & 0xF : s[j - 8] >> 4;
  return low | (((s[8 + j % 4] >> (2 * (j / 4))) & 3) << 4);
}

}  // namespace

std::string ggml_type_name(uint32_t type) {
  static const std::map<uint32_t, const char*> names = {
      {0, "f32"},    {1, "f16"},      {2, "q4_0"},     {3, "q4_1"},    {6, "q5_0"},    {7, "q5_1"},
      {8, "q8_0"},   {9, "q8_1"},     {10, "q2_K"},    {11, "q3_K"},   {12, "q4_K"},   {13, "q5_K"},
      {14, "q6_K"},  {15, "q8_K"},    {16, "iq2_xxs"}, {17, "iq2_xs"}, {18, "iq3_xxs"}, {19, "iq1_s"},
      {20, "iq4_nl"}, {21, "iq3_s"},  {22, "iq2_s"},   {23, "iq4_xs"}, {24, "i8"},     {25, "i16"},
      {26, "i32"},   {27, "i64"},     {28, "f64"},     {29, "iq1_m"},  {30, "bf16"},   {34, "tq1_0"},
      {35, "tq2_0"}};
  auto it = names.find(type);
  return it != names.end() ? it->second : "type " + std::to_string(type);
}

uint64_t ggml_row_bytes(uint32_t type, int64_t n) {
  const TypeTraits t = traits(type);
  if (t.block_bytes == 0 || n % t.block != 0) return 0;
  return static_cast<uint64_t>(n / t.block) * static_cast<uint64_t>(t.block_bytes);
}

int ggml_affine_bits(uint32_t type) {
  switch (type) {
    case kQ4_0: case kQ4_1: case kQ4_K: return 4;
    case kQ5_0: case kQ5_1: case kQ5_K: return 5;
    case kQ8_0: case kQ3_K: case kIQ4_NL: case kIQ4_XS: return 8;
    default: return 0;
  }
}

void ggml_affine_groups(uint32_t type, const uint8_t* src, int64_t n, uint8_t* q, float* scales, float* offsets) {
  const TypeTraits t = traits(type);
  TLLM_ASSERT(ggml_affine_bits(type) != 0 && n % t.block == 0);
  const int64_t blocks = n / t.block;
  for (int64_t b = 0; b < blocks; ++b, src += t.block_bytes, q += t.block) {
    const uint8_t* x = src;
    float* sc = scales + b * (t.block / 32);
    float* of = offsets + b * (t.block / 32);
    switch (type) {
      case kQ4_0:    // f16 d; 16 bytes: element j in the low nibble of byte j, j + 16 in the high
      case kQ4_1: {  // f16 d, f16 m: q * d + m
        const bool one = type == kQ4_1;
        const float d = h2f(x);
        sc[0] = d;
        of[0] = one ? h2f(x + 2) : -8.0f * d;
        const uint8_t* qs = x + (one ? 4 : 2);
        for (int j = 0; j < 16; ++j) {
          q[j] = qs[j] & 0xF;
          q[j + 16] = qs[j] >> 4;
        }
        break;
      }
      case kQ5_0:
      case kQ5_1: {  // f16 d [, f16 m]; u32 fifth bits; 16 bytes of low nibbles
        const bool one = type == kQ5_1;
        const float d = h2f(x);
        sc[0] = d;
        of[0] = one ? h2f(x + 2) : -16.0f * d;
        const uint8_t* hp = x + (one ? 4 : 2);
        uint32_t qh;
        std::memcpy(&qh, hp, 4);
        const uint8_t* qs = hp + 4;
        for (int j = 0; j < 16; ++j) {
          q[j] = static_cast<uint8_t>((qs[j] & 0xF) | (((qh >> j) << 4) & 0x10));
          q[j + 16] = static_cast<uint8_t>((qs[j] >> 4) | ((qh >> (j + 12)) & 0x10));
        }
        break;
      }
      case kQ8_0: {  // f16 d; 32 int8: the code q + 128 and the offset -128 d (both exact)
        const float d = h2f(x);
        sc[0] = d;
        of[0] = -128.0f * d;
        for (int j = 0; j < 32; ++j) q[j] = static_cast<uint8_t>(static_cast<int8_t>(x[2 + j]) + 128);
        break;
      }
      case kIQ4_NL:    // f16 d; 16 bytes of indices: element j in the low nibble of byte j, j + 16 in the high
      case kIQ4_XS: {  // f16 d, u16 high scale bits, 4 bytes of low scale nibbles, 8 x 16 bytes of indices
        // Element j of group g is d_g times the table's value at its index, d_g = d (iq4_nl)
        // or d (s_g - 32) with s_g 6 bits (iq4_xs): code = value + 127 in [0, 240], scale d_g,
        // offset -127 d_g.
        const bool xs = type == kIQ4_XS;
        const float d = h2f(x);
        uint16_t high = 0;
        if (xs) std::memcpy(&high, x + 2, 2);
        for (int g = 0; g < t.block / 32; ++g) {
          const int s = xs ? ((x[4 + g / 2] >> (4 * (g % 2))) & 0xF) | (((high >> (2 * g)) & 3) << 4) : 32;
          sc[g] = xs ? d * static_cast<float>(s - 32) : d;
          of[g] = -127.0f * sc[g];
          const uint8_t* idx = x + (xs ? 8 + 16 * g : 2);
          for (int j = 0; j < 16; ++j) {
            q[32 * g + j] = static_cast<uint8_t>(kIq4Values[idx[j] & 0xF] + 127);
            q[32 * g + j + 16] = static_cast<uint8_t>(kIq4Values[idx[j] >> 4] + 127);
          }
        }
        break;
      }
      case kQ3_K: {  // 32 bytes of third bits, 64 of low bit pairs, 12 of 6-bit scales, f16 d
        // Element e = 128 n + 32 j + l is d (s - 32) (p - 4 + 4 h): p the bit pair j of byte
        // 32 n + l of the pairs, h bit 4 n + j of byte l of the third bits, s the scale of
        // sub-block 8 n + 2 j + l / 16. The integer (s - 32)(p - 4 + 4 h) lies in [-124, 128],
        // so code = it + 127 fits 8 bits with scale d and offset -127 d: exact, as ggml's
        // f32 product d (s - 32) times the integer is.
        const uint8_t* hm = x;
        const uint8_t* qs = x + 32;
        const uint8_t* packed = x + 96;
        const float d = h2f(x + 108);
        for (int g = 0; g < 8; ++g) {
          sc[g] = d;
          of[g] = -127.0f * d;
        }
        for (int e = 0; e < 256; ++e) {
          const int n = e / 128, j = e % 128 / 32, l = e % 32;
          const int p = (qs[32 * n + l] >> (2 * j)) & 3, high = (hm[l] >> (4 * n + j)) & 1;
          const int v = (scale_q3_K(8 * n + 2 * j + l / 16, packed) - 32) * (p - 4 + 4 * high);
          q[e] = static_cast<uint8_t>(v + 127);
        }
        break;
      }
      case kQ4_K:
      case kQ5_K: {  // f16 d, f16 dmin, 12 bytes of 6-bit scales / mins [, 32 bytes of fifth bits], 128 bytes
        const bool five = type == kQ5_K;
        const float d = h2f(x), dmin = h2f(x + 2);
        const uint8_t* packed = x + 4;
        const uint8_t* qh = x + 16;
        const uint8_t* qs = x + (five ? 48 : 16);
        uint8_t* out = q;
        uint8_t u1 = 1, u2 = 2;
        // Chunks of 64: 32 low nibbles (sub-block 2c), then the same bytes' high nibbles (2c + 1).
        for (int c = 0; c < 4; ++c, qs += 32, u1 <<= 2, u2 <<= 2) {
          for (int half = 0; half < 2; ++half) {
            int s, m;
            scale_min_k4(2 * c + half, packed, s, m);
            sc[2 * c + half] = d * static_cast<float>(s);
            of[2 * c + half] = -(dmin * static_cast<float>(m));
          }
          for (int l = 0; l < 32; ++l) *out++ = static_cast<uint8_t>((qs[l] & 0xF) + (five && (qh[l] & u1) ? 16 : 0));
          for (int l = 0; l < 32; ++l) *out++ = static_cast<uint8_t>((qs[l] >> 4) + (five && (qh[l] & u2) ? 16 : 0));
        }
        break;
      }
      default:
        TLLM_ASSERT(false);
    }
  }
}

namespace {

// One q6_K block: 128 bytes of low 4 bits, 64 of high 2 bits, 16 int8 scales (one per 16
// values), f16 d. Value l + 32 k (l < 32) of each half of 128 has its low bits in nibble
// k / 2 of byte l + 32 (k % 2), its high bits at bit 2 k of byte l. q: the signed values
// (q - 32), sc: the scales, d: the block scale.
void q6_K_unpack(const uint8_t* x, int (&q)[256], const int8_t*& sc, float& d) {
  const uint8_t* ql = x;
  const uint8_t* qh = x + 128;
  sc = reinterpret_cast<const int8_t*>(x + 192);
  d = h2f(x + 208);
  for (int half = 0; half < 2; ++half)
    for (int l = 0; l < 32; ++l)
      for (int k = 0; k < 4; ++k) {
        const uint8_t lo = ql[64 * half + l + 32 * (k % 2)];
        q[128 * half + l + 32 * k] = (((k < 2 ? lo : lo >> 4) & 0xF) | (((qh[32 * half + l] >> (2 * k)) & 3) << 4)) - 32;
      }
}

}  // namespace

void ggml_q6_K_groups(const uint8_t* src, int64_t n, uint8_t* codes, float* scales, float* offsets) {
  const TypeTraits t = traits(kQ6_K);
  TLLM_ASSERT(n % t.block == 0);
  for (int64_t b = 0; b < n / t.block; ++b, src += t.block_bytes, codes += t.block, scales += 8, offsets += 8) {
    int q[256];
    const int8_t* sc;
    float d;
    q6_K_unpack(src, q, sc, d);
    for (int g = 0; g < 8; ++g) {
      const int a = sc[2 * g], c = sc[2 * g + 1];
      const int big = std::abs(a) >= std::abs(c) ? a : c;
      scales[g] = d * static_cast<float>(big) * 0.25f;  // exact: an f16 times an int8, over 4
      offsets[g] = -128.0f * scales[g];
      for (int j = 0; j < 32; ++j) {
        const int s = j < 16 ? a : c;
        // 4 q s / big: 4 q on the larger half; the other half rounded to that grid.
        const int v = big == 0 ? 0 : static_cast<int>(std::lround(4.0 * q[32 * g + j] * s / big));
        codes[32 * g + j] = static_cast<uint8_t>(std::clamp(v + 128, 0, 255));
      }
    }
  }
}

void ggml_dequantize(uint32_t type, const uint8_t* src, float* y, int64_t n) {
  const TypeTraits t = traits(type);
  TLLM_ASSERT(t.block_bytes > 0 && n % t.block == 0);
  const int64_t blocks = n / t.block;
  if (ggml_affine_bits(type) != 0) {
    // code * scale + offset is ggml's own arithmetic: (q - 8) * d and q * d + m are exact in
    // f32 either way, and the K-quants' d * sc * q - dmin * m rounds once, in the same place.
    uint8_t q[256];
    float sc[8], of[8];
    for (int64_t b = 0; b < blocks; ++b, src += t.block_bytes, y += t.block) {
      ggml_affine_groups(type, src, t.block, q, sc, of);
      for (int j = 0; j < t.block; ++j) y[j] = static_cast<float>(q[j]) * sc[j / 32] + of[j / 32];
    }
    return;
  }
  TLLM_ASSERT(type == kQ6_K);
  for (int64_t b = 0; b < blocks; ++b, src += t.block_bytes, y += t.block) {
    int q[256];
    const int8_t* sc;
    float d;
    q6_K_unpack(src, q, sc, d);
    for (int e = 0; e < 256; ++e) y[e] = d * static_cast<float>(sc[e / 16]) * static_cast<float>(q[e]);
  }
}

void GgufFile::read_part(const std::string& path, bool first) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  TLLM_CHECK_ARG(fd >= 0, path, ": cannot open (", std::strerror(errno), ")");
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    TLLM_THROW_ARG(path, ": not a regular file");
  }
  Part& part = parts_.emplace_back();
  const int index = static_cast<int>(parts_.size()) - 1;
  part.path = path;
  part.map_size = static_cast<size_t>(st.st_size);
  if (part.map_size > 0) {
    void* m = ::mmap(nullptr, part.map_size, PROT_READ, MAP_PRIVATE, fd, 0);
    ::close(fd);
    TLLM_CHECK_ARG(m != MAP_FAILED, path, ": cannot map (", std::strerror(errno), ")");
    part.map = m;
  } else {
    ::close(fd);
  }
  const auto* base = static_cast<const uint8_t*>(part.map);
  Cursor c{base, part.map_size, 0, path};
  const uint32_t magic = c.read<uint32_t>();
  TLLM_CHECK_ARG(magic == 0x46554747u, path, ": not a GGUF file (no \"GGUF\" magic)");
  const uint32_t version = c.read<uint32_t>();
  TLLM_CHECK_ARG(version == 2 || version == 3, path, ": GGUF version ", version, " is not supported (supported: 2, 3)");
  if (first) version_ = version;
  const uint64_t n_tensors = c.read<uint64_t>(), n_kv = c.read<uint64_t>();
  TLLM_CHECK_ARG(n_tensors <= part.map_size && n_kv <= part.map_size, path, ": GGUF header claims ", n_tensors,
                 " tensors and ", n_kv, " metadata entries");
  // Later parts of a split file carry only the split.* keys; they are checked, not kept.
  std::map<std::string, GgufValue> kv;
  for (uint64_t i = 0; i < n_kv; ++i) {
    std::string key = c.str();
    const uint32_t type = c.read<uint32_t>();
    GgufValue v = read_value(c, type, key, 0);
    TLLM_CHECK_ARG(kv.emplace(key, std::move(v)).second, path, ": metadata \"", key, "\" appears twice");
  }
  auto int_of = [&](const std::string& key) -> std::optional<int64_t> {
    auto it = kv.find(key);
    if (it == kv.end()) return std::nullopt;
    if (const auto* i = std::get_if<int64_t>(&it->second.v)) return *i;
    if (const auto* u = std::get_if<uint64_t>(&it->second.v)) return static_cast<int64_t>(*u);
    TLLM_THROW_ARG(path, ": GGUF metadata \"", key, "\" is not an integer");
  };
  uint64_t alignment = 32;
  if (const auto a = int_of("general.alignment")) {
    TLLM_CHECK_ARG(*a > 0 && *a <= 65536 && (*a & (*a - 1)) == 0, path, ": general.alignment ", *a,
                   " is not a power of two up to 65536");
    alignment = static_cast<uint64_t>(*a);
  }
  part.split_no = int_of("split.no").value_or(0);
  part.split_count = int_of("split.count").value_or(1);
  if (first) metadata_ = std::move(kv);
  std::vector<GgufTensorInfo> infos;
  for (uint64_t i = 0; i < n_tensors; ++i) {
    GgufTensorInfo t;
    t.name = c.str();
    t.part = index;
    const uint32_t nd = c.read<uint32_t>();
    TLLM_CHECK_ARG(nd >= 1 && nd <= 4, path, ": tensor \"", t.name, "\" has ", nd, " dimensions (1 to 4 allowed)");
    std::vector<int64_t> ne(nd);
    int64_t numel = 1;
    for (uint32_t d = 0; d < nd; ++d) {
      const uint64_t v = c.read<uint64_t>();
      TLLM_CHECK_ARG(v > 0 && v < (uint64_t{1} << 40), path, ": tensor \"", t.name, "\" has dimension ", v);
      ne[d] = static_cast<int64_t>(v);
      TLLM_CHECK_ARG(numel <= std::numeric_limits<int64_t>::max() / ne[d], path, ": tensor \"", t.name,
                     "\" is too large");
      numel *= ne[d];
    }
    TLLM_CHECK_ARG(numel <= (int64_t{1} << 48), path, ": tensor \"", t.name, "\" claims ", numel, " elements");
    t.shape.assign(ne.rbegin(), ne.rend());
    t.type = c.read<uint32_t>();
    t.offset = c.read<uint64_t>();
    TLLM_CHECK_ARG(t.offset % alignment == 0, path, ": tensor \"", t.name, "\" at offset ", t.offset,
                   " is not aligned to ", alignment);
    t.nbytes = ggml_row_bytes(t.type, ne[0]) * static_cast<uint64_t>(numel / ne[0]);
    TLLM_CHECK_ARG(t.nbytes > 0, path, ": tensor \"", t.name, "\" is of type ", ggml_type_name(t.type),
                   traits(t.type).block_bytes ? " with rows of " + std::to_string(ne[0]) + " elements, not whole blocks"
                                              : std::string(", which tinyllm does not read (supported: f32, f16, bf16, "
                                                            "q4_0, q4_1, q5_0, q5_1, q8_0, q3_K, q4_K, q5_K, q6_K, iq4_nl, "
                                                            "iq4_xs; a Q3_K_M, IQ4_XS, Q4_K_M or larger file of "
                                                            "the same model loads)"));
    infos.push_back(std::move(t));
  }
  const uint64_t data_start = (c.at + alignment - 1) / alignment * alignment;
  TLLM_CHECK_ARG(data_start <= part.map_size || infos.empty(), path, ": GGUF data block starts past the end of the file");
  part.data = base + std::min<uint64_t>(data_start, part.map_size);
  const uint64_t data_size = part.map_size - std::min<uint64_t>(data_start, part.map_size);
  for (const GgufTensorInfo& t : infos)
    TLLM_CHECK_ARG(t.offset <= data_size && t.nbytes <= data_size - t.offset, path, ": tensor \"", t.name,
                   "\" (", t.nbytes, " bytes at ", t.offset, ") lies past the end of the file (the data block holds ",
                   data_size, " bytes); the file is truncated or not GGUF");
  // Two tensors on the same bytes mean a corrupt header (llama.cpp's writer lays them out one
  // after another); reading them would give one tensor the other's values, silently.
  std::vector<const GgufTensorInfo*> by_offset;
  for (const GgufTensorInfo& t : infos) by_offset.push_back(&t);
  std::sort(by_offset.begin(), by_offset.end(),
            [](const GgufTensorInfo* a, const GgufTensorInfo* b) { return a->offset < b->offset; });
  for (size_t i = 1; i < by_offset.size(); ++i) {
    const GgufTensorInfo& a = *by_offset[i - 1];
    const GgufTensorInfo& b = *by_offset[i];
    TLLM_CHECK_ARG(a.offset + a.nbytes <= b.offset, path, ": tensors \"", a.name, "\" (bytes [", a.offset, ", ",
                   a.offset + a.nbytes, ")) and \"", b.name, "\" (bytes [", b.offset, ", ", b.offset + b.nbytes,
                   ")) overlap in the data block; the file is corrupt");
  }
  for (GgufTensorInfo& t : infos) {
    const std::string name = t.name;
    TLLM_CHECK_ARG(tensors_.emplace(name, std::move(t)).second, path, ": tensor \"", name, "\" appears twice",
                   parts_.size() > 1 ? " (in two parts of the split file)" : "");
  }
}

std::shared_ptr<GgufFile> GgufFile::open(const std::string& path) {
  std::shared_ptr<GgufFile> f(new GgufFile());
  f->path_ = path;
  f->self_ = f;
  f->read_part(path, true);
  const int64_t count = f->parts_[0].split_count, no = f->parts_[0].split_no;
  if (count <= 1) return f;
  // A split file (llama.cpp's gguf-split): PREFIX-00001-of-0000N.gguf holds the metadata, and
  // each part its share of the tensors. The parts are found beside the real file, through
  // any link (a model folder's model.gguf).
  std::error_code ec;
  const fs::path real = fs::canonical(path, ec);
  const fs::path at = ec ? fs::path(path) : real;
  const std::optional<GgufSplitName> name = parse_gguf_split_name(at.filename().string());
  TLLM_CHECK_ARG(count <= 9999 && no >= 0 && no < count, path, ": split.no ", no, " and split.count ", count,
                 " do not describe a part of a split file");
  TLLM_CHECK_ARG(name && name->count == count, path, ": part of a split GGUF of ", count,
                 " parts whose name does not follow llama.cpp's ",
                 gguf_split_name("PREFIX", 1, static_cast<int>(count)), " (", at.filename().string(), ")");
  TLLM_CHECK_ARG(no == 0 && name->part == 1, path, ": part ", no + 1, " of a split GGUF of ", count,
                 " parts; give its first part, ", gguf_split_name(name->prefix, 1, static_cast<int>(count)));
  for (int i = 2; i <= count; ++i) {
    const fs::path p = at.parent_path() / gguf_split_name(name->prefix, i, static_cast<int>(count));
    TLLM_CHECK_ARG(fs::exists(p, ec), path, ": part ", i, " of the split GGUF's ", count, " is missing (", p.string(),
                   ")");
    f->read_part(p.string(), false);
    const Part& got = f->parts_.back();
    TLLM_CHECK_ARG(got.split_no == i - 1 && got.split_count == count, p.string(), ": split.no ", got.split_no,
                   " and split.count ", got.split_count, " where part ", i, " of ", count, " was expected");
  }
  if (f->has("split.tensors.count")) {
    const int64_t n = f->get_int("split.tensors.count");
    TLLM_CHECK_ARG(n == static_cast<int64_t>(f->tensors_.size()), path, ": split.tensors.count is ", n, ", but the ",
                   count, " parts hold ", f->tensors_.size(), " tensors");
  }
  return f;
}

GgufFile::~GgufFile() {
  for (const Part& p : parts_)
    if (p.map) ::munmap(p.map, p.map_size);
}

std::optional<GgufSplitName> parse_gguf_split_name(const std::string& filename) {
  // PREFIX-NNNNN-of-MMMMM.gguf
  const std::string tail = "-00000-of-00000.gguf";
  if (filename.size() <= tail.size()) return std::nullopt;
  const std::string t = filename.substr(filename.size() - tail.size());
  auto digits = [&](size_t from) {
    int v = 0;
    for (size_t i = from; i < from + 5; ++i) {
      if (t[i] < '0' || t[i] > '9') return -1;
      v = v * 10 + (t[i] - '0');
    }
    return v;
  };
  if (t[0] != '-' || t.compare(6, 4, "-of-") != 0 || t.compare(15, 5, ".gguf") != 0) return std::nullopt;
  const int part = digits(1), count = digits(10);
  if (part < 1 || count < 1 || part > count) return std::nullopt;
  return GgufSplitName{filename.substr(0, filename.size() - tail.size()), part, count};
}

std::string gguf_split_name(const std::string& prefix, int part, int count) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "-%05d-of-%05d.gguf", part, count);
  return prefix + buf;
}

namespace {
const GgufValue& find_value(const std::map<std::string, GgufValue>& m, const std::string& key, const std::string& path) {
  auto it = m.find(key);
  TLLM_CHECK_ARG(it != m.end(), path, ": GGUF metadata has no \"", key, "\"");
  return it->second;
}
}  // namespace

std::string GgufFile::get_string(const std::string& key) const {
  const GgufValue& v = find_value(metadata_, key, path_);
  TLLM_CHECK_ARG(std::holds_alternative<std::string>(v.v), path_, ": GGUF metadata \"", key, "\" is not a string");
  return std::get<std::string>(v.v);
}

int64_t GgufFile::get_int(const std::string& key) const {
  const GgufValue& v = find_value(metadata_, key, path_);
  if (std::holds_alternative<int64_t>(v.v)) return std::get<int64_t>(v.v);
  TLLM_CHECK_ARG(std::holds_alternative<uint64_t>(v.v) &&
                     std::get<uint64_t>(v.v) <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max()),
                 path_, ": GGUF metadata \"", key, "\" is not an integer");
  return static_cast<int64_t>(std::get<uint64_t>(v.v));
}

double GgufFile::get_float(const std::string& key) const {
  const GgufValue& v = find_value(metadata_, key, path_);
  if (std::holds_alternative<double>(v.v)) return std::get<double>(v.v);
  return static_cast<double>(get_int(key));
}

bool GgufFile::get_bool(const std::string& key) const {
  const GgufValue& v = find_value(metadata_, key, path_);
  TLLM_CHECK_ARG(std::holds_alternative<bool>(v.v), path_, ": GGUF metadata \"", key, "\" is not a bool");
  return std::get<bool>(v.v);
}

std::vector<std::string> GgufFile::get_strings(const std::string& key) const {
  const GgufValue& v = find_value(metadata_, key, path_);
  const auto* a = std::get_if<GgufValue::Array>(&v.v);
  TLLM_CHECK_ARG(a && std::holds_alternative<std::vector<std::string>>(*a), path_, ": GGUF metadata \"", key,
                 "\" is not an array of strings");
  return std::get<std::vector<std::string>>(*a);
}

std::vector<int64_t> GgufFile::get_ints(const std::string& key) const {
  const GgufValue& v = find_value(metadata_, key, path_);
  const auto* a = std::get_if<GgufValue::Array>(&v.v);
  TLLM_CHECK_ARG(a, path_, ": GGUF metadata \"", key, "\" is not an array");
  if (const auto* i = std::get_if<std::vector<int64_t>>(a)) return *i;
  const auto* u = std::get_if<std::vector<uint64_t>>(a);
  TLLM_CHECK_ARG(u, path_, ": GGUF metadata \"", key, "\" is not an array of integers");
  return std::vector<int64_t>(u->begin(), u->end());
}

const GgufTensorInfo& GgufFile::tensor(const std::string& name) const {
  auto it = tensors_.find(name);
  TLLM_CHECK_ARG(it != tensors_.end(), path_, ": no tensor \"", name, "\"");
  return it->second;
}

DType GgufFile::float_dtype(const std::string& name) const {
  const uint32_t type = tensor(name).type;
  return type == kF16 ? DType::F16 : type == kBF16 ? DType::BF16 : DType::F32;  // blocks decode to f32
}

Tensor GgufFile::tensor_floats(const std::string& name) const {
  const GgufTensorInfo& t = tensor(name);
  return floats_at(parts_[t.part].data + t.offset, Shape(t.shape.begin(), t.shape.end()), t.type);
}

Tensor GgufFile::tensor_floats(const std::string& name, int64_t slice) const {
  const GgufTensorInfo& t = tensor(name);
  TLLM_CHECK_ARG(t.shape.size() >= 2 && slice >= 0 && slice < t.shape[0], path_, ": tensor \"", name, "\" has no slice ",
                 slice);
  const uint64_t bytes = t.nbytes / static_cast<uint64_t>(t.shape[0]);
  return floats_at(parts_[t.part].data + t.offset + static_cast<uint64_t>(slice) * bytes,
                   Shape(t.shape.begin() + 1, t.shape.end()), t.type);
}

Tensor GgufFile::floats_at(const uint8_t* p, const Shape& shape, uint32_t type) const {
  if (type == kF32 || type == kF16 || type == kBF16) {
    std::shared_ptr<GgufFile> keep = self_.lock();
    TLLM_ASSERT(keep != nullptr);
    return Tensor::wrap(const_cast<uint8_t*>(p), shape, type == kF16 ? DType::F16 : type == kBF16 ? DType::BF16 : DType::F32,
                        Device::CPU, std::move(keep));
  }
  Tensor out = Tensor::empty(shape, DType::F32);
  ggml_dequantize(type, p, out.data<float>(), out.numel());
  return out;
}

}  // namespace tllm
