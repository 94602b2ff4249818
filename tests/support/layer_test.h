#pragma once
// The layer test of STYLE.md: build, output shape against compute_output_shape, weight counts, one
// training step (trainable weights move, frozen ones do not), and a finite-difference check of the
// input gradient.
#include <functional>

#include "tests/support/test_support.h"

namespace kt {

struct LayerTestSpec {
  keras::Shape input_shape;             // with the batch axis
  keras::PartialShape expected_output;  // with None for the batch axis
  size_t trainable_weights = 0;
  size_t non_trainable_weights = 0;
  int64_t params = 0;
  bool check_input_gradient = true;
  bool training_is_random = false;  // dropout: skip the gradient check in training mode
};

void run_layer_test(const std::function<keras::LayerRef()>& make, const LayerTestSpec& spec);

}  // namespace kt
