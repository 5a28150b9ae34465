#include "tokenizer/chat_template.h"

#include <filesystem>

#include "core/error.h"
#include "io/json.h"

namespace tllm {

namespace fs = std::filesystem;

namespace {

// Compiles one template, prefixing syntax errors with where it came from.
std::unique_ptr<jinja::Template> compile(std::string source, const std::string& origin) {
  try {
    return std::make_unique<jinja::Template>(std::move(source));
  } catch (const Error& e) {
    throw Error(origin + ": " + e.what());
  }
}

// A special token in tokenizer_config.json: "text", {"content": "text", ...} or null.
std::optional<std::string> token_text(const nlohmann::ordered_json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_object() && v.contains("content") && v["content"].is_string()) return v["content"].get<std::string>();
  return std::nullopt;
}

// dir's tokenizer_config.json (an empty object when there is none), its special tokens put
// into `special`.
nlohmann::ordered_json read_tokenizer_config(const std::string& dir, nlohmann::ordered_json& special) {
  const fs::path config_path = fs::path(dir) / "tokenizer_config.json";
  nlohmann::ordered_json config = nlohmann::ordered_json::object();
  if (!path_present(config_path.string())) return config;
  try {
    config = nlohmann::ordered_json::parse(read_file(config_path.string()));
  } catch (const nlohmann::json::exception& e) {
    throw InvalidArgument(config_path.string() + ": invalid JSON: " + json_error_text(e));
  }
  TLLM_CHECK_ARG(config.is_object(), config_path.string(), ": expected a JSON object");
  for (const char* key : {"bos_token", "eos_token", "unk_token", "pad_token"}) {
    if (!config.contains(key)) continue;
    if (auto t = token_text(config[key])) special[key] = *t;
  }
  if (config.contains("additional_special_tokens") && config["additional_special_tokens"].is_array()) {
    nlohmann::ordered_json extra = nlohmann::ordered_json::array();
    for (const auto& t : config["additional_special_tokens"])
      if (auto s = token_text(t)) extra.push_back(*s);
    special["additional_special_tokens"] = extra;
  }
  return config;
}

}  // namespace

std::unique_ptr<ChatTemplate> ChatTemplate::load(const std::string& dir, const std::string& name) {
  std::unique_ptr<ChatTemplate> ct(new ChatTemplate());
  ct->requested_name_ = name;
  const fs::path config_path = fs::path(dir) / "tokenizer_config.json";
  const fs::path jinja_path = fs::path(dir) / "chat_template.jinja";
  const nlohmann::ordered_json config = read_tokenizer_config(dir, ct->special_tokens_);

  if (path_present(jinja_path.string())) {
    ct->origin_ = jinja_path.string();
    ct->templates_.emplace_back("default", compile(read_file(jinja_path.string()), ct->origin_));
  } else {
    TLLM_CHECK_ARG(path_present(config_path.string()), "no chat template in ", dir,
                   ": neither chat_template.jinja nor tokenizer_config.json exists");
    TLLM_CHECK_ARG(config.contains("chat_template") && !config["chat_template"].is_null(), config_path.string(),
                   " has no \"chat_template\" (and there is no chat_template.jinja)");
    const auto& t = config["chat_template"];
    ct->origin_ = config_path.string() + " chat_template";
    if (t.is_string()) {
      ct->templates_.emplace_back("default", compile(t.get<std::string>(), ct->origin_));
    } else if (t.is_array()) {
      for (const auto& entry : t) {
        TLLM_CHECK_ARG(entry.is_object() && entry.contains("name") && entry["name"].is_string() &&
                           entry.contains("template") && entry["template"].is_string(),
                       config_path.string(), ": chat_template list entries must be {\"name\": ..., \"template\": ...}");
        std::string n = entry["name"].get<std::string>();
        ct->templates_.emplace_back(n, compile(entry["template"].get<std::string>(), ct->origin_ + " '" + n + "'"));
      }
      TLLM_CHECK_ARG(!ct->templates_.empty(), config_path.string(), ": chat_template list is empty");
    } else {
      throw InvalidArgument(config_path.string() + ": \"chat_template\" must be a string or a list of named templates");
    }
  }
  if (!name.empty()) {
    bool found = false;
    for (const auto& [n, tpl] : ct->templates_) found |= n == name;
    if (!found) {
      std::string have;
      for (const auto& n : ct->names()) have += (have.empty() ? "" : ", ") + n;
      throw InvalidArgument("chat template '" + name + "' not found in " + dir + " (available: " + have + ")");
    }
  }
  return ct;
}

std::unique_ptr<ChatTemplate> ChatTemplate::load_override(const std::string& dir, const std::string& source) {
  std::unique_ptr<ChatTemplate> ct(new ChatTemplate());
  read_tokenizer_config(dir, ct->special_tokens_);
  std::error_code ec;
  std::string text;
  if (fs::is_regular_file(source, ec)) {
    ct->origin_ = source;
    text = read_file(source);
  } else {
    TLLM_CHECK_ARG(source.find_first_of("{}\n") != std::string::npos, "--chat-template \"", source,
                   "\" is neither a file nor a template (a template holds '{', '}' or a newline)");
    ct->origin_ = "--chat-template";
    text = source;
  }
  ct->templates_.emplace_back("default", compile(std::move(text), ct->origin_));
  return ct;
}

std::unique_ptr<ChatTemplate> ChatTemplate::from_string(std::string source, std::string bos_token,
                                                        std::string eos_token) {
  std::unique_ptr<ChatTemplate> ct(new ChatTemplate());
  ct->origin_ = "chat template";
  ct->templates_.emplace_back("default", compile(std::move(source), ct->origin_));
  if (!bos_token.empty()) ct->special_tokens_["bos_token"] = bos_token;
  if (!eos_token.empty()) ct->special_tokens_["eos_token"] = eos_token;
  return ct;
}

std::vector<std::string> ChatTemplate::names() const {
  std::vector<std::string> out;
  for (const auto& [n, t] : templates_) out.push_back(n);
  return out;
}

const jinja::Template& ChatTemplate::pick(bool has_tools) const {
  auto find = [&](const std::string& n) -> const jinja::Template* {
    for (const auto& [name, t] : templates_)
      if (name == n) return t.get();
    return nullptr;
  };
  if (!requested_name_.empty()) return *find(requested_name_);
  if (templates_.size() == 1 && templates_[0].first == "default") return *templates_[0].second;
  if (has_tools)
    if (const auto* t = find("tool_use")) return *t;
  if (const auto* t = find("default")) return *t;
  std::string have;
  for (const auto& n : names()) have += (have.empty() ? "" : ", ") + n;
  throw InvalidArgument(origin_ + " has no 'default' template; pick one by name (available: " + have + ")");
}

std::string ChatTemplate::render(const nlohmann::ordered_json& messages, const nlohmann::ordered_json& tools,
                                 bool add_generation_prompt, const nlohmann::ordered_json& extra_kwargs) const {
  TLLM_CHECK_ARG(messages.is_array(), "chat messages must be a JSON array, got ", messages.type_name());
  TLLM_CHECK_ARG(tools.is_null() || tools.is_array(), "tools must be a JSON array or null, got ", tools.type_name());
  TLLM_CHECK_ARG(extra_kwargs.is_null() || extra_kwargs.is_object(), "chat template kwargs must be a JSON object, got ",
                 extra_kwargs.type_name());
  auto ctx = std::make_shared<jinja::Dict>();
  for (auto it = special_tokens_.begin(); it != special_tokens_.end(); ++it)
    ctx->set(jinja::Value(it.key()), jinja::from_json(it.value()));
  ctx->set(jinja::Value("messages"), jinja::from_json(messages));
  ctx->set(jinja::Value("tools"), jinja::from_json(tools));
  ctx->set(jinja::Value("documents"), jinja::Value::none());
  ctx->set(jinja::Value("add_generation_prompt"), jinja::Value(add_generation_prompt));
  if (extra_kwargs.is_object()) {
    for (auto it = extra_kwargs.begin(); it != extra_kwargs.end(); ++it) {
      const std::string& k = it.key();
      TLLM_CHECK_ARG(k != "messages" && k != "tools" && k != "add_generation_prompt",
                     "chat template kwarg '", k, "' conflicts with the argument of the same name");
      ctx->set(jinja::Value(k), jinja::from_json(it.value()));
    }
  }
  const jinja::Template& t = pick(!tools.is_null());
  try {
    return t.render(jinja::Value::dict(ctx), opts_);
  } catch (const InvalidArgument&) {
    throw;  // raise_exception(): the template's own message, for a 400
  } catch (const Error& e) {
    throw Error(origin_ + ": " + e.what());
  }
}

}  // namespace tllm
