#include "layers/core/wrapper.h"

namespace keras::layers {

std::vector<Layer*> Wrapper::sublayers() const {
  std::vector<Layer*> out;
  for (const auto& l : inner_) out.push_back(l.get());
  return out;
}

}  // namespace keras::layers
