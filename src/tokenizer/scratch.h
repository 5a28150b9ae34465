// Thread-local scratch buffers of the tokenizer: kept between calls so that encoding a word
// allocates nothing, but trimmed after a call that grew them past 1 MiB. Before the trim one
// 20 MB prompt grew the server's RSS by ~290 MB for good (these buffers and the worker's
// malloc arena, which http_server.cpp trims), and a server has hundreds of worker threads.
#pragma once

#include <cstddef>

namespace tllm::tok {

inline constexpr size_t kScratchKeepBytes = size_t{1} << 20;

// Frees v's storage when it holds more than kScratchKeepBytes of capacity; keeps it otherwise.
template <typename V>
void trim_scratch(V& v) {
  if (v.capacity() * sizeof(typename V::value_type) > kScratchKeepBytes) V().swap(v);
}

}  // namespace tllm::tok
