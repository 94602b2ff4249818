#pragma once
// Layers that move values around: ZeroPadding2D, Cropping2D, UpSampling2D, Permute, RepeatVector.
#include <array>

#include "../layer.h"

namespace keras::layers {

/// Pads height and width with zeros: {{top, bottom}, {left, right}}.
class KERASCPP_API ZeroPadding2D : public Layer {
 public:
  KERASCPP_LAYER(ZeroPadding2D)
  Config get_config() const override;
  static std::shared_ptr<Layer> from_config(const Config& config);
  explicit ZeroPadding2D(std::array<std::array<int64_t, 2>, 2> padding = {{{1, 1}, {1, 1}}}, std::string name = "");
  Tensor call(const Tensor& x, bool training) override;
  PartialShape compute_output_shape(const PartialShape& s) const override;

 protected:
  void check_input(const PartialShape& s) const override;

 private:
  std::array<std::array<int64_t, 2>, 2> padding_;
};

/// Removes rows and columns at the borders: {{top, bottom}, {left, right}}.
class KERASCPP_API Cropping2D : public Layer {
 public:
  KERASCPP_LAYER(Cropping2D)
  Config get_config() const override;
  static std::shared_ptr<Layer> from_config(const Config& config);
  explicit Cropping2D(std::array<std::array<int64_t, 2>, 2> cropping = {{{0, 0}, {0, 0}}}, std::string name = "");
  Tensor call(const Tensor& x, bool training) override;
  PartialShape compute_output_shape(const PartialShape& s) const override;

 protected:
  void check_input(const PartialShape& s) const override;

 private:
  std::array<std::array<int64_t, 2>, 2> cropping_;
};

/// Scales rows and columns up by `size`: "nearest" repeats them, "bilinear" interpolates with half-pixel
/// centers and clamped edges (Keras' image resize).
class KERASCPP_API UpSampling2D : public Layer {
 public:
  KERASCPP_LAYER(UpSampling2D)
  Config get_config() const override;
  static std::shared_ptr<Layer> from_config(const Config& config);
  explicit UpSampling2D(std::array<int64_t, 2> size = {2, 2}, std::string interpolation = "nearest",
                        std::string name = "");
  Tensor call(const Tensor& x, bool training) override;
  PartialShape compute_output_shape(const PartialShape& s) const override;

 protected:
  void check_input(const PartialShape& s) const override;

 private:
  std::array<int64_t, 2> size_;
  std::string interpolation_;
};

/// Permutes the non-batch axes; `dims` counts from 1, as Keras.
class KERASCPP_API Permute : public Layer {
 public:
  KERASCPP_LAYER(Permute)
  Config get_config() const override;
  static std::shared_ptr<Layer> from_config(const Config& config);
  explicit Permute(std::vector<int64_t> dims, std::string name = "");
  Tensor call(const Tensor& x, bool training) override;
  PartialShape compute_output_shape(const PartialShape& s) const override;

 protected:
  void check_input(const PartialShape& s) const override;

 private:
  std::vector<int64_t> dims_;
};

/// (N, features) -> (N, n, features).
class KERASCPP_API RepeatVector : public Layer {
 public:
  KERASCPP_LAYER(RepeatVector)
  Config get_config() const override;
  static std::shared_ptr<Layer> from_config(const Config& config);
  explicit RepeatVector(int64_t n, std::string name = "");
  Tensor call(const Tensor& x, bool training) override;
  PartialShape compute_output_shape(const PartialShape& s) const override { return {s[0], n_, s[1]}; }

 protected:
  void check_input(const PartialShape& s) const override;

 private:
  int64_t n_;
};

}  // namespace keras::layers
