// tinyllm: one binary, several subcommands (see commands.h).
#include <cstdio>
#include <exception>
#include <string_view>

#include "cli/commands.h"
#include "tokenizer/unicode.h"

int main(int argc, char** argv) {
  CLI::App app{"tinyllm: LLM inference and serving for Qwen and Llama models (CPU and CUDA)"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "tinyllm 0.1.0");
  tllm::register_generate_command(app);
  tllm::register_chat_command(app);
  tllm::register_embed_command(app);
  tllm::register_rag_command(app);
  tllm::register_bench_command(app);
  tllm::register_serve_command(app);
  tllm::register_bench_serve_command(app);
  tllm::register_throughput_command(app);
  tllm::register_tokenize_command(app);
  tllm::register_render_chat_command(app);
  tllm::register_quantize_command(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);  // --help, --version
    // `tinyllm` or `tinyllm rag` alone: the commands there are, not only that one is missing.
    CLI::App* at = &app;
    while (!at->get_subcommands().empty()) at = at->get_subcommands().front();
    if (at->get_subcommands().empty() && std::string_view(e.what()).find("subcommand is required") != std::string_view::npos) {
      std::fprintf(stderr, "%s\nerror: name a command (above)\n", at->help().c_str());
      return 2;
    }
    // A flag's value or the command line itself is wrong: the same one-line "error: ..." as
    // every other refusal, and exit status 2 (usage), as argparse and vLLM's CLI give.
    std::fprintf(stderr, "error: %s\nRun with --help for more information.\n", tllm::tok::utf8_lossy(e.what()).c_str());
    return 2;
  } catch (const std::exception& e) {  // tllm::Error and the rest; a message may quote input bytes
    std::fprintf(stderr, "error: %s\n", tllm::tok::utf8_lossy(e.what()).c_str());
    return 1;
  }
  return 0;
}
