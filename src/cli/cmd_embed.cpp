// tinyllm embed: the vectors of an embedding model (the pooling runner, engine/pooling.h) for
// texts or token ids, one JSON object per input on stdout; --similarity prints the inputs'
// cosine similarities instead.
#include <cstdio>
#include <iostream>
#include <memory>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/options.h"
#include "core/error.h"
#include "engine/engine.h"
#include "engine/pooling.h"
#include "tokenizer/tokenizer.h"

namespace tllm {

namespace {

struct EmbedArgs {
  EngineOptions engine;
  std::vector<std::string> inputs;
  std::vector<std::string> input_ids;
  int dimensions = 0;
  bool similarity = false;
};

void run_embed(const EmbedArgs& a) {
  TLLM_CHECK_ARG(!a.inputs.empty() || !a.input_ids.empty(), "give --input TEXT or --input-ids 1,2,3");
  // What needs no model is checked before the load.
  for (const std::string& text : a.inputs) check_utf8_text(text, "--input");
  std::vector<std::vector<int32_t>> id_inputs;
  for (const std::string& ids : a.input_ids) id_inputs.push_back(parse_id_list(ids));
  EngineConfig config = a.engine.resolve();
  config.runner = "pooling";
  LLMEngine engine(config);
  std::vector<std::vector<int32_t>> prompts;
  for (const std::string& text : a.inputs) {
    TLLM_CHECK_ARG(engine.tokenizer() != nullptr, "--input needs a tokenizer; this model has none (use --input-ids)");
    prompts.push_back(engine.tokenizer()->encode(text, /*add_special_tokens=*/true));
    TLLM_CHECK_ARG(!prompts.back().empty(), "--input \"", text, "\" has no tokens");
  }
  for (std::vector<int32_t>& ids : id_inputs) {
    check_ids_in_vocab(ids, engine.vocab_size(), "--input-ids");
    prompts.push_back(std::move(ids));
  }
  TLLM_CHECK_ARG(a.dimensions >= 0 && a.dimensions <= engine.hidden_size(), "--dimensions must be in [1, ",
                 engine.hidden_size(), "] (the model's embedding size), got ", a.dimensions);
  std::vector<std::vector<float>> vecs = engine.embed(prompts);
  if (a.dimensions > 0)
    for (auto& v : vecs) {
      v.resize(static_cast<size_t>(a.dimensions));
      if (engine.pooling_normalizes()) l2_normalize(v);
    }
  if (a.similarity) {
    nlohmann::ordered_json m = nlohmann::ordered_json::array();
    for (const auto& x : vecs) {
      nlohmann::ordered_json row = nlohmann::ordered_json::array();
      for (const auto& y : vecs) row.push_back(cosine_similarity(x, y));
      m.push_back(row);
    }
    std::cout << nlohmann::ordered_json{{"cosine_similarity", m}}.dump() << "\n";
    return;
  }
  for (size_t i = 0; i < vecs.size(); ++i)
    std::cout << nlohmann::ordered_json{{"index", i}, {"tokens", prompts[i].size()}, {"embedding", vecs[i]}}.dump()
              << "\n";
}

}  // namespace

void register_embed_command(CLI::App& app) {
  auto args = std::make_shared<EmbedArgs>();
  auto* cmd = app.add_subcommand("embed", "vectors of an embedding model (the pooling runner) for texts or token ids");
  args->engine.add_to(cmd);
  cmd->add_option("--input", args->inputs, "a text to embed (repeatable)");
  cmd->add_option("--input-ids", args->input_ids, "token ids to embed, e.g. 1,2,3 (repeatable)");
  cmd->add_option("--dimensions", args->dimensions, "keep the first N values (renormalised when the model normalises)")
      ->check(kNonNegativeInt);
  cmd->add_flag("--similarity", args->similarity, "print the inputs' cosine similarities instead of the vectors");
  cmd->callback([args] { run_embed(*args); });
}

}  // namespace tllm
