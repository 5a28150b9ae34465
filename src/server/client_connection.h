// Is the client of a request still connected? cpp-httplib 0.11 (Debian's) gives handlers
// no socket and no is_connection_closed(), so a handler finds its connection's socket by
// the request's address pair (remote ip:port, local port), which is unique among live TCP
// connections, and then peeks at it: EOF or an error means the client went away.
#pragma once

#include <string>

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

 private:
  int fd_ = -1;
};

}  // namespace tllm
