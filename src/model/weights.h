// Loading weights from a checkpoint onto a backend, with every tensor's name, shape and
// dtype checked (errors print expected vs actual and the checkpoint dir).
#pragma once

#include <cstdint>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "io/safetensors.h"
#include "kernels/backend.h"

namespace tllm {

class QuantLoader;
class ThreadPool;

// The part of each checkpoint tensor of a linear that one tensor-parallel rank loads
// (dist/tensor_parallel.h): rows [row0[i], row0[i] + rows[i]) of part i, whose checkpoint
// tensor has full_rows[i] rows, and columns [col0, col0 + in_features) of full_cols. A
// default WeightSlice is the whole tensors.
struct WeightSlice {
  std::vector<int64_t> row0, full_rows;  // empty: every row
  int64_t col0 = 0, full_cols = 0;       // full_cols 0: every column
  bool whole() const { return row0.empty() && full_cols == 0; }
  // The checkpoint's rows of part i (the rank loads `local_rows` of them, from row_start(i)),
  // and its columns (the rank loads `local_cols`, from col0).
  int64_t rows_in_checkpoint(size_t i, int64_t local_rows) const { return row0.empty() ? local_rows : full_rows[i]; }
  int64_t row_start(size_t i) const { return row0.empty() ? 0 : row0[i]; }
  int64_t cols_in_checkpoint(int64_t local_cols) const { return full_cols ? full_cols : local_cols; }
  // Rank `rank` of `n`: an even share of every part's rows (local_rows[i] of local_rows[i] * n);
  // n = 1: the whole tensors (so cols_of too).
  static WeightSlice rows_of(const std::vector<int64_t>& local_rows, int rank, int n);
  // Rank `rank` of `n`: an even share of the columns (local_cols of local_cols * n).
  static WeightSlice cols_of(int64_t local_cols, int rank, int n);
};

// The dummy-weight fill: dst[0, n) cut from `pool` in chunks starting at `offset` (advanced
// past each chunk by its length plus 7919, so tensors do not repeat each other), the copies
// spread over `threads` (null: this thread). The bytes do not depend on the thread count.
void fill_from_pool(uint16_t* dst, int64_t n, const std::vector<uint16_t>& pool, size_t& offset,
                    ThreadPool* threads);

// dst[0, numel) = the float tensor `src` (f32, bf16, f16 or f64, on the host) as f32, one
// dtype dispatch per call; spread over `pool` when given.
void host_to_f32(const Tensor& src, float* dst, ThreadPool* pool = nullptr);

class WeightLoader {
 public:
  // `ckpt` null: dummy weights (vLLM's --load-format dummy): every tensor asked for is
  // made up of random values, so benchmarks of real shapes need no checkpoint on disk.
  WeightLoader(const Checkpoint* ckpt, Backend& backend, DType weight_dtype);
  ~WeightLoader();

  bool has(const std::string& name) const { return ckpt_ && ckpt_->has(name); }
  // A float tensor of exactly `shape`, uploaded in `dtype` (norms and biases use F32).
  Tensor tensor(const std::string& name, const Shape& shape, DType dtype);
  // Rows of several [n_i, in] tensors stacked into one [sum n_i, in] weight (q|k|v,
  // gate|up), uploaded in the weight dtype; biases likewise when bias names are given. With a
  // slice, rows[i] and in_features are the sizes of the part loaded, not of the checkpoint's.
  LinearWeight linear(const std::vector<std::string>& names, const std::vector<int64_t>& rows,
                      int64_t in_features, const std::vector<std::string>& bias_names = {},
                      const WeightSlice& slice = {});
  // Host view of a float tensor after the same checks (for weights that need reshaping).
  Tensor host(const std::string& name, const Shape& shape);
  // Names in the checkpoint that no call asked for.
  std::vector<std::string> unused() const;
  size_t uploaded_bytes() const { return uploaded_bytes_; }
  DType weight_dtype() const { return weight_dtype_; }
  Backend& backend() { return backend_; }
  // Tensor parallelism: this loader loads rank `rank` of `size` (the slices are the caller's;
  // MoeBlock::load reads these to shard its experts).
  void set_tensor_parallel(int rank, int size) {
    tp_rank_ = rank;
    tp_size_ = size;
  }
  int tp_rank() const { return tp_rank_; }
  int tp_size() const { return tp_size_; }

  // Quantized weights (model/quant.h): with a QuantLoader set, linear() and embedding() load
  // quantized weights where the checkpoint stores them so or the quantization option asks.
  void set_quantization(std::shared_ptr<QuantLoader> quant) { quant_ = std::move(quant); }
  // The embedding table [vocab, hidden]: dense in the weight dtype, or quantized.
  LinearWeight embedding(const std::string& name, int64_t vocab, int64_t hidden);
  const Checkpoint* checkpoint() const { return ckpt_; }
  void mark_used(const std::string& name) { used_.insert(name); }
  void add_uploaded_bytes(size_t bytes) { uploaded_bytes_ += bytes; }

 private:
  Tensor dummy(const std::string& name, const Shape& shape);
  // Dummy parts stacked by rows, filled in place: the bytes of concat_rows of their dummies.
  Tensor dummy_rows(const std::vector<std::string>& names, const std::vector<int64_t>& rows, int64_t cols);

  const Checkpoint* ckpt_;
  std::vector<uint16_t> dummy_pool_;  // random bf16 values the dummy tensors are cut from
  size_t dummy_offset_ = 0;
  std::unique_ptr<ThreadPool> dummy_threads_;  // the copies of dummy fills (one per core)
  Backend& backend_;
  DType weight_dtype_;
  std::set<std::string> used_;
  size_t uploaded_bytes_ = 0;
  std::shared_ptr<QuantLoader> quant_;
  int tp_rank_ = 0, tp_size_ = 1;
};

// Host tensor [sum rows, cols] of `parts` stacked along the first dim, in the dtype the
// parts share (or f32 when they differ).
Tensor concat_rows(const std::vector<Tensor>& parts);

}  // namespace tllm
