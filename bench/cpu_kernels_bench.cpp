// Micro-benchmarks of the CPU kernels with their limits beside them:
//   BM_MemoryBandwidth      read-only sum over 1 GiB with every thread: the decode roofline
//   BM_Linear               the Qwen2.5-0.5B projections at T = 1 (GB/s of weights) and
//                           T = 16..512 (GFLOP/s, against 2 cores x 2 FMA x 16 lanes)
//   BM_DecodeLinears        every linear of a 24-layer Qwen2.5-0.5B-shape bf16 model once
//                           (~0.99 GB, distinct buffers): tokens/s of the weight stream alone
//   BM_Attention            decode (1 query, long context) and prefill, paged bf16 / f32 KV
//   BM_RmsNorm, BM_SiluMul, BM_Sample, BM_LogSoftmax over the vocabulary
// Run: build-*/bench/cpu_kernels_bench [--benchmark_filter=Linear]
// TLLM_THREADS=n sets the backend's threads (default: all cores). Counters ending in
// "@cpu" divide by process CPU time instead of wall time and multiply by the thread count:
// the rate the threads would reach with their cores to themselves (on a shared, loaded
// machine); pool spin-waits count as busy, so it errs low.
// GCC 12 flags _mm512_undefined_*() inside its own intrinsics (a false positive).
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <benchmark/benchmark.h>
#include <immintrin.h>

#include <time.h>

#include <cmath>
#include <cstdlib>
#include <map>
#include <memory>
#include <random>
#include <vector>

#include "core/thread_pool.h"
#include "kernels/cpu/cpu_backend.h"

using namespace tllm;

namespace {

int bench_threads() {
  const char* e = std::getenv("TLLM_THREADS");
  return e ? std::atoi(e) : 0;
}

CpuBackend& backend() {
  static std::unique_ptr<CpuBackend> be = make_cpu_backend_isa(CpuBackendOptions{bench_threads()}, cpu::best_isa());
  return *be;
}

double process_cpu_seconds() {
  timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

// Adds name@cpu = amount / (process CPU seconds / threads).
struct CpuClock {
  double start = process_cpu_seconds();
  void report(benchmark::State& state, const char* name, double amount, int threads) const {
    const double cpu = process_cpu_seconds() - start;
    if (cpu > 0) state.counters[std::string(name) + "@cpu"] = amount * threads / cpu;
  }
};

Tensor random_tensor(Shape shape, DType dtype, uint64_t seed, float std = 1.0f) {
  Tensor t = Tensor::empty(std::move(shape), dtype);
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> d(0.0f, std);
  for (int64_t i = 0; i < t.numel(); ++i) {
    const float v = d(rng);
    if (dtype == DType::F32) t.data<float>()[i] = v;
    else if (dtype == DType::BF16) t.data<uint16_t>()[i] = f32_to_bf16(v);
    else t.data<uint16_t>()[i] = f32_to_f16(v);
  }
  return t;
}

// Fast fill for the big buffers (values do not matter for bandwidth).
Tensor filled_tensor(Shape shape, DType dtype) {
  Tensor t = Tensor::empty(std::move(shape), dtype);
  uint16_t* h = static_cast<uint16_t*>(t.raw());
  const size_t n = t.nbytes() / 2;
  for (size_t i = 0; i < n; ++i) h[i] = static_cast<uint16_t>(0x3c00 + (i * 2654435761u >> 20) % 512);
  return t;
}

__attribute__((target("avx512f"))) float sum_avx512(const float* p, int64_t n) {
  __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
  for (int64_t i = 0; i + 64 <= n; i += 64) {
    a0 = _mm512_add_ps(a0, _mm512_load_ps(p + i));
    a1 = _mm512_add_ps(a1, _mm512_load_ps(p + i + 16));
    a2 = _mm512_add_ps(a2, _mm512_load_ps(p + i + 32));
    a3 = _mm512_add_ps(a3, _mm512_load_ps(p + i + 48));
  }
  return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
}

__attribute__((target("avx2"))) float sum_avx2(const float* p, int64_t n) {
  __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
  for (int64_t i = 0; i + 32 <= n; i += 32) {
    a0 = _mm256_add_ps(a0, _mm256_load_ps(p + i));
    a1 = _mm256_add_ps(a1, _mm256_load_ps(p + i + 8));
    a2 = _mm256_add_ps(a2, _mm256_load_ps(p + i + 16));
    a3 = _mm256_add_ps(a3, _mm256_load_ps(p + i + 24));
  }
  alignas(32) float t[8];
  _mm256_store_ps(t, _mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
  return t[0] + t[1] + t[2] + t[3] + t[4] + t[5] + t[6] + t[7];
}

// Independent FMAs only (12 accumulator chains): the f32 FMA peak that GEMM numbers are
// measured against (2 FMA pipes x 16 lanes x 2 flops per cycle per core on Zen 4/5).
__attribute__((target("avx512f"), noinline)) float fma_loop(int64_t iters, float seed) {
  __m512 a[12];
  for (int i = 0; i < 12; ++i) a[i] = _mm512_set1_ps(seed + static_cast<float>(i));
  const __m512 m = _mm512_set1_ps(0.999999f), c = _mm512_set1_ps(1e-7f);
  for (int64_t it = 0; it < iters; ++it)
#pragma GCC unroll 12
    for (int i = 0; i < 12; ++i) a[i] = _mm512_fmadd_ps(a[i], m, c);
  __m512 s = a[0];
  for (int i = 1; i < 12; ++i) s = _mm512_add_ps(s, a[i]);
  return _mm512_reduce_add_ps(s);
}

void BM_FmaPeak(benchmark::State& state) {
  const int threads = static_cast<int>(state.range(0));
  ThreadPool pool(threads);
  const int64_t iters = 1 << 22;
  std::vector<float> out(static_cast<size_t>(threads));
  const CpuClock clock;
  for (auto _ : state) {
    pool.run([&](int t, int) { out[t] = fma_loop(iters, static_cast<float>(t)); });
    benchmark::DoNotOptimize(out.data());
  }
  const double flops = 12.0 * 16 * 2 * static_cast<double>(iters) * threads * state.iterations();
  state.counters["GFLOP/s"] = benchmark::Counter(flops / 1e9, benchmark::Counter::kIsRate);
  clock.report(state, "GFLOP/s", flops / 1e9, threads);
}
BENCHMARK(BM_FmaPeak)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_MemoryBandwidth(benchmark::State& state) {
  const int64_t n = (int64_t{1} << 30) / 4;  // 1 GiB of f32
  const int threads = static_cast<int>(state.range(0));
  static Tensor buf;
  if (!buf.defined()) {
    buf = Tensor::empty({n}, DType::F32);
    float* p = buf.data<float>();
    for (int64_t i = 0; i < n; ++i) p[i] = 1.0f;
  }
  ThreadPool pool(threads);
  const bool avx512 = cpu::best_isa() == cpu::Isa::Avx512;
  std::vector<float> partial(static_cast<size_t>(threads));
  const CpuClock clock;
  for (auto _ : state) {
    pool.run([&](int t, int nt) {
      const int64_t b = n / 1024 * t / nt * 1024, e = n / 1024 * (t + 1) / nt * 1024;
      const float* p = buf.data<float>() + b;
      partial[t] = avx512 ? sum_avx512(p, e - b) : sum_avx2(p, e - b);
    });
    benchmark::DoNotOptimize(partial.data());
  }
  state.counters["GB/s"] = benchmark::Counter(static_cast<double>(n) * 4 * state.iterations() / 1e9,
                                              benchmark::Counter::kIsRate);
  clock.report(state, "GB/s", static_cast<double>(n) * 4 * state.iterations() / 1e9, threads);
}
BENCHMARK(BM_MemoryBandwidth)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();

// Args: T, N, K, dtype (0 f32, 1 bf16, 2 f16).
void BM_Linear(benchmark::State& state) {
  const int64_t T = state.range(0), N = state.range(1), K = state.range(2);
  const DType dt = state.range(3) == 0 ? DType::F32 : state.range(3) == 1 ? DType::BF16 : DType::F16;
  CpuBackend& be = backend();
  LinearWeight w;
  w.weight = random_tensor({N, K}, dt, 1, 0.05f);
  Tensor x = random_tensor({T, K}, DType::F32, 2), out = Tensor::empty({T, N}, DType::F32);
  const CpuClock clock;
  for (auto _ : state) be.linear(out, x, w);
  const double it = static_cast<double>(state.iterations());
  clock.report(state, T == 1 ? "GB/s" : "GFLOP/s", (T == 1 ? static_cast<double>(w.weight.nbytes()) : 2.0 * T * N * K) * it / 1e9,
               be.exec().pool.size());
  state.counters["GB/s"] = benchmark::Counter(static_cast<double>(w.weight.nbytes()) * it / 1e9, benchmark::Counter::kIsRate);
  state.counters["GFLOP/s"] = benchmark::Counter(2.0 * T * N * K * it / 1e9, benchmark::Counter::kIsRate);
  state.SetLabel(std::string(dtype_name(dt)) + " " + be.name());
}
void linear_args(benchmark::internal::Benchmark* b) {
  // Qwen2.5-0.5B: hidden 896, 14 q / 2 kv heads of 64, intermediate 4864, vocab 151936.
  const std::vector<std::pair<int64_t, int64_t>> shapes = {{1152, 896}, {896, 896}, {9728, 896}, {896, 4864}, {151936, 896}};
  for (int64_t T : {1, 4})
    for (auto [N, K] : shapes) b->Args({T, N, K, 1});
  for (auto [N, K] : shapes) b->Args({1, N, K, 0});
  for (auto [N, K] : shapes) b->Args({1, N, K, 2});
  for (int64_t T : {16, 64, 128, 512})
    for (auto [N, K] : std::vector<std::pair<int64_t, int64_t>>{{1152, 896}, {9728, 896}, {896, 4864}}) b->Args({T, N, K, 1});
  b->Args({128, 9728, 896, 0});
  b->Args({128, 9728, 896, 2});
  b->Args({128, 4096, 4096, 1});
}
BENCHMARK(BM_Linear)->Apply(linear_args)->Unit(benchmark::kMicrosecond)->UseRealTime();

// Random codes, constant scale / offset: int8 per channel (bits 8) or int4 group 32.
QuantizedMatrix random_quantized(int64_t N, int64_t K, int bits, uint32_t seed) {
  QuantizedMatrix m;
  m.bits = bits;
  m.group_size = bits == 4 ? 32 : static_cast<int>(K);
  m.rows = N;
  m.cols = K;
  m.codes = Tensor::empty({N, K}, DType::U8);
  std::mt19937 rng(seed);
  for (int64_t i = 0; i < N * K; ++i) m.codes.data<uint8_t>()[i] = static_cast<uint8_t>(rng() % (1u << bits));
  m.scales = Tensor::empty({N, m.groups()}, DType::F32);
  m.offsets = Tensor::empty({N, m.groups()}, DType::F32);
  for (int64_t i = 0; i < m.scales.numel(); ++i) {
    m.scales.data<float>()[i] = 0.01f;
    m.offsets.data<float>()[i] = -0.05f;
  }
  return m;
}

// Every projection of a 24-layer Qwen2.5-0.5B-shape model at T rows, distinct buffers
// (no cache reuse between layers), plus the tied lm_head. Args: T, weight bits (16 bf16;
// 8 int8 per channel; 4 int4 group 32 with f16 scale/offset, lm_head int8 as the bench's
// int4 model has it).
void BM_DecodeLinears(benchmark::State& state) {
  const int64_t T = state.range(0);
  const int bits = static_cast<int>(state.range(1));
  CpuBackend& be = backend();
  struct Layer {
    LinearWeight qkv, o, gate_up, down;
  };
  static std::map<int, std::pair<std::vector<Layer>, LinearWeight>> models;
  auto make = [&](int64_t N, int64_t K, bool bias, int b) {
    LinearWeight w;
    if (b == 16) {
      w.weight = filled_tensor({N, K}, DType::BF16);
    } else {
      w = be.pack_quantized(random_quantized(N, K, b, static_cast<uint32_t>(N * 31 + K)), false);
    }
    if (bias) w.bias = Tensor::zeros({N}, DType::F32);
    return w;
  };
  auto& [layers, lm_head] = models[bits];
  if (layers.empty()) {
    for (int l = 0; l < 24; ++l)
      layers.push_back({make(1152, 896, true, bits), make(896, 896, false, bits), make(9728, 896, false, bits),
                        make(896, 4864, false, bits)});
    lm_head = make(151936, 896, false, bits == 16 ? 16 : 8);
  }
  Tensor x896 = random_tensor({T, 896}, DType::F32, 3), x4864 = random_tensor({T, 4864}, DType::F32, 4);
  Tensor qkv = Tensor::empty({T, 1152}, DType::F32), o = Tensor::empty({T, 896}, DType::F32);
  Tensor gu = Tensor::empty({T, 9728}, DType::F32), logits = Tensor::empty({T, 151936}, DType::F32);
  auto nbytes = [](const LinearWeight& w) {
    return static_cast<double>(w.weight.nbytes() + (w.scales.defined() ? w.scales.nbytes() : 0) +
                               (w.zeros.defined() ? w.zeros.nbytes() : 0));
  };
  double bytes = nbytes(lm_head);
  for (const Layer& L : layers) bytes += nbytes(L.qkv) + nbytes(L.o) + nbytes(L.gate_up) + nbytes(L.down);
  const CpuClock clock;
  for (auto _ : state) {
    for (const Layer& L : layers) {
      be.linear(qkv, x896, L.qkv);
      be.linear(o, x896, L.o);
      be.linear(gu, x896, L.gate_up);
      be.linear(o, x4864, L.down);
    }
    be.linear(logits, x896, lm_head);
  }
  const double it = static_cast<double>(state.iterations());
  state.counters["GB/s"] = benchmark::Counter(bytes * it / 1e9, benchmark::Counter::kIsRate);
  state.counters["tok/s"] = benchmark::Counter(T * it, benchmark::Counter::kIsRate);
  clock.report(state, "GB/s", bytes * it / 1e9, be.exec().pool.size());
  state.counters["GB"] = bytes / 1e9;
}
BENCHMARK(BM_DecodeLinears)->Args({1, 16})->Args({1, 8})->Args({1, 4})->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(2.0);
// A few tokens at once (speculative decoding's verification of k drafts runs T = k + 1): a
// forward that streams its weights costs about one token's as long as they stay DRAM-bound.
BENCHMARK(BM_DecodeLinears)
    ->ArgsProduct({{2, 4, 5}, {16, 8, 4}})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->MinTime(2.0);

// The quantized decode kernel on one weight that stays in cache (the 0.5B gate|up, 5.4 MB at
// int4 g32, 8.7 MB at int8): its compute rate, with memory out of the way. Decode streams
// each weight once from DRAM; a kernel slower than DRAM here is compute-bound there too.
// Args: weight bits (8 per channel, 4 group 32).
void BM_QuantDecodeHot(benchmark::State& state) {
  const int bits = static_cast<int>(state.range(0));
  CpuBackend& be = backend();
  const int64_t N = 9728, K = 896;
  const LinearWeight w = be.pack_quantized(random_quantized(N, K, bits, 7), false);
  const double bytes = static_cast<double>(w.weight.nbytes() + w.scales.nbytes() + w.zeros.nbytes());
  Tensor x = random_tensor({1, K}, DType::F32, 5), out = Tensor::empty({1, N}, DType::F32);
  const CpuClock clock;
  for (auto _ : state) be.linear(out, x, w);
  clock.report(state, "GB/s", bytes * static_cast<double>(state.iterations()) / 1e9, be.exec().pool.size());
}
BENCHMARK(BM_QuantDecodeHot)->Arg(8)->Arg(4)->Unit(benchmark::kMicrosecond)->UseRealTime();

// The quantized prefill kernel (the fast path: int8-rounded activations, integer dot
// products) on the same weight for a 128-token chunk: GFLOP/s. Args: weight bits.
void BM_QuantPrefill(benchmark::State& state) {
  const int bits = static_cast<int>(state.range(0));
  CpuBackend& be = backend();
  const int64_t N = 9728, K = 896, T = 128;
  const LinearWeight w = be.pack_quantized(random_quantized(N, K, bits, 7), false);
  Tensor x = random_tensor({T, K}, DType::F32, 5), out = Tensor::empty({T, N}, DType::F32);
  const CpuClock clock;
  for (auto _ : state) be.linear(out, x, w);
  clock.report(state, "GFLOP/s", 2.0 * static_cast<double>(N * K * T) * static_cast<double>(state.iterations()) / 1e9,
               be.exec().pool.size());
}
BENCHMARK(BM_QuantPrefill)->Arg(8)->Arg(4)->Unit(benchmark::kMillisecond)->UseRealTime();

// Args: q_len, k_len, cache dtype (0 f32, 1 bf16), batch, caches walked in turn (24: a decode
// step's layers, whose 50 MB at 2,048 keys come from DRAM). Qwen2.5-0.5B heads: 14 q, 2 kv, 64.
void BM_Attention(benchmark::State& state) {
  const int q_len = static_cast<int>(state.range(0)), k_len = static_cast<int>(state.range(1));
  const DType cache = state.range(2) ? DType::BF16 : DType::F32;
  const int B = static_cast<int>(state.range(3));
  const int layers = static_cast<int>(state.range(4));
  const int nq = 14, nkv = 2, D = 64, bs = 16;
  CpuBackend& be = backend();
  QKVLayout L{nq, nkv, D};
  const int blocks_per_seq = (k_len + bs - 1) / bs;
  std::vector<Tensor> kcs, vcs;
  for (int l = 0; l < layers; ++l) {
    kcs.push_back(random_tensor({B * blocks_per_seq, bs, nkv, D}, cache, 5 + 2 * l));
    vcs.push_back(random_tensor({B * blocks_per_seq, bs, nkv, D}, cache, 6 + 2 * l));
  }
  Tensor qkv = random_tensor({B * q_len, L.row_stride()}, DType::F32, 7), out = Tensor::empty({B * q_len, nq * D}, DType::F32);
  AttentionMeta m;
  m.num_seqs = B;
  m.num_tokens = B * q_len;
  m.max_seqlen_q = q_len;
  m.max_seqlen_k = k_len;
  m.block_size = bs;
  m.max_blocks_per_seq = blocks_per_seq;
  m.cu_seqlens_q = Tensor::empty({B + 1}, DType::I32);
  m.seq_lens_k = Tensor::empty({B}, DType::I32);
  m.block_tables = Tensor::empty({B, blocks_per_seq}, DType::I32);
  for (int b = 0; b <= B; ++b) m.cu_seqlens_q.data<int32_t>()[b] = b * q_len;
  for (int b = 0; b < B; ++b) m.seq_lens_k.data<int32_t>()[b] = k_len;
  for (int i = 0; i < B * blocks_per_seq; ++i) m.block_tables.data<int32_t>()[i] = i;
  const CpuClock clock;
  int layer = 0;
  for (auto _ : state) {
    be.attention(out, qkv, L, kcs[layer], vcs[layer], m, 0.125f, 0);
    layer = (layer + 1) % layers;
  }
  // Visible (query, key) pairs x heads x (2 FMAs of head_dim): QK^T and PV.
  double pairs = 0;
  for (int i = 0; i < q_len; ++i) pairs += k_len - q_len + i + 1;
  const double it = static_cast<double>(state.iterations());
  state.counters["GFLOP/s"] = benchmark::Counter(B * pairs * nq * 4.0 * D * it / 1e9, benchmark::Counter::kIsRate);
  clock.report(state, "GFLOP/s", B * pairs * nq * 4.0 * D * it / 1e9, be.exec().pool.size());
  state.counters["KV GB/s"] = benchmark::Counter(static_cast<double>(B) * k_len * nkv * D * 2 * dtype_size(cache) * it / 1e9,
                                                 benchmark::Counter::kIsRate);
}
BENCHMARK(BM_Attention)
    ->Args({1, 1024, 1, 1, 1})->Args({1, 4096, 1, 1, 1})->Args({1, 4096, 0, 1, 1})->Args({1, 2048, 0, 1, 24})
    ->Args({1, 2048, 1, 1, 24})
    ->Args({1, 1024, 1, 8, 1})->Args({128, 128, 1, 1, 1})->Args({512, 512, 1, 1, 1})->Args({512, 512, 0, 1, 1})
    ->Args({128, 2048, 1, 1, 1})
    ->Unit(benchmark::kMicrosecond)->UseRealTime();

void BM_RmsNorm(benchmark::State& state) {
  const int64_t T = state.range(0), H = 896;
  CpuBackend& be = backend();
  Tensor x = random_tensor({T, H}, DType::F32, 8), w = random_tensor({H}, DType::F32, 9), out = Tensor::empty({T, H}, DType::F32);
  for (auto _ : state) be.rms_norm(out, x, w, 1e-6f);
  state.counters["GB/s"] = benchmark::Counter(T * H * 8.0 * state.iterations() / 1e9, benchmark::Counter::kIsRate);
}
BENCHMARK(BM_RmsNorm)->Arg(1)->Arg(512)->Unit(benchmark::kMicrosecond)->UseRealTime();

void BM_SiluMul(benchmark::State& state) {
  const int64_t T = state.range(0), I = 4864;
  CpuBackend& be = backend();
  Tensor gu = random_tensor({T, 2 * I}, DType::F32, 10), out = Tensor::empty({T, I}, DType::F32);
  for (auto _ : state) be.silu_mul(out, gu);
  state.counters["GB/s"] = benchmark::Counter(T * I * 12.0 * state.iterations() / 1e9, benchmark::Counter::kIsRate);
}
BENCHMARK(BM_SiluMul)->Arg(1)->Arg(512)->Unit(benchmark::kMicrosecond)->UseRealTime();

// Args: rows, mode (0 greedy, 1 temperature only, 2 top-k 50 + top-p 0.9, 3 top-p 0.95).
void BM_Sample(benchmark::State& state) {
  const int64_t R = state.range(0), V = 151936;
  CpuBackend& be = backend();
  Tensor logits = random_tensor({R, V}, DType::F32, 11, 3.0f);
  SampleBatch b;
  for (int64_t r = 0; r < R; ++r) {
    SamplingRow row;
    row.temperature = state.range(1) == 0 ? 0.0f : 0.8f;
    if (state.range(1) == 2) {
      row.top_k = 50;
      row.top_p = 0.9f;
    }
    if (state.range(1) == 3) row.top_p = 0.95f;
    row.seed = static_cast<uint64_t>(r);
    row.num_top_logprobs = 5;
    b.rows.push_back(row);
  }
  for (auto _ : state) benchmark::DoNotOptimize(be.sample(logits, b));
}
BENCHMARK(BM_Sample)->Args({1, 0})->Args({1, 1})->Args({1, 2})->Args({1, 3})->Args({8, 2})->Unit(benchmark::kMicrosecond)->UseRealTime();

void BM_LogSoftmax(benchmark::State& state) {
  const int64_t R = state.range(0), V = 151936;
  CpuBackend& be = backend();
  Tensor logits = random_tensor({R, V}, DType::F32, 12, 3.0f);
  for (auto _ : state) benchmark::DoNotOptimize(be.log_softmax_to_host(logits));
  state.counters["GB/s"] = benchmark::Counter(R * V * 8.0 * state.iterations() / 1e9, benchmark::Counter::kIsRate);
}
BENCHMARK(BM_LogSoftmax)->Arg(1)->Arg(16)->Unit(benchmark::kMicrosecond)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
