#include "server/responses_output.h"

#include <charconv>
#include <utility>

#include "server/json_text.h"
#include "server/serving.h"

namespace tllm {
namespace {

const char* kind_name(ResponseItem::Kind k) {
  switch (k) {
    case ResponseItem::Kind::Reasoning: return "reasoning";
    case ResponseItem::Kind::Message: return "message";
    case ResponseItem::Kind::FunctionCall: return "function_call";
  }
  return "";
}

// A sampling setting as the request would have written it (0.95, not 0.949999988).
void append_float(std::string& out, float v) {
  char buf[32];
  const auto r = std::to_chars(buf, buf + sizeof(buf), v);
  out.append(buf, r.ptr);
}

void append_optional(std::string& out, const std::optional<std::string>& s) {
  if (s) append_json_string(out, *s);
  else out += "null";
}

// A new item with fresh ids.
ResponseItem new_item(ResponseItem::Kind kind, std::string text = "", std::string name = "") {
  static const char* prefixes[] = {"rs", "msg", "fc"};
  ResponseItem item;
  item.kind = kind;
  item.id = response_item_id(prefixes[static_cast<int>(kind)]);
  item.text = std::move(text);
  if (kind == ResponseItem::Kind::FunctionCall) {
    item.name = std::move(name);
    item.call_id = response_item_id("call");
  }
  return item;
}

}  // namespace

std::string response_item_id(const char* prefix) {
  std::string id = make_request_id(prefix);
  id[id.find('-')] = '_';
  return id;
}

std::vector<ResponseItem> response_items(const ChatMessageParts& parts) {
  std::vector<ResponseItem> items;
  if (parts.reasoning) items.push_back(new_item(ResponseItem::Kind::Reasoning, *parts.reasoning));
  if (!parts.content.empty() || (parts.calls.empty() && !parts.reasoning))
    items.push_back(new_item(ResponseItem::Kind::Message, parts.content));
  for (const ToolCall& c : parts.calls) items.push_back(new_item(ResponseItem::Kind::FunctionCall, c.arguments, c.name));
  return items;
}

RequestJson assistant_turn(const std::vector<ResponseItem>& items) {
  RequestJson turn = {{"role", "assistant"}, {"content", ""}};
  std::string content, reasoning;
  RequestJson calls = RequestJson::array();
  for (const ResponseItem& i : items) {
    switch (i.kind) {
      // Sanitized: a reply cut inside a character ends in invalid UTF-8.
      case ResponseItem::Kind::Reasoning: reasoning += sanitize_utf8(i.text); break;
      case ResponseItem::Kind::Message: content += sanitize_utf8(i.text); break;
      case ResponseItem::Kind::FunctionCall:
        calls.push_back({{"id", i.call_id}, {"type", "function"},
                         {"function", {{"name", sanitize_utf8(i.name)}, {"arguments", sanitize_utf8(i.text)}}}});
        break;
    }
  }
  turn["content"] = content;
  if (!reasoning.empty()) turn["reasoning_content"] = reasoning;
  if (!calls.empty()) turn["tool_calls"] = std::move(calls);
  return turn;
}

// ---- ResponseWriter ---------------------------------------------------------------------

ResponseWriter::ResponseWriter(const ResponsesRequest& request, std::string id, std::string model,
                               int64_t created_at, float temperature, float top_p, LogprobStyle style, bool stored)
    : request_(request), id_(std::move(id)), model_(std::move(model)), created_at_(created_at),
      temperature_(temperature), top_p_(top_p), style_(style), stored_(stored) {}

ResponseWriter::Outcome ResponseWriter::ended(bool incomplete, const ResponseUsage& usage) {
  Outcome o;
  o.status = incomplete ? "incomplete" : "completed";
  if (incomplete) o.incomplete_reason = "max_output_tokens";
  o.usage = &usage;
  return o;
}

void ResponseWriter::append_logprobs(std::string& out, const std::vector<TokenLogprob>& logprobs) const {
  out.push_back('[');
  if (this->logprobs()) {
    for (size_t i = 0; i < logprobs.size(); ++i) {
      if (i) out.push_back(',');
      append_chat_logprob(out, logprobs[i], request_.chat.logprobs, style_);
    }
  }
  out.push_back(']');
}

void ResponseWriter::append_text_part(std::string& out, std::string_view text,
                                      const std::vector<TokenLogprob>& logprobs) const {
  out += "{\"type\":\"output_text\",\"text\":";
  append_json_string(out, text);
  out += ",\"annotations\":[],\"logprobs\":";
  append_logprobs(out, logprobs);
  out.push_back('}');
}

void ResponseWriter::append_item(std::string& out, const ResponseItem& item, const std::vector<TokenLogprob>& logprobs,
                                 bool in_progress) const {
  const char* status = in_progress ? "in_progress" : item.incomplete ? "incomplete" : "completed";
  out += "{\"id\":";
  append_json_string(out, item.id);
  out += ",\"type\":";
  append_json_string(out, kind_name(item.kind));
  out += ",\"status\":";
  append_json_string(out, status);
  switch (item.kind) {
    case ResponseItem::Kind::Reasoning:
      out += ",\"summary\":[],\"content\":[";
      if (!in_progress) {
        out += "{\"type\":\"reasoning_text\",\"text\":";
        append_json_string(out, item.text);
        out.push_back('}');
      }
      out += "],\"encrypted_content\":null}";
      break;
    case ResponseItem::Kind::Message:
      out += ",\"role\":\"assistant\",\"content\":[";
      if (!in_progress) append_text_part(out, item.text, logprobs);
      out += "]}";
      break;
    case ResponseItem::Kind::FunctionCall:
      out += ",\"call_id\":";
      append_json_string(out, item.call_id);
      out += ",\"name\":";
      append_json_string(out, item.name);
      out += ",\"arguments\":";
      append_json_string(out, in_progress ? std::string_view() : std::string_view(item.text));
      out.push_back('}');
      break;
  }
}

void ResponseWriter::append_response(std::string& out, const std::vector<ResponseItem>& items,
                                     const std::vector<TokenLogprob>& logprobs, const Outcome& o) const {
  out += "{\"id\":";
  append_json_string(out, id_);
  out += ",\"object\":\"response\",\"created_at\":";
  append_json_number(out, created_at_);
  out += ",\"status\":";
  append_json_string(out, o.status);
  out += request_.background ? ",\"background\":true,\"error\":" : ",\"background\":false,\"error\":";
  if (o.status == "failed") {
    out += "{\"code\":\"server_error\",\"message\":";
    append_json_string(out, o.error);
    out.push_back('}');
  } else {
    out += "null";
  }
  out += ",\"incomplete_details\":";
  if (o.status == "incomplete") {
    out += "{\"reason\":";
    append_json_string(out, o.incomplete_reason);
    out.push_back('}');
  } else {
    out += "null";
  }
  out += ",\"instructions\":";
  append_optional(out, request_.instructions);
  out += ",\"max_output_tokens\":";
  if (request_.max_output_tokens) append_json_number(out, static_cast<int64_t>(*request_.max_output_tokens));
  else out += "null";
  out += ",\"metadata\":";
  out += request_.metadata.dump();
  out += ",\"model\":";
  append_json_string(out, model_);
  out += ",\"output\":[";
  // The logprobs go with the last message (there is one unless the reply is all calls).
  size_t last_message = items.size();
  for (size_t i = 0; i < items.size(); ++i)
    if (items[i].kind == ResponseItem::Kind::Message) last_message = i;
  static const std::vector<TokenLogprob> none;
  for (size_t i = 0; i < items.size(); ++i) {
    if (i) out.push_back(',');
    append_item(out, items[i], i == last_message ? logprobs : none, false);
  }
  out += "],\"parallel_tool_calls\":";
  out += request_.parallel_tool_calls ? "true" : "false";
  out += ",\"previous_response_id\":";
  append_optional(out, request_.previous_response_id);
  out += ",\"reasoning\":";
  out += request_.reasoning.dump();
  out += ",\"store\":";
  out += stored_ ? "true" : "false";
  out += ",\"temperature\":";
  append_float(out, temperature_);
  out += ",\"text\":{\"format\":";
  out += request_.text_format.dump();
  out += "},\"tool_choice\":";
  out += request_.tool_choice.dump();
  out += ",\"tools\":";
  out += request_.tools.dump();
  out += ",\"top_logprobs\":";
  append_json_number(out, static_cast<int64_t>(request_.top_logprobs.value_or(0)));
  out += ",\"top_p\":";
  append_float(out, top_p_);
  out += request_.truncate_auto ? ",\"truncation\":\"auto\",\"usage\":" : ",\"truncation\":\"disabled\",\"usage\":";
  if (const ResponseUsage* u = o.usage) {
    out += "{\"input_tokens\":";
    append_json_number(out, static_cast<int64_t>(u->input_tokens));
    out += ",\"input_tokens_details\":{\"cached_tokens\":";
    append_json_number(out, static_cast<int64_t>(u->cached_tokens));
    out += "},\"output_tokens\":";
    append_json_number(out, static_cast<int64_t>(u->output_tokens));
    out += ",\"output_tokens_details\":{\"reasoning_tokens\":";
    append_json_number(out, static_cast<int64_t>(u->reasoning_tokens));
    out += "},\"total_tokens\":";
    append_json_number(out, static_cast<int64_t>(u->input_tokens + u->output_tokens));
    out.push_back('}');
  } else {
    out += "null";
  }
  out += ",\"user\":";
  append_optional(out, request_.user);
  out.push_back('}');
}

// ---- ResponseEventStream -----------------------------------------------------------------

void ResponseEventStream::event(std::string& out, std::string_view type, std::string_view fields) {
  out += "event: ";
  out += type;
  out += "\ndata: {\"type\":";
  append_json_string(out, type);
  out += ",\"sequence_number\":";
  append_json_number(out, sequence_++);
  out += fields;
  out += "}\n\n";
}

std::string ResponseEventStream::item_ref(const ResponseItem& item) const {
  std::string s = ",\"item_id\":";
  append_json_string(s, item.id);
  s += ",\"output_index\":";
  append_json_number(s, static_cast<int64_t>(&item - items_.data()));
  return s;
}

void ResponseEventStream::start(std::string& out, bool queued) {
  ResponseWriter::Outcome o;
  o.status = queued ? "queued" : "in_progress";
  std::string fields = ",\"response\":";
  writer_.append_response(fields, {}, {}, o);
  event(out, "response.created", fields);
  if (!queued) return in_progress(out);
  fields = ",\"response\":";
  writer_.append_response(fields, {}, {}, o);
  event(out, "response.queued", fields);
}

void ResponseEventStream::in_progress(std::string& out) {
  std::string fields = ",\"response\":";
  writer_.append_response(fields, {}, {}, {});
  event(out, "response.in_progress", fields);
}

ResponseItem& ResponseEventStream::open(ResponseItem::Kind kind, std::string& out, std::string_view name) {
  if (open_ && items_.back().kind == kind && kind != ResponseItem::Kind::FunctionCall) return items_.back();
  close(out);
  items_.push_back(new_item(kind, "", std::string(name)));
  open_ = true;
  ResponseItem& item = items_.back();
  // output_item.added, and content_part.added for the text part.
  std::string fields = ",\"output_index\":";
  append_json_number(fields, static_cast<int64_t>(items_.size() - 1));
  fields += ",\"item\":";
  writer_.append_item(fields, item, {}, true);
  event(out, "response.output_item.added", fields);
  if (kind != ResponseItem::Kind::FunctionCall) {
    fields = item_ref(item) + ",\"content_index\":0,\"part\":";
    if (kind == ResponseItem::Kind::Reasoning) fields += "{\"type\":\"reasoning_text\",\"text\":\"\"}";
    else writer_.append_text_part(fields, "", {});
    event(out, "response.content_part.added", fields);
  }
  return item;
}

void ResponseEventStream::close(std::string& out) {
  if (!open_) return;
  open_ = false;
  const ResponseItem& item = items_.back();
  const std::string ref = item_ref(item);
  std::string fields;
  switch (item.kind) {
    case ResponseItem::Kind::Reasoning:
      fields = ref + ",\"content_index\":0,\"text\":";
      append_json_string(fields, item.text);
      event(out, "response.reasoning_text.done", fields);
      fields = ref + ",\"content_index\":0,\"part\":{\"type\":\"reasoning_text\",\"text\":";
      append_json_string(fields, item.text);
      fields.push_back('}');
      event(out, "response.content_part.done", fields);
      break;
    case ResponseItem::Kind::Message:
      if (!pending_.empty() && writer_.logprobs()) {
        // Tokens without text (the end-of-turn token): their logprobs in an empty delta.
        fields = ref + ",\"content_index\":0,\"delta\":\"\",\"logprobs\":";
        writer_.append_logprobs(fields, pending_);
        pending_.clear();
        event(out, "response.output_text.delta", fields);
      }
      fields = ref + ",\"content_index\":0,\"text\":";
      append_json_string(fields, item.text);
      fields += ",\"logprobs\":";
      writer_.append_logprobs(fields, logprobs_);
      event(out, "response.output_text.done", fields);
      fields = ref + ",\"content_index\":0,\"part\":";
      writer_.append_text_part(fields, item.text, logprobs_);
      event(out, "response.content_part.done", fields);
      break;
    case ResponseItem::Kind::FunctionCall:
      fields = ref + ",\"name\":";
      append_json_string(fields, item.name);
      fields += ",\"arguments\":";
      append_json_string(fields, item.text);
      event(out, "response.function_call_arguments.done", fields);
      break;
  }
  fields = ",\"output_index\":";
  append_json_number(fields, static_cast<int64_t>(items_.size() - 1));
  fields += ",\"item\":";
  writer_.append_item(fields, item, logprobs_, false);
  event(out, "response.output_item.done", fields);
}

void ResponseEventStream::push(const ChatOutputStream::Delta& d, const std::vector<TokenLogprob>& logprobs,
                               std::string& out) {
  logprobs_.insert(logprobs_.end(), logprobs.begin(), logprobs.end());
  pending_.insert(pending_.end(), logprobs.begin(), logprobs.end());
  if (!d.reasoning.empty()) {
    ResponseItem& item = open(ResponseItem::Kind::Reasoning, out);
    item.text += d.reasoning;
    std::string fields = item_ref(item) + ",\"content_index\":0,\"delta\":";
    append_json_string(fields, d.reasoning);
    event(out, "response.reasoning_text.delta", fields);
  }
  if (!d.content.empty()) {
    ResponseItem& item = open(ResponseItem::Kind::Message, out);
    item.text += d.content;
    std::string fields = item_ref(item) + ",\"content_index\":0,\"delta\":";
    append_json_string(fields, d.content);
    fields += ",\"logprobs\":";
    writer_.append_logprobs(fields, pending_);
    pending_.clear();
    event(out, "response.output_text.delta", fields);
  }
  for (const ToolCallDelta& c : d.calls) {
    if (c.name) open(ResponseItem::Kind::FunctionCall, out, *c.name);
    if (c.arguments.empty() || !open_ || items_.back().kind != ResponseItem::Kind::FunctionCall) continue;
    ResponseItem& item = items_.back();
    item.text += c.arguments;
    std::string fields = item_ref(item) + ",\"delta\":";
    append_json_string(fields, c.arguments);
    event(out, "response.function_call_arguments.delta", fields);
  }
}

std::string ResponseEventStream::finish(bool incomplete, const ResponseUsage& usage, std::string& out) {
  if (items_.empty()) open(ResponseItem::Kind::Message, out);  // a reply without text: its empty message
  items_.back().incomplete = incomplete;
  close(out);
  std::string response;
  writer_.append_response(response, items_, logprobs_, ResponseWriter::ended(incomplete, usage));
  event(out, incomplete ? "response.incomplete" : "response.completed", ",\"response\":" + response);
  return response;
}

std::string ResponseEventStream::fail(const std::string& error, std::string& out) {
  ResponseWriter::Outcome o;
  o.status = "failed";
  o.error = error;
  std::string response;
  writer_.append_response(response, items_, logprobs_, o);
  event(out, "response.failed", ",\"response\":" + response);
  return response;
}

}  // namespace tllm
