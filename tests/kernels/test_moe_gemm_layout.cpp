// The index maps of the grouped MoE GEMM (kernels/cuda/moe_gemm_layout.h) replayed on the
// host through a model of the PTX instructions the kernel uses, so that a wrong fragment
// or load mapping fails here, without a GPU:
//   cp.async 16 B chunks (zero-filled when the source is out of range),
//   ldmatrix.sync.m8n8.x4.b16: lanes 8q..8q+7 give the row addresses of matrix q; register q
//     of lane L holds elements 2(L%4), 2(L%4)+1 of row L/4 of matrix q,
//   mma.m16n8k16.row.col bf16: A element (r, c) in lane (r%8)*4 + (c%8)/2, register
//     (r/8) + 2 (c/8); B element (k, n) in lane n*4 + (k%8)/2, register k/8; C element
//     (r, n) in lane (r%8)*4 + n/2, register 2 (r/8) + n%2; the low half of a register holds
//     the even column.
// Values are small integers, so every sum is exact and the comparison is equality.
#include <gtest/gtest.h>

#include <array>
#include <cmath>
#include <random>
#include <vector>

#include "kernels/cuda/moe_gemm_layout.h"

using namespace tllm::cuda::moe_gemm;

namespace {

using Reg = std::array<float, 2>;  // one 32-bit register = two bf16 (low = even column)

struct Problem {
  bool gated;
  int N, K, rows, n0, up_offset;
  std::vector<float> a;  // [rows, K] (the tile's activation rows, already gathered)
  std::vector<float> w;  // [weight rows, K] of one expert
};

// out[r][col] of the tile computed directly.
double expected(const Problem& p, int r, int col) {
  auto dot = [&](int wrow) {
    double s = 0;
    for (int k = 0; k < p.K; ++k) s += p.a[r * p.K + k] * p.w[wrow * p.K + k];
    return s;
  };
  if (!p.gated) return dot(col);
  const double g = dot(col), u = dot(p.up_offset + col);
  return g / (1.0 + std::exp(-g)) * u;
}

// Replays one block (all 4 warps) of the kernel and checks every output it writes, and that
// every in-range output is written exactly once.
void run_tile(const Problem& p) {
  std::vector<float> As(BM * LDS), Bs(BN * LDS);  // one stage is enough: stage choice is kt % STAGES
  float acc[4][32][2][8][4] = {};                   // [warp][lane][mt][j][c]
  const int KT = (p.K + BK - 1) / BK;
  for (int kt = 0; kt < KT; ++kt) {
    std::fill(As.begin(), As.end(), NAN);
    std::fill(Bs.begin(), Bs.end(), NAN);
    for (int t = 0; t < THREADS; ++t) {
      const int kc = load_k(t), k0 = kt * BK + kc;
      const bool kin = k0 + 8 <= p.K;
      for (int i = 0; i < A_CHUNKS; ++i) {
        const int r = load_row(t, i);
        for (int e = 0; e < 8; ++e)
          As[r * LDS + kc + e] = (kin && r < p.rows) ? p.a[r * p.K + k0 + e] : 0.0f;
      }
      for (int i = 0; i < B_CHUNKS; ++i) {
        const int j = load_row(t, i), wr = b_weight_row(p.gated, j, p.n0, p.N, p.up_offset);
        for (int e = 0; e < 8; ++e) Bs[j * LDS + kc + e] = (kin && wr >= 0) ? p.w[wr * p.K + k0 + e] : 0.0f;
      }
    }
    for (int warp = 0; warp < 4; ++warp) {
      const int warp_m = warp >> 1, warp_n = warp & 1;
      for (int kk = 0; kk < BK; kk += 16) {
        // ldmatrix.x4 for the A fragments of both m tiles and the B fragments of 4 tile pairs.
        auto ldmatrix = [](const std::vector<float>& sm, auto addr_of_lane) {
          std::array<std::array<Reg, 4>, 32> regs;
          for (int q = 0; q < 4; ++q)
            for (int L = 0; L < 32; ++L) {
              const int src_lane = 8 * q + L / 4;  // row L/4 of matrix q
              const int base = addr_of_lane(src_lane);
              regs[L][q] = {sm[base + 2 * (L % 4)], sm[base + 2 * (L % 4) + 1]};
            }
          return regs;
        };
        std::array<std::array<Reg, 4>, 32> af[2], bf[4];
        for (int mt = 0; mt < 2; ++mt)
          af[mt] = ldmatrix(As, [&](int lane) { return a_frag_row(warp_m, mt, lane) * LDS + a_frag_col(kk, lane); });
        for (int jp = 0; jp < 4; ++jp)
          bf[jp] = ldmatrix(Bs, [&](int lane) {
            return b_frag_row(p.gated, warp_n, jp, lane) * LDS + b_frag_col(kk, lane);
          });
        for (int mt = 0; mt < 2; ++mt)
          for (int j = 0; j < 8; ++j) {
            // mma.m16n8k16: rebuild A [16][16] and B [16][8] from the lanes' registers.
            float A[16][16], B[16][8];
            for (int r = 0; r < 16; ++r)
              for (int c = 0; c < 16; ++c) A[r][c] = af[mt][(r % 8) * 4 + (c % 8) / 2][(r / 8) + 2 * (c / 8)][c % 2];
            for (int k = 0; k < 16; ++k)
              for (int n = 0; n < 8; ++n) B[k][n] = bf[j >> 1][n * 4 + (k % 8) / 2][(j & 1) * 2 + k / 8][k % 2];
            for (int r = 0; r < 16; ++r)
              for (int n = 0; n < 8; ++n) {
                float s = 0;
                for (int k = 0; k < 16; ++k) s += A[r][k] * B[k][n];
                acc[warp][(r % 8) * 4 + n / 2][mt][j][2 * (r / 8) + n % 2] += s;
              }
          }
      }
    }
  }
  // Epilogue, as the kernel writes it.
  const int cols = cols_per_block(p.gated);
  std::vector<int> written(static_cast<size_t>(BM * cols), 0);
  for (int warp = 0; warp < 4; ++warp)
    for (int lane = 0; lane < 32; ++lane)
      for (int mt = 0; mt < 2; ++mt)
        for (int j = 0; j < (p.gated ? 4 : 8); ++j)
          for (int c = 0; c < 4; ++c) {
            const int r = c_row(warp >> 1, mt, lane, c), rel = c_col(p.gated, warp & 1, j, lane, c);
            const int col = p.n0 + rel;
            if (r >= p.rows || col >= p.N) continue;
            const float* a = acc[warp][lane][mt][j];
            const double got = p.gated ? a[c] / (1.0 + std::exp(-static_cast<double>(a[c]))) * acc[warp][lane][mt][j + 4][c]
                                       : a[c];
            ASSERT_NEAR(got, expected(p, r, col), 1e-9 * (1 + std::fabs(expected(p, r, col))))
                << "row " << r << " col " << col << " warp " << warp << " lane " << lane << " mt " << mt << " j " << j;
            ++written[r * cols + rel];
          }
  for (int r = 0; r < BM; ++r)
    for (int rel = 0; rel < cols; ++rel) {
      const bool in = r < p.rows && p.n0 + rel < p.N;
      EXPECT_EQ(written[r * cols + rel], in ? 1 : 0) << "row " << r << " col " << p.n0 + rel;
    }
}

Problem make(bool gated, int N, int K, int rows, int block_x, std::mt19937& rng) {
  Problem p;
  p.gated = gated;
  p.N = N;
  p.K = K;
  p.rows = rows;
  p.n0 = block_x * cols_per_block(gated);
  p.up_offset = gated ? N : 0;
  std::uniform_int_distribution<int> d(-3, 3);
  p.a.resize(static_cast<size_t>(rows) * K);
  for (float& v : p.a) v = static_cast<float>(d(rng));
  p.w.resize(static_cast<size_t>(gated ? 2 * N : N) * K);
  for (float& v : p.w) v = static_cast<float>(d(rng)) * 0.25f;
  return p;
}

}  // namespace

TEST(MoeGemmLayout, ConstantsAreConsistent) {
  EXPECT_EQ(A_CHUNKS * THREADS * 8, BM * BK);
  EXPECT_EQ(B_CHUNKS * THREADS * 8, BN * BK);
  EXPECT_EQ(LDS * 2 % 16, 0);  // cp.async / ldmatrix rows stay 16-byte aligned
  // The 8 rows one ldmatrix phase reads start in 8 distinct 16-byte bank groups.
  std::array<bool, 8> seen{};
  for (int r = 0; r < 8; ++r) {
    const int group = (r * LDS * 2 / 16) % 8;
    EXPECT_FALSE(seen[group]) << "bank conflict at row " << r;
    seen[group] = true;
  }
  // Every smem row/k chunk of a stage is loaded by exactly one (thread, chunk).
  std::vector<int> a_hits(BM * BK / 8, 0), b_hits(BN * BK / 8, 0);
  for (int t = 0; t < THREADS; ++t) {
    for (int i = 0; i < A_CHUNKS; ++i) ++a_hits[load_row(t, i) * (BK / 8) + load_k(t) / 8];
    for (int i = 0; i < B_CHUNKS; ++i) ++b_hits[load_row(t, i) * (BK / 8) + load_k(t) / 8];
  }
  for (int h : a_hits) EXPECT_EQ(h, 1);
  for (int h : b_hits) EXPECT_EQ(h, 1);
}

TEST(MoeGemmLayout, DownTilesMatchDirectProduct) {
  std::mt19937 rng(5);
  // Full tile, partial rows, partial columns (N not a multiple of BN), K tails of 8 and 16.
  for (auto [N, K, rows, bx] : std::vector<std::array<int, 4>>{
           {128, 64, 64, 0}, {256, 96, 17, 1}, {200, 40, 64, 1}, {136, 8, 1, 1}, {64, 48, 33, 0}}) {
    SCOPED_TRACE(testing::Message() << "N=" << N << " K=" << K << " rows=" << rows << " block " << bx);
    run_tile(make(false, N, K, rows, bx, rng));
  }
}

TEST(MoeGemmLayout, GatedTilesMatchSiluOfGateTimesUp) {
  std::mt19937 rng(6);
  for (auto [N, K, rows, bx] : std::vector<std::array<int, 4>>{
           {64, 64, 64, 0}, {128, 32, 5, 1}, {96, 56, 64, 1}, {48, 16, 40, 0}, {176, 72, 64, 2}}) {
    SCOPED_TRACE(testing::Message() << "I=" << N << " K=" << K << " rows=" << rows << " block " << bx);
    run_tile(make(true, N, K, rows, bx, rng));
  }
}
