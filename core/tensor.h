#pragma once
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include "device.h"
#include "dtype.h"
#include "export.h"
#include "shape.h"

namespace keras {

class Backend;
namespace detail {
struct Node;
}

/// A block of memory owned by a backend's allocator; returned to it when the last user lets go.
/// Its version changes with every write the frontend makes into existing memory (a variable's
/// assign, an optimizer update, a replayed step), so backends may keep work derived from the
/// contents, such as reordered convolution weights, while the version stays the same.
class KERASCPP_API Storage {
 public:
  Storage(void* data, size_t nbytes, Backend* owner)
      : data_(data), nbytes_(nbytes), owner_(owner), version_(next_version()) {}
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;
  void* data() const { return data_; }
  size_t nbytes() const { return nbytes_; }
  Backend* owner() const { return owner_; }
  /// Never repeats across storages, so (storage, version) names one content even after an
  /// address is reused.
  uint64_t version() const { return version_.load(std::memory_order_acquire); }
  void mark_modified() { version_.store(next_version(), std::memory_order_release); }

 private:
  static uint64_t next_version();
  void* data_;
  size_t nbytes_;
  Backend* owner_;
  std::atomic<uint64_t> version_;
};

namespace detail {
/// Autograd bookkeeping of one tensor: the node that produced it, or a leaf that wants gradients.
struct AutogradMeta {
  std::shared_ptr<Node> grad_fn;
  uint32_t output_index = 0;
  bool requires_grad = false;
};

struct TensorImpl {
  Shape shape;
  DType dtype = DType::float32;
  std::shared_ptr<Storage> storage;
  size_t offset = 0;  // bytes into storage
  AutogradMeta autograd;
};
}  // namespace detail

/// A cheap, shared handle to an n-dimensional array living on one backend. Copies share data;
/// ops return new tensors. Layout is dense row-major (channels_last for images, as in Keras).
class KERASCPP_API Tensor {
 public:
  /// An undefined tensor (defined() is false).
  Tensor() = default;
  explicit Tensor(std::shared_ptr<detail::TensorImpl> impl) : impl_(std::move(impl)) {}

  /// Uninitialized storage of `shape` and `dtype` on `backend` (the default backend when null).
  static Tensor empty(const Shape& shape, DType dtype = DType::float32, Backend* backend = nullptr);
  /// Copies host values; throws ShapeError when `values.size()` differs from the element count.
  template <typename T>
  static Tensor from_vector(const std::vector<T>& values, const Shape& shape, Backend* backend = nullptr);
  /// A 0-d tensor holding `value`.
  static Tensor scalar(float value, Backend* backend = nullptr);

  bool defined() const { return impl_ != nullptr; }
  const Shape& shape() const;
  size_t rank() const { return shape().rank(); }
  int64_t dim(int64_t axis) const { return shape().dim(axis); }
  int64_t num_elements() const { return shape().num_elements(); }
  DType dtype() const;
  size_t nbytes() const { return static_cast<size_t>(num_elements()) * dtype_size(dtype()); }
  Backend* backend() const;
  Device device() const;

  /// Raw pointer to the first element; the memory may be on a GPU (see device()).
  void* raw_data() const;
  /// Typed pointer; throws TypeError when T does not match dtype().
  template <typename T>
  T* data() const;
  /// Call after writing into an existing tensor's memory yourself (through data() or raw_data()):
  /// backends reuse work derived from a variable's contents until its storage is marked modified.
  /// Writes through ops, Variable::assign and optimizers mark it already.
  void mark_modified() const;

  /// Copies the elements to the host; throws TypeError when T does not match dtype().
  template <typename T>
  std::vector<T> to_vector() const;
  /// The single element of a one-element tensor, converted to double.
  double item() const;

  /// Same data, new shape (same element count); shares storage. Throws ShapeError otherwise.
  Tensor view(const Shape& shape) const;

  /// True when a GradientTape should compute gradients for this tensor.
  bool requires_grad() const;
  /// Marks a leaf tensor as wanting gradients (what GradientTape::watch does).
  void set_requires_grad(bool value);

  /// Identity: true when both handles refer to the same tensor.
  bool is_same(const Tensor& other) const { return impl_ == other.impl_; }
  detail::TensorImpl* impl() const { return impl_.get(); }
  const std::shared_ptr<detail::TensorImpl>& impl_ptr() const { return impl_; }

  /// "Tensor(shape=(2, 3), dtype=float32, device=cpu)".
  std::string to_string() const;

 private:
  void copy_from_host(const void* src, int64_t count);
  void check_dtype(DType expected) const;
  std::shared_ptr<detail::TensorImpl> impl_;
};

template <typename T>
Tensor Tensor::from_vector(const std::vector<T>& values, const Shape& shape, Backend* backend) {
  static_assert(!std::is_same_v<T, bool>, "use uint8_t values for a bool tensor");
  Tensor t = empty(shape, dtype_of<T>(), backend);
  t.copy_from_host(values.data(), static_cast<int64_t>(values.size()));
  return t;
}

template <typename T>
T* Tensor::data() const {
  check_dtype(dtype_of<T>());
  return static_cast<T*>(raw_data());
}

}  // namespace keras
