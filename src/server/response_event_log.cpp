#include "server/response_event_log.h"

#include <chrono>

#include "core/error.h"

namespace tllm {

void ResponseEventLog::append(std::string_view events) {
  std::vector<std::string> split;
  // An event ends at its blank line; its JSON data holds no raw newline.
  while (!events.empty()) {
    const size_t end = events.find("\n\n");
    TLLM_CHECK(end != std::string_view::npos, "ResponseEventLog: an event without its blank line");
    split.emplace_back(events.substr(0, end + 2));
    events.remove_prefix(end + 2);
  }
  std::lock_guard<std::mutex> lock(mu_);
  TLLM_CHECK(!closed_, "ResponseEventLog: append after close");
  for (std::string& e : split) {
    bytes_ += e.size();
    events_.push_back(std::move(e));
  }
  grew_.notify_all();
}

void ResponseEventLog::close() {
  std::lock_guard<std::mutex> lock(mu_);
  closed_ = true;
  grew_.notify_all();
}

bool ResponseEventLog::read(size_t& next, std::string& out, double timeout_seconds) const {
  std::unique_lock<std::mutex> lock(mu_);
  grew_.wait_for(lock, std::chrono::duration<double>(timeout_seconds),
                 [&] { return closed_ || next < events_.size(); });
  for (; next < events_.size(); ++next) out += events_[next];
  return !closed_;
}

size_t ResponseEventLog::size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return events_.size();
}

size_t ResponseEventLog::bytes() const {
  std::lock_guard<std::mutex> lock(mu_);
  return bytes_;
}

bool ResponseEventLog::closed() const {
  std::lock_guard<std::mutex> lock(mu_);
  return closed_;
}

}  // namespace tllm
