// Running the tinyllm binary (TLLM_CLI_BINARY) from a test: exit status and output.
#pragma once

#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <string>

namespace tllm::cli_test {

struct Result {
  int status = -1;
  std::string out;  // what the command wrote (run: stdout and stderr together)
};

// A shell command's exit status and standard output.
inline Result run_shell(const std::string& cmd) {
  Result r;
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return r;
  std::array<char, 4096> buf;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) r.out.append(buf.data(), n);
  const int st = pclose(p);
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return r;
}

// tinyllm ARGS with stdout and stderr together (env: variables to set, "A=1 B=2").
inline Result run(const std::string& args, const std::string& env = "") {
  return run_shell(env + (env.empty() ? "" : " ") + std::string(TLLM_CLI_BINARY) + " " + args + " 2>&1");
}

// tinyllm ARGS, stdout only (stderr dropped).
inline Result run_stdout(const std::string& args) {
  return run_shell(std::string(TLLM_CLI_BINARY) + " " + args + " 2>/dev/null");
}

}  // namespace tllm::cli_test
