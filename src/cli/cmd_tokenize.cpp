// tinyllm tokenize --model DIR [--add-special-tokens] [--json] (TEXT | --file FILE)
// Prints the ids space-separated, or with --json {"ids": [...], "pieces": [...]}.
#include <iostream>
#include <string>

#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/options.h"
#include "core/error.h"
#include "io/hub.h"
#include "io/json.h"
#include "tokenizer/tokenizer.h"

namespace tllm {

namespace {

struct TokenizeArgs {
  std::string model;
  std::string text;
  std::string file;
  bool add_special_tokens = false;
  bool json = false;
  bool has_text = false;  // TEXT given (it may be the empty string)
};

void run_tokenize(const TokenizeArgs& a) {
  TLLM_CHECK_ARG(a.has_text != !a.file.empty(), "give either TEXT or --file FILE");
  std::string text = a.text;
  if (!a.file.empty()) {
    text = read_file(a.file);  // names the path; a directory is refused (it read as empty text)
  }
  check_utf8_text(text, a.file.empty() ? std::string("TEXT") : "--file " + a.file);
  HubOptions hub;
  hub.files = HubFiles::Tokenizer;
  auto tok = Tokenizer::load(resolve_model_arg(a.model, hub).dir);
  std::vector<int32_t> ids = tok->encode(text, a.add_special_tokens);
  if (a.json) {
    nlohmann::json out;
    out["ids"] = ids;
    nlohmann::json pieces = nlohmann::json::array();
    for (int32_t id : ids) pieces.push_back(tok->id_to_piece(id));
    out["pieces"] = std::move(pieces);
    std::cout << out.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
    return;
  }
  for (size_t i = 0; i < ids.size(); ++i) std::cout << (i ? " " : "") << ids[i];
  std::cout << "\n";
}

}  // namespace

void register_tokenize_command(CLI::App& app) {
  auto args = std::make_shared<TokenizeArgs>();
  CLI::App* cmd = app.add_subcommand("tokenize", "encode text with a model's tokenizer.json and print the ids");
  cmd->add_option("--model", args->model, "folder holding tokenizer.json (+ tokenizer_config.json), a hub repository id or a .gguf file")->required();
  cmd->add_flag("--add-special-tokens", args->add_special_tokens,
                "apply the post-processor / add_bos_token (as HF add_special_tokens=True)");
  cmd->add_flag("--json", args->json, "print {\"ids\": [...], \"pieces\": [...]}");
  cmd->add_option("--file", args->file, "read the text from this file (bytes as they are)");
  CLI::Option* text = cmd->add_option("text", args->text, "text to encode");
  cmd->callback([args, text]() {
    args->has_text = text->count() > 0;
    run_tokenize(*args);
  });
}

}  // namespace tllm
