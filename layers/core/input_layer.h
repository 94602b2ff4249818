#pragma once
#include "../layer.h"

namespace keras::layers {

struct InputOptions {
  std::string name;
  std::string dtype = "float32";
  std::optional<int64_t> batch_size;
};

/// The model's entry: declares the input shape (without the batch axis) so the model builds at once.
class KERASCPP_API InputLayer : public Layer {
 public:
  KERASCPP_LAYER(InputLayer)
  Config get_config() const override;
  static std::shared_ptr<Layer> from_config(const Config& config);
  InputLayer(std::vector<std::optional<int64_t>> shape, const InputOptions& options = {});
  Tensor call(const Tensor& x, bool training) override { return x; }
  PartialShape compute_output_shape(const PartialShape& input_shape) const override { return input_shape; }
  /// The full shape, batch axis first.
  const PartialShape& batch_shape() const { return batch_shape_; }
  DType dtype() const { return dtype_; }

 protected:
  void check_input(const PartialShape& input_shape) const override;

 private:
  PartialShape batch_shape_;
  DType dtype_;
};

/// `layers::Input({28, 28, 1})`: a model input, the shape of one sample (std::nullopt for a variable
/// dimension). Starts a Functional graph, or stands first in a Sequential list.
KERASCPP_API KerasTensor Input(std::vector<std::optional<int64_t>> shape, const InputOptions& options = {});
/// The symbolic tensor an existing InputLayer produces (for graphs rebuilt from a config).
KERASCPP_API KerasTensor Input(std::shared_ptr<InputLayer> layer);

}  // namespace keras::layers
