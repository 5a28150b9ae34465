// Tensor: a typed, shaped, contiguous (row-major) view of memory on one device.
// Memory is shared through a keep-alive handle, so views (reshape, row slices) are cheap
// and an mmap'd checkpoint stays mapped while any weight view of it lives.
#pragma once

#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "core/allocator.h"
#include "core/dtype.h"
#include "core/error.h"

namespace tllm {

using Shape = std::vector<int64_t>;
std::string shape_str(const Shape& s);  // "[2, 3]"
int64_t shape_numel(const Shape& s);

class Tensor {
 public:
  Tensor() = default;

  // Fresh uninitialised memory from `alloc` (host by default).
  static Tensor empty(Shape shape, DType dtype, Allocator& alloc = host_allocator());
  static Tensor zeros(Shape shape, DType dtype);  // host only
  // Non-owning view of `data`; `owner` (may be null) is kept alive with the tensor.
  static Tensor wrap(void* data, Shape shape, DType dtype, Device device,
                     std::shared_ptr<void> owner = nullptr);

  bool defined() const { return data_ != nullptr; }
  explicit operator bool() const { return data_ != nullptr; }

  DType dtype() const { return dtype_; }
  Device device() const { return device_; }
  const Shape& shape() const { return shape_; }
  int ndim() const { return static_cast<int>(shape_.size()); }
  int64_t dim(int i) const { return shape_.at(i < 0 ? i + ndim() : i); }
  int64_t numel() const { return shape_numel(shape_); }
  size_t nbytes() const { return dtype_nbytes(dtype_, numel()); }

  void* raw() { return data_; }
  const void* raw() const { return data_; }
  template <typename T> T* data() { return static_cast<T*>(data_); }
  template <typename T> const T* data() const { return static_cast<const T*>(data_); }

  // Same memory, new shape (numel must match).
  Tensor view(Shape shape) const;
  // Rows [begin, end) of the first dimension.
  Tensor slice_rows(int64_t begin, int64_t end) const;
  // Deep copy into host memory (device tensors must be copied by their backend).
  Tensor clone() const;
  const std::shared_ptr<void>& owner() const { return owner_; }

  std::string str() const;  // "bf16[4096, 256]@cpu"

 private:
  std::shared_ptr<void> owner_;
  void* data_ = nullptr;
  Shape shape_;
  DType dtype_ = DType::F32;
  Device device_ = Device::CPU;
};

// Throws naming `what` when t's shape differs from `expected`.
void check_shape(const Tensor& t, const Shape& expected, const std::string& what);

}  // namespace tllm
