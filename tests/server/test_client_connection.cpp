// ClientConnection over a real loopback TCP connection: it finds the server side's socket
// from the request's address pair, frames write_chunk() as HTTP/1.1 chunks (checked by
// decoding the bytes the peer receives, including a write large enough to be split), and
// closed() notices the peer leaving.
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>
#include <thread>

#include <httplib.h>

#include "server/client_connection.h"

namespace tllm {
namespace {

struct LoopbackPair {
  int client = -1;  // the peer (what a browser would hold)
  int server = -1;  // the accepted socket (what httplib hands a handler)
  httplib::Request req;

  LoopbackPair() {
    const int listener = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = 0;
    EXPECT_EQ(bind(listener, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
    EXPECT_EQ(listen(listener, 1), 0);
    socklen_t len = sizeof(a);
    getsockname(listener, reinterpret_cast<sockaddr*>(&a), &len);
    client = socket(AF_INET, SOCK_STREAM, 0);
    EXPECT_EQ(connect(client, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
    server = accept(listener, nullptr, nullptr);
    close(listener);
    sockaddr_in peer{};
    len = sizeof(peer);
    getsockname(client, reinterpret_cast<sockaddr*>(&peer), &len);
    req.remote_addr = "127.0.0.1";
    req.remote_port = ntohs(peer.sin_port);
    req.local_port = ntohs(a.sin_port);
  }
  ~LoopbackPair() {
    if (client >= 0) close(client);
    if (server >= 0) close(server);
  }
};

// Reads until `want` bytes arrived (or EOF).
std::string read_n(int fd, size_t want) {
  std::string got;
  char buf[65536];
  while (got.size() < want) {
    const ssize_t n = recv(fd, buf, sizeof(buf), 0);
    if (n <= 0) break;
    got.append(buf, static_cast<size_t>(n));
  }
  return got;
}

// Decodes HTTP/1.1 chunked framing; fails the test on malformed input.
std::string dechunk(const std::string& s) {
  std::string body;
  size_t pos = 0;
  while (pos < s.size()) {
    const size_t eol = s.find("\r\n", pos);
    if (eol == std::string::npos) {
      ADD_FAILURE() << "chunk size line without CRLF at " << pos;
      return body;
    }
    const size_t n = std::stoul(s.substr(pos, eol - pos), nullptr, 16);
    pos = eol + 2;
    if (pos + n + 2 > s.size() || s.compare(pos + n, 2, "\r\n") != 0) {
      ADD_FAILURE() << "chunk of " << n << " bytes not followed by CRLF";
      return body;
    }
    body.append(s, pos, n);
    pos += n + 2;
  }
  return body;
}

TEST(ClientConnection, FindsTheSocketAndFramesChunks) {
  LoopbackPair p;
  ClientConnection conn(p.req);
  ASSERT_TRUE(conn.found());
  EXPECT_FALSE(conn.closed());

  ASSERT_TRUE(conn.write_chunk("data: {\"a\":1}\n\n"));
  EXPECT_EQ(read_n(p.client, 20), "f\r\ndata: {\"a\":1}\n\n\r\n");
  ASSERT_TRUE(conn.write_chunk(""));  // nothing on the wire: an empty chunk would end the body
  ASSERT_TRUE(conn.write_chunk(std::string(256, 'x')));
  EXPECT_EQ(read_n(p.client, 5 + 256 + 2), "100\r\n" + std::string(256, 'x') + "\r\n");
}

TEST(ClientConnection, LargeChunkSurvivesShortWrites) {
  // 8 MiB is more than loopback socket buffers hold, so sendmsg returns short and the
  // rest must follow from where it stopped.
  LoopbackPair p;
  ClientConnection conn(p.req);
  ASSERT_TRUE(conn.found());
  std::string big(8u << 20, '\0');
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>('a' + (i * 7919) % 26);
  std::string got;
  std::thread reader([&] { got = read_n(p.client, 6 + 2 + big.size() + 2); });
  const bool ok = conn.write_chunk(big);
  reader.join();
  ASSERT_TRUE(ok);
  EXPECT_EQ(got.substr(0, 8), "800000\r\n");
  EXPECT_TRUE(dechunk(got) == big);
}

TEST(ClientConnection, NoticesThePeerLeaving) {
  LoopbackPair p;
  ClientConnection conn(p.req);
  ASSERT_TRUE(conn.found());
  EXPECT_FALSE(conn.closed());
  close(p.client);
  p.client = -1;
  EXPECT_TRUE(conn.closed());
  // Writing to a connection the peer reset fails (after at most one accepted write).
  bool failed = false;
  for (int i = 0; i < 3 && !failed; ++i) {
    failed = !conn.write_chunk("data: x\n\n");
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_TRUE(failed);
}

TEST(ClientConnection, UnknownAddressIsNotFound) {
  httplib::Request req;
  req.remote_addr = "127.0.0.1";
  req.remote_port = 1;
  req.local_port = 1;
  ClientConnection conn(req);
  EXPECT_FALSE(conn.found());
  EXPECT_FALSE(conn.closed());
  EXPECT_FALSE(conn.write_chunk("x"));
}

}  // namespace
}  // namespace tllm
