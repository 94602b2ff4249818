#pragma once
// Internal: the config keys every Keras convolution shares (strides, padding, dilation, activation, bias).
#include <type_traits>
#include <vector>

#include "../layer.h"

namespace keras::layers::detail {
// The keys every Keras convolution shares, read into an options struct with Keras' defaults.
template <typename O>
inline void read_conv_common(serialization::ConfigReader& r, O& o, size_t rank) {
  o.name = r.name();
  r.require("data_format", "channels_last");
  r.require("lora_rank", nullptr);
  o.padding = r.string("padding", "valid");
  o.activation = r.activation();
  o.use_bias = r.boolean("use_bias", true);
  o.bias_initializer = r.initializer("bias_initializer", "zeros");
  o.bias_regularizer = r.regularizer("bias_regularizer");
  o.bias_constraint = r.constraint("bias_constraint");
  if constexpr (std::is_same_v<decltype(o.strides), std::vector<int64_t>>) {
    o.strides = r.has("strides") ? r.ints("strides", rank) : std::vector<int64_t>(rank, 1);
    o.dilation_rate = r.has("dilation_rate") ? r.ints("dilation_rate", rank) : std::vector<int64_t>(rank, 1);
  } else if constexpr (requires { o.strides[1]; }) {
    if (r.has("strides")) {
      const auto v = r.ints("strides", rank);
      o.strides = {v[0], v[1]};
    }
    if (r.has("dilation_rate")) {
      const auto v = r.ints("dilation_rate", rank);
      o.dilation_rate = {v[0], v[1]};
    }
  } else {
    if (r.has("strides")) o.strides = r.ints("strides", 1)[0];
    if (r.has("dilation_rate")) o.dilation_rate = r.ints("dilation_rate", 1)[0];
  }
}
template <typename O>
inline void write_conv_common(Config& c, const O& o, bool two_d) {
  auto pair = [&](const auto& v) {
    if constexpr (requires { v[1]; })
      return Config::array({v[0], v[1]});
    else
      return Config::array({v});
  };
  c["strides"] = pair(o.strides);
  c["padding"] = o.padding;
  c["data_format"] = "channels_last";
  c["dilation_rate"] = pair(o.dilation_rate);
  (void)two_d;
}
// Activation, bias and the kernel's initializer, regularizer and constraint, in Keras' key order.
template <typename O>
inline void write_kernel_bias(Config& c, const O& o) {
  c["activation"] = o.activation.empty() ? "linear" : o.activation;
  c["use_bias"] = o.use_bias;
  c["kernel_initializer"] = o.kernel_initializer.serialized();
  c["bias_initializer"] = o.bias_initializer.serialized();
  c["kernel_regularizer"] = o.kernel_regularizer.serialized();
  c["bias_regularizer"] = o.bias_regularizer.serialized();
  c["activity_regularizer"] = nullptr;
  c["kernel_constraint"] = o.kernel_constraint.serialized();
  c["bias_constraint"] = o.bias_constraint.serialized();
}
template <typename O>
inline void read_kernel(serialization::ConfigReader& r, O& o) {
  o.kernel_initializer = r.initializer("kernel_initializer", "glorot_uniform");
  o.kernel_regularizer = r.regularizer("kernel_regularizer");
  o.kernel_constraint = r.constraint("kernel_constraint");
}
inline Config kernel_array(const std::array<int64_t, 2>& k) { return Config::array({k[0], k[1]}); }
}  // namespace keras::layers::detail
