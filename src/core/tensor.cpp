#include "core/tensor.h"

#include <cstring>
#include <sstream>

namespace tllm {

std::string shape_str(const Shape& s) {
  std::ostringstream os;
  os << '[';
  for (size_t i = 0; i < s.size(); ++i) os << (i ? ", " : "") << s[i];
  os << ']';
  return os.str();
}

int64_t shape_numel(const Shape& s) {
  int64_t n = 1;
  for (int64_t d : s) n *= d;
  return n;
}

Tensor Tensor::empty(Shape shape, DType dtype, Allocator& alloc) {
  for (int64_t d : shape) TLLM_CHECK(d >= 0, "negative dimension in shape ", shape_str(shape));
  Tensor t;
  t.shape_ = std::move(shape);
  t.dtype_ = dtype;
  t.device_ = alloc.device();
  const size_t bytes = t.nbytes();
  void* p = alloc.allocate(bytes);
  t.data_ = p;
  Allocator* a = &alloc;
  t.owner_ = std::shared_ptr<void>(p, [a, bytes](void* q) { a->deallocate(q, bytes); });
  return t;
}

Tensor Tensor::zeros(Shape shape, DType dtype) {
  Tensor t = empty(std::move(shape), dtype);
  std::memset(t.data_, 0, t.nbytes());
  return t;
}

Tensor Tensor::wrap(void* data, Shape shape, DType dtype, Device device,
                    std::shared_ptr<void> owner) {
  Tensor t;
  t.data_ = data;
  t.shape_ = std::move(shape);
  t.dtype_ = dtype;
  t.device_ = device;
  t.owner_ = std::move(owner);
  return t;
}

Tensor Tensor::view(Shape shape) const {
  TLLM_CHECK(shape_numel(shape) == numel(), "cannot view ", str(), " as ", shape_str(shape));
  Tensor t = *this;
  t.shape_ = std::move(shape);
  return t;
}

Tensor Tensor::slice_rows(int64_t begin, int64_t end) const {
  TLLM_CHECK(ndim() >= 1 && 0 <= begin && begin <= end && end <= shape_[0],
             "row slice [", begin, ", ", end, ") out of range for ", str());
  TLLM_CHECK(dtype_ != DType::I4 || (numel() / std::max<int64_t>(shape_[0], 1)) % 2 == 0,
             "row slice of packed int4 tensor with odd row length");
  Tensor t = *this;
  const int64_t row = shape_[0] == 0 ? 0 : numel() / shape_[0];
  t.data_ = static_cast<char*>(data_) + dtype_nbytes(dtype_, begin * row);
  t.shape_[0] = end - begin;
  return t;
}

Tensor Tensor::clone() const {
  TLLM_CHECK(device_ == Device::CPU, "Tensor::clone of a ", device_name(device_),
             " tensor; copy it through its backend");
  Tensor t = empty(shape_, dtype_);
  if (nbytes()) std::memcpy(t.data_, data_, nbytes());
  return t;
}

std::string Tensor::str() const {
  return std::string(dtype_name(dtype_)) + shape_str(shape_) + "@" + device_name(device_);
}

void check_shape(const Tensor& t, const Shape& expected, const std::string& what) {
  TLLM_CHECK(t.shape() == expected, what, ": expected shape ", shape_str(expected), ", got ",
             shape_str(t.shape()));
}

}  // namespace tllm
