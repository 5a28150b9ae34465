// tinyllm quantize: a float checkpoint -> an MLX-layout quantized checkpoint (group-wise
// affine int4 or int8) that `tinyllm generate/serve/bench --model OUT` load directly.
#include <algorithm>
#include <cstdio>
#include <memory>

#include "cli/commands.h"
#include "cli/options.h"
#include "core/error.h"
#include "core/timer.h"
#include "io/hub.h"
#include "io/safetensors.h"
#include "kernels/backend.h"
#include "model/config.h"
#include "model/model.h"
#include "model/quant_export.h"

namespace tllm {

namespace {

struct QuantizeArgs {
  std::string model;
  std::string out;
  int bits = 4;
  int group_size = 64;
};

// Loads the written checkpoint as `generate` would (config, every tensor's name and shape),
// on the CPU with the codes kept packed: a tensor missing from the float checkpoint, say,
// fails here and not at the user's first run of the output.
void check_loads(const std::string& dir) {
  try {
    const ModelConfig mc = ModelConfig::load(dir);
    ModelLoadOptions mo;
    mo.weight_dtype = DType::BF16;
    mo.max_num_tokens = 16;
    mo.max_num_seqs = 1;
    mo.max_model_len = std::min(mc.max_position_embeddings, 16);
    mo.cuda_graphs = false;
    // A checkpoint without an lm_head of its own (an embedding model) loads as one.
    mo.pooling = !mc.tie_word_embeddings && !Checkpoint::open(dir).has("lm_head.weight");
    std::unique_ptr<Backend> cpu = make_cpu_backend({});
    load_model(dir, mc, *cpu, mo);
  } catch (const std::exception& e) {
    throw InvalidArgument(detail::concat("quantize: the checkpoint written to ", dir,
                                         " does not load (is the float checkpoint complete?): ", e.what()));
  }
}

void run_quantize(const QuantizeArgs& a) {
  const double t0 = now_seconds();
  const QuantizeExportStats st = write_mlx_checkpoint(resolve_model_arg(a.model, HubOptions{}).dir, a.out, a.bits, a.group_size);
  check_loads(a.out);
  std::printf("wrote %s: %d weights quantized to %d bits (group %d), %d tensors copied; %.1f MiB -> %.1f MiB in %.1f s\n",
              a.out.c_str(), st.quantized, a.bits, a.group_size, st.copied, st.bytes_in / 1048576.0,
              st.bytes_out / 1048576.0, now_seconds() - t0);
}

}  // namespace

void register_quantize_command(CLI::App& app) {
  auto args = std::make_shared<QuantizeArgs>();
  CLI::App* cmd = app.add_subcommand("quantize", "write a float checkpoint as an MLX-layout int4/int8 checkpoint");
  cmd->add_option("--model", args->model, "float checkpoint directory (config.json + safetensors)")->required();
  cmd->add_option("--out", args->out, "output directory")->required();
  cmd->add_option("--bits", args->bits, "bits per weight: 4 or 8")->capture_default_str();
  cmd->add_option("--group-size", args->group_size, "inputs per scale/bias group: 32, 64 or 128")->capture_default_str();
  cmd->callback([args] { run_quantize(*args); });
}

}  // namespace tllm
