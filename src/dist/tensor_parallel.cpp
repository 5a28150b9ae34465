#include "dist/tensor_parallel.h"

#include <condition_variable>
#include <cstdlib>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

#include "core/error.h"
#include "dist/host_collective.h"
#include "dist/nccl_collective.h"
#include "kernels/backend.h"

namespace tllm {

namespace {

std::string env_text(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

// A thread that runs one job at a time for its rank (the CUDA device of a rank is current on
// its thread only).
class RankThread {
 public:
  RankThread() : thread_([this] { loop(); }) {}
  ~RankThread() {
    {
      std::lock_guard<std::mutex> lock(m_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }
  void post(std::function<void()> job) {
    std::lock_guard<std::mutex> lock(m_);
    TLLM_ASSERT(!pending_);
    job_ = std::move(job);
    error_ = nullptr;
    pending_ = true;
    cv_.notify_all();
  }
  // Waits for the posted job; rethrows its exception.
  void wait() {
    std::unique_lock<std::mutex> lock(m_);
    cv_.wait(lock, [&] { return !pending_; });
    if (error_) std::rethrow_exception(std::exchange(error_, nullptr));
  }

 private:
  void loop() {
    std::unique_lock<std::mutex> lock(m_);
    for (;;) {
      cv_.wait(lock, [&] { return pending_ || stop_; });
      if (!pending_) return;
      std::function<void()> job = std::move(job_);
      lock.unlock();
      std::exception_ptr err;
      try {
        job();
      } catch (...) {
        err = std::current_exception();
      }
      lock.lock();
      error_ = err;
      pending_ = false;
      cv_.notify_all();
    }
  }

  std::mutex m_;
  std::condition_variable cv_;
  std::function<void()> job_;
  std::exception_ptr error_;
  bool pending_ = false, stop_ = false;
  std::thread thread_;
};

class TensorParallelLM final : public CausalLM {
 public:
  TensorParallelLM(const std::string& dir, const ModelConfig& cfg, Backend& rank0, const ModelLoadOptions& opts, int n,
                   const RankBackendFactory& make_backend)
      : cfg_(cfg), rank0_(rank0), n_(n) {
    (void)cfg.shard(n);  // the config's own errors first, before any device is touched
    const bool cuda = rank0.device() == Device::CUDA;
    // GPUs: rank r on GPU r, or TLLM_TP_DEVICES (a device per rank, rank 0's first: "0,0"
    // puts two ranks on GPU 0, for tests); the sums through NCCL, or through host memory
    // with TLLM_TP_COLLECTIVE=host (no NCCL needed; no CUDA graphs then).
    std::vector<int> devices;
    for (int r = 0; r < n; ++r) devices.push_back(r);
    if (const std::string d = env_text("TLLM_TP_DEVICES"); cuda && !d.empty()) {
      devices.clear();
      for (size_t b = 0; b <= d.size();) {
        const size_t e = std::min(d.find(',', b), d.size());
        const std::string one = d.substr(b, e - b);
        TLLM_CHECK_ARG(!one.empty() && one.find_first_not_of("0123456789") == std::string::npos && one.size() < 4,
                       "TLLM_TP_DEVICES=", d, ": \"", one, "\" is not a GPU number");
        devices.push_back(std::stoi(one));
        b = e + 1;
      }
      TLLM_CHECK_ARG(static_cast<int>(devices.size()) == n && devices[0] == 0, "TLLM_TP_DEVICES=", d,
                     ": name a GPU for each of the ", n, " ranks, rank 0's (GPU 0) first");
    }
    if (cuda) {
      const int visible = visible_gpu_count();
      for (int d : devices)
        TLLM_CHECK_ARG(d < visible, "tensor parallel size ", n, " needs GPU ", d, ", but ", visible, " GPU",
                       visible == 1 ? " is" : "s are", " visible");
    }
    const std::string kind = env_text("TLLM_TP_COLLECTIVE");
    TLLM_CHECK_ARG(kind.empty() || kind == "nccl" || kind == "host", "TLLM_TP_COLLECTIVE=", kind,
                   ": nccl (GPUs) or host");
    const bool staged = cuda && kind == "host";
    ModelLoadOptions rank_opts = opts;
    if (staged) rank_opts.cuda_graphs = false;  // the host sums synchronise
    if (cuda && !staged) {
      collectives_ = make_nccl_collectives(devices);
    } else {
      for (auto& c : make_host_collectives(n)) {
        host_.push_back(c.get());
        collectives_.push_back(std::move(c));
      }
    }
    models_.resize(n);
    backends_.resize(n);
    kvs_.resize(n);
    for (int r = 1; r < n; ++r) workers_.push_back(std::make_unique<RankThread>());
    on_every_rank([&](int r) {
      Backend* b = &rank0;
      if (r > 0) {
        try {
          backends_[r] = make_backend(devices[r]);
        } catch (const std::exception& e) {
          TLLM_THROW("tensor parallel size ", n, ": rank ", r, ": ", e.what());
        }
        b = backends_[r].get();
      }
      if (cuda && !staged) bind_nccl_backend(*collectives_[r], *b);
      if (!host_.empty()) host_[r]->bind(*b);
      ModelLoadOptions o = rank_opts;
      o.collective = collectives_[r].get();
      models_[r] = load_model(dir, cfg, *b, o);
    });
  }

  ~TensorParallelLM() override {
    // Each rank's model, cache and backend go on the rank's own thread (its device current).
    try {
      on_every_rank([&](int r) {
        kvs_[r] = KVCache();
        models_[r].reset();
        if (r > 0) backends_[r].reset();
      });
    } catch (...) {
    }
  }

  const ModelConfig& config() const override { return cfg_; }
  Backend& backend() override { return rank0_; }
  size_t weight_bytes() const override {
    size_t b = 0;
    for (const auto& m : models_) b += m->weight_bytes();
    return b;
  }
  size_t kv_bytes_per_block(int block_size, DType dtype) const override {
    return models_[0]->kv_bytes_per_block(block_size, dtype);  // per device
  }
  KVCache allocate_kv_cache(int num_blocks, int block_size, DType dtype) override {
    on_every_rank([&](int r) { kvs_[r] = models_[r]->allocate_kv_cache(num_blocks, block_size, dtype); });
    KVCache handle;  // the engine's view: blocks and their size; the tensors are the ranks'
    handle.num_blocks = num_blocks;
    handle.block_size = block_size;
    handle.dtype = dtype;
    return handle;
  }

  Tensor forward(const ForwardBatch& batch, KVCache& kv) override {
    TLLM_CHECK(kvs_[0].num_blocks == kv.num_blocks && kvs_[0].block_size == kv.block_size,
               "tensor-parallel forward: the KV cache was not allocated by this model");
    Tensor logits;
    on_every_rank([&](int r) {
      Tensor out = models_[r]->forward(batch, kvs_[r]);
      if (r == 0) logits = out;
    });
    return logits;
  }

 private:
  // f(r) for every rank, ranks 1.. on their threads and rank 0 on this one; the first error
  // is rethrown after every rank has stopped (a failing rank aborts the host collectives, so
  // that no other rank waits in one forever).
  void on_every_rank(const std::function<void(int)>& f) {
    auto guarded = [&](int r) {
      try {
        f(r);
      } catch (...) {
        for (HostCollective* h : host_) h->abort();
        throw;
      }
    };
    for (int r = 1; r < n_; ++r) workers_[r - 1]->post([&guarded, r] { guarded(r); });
    std::exception_ptr err;
    try {
      guarded(0);
    } catch (...) {
      err = std::current_exception();
    }
    for (auto& w : workers_) {
      try {
        w->wait();
      } catch (...) {
        if (!err) err = std::current_exception();
      }
    }
    if (err) std::rethrow_exception(err);
  }

  ModelConfig cfg_;
  Backend& rank0_;
  int n_;
  std::vector<std::unique_ptr<Collective>> collectives_;
  std::vector<HostCollective*> host_;  // CPU ranks: the collectives to abort on an error
  std::vector<std::unique_ptr<Backend>> backends_;  // ranks >= 1 (rank 0's is the caller's)
  std::vector<std::unique_ptr<CausalLM>> models_;
  std::vector<KVCache> kvs_;
  std::vector<std::unique_ptr<RankThread>> workers_;  // ranks 1..n-1; last, so joined first
};

}  // namespace

std::unique_ptr<CausalLM> load_tensor_parallel(const std::string& dir, const ModelConfig& cfg, Backend& rank0,
                                               const ModelLoadOptions& opts, int n,
                                               const RankBackendFactory& make_backend) {
  TLLM_CHECK_ARG(n >= 1, "tensor parallel size must be >= 1, got ", n);
  if (n == 1) return load_model(dir, cfg, rank0, opts);
  return std::make_unique<TensorParallelLM>(dir, cfg, rank0, opts, n, make_backend);
}

}  // namespace tllm
