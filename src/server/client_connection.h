// Is the client of a request still connected? cpp-httplib 0.11 (Debian's) gives handlers
// no socket and no is_connection_closed(), so a handler finds its connection's socket by
// the request's address pair (remote ip:port, local port), which is unique among live TCP
// connections, and then peeks at it: EOF or an error means the client went away.
#pragma once

#include <string>
#include <string_view>

namespace httplib {
struct Request;
}

namespace tllm {

class ClientConnection {
 public:
  // Looks the socket up (a cached fd per handler thread is checked first, so keep-alive
  // connections cost two syscalls). When none matches, closed() is always false.
  explicit ClientConnection(const httplib::Request& req);
  // Also sets TCP_NODELAY, so small SSE chunks leave at once.
  bool found() const { return fd_ >= 0; }
  // Non-blocking: true when the peer closed or reset the connection.
  bool closed() const;
  // Writes `data` as one HTTP/1.1 chunk (`<hex size>\r\n<data>\r\n`) straight to the
  // socket, in one writev. For a chunked response whose headers httplib has already sent
  // (inside a chunked content provider, which httplib never compresses for
  // text/event-stream). It saves httplib's DataSink::write path two poll()s and two
  // string copies per chunk. False when the write failed (or no socket was found:
  // callers then use the DataSink).
  bool write_chunk(std::string_view data) const;

 private:
  int fd_ = -1;
};

}  // namespace tllm
