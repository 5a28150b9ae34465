#include "server/client_connection.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <utility>

#include <httplib.h>

namespace tllm {
namespace {

bool port_and_ip(const sockaddr_storage& a, int& port, std::string& ip) {
  char buf[INET6_ADDRSTRLEN] = {0};
  if (a.ss_family == AF_INET) {
    const auto* v4 = reinterpret_cast<const sockaddr_in*>(&a);
    port = ntohs(v4->sin_port);
    inet_ntop(AF_INET, &v4->sin_addr, buf, sizeof(buf));
  } else if (a.ss_family == AF_INET6) {
    const auto* v6 = reinterpret_cast<const sockaddr_in6*>(&a);
    port = ntohs(v6->sin6_port);
    inet_ntop(AF_INET6, &v6->sin6_addr, buf, sizeof(buf));
  } else {
    return false;
  }
  ip = buf;
  return true;
}

bool matches(int fd, const httplib::Request& req) {
  sockaddr_storage peer{}, local{};
  socklen_t plen = sizeof(peer), llen = sizeof(local);
  if (getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &plen) != 0) return false;
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&local), &llen) != 0) return false;
  int peer_port = -1, local_port = -1;
  std::string peer_ip, local_ip;
  if (!port_and_ip(peer, peer_port, peer_ip) || !port_and_ip(local, local_port, local_ip)) return false;
  return peer_port == req.remote_port && local_port == req.local_port && peer_ip == req.remote_addr;
}

}  // namespace

ClientConnection::ClientConnection(const httplib::Request& req) {
  // httplib runs a connection's requests on one pool thread; remember its socket.
  thread_local int cached_fd = -1;
  if (cached_fd >= 0 && matches(cached_fd, req)) {
    fd_ = cached_fd;
  } else if (DIR* dir = opendir("/proc/self/fd")) {
    while (dirent* e = readdir(dir)) {
      char* end = nullptr;
      const long fd = std::strtol(e->d_name, &end, 10);
      if (end == e->d_name || *end != '\0' || fd == dirfd(dir)) continue;
      if (matches(static_cast<int>(fd), req)) {
        fd_ = static_cast<int>(fd);
        break;
      }
    }
    closedir(dir);
    cached_fd = fd_;
  }
  if (fd_ >= 0) {
    int one = 1;
    setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  }
}

bool ClientConnection::closed() const {
  if (fd_ < 0) return false;
  char c;
  const ssize_t n = recv(fd_, &c, 1, MSG_PEEK | MSG_DONTWAIT);
  if (n > 0) return false;  // a pipelined next request: still there
  if (n == 0) return true;  // orderly shutdown by the peer
  return errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR;
}

bool ClientConnection::write_chunk(std::string_view data) const {
  if (fd_ < 0) return false;
  if (data.empty()) return true;  // an empty chunk would end the body
  char head[24];
  int head_len = 0;
  for (size_t n = data.size(); n; n >>= 4) head[head_len++] = "0123456789abcdef"[n & 15];
  for (int i = 0; i < head_len / 2; ++i) std::swap(head[i], head[head_len - 1 - i]);
  head[head_len++] = '\r';
  head[head_len++] = '\n';
  iovec iov[3] = {{head, static_cast<size_t>(head_len)},
                  {const_cast<char*>(data.data()), data.size()},
                  {const_cast<char*>("\r\n"), 2}};
  msghdr msg{};
  msg.msg_iov = iov;
  msg.msg_iovlen = 3;
  // The socket is blocking with httplib's write timeout (SO_SNDTIMEO), so a short write
  // only happens when the buffer filled up or a signal arrived; continue where it stopped.
  while (msg.msg_iovlen > 0) {
    const ssize_t n = sendmsg(fd_, &msg, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    size_t left = static_cast<size_t>(n);
    while (msg.msg_iovlen > 0 && left >= msg.msg_iov->iov_len) {
      left -= msg.msg_iov->iov_len;
      ++msg.msg_iov;
      --msg.msg_iovlen;
    }
    if (msg.msg_iovlen > 0) {
      msg.msg_iov->iov_base = static_cast<char*>(msg.msg_iov->iov_base) + left;
      msg.msg_iov->iov_len -= left;
    }
  }
  return true;
}

}  // namespace tllm
