#include "dist/host_collective.h"

#include <condition_variable>
#include <mutex>

#include "core/error.h"
#include "kernels/backend.h"

namespace tllm {

namespace {

// The state the ranks of a group share: the tensors of the call in progress and a barrier.
struct Group {
  explicit Group(int n) : n(n), tensors(n, nullptr) {}
  const int n;
  std::mutex m;
  std::condition_variable cv;
  int arrived = 0;
  uint64_t generation = 0;
  bool aborted = false;
  std::vector<Tensor*> tensors;

  void barrier() {
    std::unique_lock<std::mutex> lock(m);
    TLLM_CHECK(!aborted, "tensor-parallel group aborted by another rank's error");
    const uint64_t g = generation;
    if (++arrived == n) {
      arrived = 0;
      ++generation;
      cv.notify_all();
      return;
    }
    cv.wait(lock, [&] { return generation != g || aborted; });
    TLLM_CHECK(!aborted, "tensor-parallel group aborted by another rank's error");
  }
  void abort() {
    std::lock_guard<std::mutex> lock(m);
    aborted = true;
    cv.notify_all();
  }
};

class HostRank final : public HostCollective {
 public:
  HostRank(std::shared_ptr<Group> g, int rank) : g_(std::move(g)), rank_(rank) {}
  int rank() const override { return rank_; }
  int size() const override { return g_->n; }
  void abort() override { g_->abort(); }
  void bind(Backend& backend) override { backend_ = &backend; }

  void all_reduce_sum(Tensor& t) override {
    Tensor staged;  // a device tensor's f32 copy in host memory
    Tensor* mine = &t;
    if (t.device() != Device::CPU) {
      TLLM_CHECK(backend_, "host all_reduce_sum of device tensor ", t.str(), ": no backend bound to rank ", rank_);
      staged = backend_->download(t);
      mine = &staged;
    }
    TLLM_CHECK(mine->dtype() == DType::F32, "host all_reduce_sum takes f32 host tensors, got ", t.str());
    reduce(*mine);
    if (staged.defined()) {
      Tensor up = backend_->upload(staged, t.dtype());
      backend_->copy(t, up);
    }
  }

 private:
  void reduce(Tensor& t) {
    g_->tensors[rank_] = &t;
    g_->barrier();  // every rank's tensor is posted
    const int n = g_->n;
    const int64_t numel = t.numel();
    for (int r = 0; r < n; ++r)
      TLLM_CHECK(g_->tensors[r]->numel() == numel, "all_reduce_sum: rank ", r, " has ", g_->tensors[r]->numel(),
                 " elements, rank ", rank_, " ", numel);
    const int64_t b = numel * rank_ / n, e = numel * (rank_ + 1) / n;
    for (int64_t i = b; i < e; ++i) {
      float s = 0.0f;
      for (int r = 0; r < n; ++r) s += g_->tensors[r]->data<float>()[i];
      for (int r = 0; r < n; ++r) g_->tensors[r]->data<float>()[i] = s;
    }
    g_->barrier();  // every slice is summed before any rank reads its tensor or posts the next
  }

  std::shared_ptr<Group> g_;
  int rank_;
  Backend* backend_ = nullptr;
};

}  // namespace

std::vector<std::unique_ptr<HostCollective>> make_host_collectives(int n) {
  TLLM_CHECK(n >= 1, "a collective group needs at least one rank, got ", n);
  auto g = std::make_shared<Group>(n);
  std::vector<std::unique_ptr<HostCollective>> out;
  for (int r = 0; r < n; ++r) out.push_back(std::make_unique<HostRank>(g, r));
  return out;
}

}  // namespace tllm
