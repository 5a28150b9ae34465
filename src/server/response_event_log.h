// The server-sent events of a background response (server/responses_output.h writes them),
// kept beside its stored response so that a client can read them while the job writes them:
// POST /v1/responses with "background" and "stream" follows them from the first, and
// GET /v1/responses/{id}?stream=true&starting_after=N replays them from N + 1 and then
// follows the live ones. An event's index is its sequence_number. Thread-safe.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace tllm {

class ResponseEventLog {
 public:
  // Whole events, each "event: <type>\ndata: <json>\n\n" (one or several); after close(), none.
  void append(std::string_view events);
  // The job has ended: readers stop once they have read every event.
  void close();

  // Appends the events from index `next` on to out and advances next, waiting up to timeout
  // seconds while there are none yet. Returns false once the log is closed and read to its end.
  bool read(size_t& next, std::string& out, double timeout_seconds) const;
  size_t size() const;
  size_t bytes() const;
  bool closed() const;

 private:
  mutable std::mutex mu_;
  mutable std::condition_variable grew_;
  std::vector<std::string> events_;
  size_t bytes_ = 0;
  bool closed_ = false;
};

}  // namespace tllm
