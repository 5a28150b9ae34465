// tinyllm render-chat --model DIR --messages FILE.json [--tools FILE.json] [--no-generation-prompt]
//                     [--kwargs JSON] [--template-name NAME]
// Prints the model's chat template rendered over the messages, exactly (no newline added),
// as transformers' apply_chat_template(..., tokenize=False) would. FILE.json holds a list of
// messages, or an object with "messages" (and optionally "tools"), like an OpenAI request body.
// strftime_now() follows TLLM_FIXED_DATE when it is set.
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>

#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/options.h"
#include "core/error.h"
#include "io/hub.h"
#include "tokenizer/chat_template.h"

namespace tllm {

namespace {

struct RenderChatArgs {
  std::string model;
  std::string messages_file;
  std::string tools_file;
  std::string kwargs;
  std::string template_name;
  bool no_generation_prompt = false;
};

nlohmann::ordered_json read_json_file(const std::string& path, const char* what) {
  std::ifstream in(path, std::ios::binary);
  TLLM_CHECK_ARG(in.good(), "cannot open ", what, " file ", path);
  std::ostringstream ss;
  ss << in.rdbuf();
  try {
    return nlohmann::ordered_json::parse(ss.str());
  } catch (const nlohmann::json::exception& e) {
    throw InvalidArgument(std::string(what) + " file " + path + " is not valid JSON: " + e.what());
  }
}

void run_render_chat(const RenderChatArgs& a) {
  nlohmann::ordered_json doc = read_json_file(a.messages_file, "--messages");
  nlohmann::ordered_json messages = doc;
  nlohmann::ordered_json tools;  // null
  if (doc.is_object()) {
    TLLM_CHECK_ARG(doc.contains("messages"), "--messages file ", a.messages_file,
                   " must hold a list of messages or an object with \"messages\"");
    messages = doc["messages"];
    if (doc.contains("tools")) tools = doc["tools"];
  }
  if (!a.tools_file.empty()) tools = read_json_file(a.tools_file, "--tools");
  nlohmann::ordered_json kwargs = nlohmann::ordered_json::object();
  if (!a.kwargs.empty()) {
    try {
      kwargs = nlohmann::ordered_json::parse(a.kwargs);
    } catch (const nlohmann::json::exception& e) {
      throw InvalidArgument(std::string("--kwargs is not valid JSON: ") + e.what());
    }
    TLLM_CHECK_ARG(kwargs.is_object(), "--kwargs must be a JSON object, e.g. '{\"enable_thinking\": false}'");
  }
  HubOptions hub;
  hub.files = HubFiles::Tokenizer;
  auto tpl = ChatTemplate::load(resolve_model_arg(a.model, hub).dir, a.template_name);
  std::string text = tpl->render(messages, tools, !a.no_generation_prompt, kwargs);
  std::cout.write(text.data(), static_cast<std::streamsize>(text.size()));
  std::cout.flush();
}

}  // namespace

void register_render_chat_command(CLI::App& app) {
  auto args = std::make_shared<RenderChatArgs>();
  CLI::App* cmd = app.add_subcommand("render-chat", "render a model's chat template over messages (as HF apply_chat_template)");
  cmd->add_option("--model", args->model, "folder holding tokenizer_config.json (or chat_template.jinja), a hub repository id or a .gguf file")->required();
  cmd->add_option("--messages", args->messages_file, "JSON file: a list of messages, or {\"messages\": [...], \"tools\": [...]}")
      ->required();
  cmd->add_option("--tools", args->tools_file, "JSON file with a list of OpenAI function tools");
  cmd->add_flag("--no-generation-prompt", args->no_generation_prompt, "do not append the assistant turn header");
  cmd->add_option("--kwargs", args->kwargs, "extra template variables as a JSON object, e.g. '{\"enable_thinking\": false}'");
  cmd->add_option("--template-name", args->template_name, "pick one of several named templates (e.g. tool_use)");
  cmd->callback([args]() { run_render_chat(*args); });
}

}  // namespace tllm
