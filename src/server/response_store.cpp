#include "server/response_store.h"

#include <algorithm>
#include <iterator>
#include <utility>

namespace tllm {

size_t ResponseStore::bytes() const {
  std::lock_guard<std::mutex> lock(mu_);
  return bytes_;
}

void ResponseStore::drop(const std::string& id) {
  auto it = slots_.find(id);
  if (it == slots_.end()) return;
  bytes_ -= it->second.bytes;
  order_.erase(it->second.at);
  slots_.erase(it);
}

void ResponseStore::put(const std::string& id, Entry entry) {
  if (capacity_ == 0) return;
  // The text it keeps: the response, the conversation and the input items as JSON, and the
  // events of a background response.
  const size_t size = entry.response.size() + entry.conversation.dump().size() +
                      (entry.input_items.empty() ? 0 : entry.input_items.dump().size()) +
                      (entry.events ? entry.events->bytes() : 0);
  if (size > max_bytes_) {  // would push out everything else; an earlier state of it goes too
    std::lock_guard<std::mutex> lock(mu_);
    drop(id);
    return;
  }
  auto shared = std::make_shared<const Entry>(std::move(entry));
  std::lock_guard<std::mutex> lock(mu_);
  drop(id);
  order_.push_front(id);
  slots_[id] = {std::move(shared), order_.begin(), size};
  bytes_ += size;
  // The least recently used finished entry other than this one goes first; a background
  // response still running is kept (its job stores it again when it ends), so the store may
  // hold more until then.
  while (slots_.size() > capacity_ || bytes_ > max_bytes_) {
    const auto it = std::find_if(order_.rbegin(), std::prev(order_.rend()),
                                 [&](const std::string& other) { return slots_.at(other).entry->finished; });
    if (it == std::prev(order_.rend())) break;
    drop(std::string(*it));  // a copy: drop() erases the list node
  }
}

bool ResponseStore::erase(const std::string& id) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!slots_.count(id)) return false;
  drop(id);
  return true;
}

std::shared_ptr<const ResponseStore::Entry> ResponseStore::get(const std::string& id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = slots_.find(id);
  if (it == slots_.end()) return nullptr;
  order_.splice(order_.begin(), order_, it->second.at);
  return it->second.entry;
}

}  // namespace tllm
