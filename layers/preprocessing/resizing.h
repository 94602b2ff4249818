#pragma once
// keras.layers.Resizing: images (batch, height, width, channels), or one image (height, width,
// channels), resized to (height, width) as Keras 3's ops.image.resize on its JAX backend.
#include "../layer.h"

namespace keras::layers {

struct ResizingOptions {
  /// "bilinear", "nearest", "bicubic" (Keys, a = -0.5), "lanczos3" or "lanczos5".
  std::string interpolation = "bilinear";
  /// Resize the largest centered window of the target's aspect ratio (no distortion).
  bool crop_to_aspect_ratio = false;
  /// Or pad the image to the target's aspect ratio with fill_value, centered, then resize.
  bool pad_to_aspect_ratio = false;
  std::string fill_mode = "constant";  // the only mode Keras has
  float fill_value = 0.f;
  /// Widen the filter when downsampling so every input pixel contributes.
  bool antialias = false;
  std::string name;
};

/// No weights. Each output pixel is a normalized sum over input pixels of the interpolation kernel
/// at half-pixel centers, so edges weigh only pixels inside the image. Integer images come back
/// rounded and clipped to their dtype, as Keras'; floating ones in their dtype.
class KERASCPP_API Resizing : public Layer {
 public:
  KERASCPP_LAYER(Resizing)
  Config get_config() const override;
  static std::shared_ptr<Layer> from_config(const Config& config);
  Resizing(int64_t height, int64_t width, ResizingOptions options = {});

  Tensor call(const Tensor& x, bool training) override;
  PartialShape compute_output_shape(const PartialShape& s) const override;

 protected:
  void check_input(const PartialShape& s) const override;

 private:
  Tensor resize_batch(const Tensor& images) const;  // (N, H, W, C), floating
  int64_t height_, width_;
  ResizingOptions o_;
};

}  // namespace keras::layers
