// Subcommands of the tinyllm CLI; each lives in its own cmd_<name>.cpp and registers
// itself on the app (options + callback). Errors thrown inside a callback are printed by
// main() as one clean line and exit with status 1.
#pragma once

#include <CLI/CLI.hpp>

namespace tllm {

void register_generate_command(CLI::App& app);
void register_chat_command(CLI::App& app);
void register_embed_command(CLI::App& app);
void register_bench_command(CLI::App& app);
void register_tokenize_command(CLI::App& app);
void register_render_chat_command(CLI::App& app);
void register_serve_command(CLI::App& app);
void register_bench_serve_command(CLI::App& app);
void register_quantize_command(CLI::App& app);
void register_throughput_command(CLI::App& app);
void register_rag_command(CLI::App& app);

}  // namespace tllm
