#pragma once
#include <array>

#include "../layer.h"

namespace keras::layers {

/// Zeros before and after the steps of (N, T, C) sequences: {before, after}.
class KERASCPP_API ZeroPadding1D : public Layer {
 public:
  KERASCPP_LAYER(ZeroPadding1D)
  Config get_config() const override;
  static std::shared_ptr<Layer> from_config(const Config& config);
  explicit ZeroPadding1D(std::array<int64_t, 2> padding = {1, 1}, std::string name = "");
  Tensor call(const Tensor& x, bool training) override;
  PartialShape compute_output_shape(const PartialShape& s) const override;

 protected:
  void check_input(const PartialShape& s) const override;

 private:
  std::array<int64_t, 2> padding_;
};

/// Removes steps at both ends of (N, T, C) sequences: {before, after}.
class KERASCPP_API Cropping1D : public Layer {
 public:
  KERASCPP_LAYER(Cropping1D)
  Config get_config() const override;
  static std::shared_ptr<Layer> from_config(const Config& config);
  explicit Cropping1D(std::array<int64_t, 2> cropping = {1, 1}, std::string name = "");
  Tensor call(const Tensor& x, bool training) override;
  PartialShape compute_output_shape(const PartialShape& s) const override;

 protected:
  void check_input(const PartialShape& s) const override;

 private:
  std::array<int64_t, 2> cropping_;
};

/// Repeats each step of (N, T, C) sequences `size` times.
class KERASCPP_API UpSampling1D : public Layer {
 public:
  KERASCPP_LAYER(UpSampling1D)
  Config get_config() const override;
  static std::shared_ptr<Layer> from_config(const Config& config);
  explicit UpSampling1D(int64_t size = 2, std::string name = "");
  Tensor call(const Tensor& x, bool training) override;
  PartialShape compute_output_shape(const PartialShape& s) const override;

 protected:
  void check_input(const PartialShape& s) const override;

 private:
  int64_t size_;
};

}  // namespace keras::layers
