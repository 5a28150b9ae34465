// What POST /v1/responses returns, written as JSON text: the response object (OpenAI's
// Responses API) with its output items, and the server-sent events of a streamed one.
//  - Output items, in the order the model wrote them: a "reasoning" item (with a reasoning
//    parser, its text as reasoning_text content), a "message" item (one output_text part,
//    with, when asked for, the logprobs of every generated token, reasoning included: tokens
//    do not split where the text does) and a "function_call" item per tool call.
//    A reply with neither text nor calls still has its (empty) message.
//  - Status: "completed"; "incomplete" with incomplete_details.reason "max_output_tokens" when
//    the tokens ran out (the last item is then "incomplete" too); "failed" with an error when
//    the engine failed the request.
//  - Streaming: `event: <type>` + `data: {"type": <type>, "sequence_number": n, ...}` per
//    event: response.created, response.in_progress (a background response: response.created
//    and response.queued with status queued, response.in_progress at its first token), then per item output_item.added,
//    content_part.added, the text deltas (output_text / reasoning_text /
//    function_call_arguments), their .done events and output_item.done, and last
//    response.completed / response.incomplete / response.failed with the whole response. No
//    [DONE] (OpenAI sends none).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "server/chat_output.h"
#include "server/logprobs.h"
#include "server/responses_request.h"

namespace tllm {

struct ResponseItem {
  enum class Kind { Reasoning, Message, FunctionCall };
  Kind kind = Kind::Message;
  std::string id;       // "rs_...", "msg_...", "fc_..."
  std::string text;     // reasoning or message text; a call's arguments
  std::string name;     // a call's function
  std::string call_id;  // "call_..."
  bool incomplete = false;
};

// Random response and item ids: "<prefix>_<32 hex digits>".
std::string response_item_id(const char* prefix);

// The items of a whole reply (split by server/chat_output.h).
std::vector<ResponseItem> response_items(const ChatMessageParts& parts);
// The items as the assistant's chat turn (content, reasoning_content, tool_calls), as a
// stored conversation continues it.
RequestJson assistant_turn(const std::vector<ResponseItem>& items);

struct ResponseUsage {
  int input_tokens = 0, cached_tokens = 0, output_tokens = 0, reasoning_tokens = 0;
};

// Writes response objects for one request.
class ResponseWriter {
 public:
  // stored: the response is kept (its "store" reads true).
  ResponseWriter(const ResponsesRequest& request, std::string id, std::string model, int64_t created_at,
                 float temperature, float top_p, LogprobStyle style, bool stored);
  const std::string& id() const { return id_; }
  bool logprobs() const { return request_.chat.logprobs >= 0; }

  struct Outcome {
    // queued, in_progress, completed, incomplete, failed, cancelled
    std::string_view status = "in_progress";
    std::string_view incomplete_reason;       // with "incomplete"
    std::string error;                        // with "failed"
    const ResponseUsage* usage = nullptr;     // null: "usage": null
  };
  // A finished response's: completed, or incomplete (the tokens ran out).
  static Outcome ended(bool incomplete, const ResponseUsage& usage);
  // `logprobs` go into the message's output_text part (when the request asked for them).
  void append_response(std::string& out, const std::vector<ResponseItem>& items,
                       const std::vector<TokenLogprob>& logprobs, const Outcome& outcome) const;
  // One item; `in_progress` as output_item.added shows it (no text yet).
  void append_item(std::string& out, const ResponseItem& item, const std::vector<TokenLogprob>& logprobs,
                   bool in_progress) const;
  // The output_text part of a message.
  void append_text_part(std::string& out, std::string_view text, const std::vector<TokenLogprob>& logprobs) const;
  // A "logprobs" list (empty unless the request asked for them).
  void append_logprobs(std::string& out, const std::vector<TokenLogprob>& logprobs) const;

 private:
  const ResponsesRequest& request_;
  std::string id_, model_;
  int64_t created_at_;
  float temperature_, top_p_;
  LogprobStyle style_;
  bool stored_;
};

// The events of a streamed response, from the chat output splitter's deltas.
class ResponseEventStream {
 public:
  explicit ResponseEventStream(const ResponseWriter& writer) : writer_(writer) {}
  // response.created and response.in_progress; queued (a background response):
  // response.created and response.queued, with in_progress() to follow when it starts.
  void start(std::string& out, bool queued = false);
  void in_progress(std::string& out);
  // One output's new text, split (reasoning, content, calls), and its new logprobs.
  void push(const ChatOutputStream::Delta& delta, const std::vector<TokenLogprob>& logprobs, std::string& out);
  // Closes the open item and ends with response.completed / response.incomplete; returns
  // that response object.
  std::string finish(bool incomplete, const ResponseUsage& usage, std::string& out);
  // Ends with response.failed; returns that response object.
  std::string fail(const std::string& error, std::string& out);
  const std::vector<ResponseItem>& items() const { return items_; }

 private:
  // `event: type` and `data: {"type":type,"sequence_number":n<fields>}`.
  void event(std::string& out, std::string_view type, std::string_view fields);
  // The open item of that kind, else (after closing the open one) a new one, announced with
  // output_item.added (and content_part.added for a text part).
  ResponseItem& open(ResponseItem::Kind kind, std::string& out, std::string_view name = {});
  void close(std::string& out);
  std::string item_ref(const ResponseItem& item) const;  // `,"item_id":..,"output_index":..`

  const ResponseWriter& writer_;
  std::vector<ResponseItem> items_;
  bool open_ = false;  // the last item is open
  int64_t sequence_ = 0;
  std::vector<TokenLogprob> logprobs_, pending_;  // all so far; not yet sent with a text delta
};

}  // namespace tllm
