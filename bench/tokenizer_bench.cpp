// Single-thread tokenizer throughput: MB/s and tokens/s of encode (and decode) on a corpus,
// the same workload scripts/goldens/tokenizer_goldens.py times through HF `tokenizers`.
//
// usage: tokenizer_bench --model DIR [--file FILE] [--repeat N] [--iters K]
//   default input: the strings of tests/data/tokenizer/corpus.jsonl joined by '\n', repeated N
//   (50) times; "doc" encodes it as one string, "lines" encodes each string separately.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "tokenizer/tokenizer.h"

namespace {

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    std::fprintf(stderr, "tokenizer_bench: cannot open %s\n", path.c_str());
    std::exit(2);
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

template <typename F>
double best_of(int iters, F&& f) {
  double best = 1e30;
  for (int i = 0; i < iters; ++i) {
    double t0 = now_s();
    f();
    best = std::min(best, now_s() - t0);
  }
  return best;
}

}  // namespace

int main(int argc, char** argv) {
  std::string model, file, corpus = std::string(TLLM_SOURCE_DIR) + "/tests/data/tokenizer/corpus.jsonl";
  int repeat = 50, iters = 3;
  bool encode_only = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "tokenizer_bench: %s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--model") model = next();
    else if (a == "--file") file = next();
    else if (a == "--repeat") repeat = std::atoi(next().c_str());
    else if (a == "--iters") iters = std::atoi(next().c_str());
    else if (a == "--encode-only") encode_only = true;
    else {
      std::fprintf(stderr, "usage: tokenizer_bench --model DIR [--file FILE] [--repeat N] [--iters K] [--encode-only]\n");
      return 2;
    }
  }
  if (model.empty()) {
    std::fprintf(stderr, "usage: tokenizer_bench --model DIR [--file FILE] [--repeat N] [--iters K]\n");
    return 2;
  }
  std::vector<std::string> lines;
  std::string doc;
  if (!file.empty()) {
    doc = slurp(file);
    std::istringstream in(doc);
    for (std::string l; std::getline(in, l);) lines.push_back(l);
  } else {
    std::vector<std::string> texts;
    std::istringstream in(slurp(corpus));
    for (std::string l; std::getline(in, l);) {
      if (!l.empty()) texts.push_back(nlohmann::json::parse(l)["text"].get<std::string>());
    }
    for (int r = 0; r < repeat; ++r) lines.insert(lines.end(), texts.begin(), texts.end());
    for (size_t k = 0; k < lines.size(); ++k) {
      if (k) doc += '\n';
      doc += lines[k];
    }
  }

  double t0 = now_s();
  auto tok = tllm::Tokenizer::load(model);
  double load_s = now_s() - t0;
  std::printf("model %s  load %.3f s  vocab %d\n", model.c_str(), load_s, tok->vocab_size());

  tok->encode(doc.substr(0, 10000));  // warm-up
  size_t n_tok = 0;
  double t = best_of(iters, [&]() { n_tok = tok->encode(doc).size(); });
  std::printf("encode doc    %7.2f MB %9zu tok  %8.2f MB/s  %7.3f Mtok/s\n", doc.size() / 1e6, n_tok,
              doc.size() / t / 1e6, n_tok / t / 1e6);

  size_t line_bytes = 0;
  for (const auto& l : lines) line_bytes += l.size();
  size_t n_tok_lines = 0;
  t = best_of(iters, [&]() {
    n_tok_lines = 0;
    for (const auto& l : lines) n_tok_lines += tok->encode(l).size();
  });
  std::printf("encode lines  %7.2f MB %9zu tok  %8.2f MB/s  %7.3f Mtok/s  (%zu strings)\n", line_bytes / 1e6,
              n_tok_lines, line_bytes / t / 1e6, n_tok_lines / t / 1e6, lines.size());

  if (encode_only) return 0;
  auto ids = tok->encode(doc);
  size_t out_bytes = 0;
  t = best_of(iters, [&]() { out_bytes = tok->decode(ids).size(); });
  std::printf("decode doc    %7.2f MB %9zu tok  %8.2f MB/s  %7.3f Mtok/s\n", out_bytes / 1e6, ids.size(),
              out_bytes / t / 1e6, ids.size() / t / 1e6);

  t = best_of(iters, [&]() {
    tllm::IncrementalDetokenizer d(*tok);
    out_bytes = 0;
    for (int32_t id : ids) out_bytes += d.push(id).size();
    out_bytes += d.flush().size();
  });
  std::printf("stream decode %7.2f MB %9zu tok  %8.2f MB/s  %7.3f Mtok/s\n", out_bytes / 1e6, ids.size(),
              out_bytes / t / 1e6, ids.size() / t / 1e6);
  return 0;
}
