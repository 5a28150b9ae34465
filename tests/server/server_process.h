// Runs `tinyllm serve` as a child process on a free loopback port (--port 0; the port is
// read from its first line of output) and stops it with SIGTERM. The server is killed when the
// test process dies (a failed assert aborts it): it would otherwise keep ctest's output pipe
// open and ctest would wait out the test's whole timeout.
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include <httplib.h>

namespace tllm::testing {

class ServerProcess {
 public:
  // merge_stderr: the server's stderr (its log) goes into output() too.
  ServerProcess(const std::vector<std::string>& args, const std::map<std::string, std::string>& env = {},
                bool merge_stderr = false) {
    int fds[2];
    if (pipe(fds) != 0) throw std::runtime_error("pipe failed");
    const pid_t parent = getpid();
    pid_ = fork();
    if (pid_ < 0) throw std::runtime_error("fork failed");
    if (pid_ == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (getppid() != parent) _exit(127);  // the parent died before prctl
      dup2(fds[1], 1);
      if (merge_stderr) dup2(fds[1], 2);
      close(fds[0]);
      close(fds[1]);
      for (const auto& [k, v] : env) setenv(k.c_str(), v.c_str(), 1);
      std::vector<std::string> all = {TLLM_CLI_BINARY, "serve"};
      all.insert(all.end(), args.begin(), args.end());
      std::vector<char*> argv;
      for (auto& a : all) argv.push_back(a.data());
      argv.push_back(nullptr);
      execv(TLLM_CLI_BINARY, argv.data());
      _exit(127);
    }
    close(fds[1]);
    out_fd_ = fds[0];
    // The first line names the port: "tinyllm serve: listening on http://HOST:PORT (...)".
    std::string line;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (std::chrono::steady_clock::now() < deadline) {
      pollfd p{out_fd_, POLLIN, 0};
      if (poll(&p, 1, 100) <= 0) continue;
      char c;
      if (read(out_fd_, &c, 1) != 1) break;
      output_.push_back(c);
      if (c != '\n') continue;
      const size_t at = output_.find("listening on http://");
      if (at != std::string::npos) {
        const size_t colon = output_.find(':', at + 20);
        port_ = std::stoi(output_.substr(colon + 1));
        break;
      }
    }
    if (port_ <= 0) throw std::runtime_error("tinyllm serve did not start; output: " + output_);
    drainer_ = std::thread([this] {
      char buf[4096];
      ssize_t n;
      while ((n = read(out_fd_, buf, sizeof(buf))) > 0) output_.append(buf, n);
    });
  }

  ~ServerProcess() { stop(); }

  // SIGTERM, then the exit status (-1 if it had to be killed).
  int stop() {
    if (pid_ <= 0) return exit_status_;
    kill(pid_, SIGTERM);
    int status = 0;
    for (int i = 0; i < 300; ++i) {  // 30 s
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        exit_status_ = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
        pid_ = 0;
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, &status, 0);
      pid_ = 0;
      exit_status_ = -1;
    }
    if (drainer_.joinable()) drainer_.join();
    close(out_fd_);
    return exit_status_;
  }

  // What the server wrote (stdout, and stderr when merged); complete once stop() has returned.
  const std::string& output() const { return output_; }
  int port() const { return port_; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  httplib::Client client(double timeout_s = 120) const {
    httplib::Client c("127.0.0.1", port_);
    c.set_read_timeout(static_cast<time_t>(timeout_s));
    c.set_write_timeout(static_cast<time_t>(timeout_s));
    return c;
  }
  bool wait_healthy(double timeout_s = 60) const {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_s);
    while (std::chrono::steady_clock::now() < deadline) {
      auto c = client(5);
      if (auto r = c.Get("/health"); r && r->status == 200) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return false;
  }

 private:
  pid_t pid_ = 0;
  int out_fd_ = -1;
  int port_ = 0;
  int exit_status_ = -1;
  std::string output_;
  std::thread drainer_;
};

}  // namespace tllm::testing
