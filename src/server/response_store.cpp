#include "server/response_store.h"

#include <utility>

namespace tllm {

void ResponseStore::put(const std::string& id, Entry entry) {
  if (capacity_ == 0) return;
  auto shared = std::make_shared<const Entry>(std::move(entry));
  std::lock_guard<std::mutex> lock(mu_);
  if (auto it = slots_.find(id); it != slots_.end()) {
    order_.erase(it->second.at);
    slots_.erase(it);
  }
  order_.push_front(id);
  slots_[id] = {std::move(shared), order_.begin()};
  while (slots_.size() > capacity_) {
    slots_.erase(order_.back());
    order_.pop_back();
  }
}

std::shared_ptr<const ResponseStore::Entry> ResponseStore::get(const std::string& id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = slots_.find(id);
  if (it == slots_.end()) return nullptr;
  order_.splice(order_.begin(), order_, it->second.at);
  return it->second.entry;
}

}  // namespace tllm
