#pragma once
#include "../layer.h"

namespace keras::layers {

/// The base of layers that wrap others (Bidirectional, TimeDistributed), as Keras' Wrapper: the
/// wrapped layers' weights, regularization, constraints and random streams count as the wrapper's,
/// and freezing the wrapper freezes them.
class KERASCPP_API Wrapper : public Layer {
 public:
  std::vector<Layer*> sublayers() const override;

 protected:
  using Layer::Layer;
  /// The wrapped layers, in weight order.
  std::vector<std::shared_ptr<Layer>> inner_;
};

}  // namespace keras::layers
