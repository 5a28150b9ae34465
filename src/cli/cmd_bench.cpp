// tinyllm bench: llama-bench-style rows (pp = prompt processing, tg = token generation)
// through the real engine, each beside its limit measured in the same run: decode against
// the memory-bandwidth roofline (bytes of weights + KV read per step / bandwidth), prefill
// against the matrix-multiply peak of this backend (a large `linear`). On the CPU each decode
// row's bandwidth is read again after the row and the higher reading is its limit, and a row
// whose step fits in the last-level cache says so (it can pass 100%: the demo model does).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <exception>
#include <memory>
#include <random>
#include <sstream>

#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/options.h"
#include "core/cpu_features.h"
#include "core/logging.h"
#include "core/thread_pool.h"
#include "core/timer.h"
#include "engine/engine.h"
#include "kernels/backend.h"
#include "model/quant.h"

namespace tllm {

namespace {

struct BenchArgs {
  EngineOptions engine;
  std::vector<int> prompt_lens{512};
  std::vector<int> gen_lens{128};
  std::vector<int> depths{0};
  std::vector<int> batches{1};
  int repetitions = 3;
  bool json = false;
};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0.0 : v[v.size() / 2];
}

// CPU bandwidth in bytes/s: a multithreaded read of 1 GiB (decode reads weights, it does
// not write them).
double measure_cpu_bandwidth(int threads) {
  const int64_t n = int64_t{1} << 28;  // 2^28 floats = 1 GiB
  Tensor t = Tensor::empty({n}, DType::F32);
  float* p = t.data<float>();
  ThreadPool pool(threads);
  pool.parallel_for(n, 1 << 20, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) p[i] = static_cast<float>(i & 7);
  });
  std::vector<double> secs;
  std::vector<double> sink(pool.size(), 0.0);
  for (int r = 0; r < 5; ++r) {
    const double t0 = now_seconds();
    pool.parallel_for(n, 1 << 20, [&](int64_t b, int64_t e) {
      // Eight independent accumulators so the loop is bound by loads, not adds.
      float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
      for (int64_t i = b; i + 8 <= e; i += 8)
        for (int k = 0; k < 8; ++k) acc[k] += p[i + k];
      double s = 0;
      for (float a : acc) s += a;
      sink[b * pool.size() / n] += s;
    });
    secs.push_back(now_seconds() - t0);
  }
  if (sink[0] == -1.0) std::printf(" ");  // keep the reads alive
  return static_cast<double>(n) * 4 / median(secs);
}

// Seconds per call of `op` on a backend: the median over `samples` of `per_sample`
// calls queued back to back and one synchronize. One call per synchronize counts the launch
// and the host's wake-up against a 0.5-1.5 ms operation: on the H200 the copy below read
// 4,180 GB/s that way where CUDA events give 4,262 (bench/cuda/bench_timing.h) and the back-to-
// back form 4,258-4,261 (run 188, one call), so every decode ratio read ~1.9% high.
template <typename Op>
double seconds_per_call(Backend& be, int samples, int per_sample, Op&& op) {
  op();
  be.synchronize();
  std::vector<double> secs;
  for (int r = 0; r < samples; ++r) {
    const double t0 = now_seconds();
    for (int i = 0; i < per_sample; ++i) op();
    be.synchronize();
    secs.push_back((now_seconds() - t0) / per_sample);
  }
  return median(secs);
}

// Bandwidth in bytes/s. CPU: measure_cpu_bandwidth. CUDA: device-to-device copy, counting
// bytes read plus written.
double measure_bandwidth(Backend& be, int threads) {
  if (be.device() == Device::CPU) return measure_cpu_bandwidth(threads);
  const int64_t n = int64_t{1} << 28;  // 2^28 floats = 1 GiB
  Tensor a = be.empty({n}, DType::F32), b = be.empty({n}, DType::F32);
  be.fill_zero(a);
  return 2.0 * static_cast<double>(n) * 4 / seconds_per_call(be, 5, 8, [&] { be.copy(b, a); });
}

// FLOP/s of one large `linear` in the backend's own precision (the prefill limit).
double measure_matmul_peak(Backend& be, DType weight_dtype) {
  const bool cpu = be.device() == Device::CPU;
  const int64_t M = cpu ? 256 : 8192, N = cpu ? 2048 : 8192, K = cpu ? 2048 : 8192;
  std::mt19937 rng(1);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  Tensor hx = Tensor::empty({M, K}, DType::F32), hw = Tensor::empty({N, K}, DType::F32);
  for (int64_t i = 0; i < hx.numel(); ++i) hx.data<float>()[i] = dist(rng);
  for (int64_t i = 0; i < hw.numel(); ++i) hw.data<float>()[i] = dist(rng);
  Tensor x = be.upload(hx, be.activation_dtype());
  LinearWeight w;
  w.weight = be.upload(hw, weight_dtype);
  w.out_features = N;
  w.in_features = K;
  Tensor y = be.empty({M, N}, be.activation_dtype());
  const double s = cpu ? seconds_per_call(be, 3, 1, [&] { be.linear(y, x, w); })
                       : seconds_per_call(be, 5, 4, [&] { be.linear(y, x, w); });
  return 2.0 * M * N * K / s;
}

std::vector<int32_t> random_prompt(int n, int vocab, std::mt19937& rng) {
  std::uniform_int_distribution<int> d(0, vocab - 1);
  std::vector<int32_t> p(std::max(1, n));
  for (int32_t& t : p) t = d(rng);
  return p;
}

void run_bench(const BenchArgs& a) {
  EngineConfig cfg = a.engine.resolve_for_generation("bench");
  // Random prompts and weights give a draft nothing to guess, and the rows' limits count one
  // model's bytes per token: speculative decoding is measured on real text instead
  // (bench/speculative.sh).
  TLLM_CHECK_ARG(!cfg.speculative.enabled(), "bench measures plain decoding; measure speculative decoding with "
                                             "generate or throughput on a model and its draft (bench/speculative.sh)");
  cfg.enable_prefix_caching = false;  // random prompts; keep every run honest
  // Every row's numbers are checked before any work: a bad value gave a table of nan / inf /
  // negative rates, or an engine error after the earlier rows had run.
  const auto check_all = [](const std::vector<int>& v, int lo, const char* flag) {
    TLLM_CHECK_ARG(!v.empty(), flag, " needs at least one value");
    for (int x : v) TLLM_CHECK_ARG(x >= lo, flag, " values must be >= ", lo, ", got ", x);
  };
  check_all(a.prompt_lens, 1, "-p/--n-prompt");
  check_all(a.gen_lens, 1, "-n/--n-gen");
  check_all(a.depths, 0, "-d/--depth");
  check_all(a.batches, 1, "-b/--batch");
  TLLM_CHECK_ARG(a.repetitions >= 1, "-r/--repetitions must be >= 1, got ", a.repetitions);
  int max_p = 1;
  for (int p : a.prompt_lens) max_p = std::max(max_p, p);
  for (int d : a.depths) max_p = std::max(max_p, d);
  int max_b = 1;
  for (int b : a.batches) max_b = std::max(max_b, b);
  cfg.max_num_seqs = std::max(cfg.max_num_seqs, max_b);
  if (cfg.max_num_batched_tokens == 0) cfg.max_num_batched_tokens = std::max(max_p, cfg.device == "cuda" ? 8192 : 512);
  // Limits measured now, on this machine, before the engine takes the device's memory.
  const ModelConfig mc_probe = ModelConfig::load(cfg.model_dir);
  const DType wdt = mc_probe.dtype == DType::F32 && cfg.device == "cuda" ? DType::BF16
                    : cfg.dtype == "auto" ? mc_probe.dtype : dtype_from_name(cfg.dtype);
  double bw = 0, peak = 0;
  bool fp8_kernels = false;  // as the engine's backend will load FP8 weights
  {
    std::unique_ptr<Backend> probe =
        cfg.device == "cuda" ? make_cuda_backend({}) : make_cpu_backend({cfg.threads});
    bw = measure_bandwidth(*probe, cfg.threads);
    peak = measure_matmul_peak(*probe, wdt);
    fp8_kernels = probe->takes_fp8_weights();
  }
  LLMEngine engine(cfg);
  const ModelConfig& mc = engine.model_config();
  const int ctx = engine.max_model_len();
  for (int P : a.prompt_lens)
    TLLM_CHECK_ARG(P + 1 <= ctx, "-p ", P, ": a pp row of ", P, " tokens (and one generated) exceeds max_model_len ",
                   ctx);
  for (int D : a.depths)
    for (int N : a.gen_lens)
      TLLM_CHECK_ARG(std::max(1, D) + N + 1 <= ctx, "-d ", D, " -n ", N, ": a tg row's context of ", std::max(1, D) + N + 1,
                     " tokens exceeds max_model_len ", ctx);

  // Bytes and FLOPs of the model, counted from its shapes.
  const double H = mc.hidden_size, I = mc.intermediate_size, V = mc.vocab_size, L = mc.num_layers;
  const double q = mc.q_size(), kv = mc.kv_size();
  // MLP parameters read by all layers when `experts_read` experts of each MoE layer are read.
  // Dense layers read 3 H I. A MoE layer (Qwen2-MoE / Qwen3-MoE) reads its router, the shared
  // expert and its gate, and the experts its tokens chose: k for one token; for a decode step
  // of B sequences, E (1 - (1 - k/E)^B) on average under uniform routing.
  int n_moe_layers = 0;
  for (int l = 0; l < mc.num_layers; ++l) n_moe_layers += mc.layer_is_moe(l) ? 1 : 0;
  const double n_moe = n_moe_layers, E = mc.num_experts, top_k = mc.num_experts_per_tok;
  const double S = mc.shared_expert_intermediate_size;
  const double moe_fixed = E * H + 3 * H * S + (S > 0 ? H : 0), expert_params = 3 * H * mc.moe_intermediate_size;
  auto mlp_params_read = [&](double experts_read) {
    return (L - n_moe) * 3 * H * I + n_moe * (moe_fixed + experts_read * expert_params);
  };
  auto experts_read_by = [&](int batch) {
    return n_moe_layers == 0 ? 0.0 : E * (1.0 - std::pow(1.0 - top_k / E, batch));
  };
  // Parameters one token uses, averaged over the layers (all of them for dense models).
  const double layer_params = H * (q + 2 * kv) + q * H + mlp_params_read(top_k) / L;
  const double lm_params = V * H;
  // Quantized weights (model/quant.h): bytes per weight of the decoder linears and the lm_head.
  QuantSpec quant = QuantSpec::resolve(cfg.model_dir, cfg.quantization, cfg.quant_group_size);
  quant.fp8_kernels = fp8_kernels;
  const double layer_bpw = quant_bytes_per_weight(quant, false, wdt), head_bpw = quant_bytes_per_weight(quant, true, wdt);
  const double decode_bytes = L * layer_params * layer_bpw + lm_params * head_bpw;  // embedding: one row, ignored
  // Weight bytes a decode step of `batch` sequences reads.
  auto step_weight_bytes = [&](int batch) {
    return decode_bytes + (mlp_params_read(experts_read_by(batch)) - mlp_params_read(top_k)) * layer_bpw;
  };
  // KV cache bytes per token: the engine's choice (auto: f32 on the CPU, bf16 on CUDA) or --kv-cache-dtype.
  const double kv_elem = cfg.kv_cache_dtype == "auto" ? (cfg.device == "cuda" ? 2.0 : 4.0)
                                                      : static_cast<double>(dtype_size(dtype_from_name(cfg.kv_cache_dtype)));
  const double kv_bytes_per_token = 2.0 * L * kv * kv_elem;
  // Tensor parallelism over GPUs: each GPU reads its 1/tp of the layers and of the KV cache,
  // and GPU 0 the whole lm_head besides (the other ranks compute no logits), so the slowest GPU
  // reads this per decode step; the prefill's limit is tp GPUs' matmul peak. CPU ranks share
  // one machine's memory and cores: its limits stay those of the whole model.
  const double tp = cfg.device == "cuda" ? cfg.tensor_parallel_size : 1;
  auto device_step_bytes = [&](double step_bytes, double lm_bytes) { return (step_bytes - lm_bytes) / tp + lm_bytes; };
  peak *= tp;
  const double params_total =
      L * (H * (q + 2 * kv) + q * H) + mlp_params_read(E) + lm_params + (mc.tie_word_embeddings ? 0 : V * H);

  std::printf("model: %s (%s), %.1f M params, %s weights, %.1f MiB of them read per decode token; backend: %s\n",
              cfg.model_dir.c_str(),
              mc.architecture.c_str(), params_total / 1e6,
              quant.format == QuantFormat::None ? dtype_name(wdt) : quant.describe().c_str(), decode_bytes / (1 << 20),
              engine.backend_name().c_str());
  std::printf("limits measured now: bandwidth %.1f GB/s, matmul peak %.1f %s\n\n", bw / 1e9,
              cfg.device == "cuda" ? peak / 1e12 : peak / 1e9, cfg.device == "cuda" ? "TFLOP/s" : "GFLOP/s");
  if (tp > 1)
    std::printf("tensor parallel %d: the bandwidth of one GPU (each reads its share), the matmul peak of all %d\n\n",
                cfg.tensor_parallel_size, cfg.tensor_parallel_size);
  std::printf("| test | batch | depth | t/s | limit t/s | %% of limit | note |\n|---|---|---|---|---|---|---|\n");

  std::mt19937 rng(42);
  int req = 0;
  auto run_once = [&](int batch, int prompt_len, int gen, double& prefill_s, double& decode_s) {
    SamplingParams sp;
    sp.temperature = 0.0f;
    sp.ignore_eos = true;
    sp.max_tokens = gen;
    sp.detokenize = false;
    const double t0 = now_seconds();
    for (int b = 0; b < batch; ++b)
      engine.add_request("b" + std::to_string(req++), random_prompt(prompt_len, mc.vocab_size, rng), sp);
    int have_first = 0;
    double t_first = 0;
    while (engine.has_unfinished_requests()) {
      for (RequestOutput& o : engine.step()) {
        if (o.num_output_tokens == 1 && ++have_first == batch) t_first = now_seconds();
      }
    }
    prefill_s = t_first - t0;
    decode_s = now_seconds() - t_first;
  };

  nlohmann::json rows = nlohmann::json::array();
  auto emit = [&](const std::string& test, int batch, int depth, double tps, double limit, const std::string& note) {
    std::printf("| %s | %d | %d | %.1f | %.1f | %.0f%% | %s |\n", test.c_str(), batch, depth, tps, limit,
                100.0 * tps / limit, note.c_str());
    std::fflush(stdout);
    rows.push_back({{"test", test}, {"batch", batch}, {"depth", depth}, {"tokens_per_s", tps},
                    {"limit_tokens_per_s", limit}, {"ratio", tps / limit}, {"note", note}});
  };

  {  // warm-up (allocations, caches, graphs)
    double p, d;
    run_once(1, 16, 4, p, d);
  }
  // Each row runs once untimed first: the first run of a shape pays one-time costs (cuBLASLt
  // plan selection, CUDA graph capture per context bucket, workspace growth) that a median
  // of two repetitions would otherwise average in.
  for (int P : a.prompt_lens) {
    std::vector<double> ts;
    {
      double p, d;
      run_once(1, P, 1, p, d);
    }
    for (int r = 0; r < a.repetitions; ++r) {
      double p, d;
      run_once(1, P, 1, p, d);
      ts.push_back(p);
    }
    const double t = median(ts);
    const double flops = 2.0 * L * layer_params * P + 2.0 * lm_params + 4.0 * L * q * P * (P + 1) / 2.0;
    const double achieved = flops / t;
    std::ostringstream note;
    note << (cfg.device == "cuda" ? achieved / 1e12 : achieved / 1e9)
         << (cfg.device == "cuda" ? " TFLOP/s" : " GFLOP/s") << " of matmul peak";
    emit("pp" + std::to_string(P), 1, 0, P / t, P / (flops / peak), note.str());
  }
  const int64_t llc = cfg.device == "cuda" ? 0 : cpu_last_level_cache_bytes();
  for (int depth : a.depths) {
    for (int B : a.batches) {
      for (int N : a.gen_lens) {
        std::vector<double> ts;
        {
          double p, d;
          run_once(B, std::max(1, depth), N + 1, p, d);
        }
        for (int r = 0; r < a.repetitions; ++r) {
          double p, d;
          run_once(B, std::max(1, depth), N + 1, p, d);
          ts.push_back(d);
        }
        const double t = median(ts);
        // CPU: the bandwidth again, right after the row, and the higher of the two readings
        // for its roofline: a probe that catches a busy moment of a shared machine must not
        // make the row look faster than the memory allows (ratios above 100%).
        double row_bw = bw;
        if (cfg.device != "cuda") {
          try {  // 1 GiB more beside the loaded model: where that does not fit, the first reading stays
            row_bw = std::max(bw, measure_cpu_bandwidth(cfg.threads));
          } catch (const std::exception& e) {
            TLLM_LOG(Warn, "bench: no second bandwidth reading (", e.what(), "); the start-up one is the limit");
          }
        }
        const double avg_ctx = std::max(1, depth) + N / 2.0;
        const double step_bytes =
            device_step_bytes(step_weight_bytes(B) + B * avg_ctx * kv_bytes_per_token, lm_params * head_bpw);
        const double limit = B * row_bw / step_bytes;
        std::ostringstream note;
        note << "roofline " << step_bytes / 1e6 << " MB/step" << (tp > 1 ? " on GPU 0" : "");
        if (row_bw != bw) {
          char gbs[32];
          std::snprintf(gbs, sizeof(gbs), "%.1f", row_bw / 1e9);
          note << " at " << gbs << " GB/s (the higher of 2 readings)";
        }
        if (n_moe_layers > 0) note << " (" << experts_read_by(B) << " of " << E << " experts/layer)";
        if (llc > 0 && step_bytes <= static_cast<double>(llc))
          note << "; fits the " << llc / (1 << 20) << " MiB last-level cache, so DRAM need not bound it";
        emit("tg" + std::to_string(N), B, depth, B * N / t, limit, note.str());
      }
    }
  }
  if (a.json) std::printf("%s\n", nlohmann::json{{"bandwidth_Bps", bw}, {"matmul_peak_flops", peak}, {"rows", rows}}.dump().c_str());
}

}  // namespace

void register_bench_command(CLI::App& app) {
  auto args = std::make_shared<BenchArgs>();
  CLI::App* cmd = app.add_subcommand("bench", "prompt and decode throughput against the hardware limits");
  args->engine.add_to(cmd);
  cmd->add_option("-p,--n-prompt", args->prompt_lens, "prompt lengths (pp rows)")->delimiter(',');
  cmd->add_option("-n,--n-gen", args->gen_lens, "generated tokens (tg rows)")->delimiter(',');
  cmd->add_option("-d,--depth", args->depths, "context already in the cache before tg")->delimiter(',');
  cmd->add_option("-b,--batch", args->batches, "concurrent sequences in tg rows")->delimiter(',');
  cmd->add_option("-r,--repetitions", args->repetitions, "runs per row (median reported)")->capture_default_str();
  cmd->add_flag("--json", args->json, "also print the rows as JSON");
  cmd->callback([args] { run_bench(*args); });
}

}  // namespace tllm
