#include "core/tensor.h"

#include <cstring>

#include "core/backend.h"
#include "core/check.h"

namespace keras {

Storage::~Storage() {
  if (owner_ && data_) owner_->deallocate(data_, nbytes_);
}

uint64_t Storage::next_version() {
  static std::atomic<uint64_t> counter{0};
  return counter.fetch_add(1, std::memory_order_relaxed) + 1;
}

void Tensor::mark_modified() const {
  KCPP_CHECK(impl_, ValueError, "the tensor is undefined (default-constructed)");
  impl_->storage->mark_modified();
}

Tensor Tensor::empty(const Shape& shape, DType dtype, Backend* backend) {
  Backend& b = backend ? *backend : default_backend();
  auto impl = std::make_shared<detail::TensorImpl>();
  impl->shape = shape;
  impl->dtype = dtype;
  const int64_t bytes = checked_mul(shape.num_elements(), static_cast<int64_t>(dtype_size(dtype)), "Tensor::empty");
  impl->storage = b.allocate(static_cast<size_t>(bytes));
  return Tensor(std::move(impl));
}

Tensor Tensor::scalar(float value, Backend* backend) { return from_vector<float>({value}, Shape{}, backend); }

const Shape& Tensor::shape() const {
  KCPP_CHECK(impl_, ValueError, "the tensor is undefined (default-constructed)");
  return impl_->shape;
}
DType Tensor::dtype() const {
  KCPP_CHECK(impl_, ValueError, "the tensor is undefined (default-constructed)");
  return impl_->dtype;
}
Backend* Tensor::backend() const {
  KCPP_CHECK(impl_, ValueError, "the tensor is undefined (default-constructed)");
  return impl_->storage->owner();
}
Device Tensor::device() const { return backend()->device(); }

void* Tensor::raw_data() const {
  KCPP_CHECK(impl_, ValueError, "the tensor is undefined (default-constructed)");
  return static_cast<char*>(impl_->storage->data()) + impl_->offset;
}

void Tensor::check_dtype(DType expected) const {
  const DType actual = dtype();
  const bool bool_as_bytes = expected == DType::uint8 && actual == DType::bool_;
  KCPP_CHECK(actual == expected || bool_as_bytes, TypeError,
             "expected a tensor of dtype {}, received dtype {} (shape {})", dtype_name(expected), dtype_name(actual),
             shape().to_string());
}

void Tensor::copy_from_host(const void* src, int64_t count) {
  KCPP_CHECK(count == num_elements(), ShapeError, "from_vector: shape {} needs {} values, received {}",
             shape().to_string(), num_elements(), count);
  if (count) backend()->copy_from_host(raw_data(), src, nbytes());
  mark_modified();
}

template <typename T>
std::vector<T> Tensor::to_vector() const {
  check_dtype(dtype_of<T>());
  std::vector<T> out(static_cast<size_t>(num_elements()));
  if (!out.empty()) backend()->copy_to_host(out.data(), raw_data(), nbytes());
  return out;
}
template KERASCPP_API std::vector<float> Tensor::to_vector<float>() const;
template KERASCPP_API std::vector<int32_t> Tensor::to_vector<int32_t>() const;
template KERASCPP_API std::vector<int64_t> Tensor::to_vector<int64_t>() const;
template KERASCPP_API std::vector<uint8_t> Tensor::to_vector<uint8_t>() const;

double Tensor::item() const {
  KCPP_CHECK(num_elements() == 1, ValueError, "item() needs a tensor with one element, received shape {}",
             shape().to_string());
  switch (dtype()) {
    case DType::float32:
      return to_vector<float>()[0];
    case DType::int32:
      return to_vector<int32_t>()[0];
    case DType::int64:
      return static_cast<double>(to_vector<int64_t>()[0]);
    case DType::uint8:
    case DType::bool_:
      return to_vector<uint8_t>()[0];
    default:
      throw TypeError(fmt::format("item(): dtype {} cannot be read on the host; cast it first", dtype_name(dtype())));
  }
}

Tensor Tensor::view(const Shape& new_shape) const {
  KCPP_CHECK(new_shape.num_elements() == num_elements(), ShapeError,
             "cannot view a tensor of shape {} ({} elements) as shape {} ({} elements)", shape().to_string(),
             num_elements(), new_shape.to_string(), new_shape.num_elements());
  auto impl = std::make_shared<detail::TensorImpl>();
  impl->shape = new_shape;
  impl->dtype = impl_->dtype;
  impl->storage = impl_->storage;
  impl->offset = impl_->offset;
  return Tensor(std::move(impl));
}

bool Tensor::requires_grad() const { return impl_ && impl_->autograd.requires_grad; }

void Tensor::set_requires_grad(bool value) {
  KCPP_CHECK(impl_, ValueError, "the tensor is undefined (default-constructed)");
  KCPP_CHECK(!value || is_floating(dtype()), TypeError,
             "only floating-point tensors can have gradients, received dtype {}", dtype_name(dtype()));
  impl_->autograd.requires_grad = value;
}

std::string Tensor::to_string() const {
  if (!impl_) return "Tensor(undefined)";
  return fmt::format("Tensor(shape={}, dtype={}, device={})", shape().to_string(), dtype_name(dtype()),
                     device().to_string());
}

}  // namespace keras
