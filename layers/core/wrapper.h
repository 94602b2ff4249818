#pragma once
#include "../layer.h"

namespace keras::layers {

/// The base of layers that wrap others (Bidirectional, TimeDistributed), as Keras' Wrapper: the
/// wrapped layers' weights, regularization, constraints and random streams count as the wrapper's,
/// and freezing the wrapper freezes them.
class KERASCPP_API Wrapper : public Layer {
 public:
  std::vector<Variable*> weights() override;
  std::vector<Variable*> trainable_weights() override;
  std::vector<Variable*> non_trainable_weights() override;
  int64_t count_params() const override;
  void set_trainable(bool trainable) override;
  Tensor regularization_loss() override;
  void apply_constraints() override;
  std::vector<random::SeedGenerator*> seed_generators() override;

 protected:
  using Layer::Layer;
  /// The wrapped layers, in weight order.
  std::vector<std::shared_ptr<Layer>> inner_;
};

}  // namespace keras::layers
