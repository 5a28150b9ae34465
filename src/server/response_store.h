// The responses that POST /v1/responses stored (its `store`, true unless the request says
// false): what previous_response_id continues, GET /v1/responses/{id} returns and
// GET /v1/responses/{id}/input_items lists. In memory, at most `capacity` of them and
// `max_bytes` of their text, a background response's events included (the least recently used finished one dropped first; a background
// response still running is not dropped), lost at exit; capacity 0 stores nothing. Thread-safe.
#pragma once

#include <cstddef>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "server/protocol.h"
#include "server/response_event_log.h"

namespace tllm {

class ResponseStore {
 public:
  struct Entry {
    // The conversation as chat messages, this response's output included as the last
    // assistant turn; without the instructions (a continuation gives its own, as OpenAI's).
    RequestJson conversation;
    std::string response;  // the response object, as JSON text
    // The items the model read (GET /v1/responses/{id}/input_items): the earlier responses'
    // inputs and outputs that previous_response_id carried over, then this request's input.
    RequestJson input_items = RequestJson::array();
    // False while a background response runs: `response` is its queued / in_progress form
    // and `conversation` lacks the reply, so nothing may continue it yet.
    bool finished = true;
    // A background response's events (GET /v1/responses/{id}?stream=true); null otherwise.
    std::shared_ptr<const ResponseEventLog> events = nullptr;
  };

  static constexpr size_t kDefaultMaxBytes = size_t{256} << 20;
  explicit ResponseStore(size_t capacity, size_t max_bytes = kDefaultMaxBytes)
      : capacity_(capacity), max_bytes_(max_bytes) {}
  size_t capacity() const { return capacity_; }
  size_t bytes() const;  // the text kept now
  void put(const std::string& id, Entry entry);
  // Null when the id is unknown (never stored, or dropped).
  std::shared_ptr<const Entry> get(const std::string& id);
  // Forgets the response (DELETE /v1/responses/{id}); false when the id is unknown.
  bool erase(const std::string& id);

 private:
  size_t capacity_, max_bytes_;
  size_t bytes_ = 0;
  mutable std::mutex mu_;
  std::list<std::string> order_;  // most recently used first
  struct Slot {
    std::shared_ptr<const Entry> entry;
    std::list<std::string>::iterator at;
    size_t bytes = 0;
  };
  void drop(const std::string& id);  // mu_ held
  std::unordered_map<std::string, Slot> slots_;
};

}  // namespace tllm
