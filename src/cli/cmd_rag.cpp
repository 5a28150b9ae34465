// tinyllm rag: retrieval-augmented generation over local text files (rag/pipeline.h).
//   rag index --model EMB --input PATH... --index FILE   chunk, embed and store the documents
//   rag query --model EMB --index FILE --query TEXT      the nearest chunks, one JSON line each
//   rag ask   --model EMB --index FILE --generator DIR --query TEXT
//                                                        the answer of DIR given those chunks
// --model is an embedding model (run with the pooling runner); engine flags apply to it, and
// to the generator in `ask`.
#include <cstdio>
#include <iostream>
#include <memory>

#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/options.h"
#include "core/error.h"
#include "core/timer.h"
#include "engine/engine.h"
#include "rag/pipeline.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"

namespace tllm {

namespace {

struct RagArgs {
  EngineOptions engine;
  SamplingOptions sampling;
  std::vector<std::string> inputs;
  std::string index;
  std::string query;
  std::string generator;
  int passages = 4;
  int chunk_tokens = 256;
  int chunk_overlap = 32;
  std::string document_prefix;
  std::string query_prefix;
};

EngineConfig embedder_config(const RagArgs& a) {
  EngineConfig c = a.engine.resolve();
  c.runner = "pooling";
  return c;
}

void run_index(const RagArgs& a) {
  check_utf8_text(a.document_prefix, "--document-prefix");
  const std::vector<std::string> docs = collect_documents(a.inputs);
  LLMEngine embedder(embedder_config(a));
  IndexOptions o;
  o.chunk.max_tokens = a.chunk_tokens;
  o.chunk.overlap_tokens = a.chunk_overlap;
  o.document_prefix = a.document_prefix;
  o.model = a.engine.config.model_dir;
  const double t0 = now_seconds();
  const VectorIndex index = build_index(embedder, docs, o);
  index.save(a.index);
  std::fprintf(stderr, "[%zu chunks of %zu documents, %d values each, in %.2f s -> %s]\n", index.size(), docs.size(),
               index.dim(), now_seconds() - t0, a.index.c_str());
}

void run_query(const RagArgs& a) {
  check_utf8_text(a.query, "--query");
  check_utf8_text(a.query_prefix, "--query-prefix");
  const VectorIndex index = VectorIndex::load(a.index);
  LLMEngine embedder(embedder_config(a));
  const auto hits = retrieve(embedder, index, a.query, a.passages, a.query_prefix);
  for (size_t i = 0; i < hits.size(); ++i) {
    const IndexEntry& e = index.entry(hits[i].id);
    std::cout << nlohmann::ordered_json{{"rank", i + 1}, {"score", hits[i].score}, {"source", e.source},
                                        {"begin", e.begin}, {"end", e.end}, {"text", e.text}}
                     .dump()
              << "\n";
  }
}

void run_ask(const RagArgs& a) {
  check_utf8_text(a.query, "--query");
  check_utf8_text(a.query_prefix, "--query-prefix");
  TLLM_CHECK_ARG(!a.generator.empty(), "rag ask needs --generator DIR (the model that answers)");
  const VectorIndex index = VectorIndex::load(a.index);
  std::vector<VectorIndex::Hit> hits;
  {  // the embedding model is released before the generator loads
    // Speculative decoding (a draft model, or n-gram lookup, which suits answers that quote
    // their passages) is the generator's: the embedder only prefills.
    EngineConfig ec = embedder_config(a);
    ec.speculative = SpeculativeConfig{};
    LLMEngine embedder(ec);
    hits = retrieve(embedder, index, a.query, a.passages, a.query_prefix);
  }
  RagArgs g = a;
  g.engine.config.model_dir = a.generator;
  g.engine.task.clear();
  g.engine.revision.clear();  // --revision is the embedder's (--model)
  g.engine.config.runner = "generate";
  LLMEngine gen(g.engine.resolve_for_generation("rag ask"));
  TLLM_CHECK_ARG(gen.tokenizer() != nullptr, "the generator has no tokenizer (tokenizer.json)");
  const std::string prompt = gen.chat_template() ? gen.chat_template()->render(rag_messages(index, hits, a.query), nullptr, true)
                                                 : rag_plain_prompt(index, hits, a.query);
  std::vector<int32_t> ids = gen.tokenizer()->encode(prompt, /*add_special_tokens=*/gen.chat_template() == nullptr);
  TLLM_CHECK_ARG(static_cast<int>(ids.size()) < gen.max_model_len(), "the prompt with ", hits.size(), " passages has ",
                 ids.size(), " tokens, beyond the generator's ", gen.max_model_len(), "-token context (fewer --passages)");
  gen.add_request("rag", std::move(ids), a.sampling.resolve(gen.generation_config()));
  while (gen.has_unfinished_requests())
    for (const RequestOutput& o : gen.step()) std::cout << o.new_text << std::flush;
  std::cout << "\n\nSources:\n";
  for (size_t i = 0; i < hits.size(); ++i) {
    const IndexEntry& e = index.entry(hits[i].id);
    std::printf("[%zu] %s (bytes %llu-%llu, score %.3f)\n", i + 1, e.source.c_str(),
                static_cast<unsigned long long>(e.begin), static_cast<unsigned long long>(e.end), hits[i].score);
  }
}

}  // namespace

void register_rag_command(CLI::App& app) {
  auto* rag = app.add_subcommand("rag", "retrieval-augmented generation over local text files");
  rag->require_subcommand(1);
  auto common = [](CLI::App* cmd, RagArgs& a) {
    a.engine.add_to(cmd);
    cmd->add_option("--index", a.index, "the index file")->required();
  };
  {
    auto a = std::make_shared<RagArgs>();
    auto* cmd = rag->add_subcommand("index", "chunk text files, embed the chunks with --model, write the index");
    common(cmd, *a);
    cmd->add_option("--input", a->inputs, "a text file, or a directory searched for .txt/.md/.rst files (repeatable)")
        ->required();
    cmd->add_option("--chunk-tokens", a->chunk_tokens, "tokens per chunk at most");
    cmd->add_option("--chunk-overlap", a->chunk_overlap, "tokens a chunk repeats from the one before at most");
    cmd->add_option("--document-prefix", a->document_prefix, "text put before each chunk when it is embedded");
    cmd->callback([a] { run_index(*a); });
  }
  {
    auto a = std::make_shared<RagArgs>();
    auto* cmd = rag->add_subcommand("query", "the chunks nearest to a query, one JSON line each");
    common(cmd, *a);
    cmd->add_option("--query", a->query, "the question")->required();
    cmd->add_option("--passages", a->passages, "how many chunks")->check(CLI::Range(1, 1 << 20));
    cmd->add_option("--query-prefix", a->query_prefix, "text put before the query when it is embedded");
    cmd->callback([a] { run_query(*a); });
  }
  {
    auto a = std::make_shared<RagArgs>();
    auto* cmd = rag->add_subcommand("ask", "answer a question with --generator, given the nearest chunks");
    common(cmd, *a);
    a->sampling.add_to(cmd);
    cmd->add_option("--query", a->query, "the question")->required();
    cmd->add_option("--generator", a->generator, "the model that answers (a generating checkpoint)")->required();
    cmd->add_option("--passages", a->passages, "how many chunks go into the prompt")->check(CLI::Range(1, 1 << 20));
    cmd->add_option("--query-prefix", a->query_prefix, "text put before the query when it is embedded");
    cmd->callback([a] { run_ask(*a); });
  }
}

}  // namespace tllm
