#pragma once
// The options of the shift (beta) and scale (gamma) weights the normalization layers share, as
// Keras writes them into configs: center, scale, and each weight's initializer, regularizer and
// constraint. `O` is any options struct with those members.
#include "../serialization.h"

namespace keras::layers::detail {

template <typename O>
void write_beta_gamma(Config& c, const O& o) {
  c["center"] = o.center;
  c["scale"] = o.scale;
  c["beta_initializer"] = o.beta_initializer.serialized();
  c["gamma_initializer"] = o.gamma_initializer.serialized();
  c["beta_regularizer"] = o.beta_regularizer.serialized();
  c["gamma_regularizer"] = o.gamma_regularizer.serialized();
  c["beta_constraint"] = o.beta_constraint.serialized();
  c["gamma_constraint"] = o.gamma_constraint.serialized();
}

template <typename O>
void read_beta_gamma(serialization::ConfigReader& r, O& o) {
  o.center = r.boolean("center", true);
  o.scale = r.boolean("scale", true);
  o.beta_initializer = r.initializer("beta_initializer", "zeros");
  o.gamma_initializer = r.initializer("gamma_initializer", "ones");
  o.beta_regularizer = r.regularizer("beta_regularizer");
  o.gamma_regularizer = r.regularizer("gamma_regularizer");
  o.beta_constraint = r.constraint("beta_constraint");
  o.gamma_constraint = r.constraint("gamma_constraint");
}

}  // namespace keras::layers::detail
