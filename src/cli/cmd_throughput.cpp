// tinyllm throughput: offline throughput of LLMEngine on nano-vllm's workload (its bench.py):
// 256 sequences of random token ids, input and output lengths uniform in [100, 1024],
// temperature 0.6, ignore_eos; prints generated tokens per second.
#include <algorithm>
#include <cstdio>
#include <random>

#include "cli/commands.h"
#include "cli/options.h"
#include "core/error.h"
#include "core/timer.h"

namespace tllm {
namespace {

struct ThroughputArgs {
  EngineOptions engine;
  int num_seqs = 256;
  int min_input_len = 100, max_input_len = 1024;
  int min_output_len = 100, max_output_len = 1024;
  int max_token_id = 10000;  // nano-vllm draws ids in [0, 10000]
  float temperature = 0.6f;
  uint64_t seed = 0;
  int iters = 1;  // > 1: run the workload again (warm KV pages, caches); each run is printed
};

void run_throughput(const ThroughputArgs& a) {
  TLLM_CHECK_ARG(a.num_seqs >= 1, "--num-seqs must be at least 1");
  TLLM_CHECK_ARG(a.iters >= 1, "--iters must be at least 1");
  TLLM_CHECK_ARG(a.min_input_len >= 1 && a.min_input_len <= a.max_input_len, "need 1 <= --min-input-len <= --max-input-len");
  TLLM_CHECK_ARG(a.min_output_len >= 1 && a.min_output_len <= a.max_output_len, "need 1 <= --min-output-len <= --max-output-len");
  TLLM_CHECK_ARG(a.max_token_id >= 0, "--max-token-id must be >= 0, got ", a.max_token_id);
  LLMEngine engine(a.engine.resolve_for_generation("throughput"));
  const int max_len = engine.max_model_len();
  TLLM_CHECK_ARG(a.max_input_len < max_len, "--max-input-len ", a.max_input_len, " leaves no room in the context of ",
                 max_len, " tokens");
  const int32_t id_limit = std::min(a.max_token_id, engine.vocab_size() - 1) + 1;

  std::mt19937_64 rng(a.seed);
  std::vector<std::vector<int32_t>> prompts(a.num_seqs);
  std::vector<SamplingParams> params(a.num_seqs);
  long long total_out = 0, total_in = 0;
  for (int i = 0; i < a.num_seqs; ++i) {
    const int in = std::uniform_int_distribution<int>(a.min_input_len, a.max_input_len)(rng);
    prompts[i].resize(in);
    for (auto& t : prompts[i]) t = std::uniform_int_distribution<int32_t>(0, id_limit - 1)(rng);
    params[i].temperature = a.temperature;
    params[i].ignore_eos = true;
    params[i].detokenize = false;
    params[i].seed = a.seed + i;
    params[i].max_tokens = std::min(std::uniform_int_distribution<int>(a.min_output_len, a.max_output_len)(rng),
                                    max_len - in);
    total_out += params[i].max_tokens;
    total_in += in;
  }

  // Warm-up (first-touch allocations, kernel selection), as nano-vllm's bench does.
  {
    SamplingParams p;
    p.max_tokens = 4;
    p.ignore_eos = true;
    p.detokenize = false;
    engine.generate({std::vector<int32_t>(16, 1)}, {p});
  }
  std::printf("throughput: %d sequences, %lld input + %lld output tokens on %s\n", a.num_seqs, total_in, total_out,
              engine.backend_name().c_str());
  for (int it = 0; it < a.iters; ++it) {
    const double t0 = now_seconds();
    const auto outs = engine.generate(prompts, params);
    const double dt = now_seconds() - t0;
    long long generated = 0;
    for (const auto& o : outs) generated += static_cast<long long>(o.token_ids.size());
    std::printf("Total: %lldtok, Time: %.2fs, Throughput: %.2ftok/s\n", generated, dt, generated / dt);
    std::fflush(stdout);
  }
}

}  // namespace

void register_throughput_command(CLI::App& app) {
  auto args = std::make_shared<ThroughputArgs>();
  ThroughputArgs& a = *args;
  CLI::App* cmd = app.add_subcommand("throughput", "offline throughput on nano-vllm's benchmark workload");
  a.engine.add_to(cmd);
  cmd->add_option("--num-seqs", a.num_seqs)->capture_default_str();
  cmd->add_option("--min-input-len", a.min_input_len)->capture_default_str();
  cmd->add_option("--max-input-len", a.max_input_len)->capture_default_str();
  cmd->add_option("--min-output-len", a.min_output_len)->capture_default_str();
  cmd->add_option("--max-output-len", a.max_output_len)->capture_default_str();
  cmd->add_option("--max-token-id", a.max_token_id, "random prompt ids in [0, this]")->capture_default_str();
  cmd->add_option("--temperature", a.temperature)->capture_default_str();
  cmd->add_option("--seed", a.seed)->capture_default_str()->check(kUint64);
  cmd->add_option("--iters", a.iters, "run the workload this many times (the first one warms up)")->capture_default_str();
  cmd->callback([args] { run_throughput(*args); });
}

}  // namespace tllm
