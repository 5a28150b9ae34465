// Sparse mixture-of-experts MLP (Qwen2-MoE, Qwen3-MoE), as transformers computes it:
//
//   logits = x W_router^T                                    [T, E]
//   p = softmax(logits) in f32; (w, ids) = top-k of p        [T, k]; w /= sum(w) if norm_topk_prob
//   out = sum_j w[t, j] * down_e(silu(gate_e x) * up_e x), e = ids[t, j]
//       + sigmoid(x . w_shared_gate) * shared_mlp(x)         (Qwen2-MoE only)
//
// The experts are stacked at load into one [E*2I, H] gate|up weight and one [E*H, I] down
// weight (MoeExperts in backend.h), the layout the grouped kernels index by expert. They
// load through WeightLoader::linear, so they take whatever weight format (dtype,
// quantization) the dense linears of the model take. The router and the shared expert's
// gate stay unquantized: they are tiny and routing decisions are sensitive to them.
#include "model/moe.h"

#include <algorithm>

#include "core/error.h"
#include "kernels/backend.h"
#include "model/config.h"
#include "model/weights.h"

namespace tllm {

namespace {

size_t linear_bytes(const LinearWeight& w) {
  size_t b = 0;
  for (const Tensor* t : {&w.weight, &w.bias, &w.scales, &w.zeros})
    if (t->defined()) b += t->nbytes();
  return b;
}

class SparseMoeBlock final : public MoeBlock {
 public:
  SparseMoeBlock(WeightLoader& w, const ModelConfig& cfg, const std::string& prefix, int max_tokens)
      : backend_(w.backend()), top_k_(cfg.num_experts_per_tok), renormalize_(cfg.norm_topk_prob) {
    const int E = cfg.num_experts;
    const int64_t H = cfg.hidden_size, I = cfg.moe_intermediate_size, S = cfg.shared_expert_intermediate_size;
    TLLM_CHECK(E > 0 && top_k_ >= 1 && top_k_ <= E, "MoE layer ", prefix, ": num_experts_per_tok ", top_k_,
               " must be in [1, num_experts = ", E, "]");
    TLLM_CHECK(I > 0, "MoE layer ", prefix, ": moe_intermediate_size must be positive, got ", I);

    router_.weight = w.tensor(prefix + "gate.weight", {E, H}, w.weight_dtype());
    router_.out_features = E;
    router_.in_features = H;

    experts_.num_experts = E;
    experts_.hidden = H;
    experts_.inter = I;
    std::vector<std::string> gate_up_names, down_names;
    std::vector<int64_t> gate_up_rows, down_rows;
    for (int e = 0; e < E; ++e) {
      const std::string p = prefix + "experts." + std::to_string(e) + ".";
      gate_up_names.push_back(p + "gate_proj.weight");
      gate_up_names.push_back(p + "up_proj.weight");
      gate_up_rows.insert(gate_up_rows.end(), {I, I});
      down_names.push_back(p + "down_proj.weight");
      down_rows.push_back(H);
    }
    // Tensor parallelism: every expert's inner rows (gate, up) and columns (down) are split
    // over the ranks (cfg is the rank's shard: I and S are its shares); the router is whole.
    const int rank = w.tp_rank(), ranks = w.tp_size();
    experts_.gate_up = w.linear(gate_up_names, gate_up_rows, H, {}, WeightSlice::rows_of(gate_up_rows, rank, ranks));
    experts_.down = w.linear(down_names, down_rows, I, {}, WeightSlice::cols_of(I, rank, ranks));

    if (S > 0) {
      const std::string p = prefix + "shared_expert.";
      experts_.shared_inter = S;
      experts_.shared_gate_up = w.linear({p + "gate_proj.weight", p + "up_proj.weight"}, {S, S}, H, {},
                                         WeightSlice::rows_of({S, S}, rank, ranks));
      experts_.shared_down = w.linear({p + "down_proj.weight"}, {H}, S, {}, WeightSlice::cols_of(S, rank, ranks));
      experts_.shared_gate = w.tensor(prefix + "shared_expert_gate.weight", {1, H}, DType::F32).view({H});
    }

    // Per-forward buffers, at the largest batch (graph replays need fixed addresses).
    const int64_t T = std::max(1, max_tokens);
    router_logits_ = backend_.empty({T, E}, backend_.activation_dtype());
    topk_ids_ = backend_.empty({T, top_k_}, DType::I32);
    topk_weights_ = backend_.empty({T, top_k_}, DType::F32);
    backend_.moe_reserve(static_cast<int>(T), top_k_, experts_);

    const size_t per_expert = (linear_bytes(experts_.gate_up) + linear_bytes(experts_.down)) / E;
    active_bytes_ = router_.weight.nbytes() + per_expert * top_k_ + linear_bytes(experts_.shared_gate_up) +
                    linear_bytes(experts_.shared_down) +
                    (experts_.shared_gate.defined() ? experts_.shared_gate.nbytes() : 0);
  }

  void forward(Tensor& out, const Tensor& x) override {
    TLLM_CHECK(x.ndim() == 2 && x.dim(1) == experts_.hidden, "MoE forward: x ", x.str(), " must be [T, ",
               experts_.hidden, "]");
    const int64_t T = x.dim(0);
    TLLM_CHECK(T <= router_logits_.dim(0), "MoE forward: ", T, " tokens exceed the ", router_logits_.dim(0),
               " the layer was sized for");
    Tensor logits = router_logits_.slice_rows(0, T);  // [T, E]
    Tensor ids = topk_ids_.slice_rows(0, T);          // i32 [T, k]
    Tensor weights = topk_weights_.slice_rows(0, T);  // f32 [T, k]
    backend_.moe_block(out, x, router_, experts_, logits, ids, weights, renormalize_);
  }

  size_t active_weight_bytes_per_token() const override { return active_bytes_; }

  void describe(DecoderStackLayer& layer) const override {
    layer.router = &router_;
    layer.experts = &experts_;
    layer.top_k = top_k_;
    layer.renormalize = renormalize_;
  }

 private:
  Backend& backend_;
  int top_k_;
  bool renormalize_;
  LinearWeight router_;  // [E, H]
  MoeExperts experts_;
  Tensor router_logits_, topk_ids_, topk_weights_;
  size_t active_bytes_ = 0;
};

}  // namespace

std::unique_ptr<MoeBlock> MoeBlock::load(WeightLoader& loader, const ModelConfig& cfg, const std::string& prefix,
                                         int max_tokens) {
  return std::make_unique<SparseMoeBlock>(loader, cfg, prefix, max_tokens);
}

}  // namespace tllm
