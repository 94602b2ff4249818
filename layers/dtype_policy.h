#pragma once
#include <string>

#include "../core/dtype.h"
#include "../core/export.h"
#include "serialization.h"

namespace keras::mixed_precision {

/// Keras' DTypePolicy: the dtype a layer computes in and the dtype of its variables.
/// "float32" (the default), "mixed_float16" and "mixed_bfloat16" (float32 variables, float16 or
/// bfloat16 compute). Pure "float16"/"bfloat16" policies (low-precision variables) are not offered.
class KERASCPP_API DTypePolicy {
 public:
  /// Throws ValueError naming the accepted policies.
  DTypePolicy(const std::string& name = "float32");  // NOLINT: implicit, as Keras takes a string
  DTypePolicy(const char* name) : DTypePolicy(std::string(name)) {}  // NOLINT
  const std::string& name() const { return name_; }
  DType compute_dtype() const { return compute_; }
  DType variable_dtype() const { return DType::float32; }
  /// Whether compute and variable dtypes differ (layers then autocast their variables).
  bool is_mixed() const { return compute_ != DType::float32; }
  /// {"module": "keras", "class_name": "DTypePolicy", "config": {"name": ...}, ...}.
  Config get_config() const;
  /// Reads a policy as Keras 3 ({"class_name": "DTypePolicy", ...}), tf.keras 2 ("Policy") or a
  /// bare string writes it; throws ValueError naming what was received.
  static DTypePolicy from_config(const Config& config);
  bool operator==(const DTypePolicy& other) const { return name_ == other.name_; }

 private:
  std::string name_;
  DType compute_;
};

/// keras.mixed_precision.set_global_policy: layers created afterwards take this policy. Models
/// compiled under "mixed_float16" wrap their optimizer in a LossScaleOptimizer, as Keras does.
KERASCPP_API void set_global_policy(const DTypePolicy& policy);
/// The policy new layers take ("float32" until set).
KERASCPP_API DTypePolicy global_policy();

/// Keras 3's other names for them (keras.mixed_precision.set_dtype_policy / dtype_policy, also in keras.config).
inline void set_dtype_policy(const DTypePolicy& policy) { set_global_policy(policy); }
inline DTypePolicy dtype_policy() { return global_policy(); }

/// Sets the global policy for its lifetime, then restores the previous one (tests, scoped code).
class KERASCPP_API PolicyScope {
 public:
  explicit PolicyScope(const DTypePolicy& policy);
  ~PolicyScope();
  PolicyScope(const PolicyScope&) = delete;
  PolicyScope& operator=(const PolicyScope&) = delete;

 private:
  DTypePolicy previous_;
};

}  // namespace keras::mixed_precision
