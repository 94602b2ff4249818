#include "layers/dtype_policy.h"

#include <mutex>

#include "core/check.h"

namespace keras::mixed_precision {
namespace {
std::mutex global_mutex;
DTypePolicy& global() {
  static DTypePolicy policy("float32");
  return policy;
}
}  // namespace

DTypePolicy::DTypePolicy(const std::string& name) : name_(name) {
  if (name == "float32") {
    compute_ = DType::float32;
  } else if (name == "mixed_float16") {
    compute_ = DType::float16;
  } else if (name == "mixed_bfloat16") {
    compute_ = DType::bfloat16;
  } else {
    throw ValueError(fmt::format(
        "DTypePolicy: expected 'float32', 'mixed_float16' or 'mixed_bfloat16', received '{}'{}", name,
        name == "float16" || name == "bfloat16" || name == "float64"
            ? " (policies with non-float32 variables are not supported; use a mixed policy)"
            : ""));
  }
}

Config DTypePolicy::get_config() const { return serialization::dtype_policy(name_); }

DTypePolicy DTypePolicy::from_config(const Config& c) {
  if (c.is_string()) return DTypePolicy(c.get<std::string>());
  if (c.is_object() && c.contains("config") && c["config"].is_object() && c["config"].contains("name") &&
      c["config"]["name"].is_string())
    return DTypePolicy(c["config"]["name"].get<std::string>());
  throw ValueError(fmt::format(
      "DTypePolicy: expected a policy name or {{\"class_name\": \"DTypePolicy\", \"config\": {{\"name\": ...}}}}, "
      "received {}",
      c.dump()));
}

void set_global_policy(const DTypePolicy& policy) {
  std::lock_guard lock(global_mutex);
  global() = policy;
}

DTypePolicy global_policy() {
  std::lock_guard lock(global_mutex);
  return global();
}

PolicyScope::PolicyScope(const DTypePolicy& policy) : previous_(global_policy()) { set_global_policy(policy); }
PolicyScope::~PolicyScope() { set_global_policy(previous_); }

}  // namespace keras::mixed_precision
