// Errors: library code throws tllm::Error with a message that names what is wrong
// (file, tensor, field, request). The CLI and the server turn it into a clean message
// or a 4xx JSON body at the edge; nothing inside catches and continues silently.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace tllm {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

// A mistake in what a user gave us (config value, request field, file content).
// The server maps it to HTTP 400 instead of 500.
// param: the request field it is about, where one is (the "param" of the server's 400 body).
class InvalidArgument : public Error {
 public:
  explicit InvalidArgument(const std::string& what, std::string param = {}) : Error(what), param_(std::move(param)) {}
  const std::string& param() const { return param_; }

 private:
  std::string param_;
};

// A host allocation larger than the memory the machine has available (core/allocator.h).
class HostOutOfMemory : public Error {
 public:
  explicit HostOutOfMemory(const std::string& what) : Error(what) {}
};

namespace detail {
template <typename... Args>
std::string concat(Args&&... args) {
  std::ostringstream os;
  (os << ... << std::forward<Args>(args));
  return os.str();
}
}  // namespace detail

}  // namespace tllm

// TLLM_CHECK(cond, "tensor ", name, " has shape ", shape) throws tllm::Error when cond is false.
#define TLLM_CHECK(cond, ...)                                                        \
  do {                                                                               \
    if (!(cond)) [[unlikely]]                                                        \
      throw ::tllm::Error(::tllm::detail::concat(__VA_ARGS__));                      \
  } while (0)

#define TLLM_CHECK_ARG(cond, ...)                                                    \
  do {                                                                               \
    if (!(cond)) [[unlikely]]                                                        \
      throw ::tllm::InvalidArgument(::tllm::detail::concat(__VA_ARGS__));            \
  } while (0)

// TLLM_CHECK_ARG about one request field, named first: TLLM_CHECK_FIELD(x > 0, "top_p", "top_p must ...").
#define TLLM_CHECK_FIELD(cond, field, ...)                                           \
  do {                                                                               \
    if (!(cond)) [[unlikely]]                                                        \
      throw ::tllm::InvalidArgument(::tllm::detail::concat(__VA_ARGS__), field);     \
  } while (0)

#define TLLM_THROW(...) throw ::tllm::Error(::tllm::detail::concat(__VA_ARGS__))

// Internal invariant (a bug in tinyllm, not in the input); still a message, never abort.
#define TLLM_ASSERT(cond)                                                            \
  TLLM_CHECK(cond, "internal error: ", #cond, " failed at ", __FILE__, ":", __LINE__)
