#include "layers/serialization.h"

#include "layers/dtype_policy.h"

#include <map>
#include <mutex>
#include <regex>

#include "core/check.h"
#include "core/logging.h"
#include "layers/activations.h"
#include "layers/attention/attention.h"
#include "layers/attention/multi_head_attention.h"
#include "layers/convolutional/conv2d.h"
#include "layers/convolutional/conv_variants.h"
#include "layers/core/dense.h"
#include "layers/core/embedding.h"
#include "layers/core/masking.h"
#include "layers/core/graph_ops.h"
#include "layers/normalization/normalization_more.h"
#include "layers/reshaping/reshaping_1d.h"
#include "layers/core/input_layer.h"
#include "layers/core/lambda_rescaling.h"
#include "layers/activations/activation_layers.h"
#include "layers/core/simple_layers.h"
#include "layers/layer.h"
#include "layers/merging/merge.h"
#include "layers/normalization/batch_normalization.h"
#include "layers/normalization/layer_normalization.h"
#include "layers/pooling/pooling2d.h"
#include "layers/preprocessing/normalization.h"
#include "layers/preprocessing/resizing.h"
#include "layers/pooling/pooling_more.h"
#include "layers/recurrent/bidirectional.h"
#include "layers/recurrent/gru.h"
#include "layers/recurrent/conv_lstm2d.h"
#include "layers/recurrent/lstm.h"
#include "layers/recurrent/simple_rnn.h"
#include "layers/recurrent/time_distributed.h"
#include "layers/regularization/noise.h"
#include "layers/regularization/spatial_dropout.h"
#include "layers/reshaping/reshaping.h"

namespace keras {

namespace {
struct LayerRegistry {
  std::mutex mutex;
  std::map<std::string, LayerFactory> factories;
  std::map<std::string, bool> builtin;
};

LayerRegistry& registry() {
  static LayerRegistry* r = [] {
    auto* reg = new LayerRegistry;  // never destroyed: factories may be looked up during exit
    using namespace layers;
    const std::map<std::string, LayerFactory> builtins = {
        {"InputLayer", &InputLayer::from_config},
        {"Dense", &Dense::from_config},
        {"Activation", &Activation::from_config},
        {"ReLU", &ReLU::from_config},
        {"LeakyReLU", &LeakyReLU::from_config},
        {"ELU", &ELU::from_config},
        {"Softmax", &Softmax::from_config},
        {"Dropout", &Dropout::from_config},
        {"Flatten", &Flatten::from_config},
        {"Reshape", &Reshape::from_config},
        {"Rescaling", &Rescaling::from_config},
        {"Normalization", &Normalization::from_config},
        {"Resizing", &Resizing::from_config},
        {"Conv1D", &Conv1D::from_config},
        {"Conv2D", &Conv2D::from_config},
        {"Conv2DTranspose", &Conv2DTranspose::from_config},
        {"Conv1DTranspose", &Conv1DTranspose::from_config},
        {"DepthwiseConv1D", &DepthwiseConv1D::from_config},
        {"DepthwiseConv2D", &DepthwiseConv2D::from_config},
        {"SeparableConv1D", &SeparableConv1D::from_config},
        {"SeparableConv2D", &SeparableConv2D::from_config},
        {"MaxPooling1D", &MaxPooling1D::from_config},
        {"AveragePooling1D", &AveragePooling1D::from_config},
        {"MaxPooling2D", &MaxPooling2D::from_config},
        {"AveragePooling2D", &AveragePooling2D::from_config},
        {"GlobalAveragePooling1D", &GlobalAveragePooling1D::from_config},
        {"GlobalMaxPooling1D", &GlobalMaxPooling1D::from_config},
        {"GlobalAveragePooling2D", &GlobalAveragePooling2D::from_config},
        {"GlobalMaxPooling2D", &GlobalMaxPooling2D::from_config},
        {"BatchNormalization", &BatchNormalization::from_config},
        // tf.keras 2's layers.experimental.SyncBatchNormalization: Keras 3's synchronized=True.
        {"SyncBatchNormalization",
         [](const Config& config) {
           Config c = config;
           c["synchronized"] = true;
           return BatchNormalization::from_config(c);
         }},
        {"LayerNormalization", &LayerNormalization::from_config},
        {"GroupNormalization", &GroupNormalization::from_config},
        {"MultiHeadAttention", &MultiHeadAttention::from_config},
        {"GroupQueryAttention", &GroupQueryAttention::from_config},
        {"Attention", &Attention::from_config},
        {"AdditiveAttention", &AdditiveAttention::from_config},
        {"UnitNormalization", &UnitNormalization::from_config},
        {"RMSNormalization", &RMSNormalization::from_config},
        {"SpatialDropout1D", &SpatialDropout1D::from_config},
        {"GaussianNoise", &GaussianNoise::from_config},
        {"GaussianDropout", &GaussianDropout::from_config},
        {"AlphaDropout", &AlphaDropout::from_config},
        {"ZeroPadding1D", &ZeroPadding1D::from_config},
        {"Cropping1D", &Cropping1D::from_config},
        {"UpSampling1D", &UpSampling1D::from_config},
        {"PReLU", &PReLU::from_config},
        {"Identity", &Identity::from_config},
        {"ActivityRegularization", &ActivityRegularization::from_config},
        {"SpatialDropout2D", &SpatialDropout2D::from_config},
        {"ZeroPadding2D", &ZeroPadding2D::from_config},
        {"Cropping2D", &Cropping2D::from_config},
        {"UpSampling2D", &UpSampling2D::from_config},
        {"Permute", &Permute::from_config},
        {"RepeatVector", &RepeatVector::from_config},
        {"Concatenate", &Concatenate::from_config},
        {"Add", &Add::from_config},
        {"Subtract", &Subtract::from_config},
        {"Multiply", &Multiply::from_config},
        {"Average", &Average::from_config},
        {"Maximum", &Maximum::from_config},
        {"Minimum", &Minimum::from_config},
        {"Dot", &Dot::from_config},
        {"Embedding", &Embedding::from_config},
        {"Masking", &Masking::from_config},
        {"NotEqual", &NotEqual::from_config},
        {"ExpandDims", &ExpandDims::from_config},
        {"ZerosLike", &ZerosLike::from_config},
        {"Any", &BoolReduction::any_from_config},
        {"LogicalOr", &LogicalBinary::or_from_config},
        {"LogicalAnd", &LogicalBinary::and_from_config},
        {"All", &BoolReduction::all_from_config},
        {"SimpleRNN", &SimpleRNN::from_config},
        {"LSTM", &LSTM::from_config},
        {"ConvLSTM2D", &ConvLSTM2D::from_config},
        {"GRU", &GRU::from_config},
        {"Bidirectional", &Bidirectional::from_config},
        {"TimeDistributed", &TimeDistributed::from_config},
    };
    for (const auto& [name, f] : builtins) {
      reg->factories[name] = f;
      reg->builtin[name] = true;
    }
    return reg;
  }();
  return *r;
}

// tf.keras 2 aliases of Keras 3 class names.
const std::map<std::string, std::string>& class_aliases() {
  static const std::map<std::string, std::string> aliases = {
      {"Convolution2D", "Conv2D"},          {"Convolution1D", "Conv1D"},       {"MaxPool2D", "MaxPooling2D"},
      {"AvgPool2D", "AveragePooling2D"},    {"MaxPool1D", "MaxPooling1D"},     {"AvgPool1D", "AveragePooling1D"},
      {"GlobalAvgPool2D", "GlobalAveragePooling2D"}, {"GlobalMaxPool2D", "GlobalMaxPooling2D"},
      {"GlobalAvgPool1D", "GlobalAveragePooling1D"}, {"GlobalMaxPool1D", "GlobalMaxPooling1D"},
      {"Convolution2DTranspose", "Conv2DTranspose"}, {"Deconvolution2D", "Conv2DTranspose"},
      {"Convolution1DTranspose", "Conv1DTranspose"}, {"SeparableConvolution2D", "SeparableConv2D"},
      {"SeparableConvolution1D", "SeparableConv1D"}};
  return aliases;
}
}  // namespace

void register_layer_class(const std::string& class_name, LayerFactory factory) {
  KCPP_CHECK(!class_name.empty() && factory, ValueError,
             "register_layer_class: expected a class name and a factory, received '{}'", class_name);
  auto& r = registry();
  std::lock_guard lock(r.mutex);
  r.factories[class_name] = std::move(factory);
}

namespace serialization {

Config keras_object(const std::string& module, const std::string& class_name, Config config) {
  return Config{{"module", module}, {"class_name", class_name}, {"config", std::move(config)}, {"registered_name", nullptr}};
}

Config dtype_policy(const std::string& name) {
  return keras_object("keras", "DTypePolicy", Config{{"name", name}});
}

Config shape_to_config(const PartialShape& shape) {
  Config out = Config::array();
  for (const auto& d : shape) out.push_back(d ? Config(*d) : Config(nullptr));
  return out;
}

PartialShape shape_from_config(const Config& j, const std::string& what) {
  KCPP_CHECK(j.is_array(), ValueError, "{}: expected a shape (a list of integers and nulls), received {}", what,
             j.dump());
  KCPP_CHECK(j.size() <= 16, ValueError, "{}: expected a shape of rank at most 16, received rank {}", what, j.size());
  PartialShape out;
  for (const auto& d : j) {
    if (d.is_null()) {
      out.emplace_back(std::nullopt);
    } else {
      KCPP_CHECK(d.is_number_integer() && !(d.is_number_unsigned() && d.get<uint64_t>() > (uint64_t{1} << 40)) &&
                     d.get<int64_t>() >= 0 && d.get<int64_t>() <= (int64_t{1} << 40),
                 ValueError, "{}: expected a shape of integers in [0, 2^40] and nulls, received {}", what,
                 j.dump().substr(0, 200));
      out.emplace_back(d.get<int64_t>());
    }
  }
  return out;
}

std::string to_snake_case(const std::string& class_name) {
  static const std::regex non_word(R"(\W+)"), word(R"((.)([A-Z][a-z]+))"), boundary(R"(([a-z])([A-Z]))");
  std::string s = std::regex_replace(class_name, non_word, "");
  s = std::regex_replace(s, word, "$1_$2");
  s = std::regex_replace(s, boundary, "$1_$2");
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

bool is_registered(const std::string& class_name) {
  auto& r = registry();
  std::lock_guard lock(r.mutex);
  return r.factories.count(class_name) > 0;
}

bool is_builtin(const std::string& class_name) {
  auto& r = registry();
  std::lock_guard lock(r.mutex);
  return r.builtin.count(class_name) > 0;
}

Config serialize_layer(const Layer& layer) {
  auto& r = registry();
  bool builtin;
  {
    std::lock_guard lock(r.mutex);
    builtin = r.builtin.count(layer.class_name()) > 0;
  }
  Config out;
  if (layer.class_name() == "Sequential") {
    out = keras_object("keras", "Sequential", layer.get_config());
  } else if (layer.class_name() == "Functional") {
    out = keras_object("keras.src.models.functional", "Functional", layer.get_config());
    out["registered_name"] = "Functional";
  } else if (builtin && layer.is_operation()) {
    // Keras' ops recorded in graphs live in keras.src.ops and are looked up by registered name.
    out = keras_object("keras.src.ops.numpy", layer.class_name(), layer.get_config());
    out["registered_name"] = layer.class_name();
  } else if (builtin) {
    out = keras_object("keras.layers", layer.class_name(), layer.get_config());
  } else {
    // A user's class: Keras writes its package and "Package>Class"; kerascpp looks it up by class name.
    out = keras_object("custom", layer.class_name(), layer.get_config());
    out["registered_name"] = layer.class_name();
  }
  // Keras' base Layer adds the activity regularizer to every layer's config when one is set (but
  // ActivityRegularization's, which its l1 and l2 describe).
  if (layer.activity_regularizer() && layer.class_name() != "ActivityRegularization" && out.contains("config") &&
      out["config"].is_object())
    out["config"]["activity_regularizer"] = layer.activity_regularizer().serialized();
  Config build = layer.get_build_config();
  if (!build.is_null() && layer.class_name() != "InputLayer" && !layer.is_operation())
    out["build_config"] = std::move(build);
  return out;
}

std::shared_ptr<Layer> deserialize_layer(const Config& serialized) {
  KCPP_CHECK(serialized.is_object() && serialized.contains("class_name") && serialized["class_name"].is_string(),
             ValueError, "layer config: expected an object with a \"class_name\" string, received {}",
             serialized.dump().substr(0, 200));
  std::string cls = serialized["class_name"].get<std::string>();
  KCPP_CHECK(cls != "Lambda", ValueError,
             "layer config: refusing to load a Lambda layer: its function would be code from the file. Rebuild the "
             "model in C++ (with layers::Lambda) and load only its weights");
  auto alias = class_aliases().find(cls);
  if (alias != class_aliases().end()) cls = alias->second;
  LayerFactory factory;
  {
    auto& r = registry();
    std::lock_guard lock(r.mutex);
    auto it = r.factories.find(cls);
    if (it == r.factories.end() && serialized.contains("registered_name") && serialized["registered_name"].is_string()) {
      // Keras writes custom classes as "package>Class".
      std::string reg = serialized["registered_name"].get<std::string>();
      it = r.factories.find(reg);
      if (it == r.factories.end() && reg.find('>') != std::string::npos) it = r.factories.find(reg.substr(reg.rfind('>') + 1));
    }
    if (it == r.factories.end()) {
      std::vector<std::string> known;
      for (const auto& [k, v] : r.factories) known.push_back(k);
      throw ValueError(fmt::format(
          "layer config: unknown layer class '{}'. Register it with keras::register_layer_class; known classes: {}",
          cls, fmt::join(known, ", ")));
    }
    factory = it->second;
  }
  static const Config empty = Config::object();
  const Config& config = serialized.contains("config") ? serialized["config"] : empty;
  KCPP_CHECK(config.is_object(), ValueError, "layer config of class '{}': expected \"config\" to be an object, received {}",
             cls, config.dump().substr(0, 200));
  std::shared_ptr<Layer> layer = factory(config);
  KCPP_CHECK(layer != nullptr, ValueError, "the factory registered for layer class '{}' returned null", cls);
  if (serialized.contains("build_config")) layer->build_from_config(serialized["build_config"]);
  return layer;
}

// ConfigReader ------------------------------------------------------------------------------------

ConfigReader::ConfigReader(const Config& config, std::string owner) : config_(config), owner_(std::move(owner)) {
  KCPP_CHECK(config_.is_object(), ValueError, "{}: expected an object, received {}", owner_,
             config_.dump().substr(0, 200));
}

void ConfigReader::wrong(const std::string& key, const char* expected) const {
  throw ValueError(fmt::format("{}: expected \"{}\" to be {}, received {}", owner_, key, expected,
                               config_.contains(key) ? config_[key].dump().substr(0, 200) : "nothing"));
}

bool ConfigReader::has(const std::string& key) const { return config_.contains(key) && !config_[key].is_null(); }

const Config& ConfigReader::raw(const std::string& key) {
  used_.insert(key);
  if (!config_.contains(key)) wrong(key, "present");
  return config_[key];
}

int64_t ConfigReader::integer(const std::string& key) {
  // No Keras hyperparameter comes near 2^40; the bound keeps shape arithmetic from overflowing.
  constexpr int64_t kMax = int64_t{1} << 40;
  const Config& v = raw(key);
  int64_t out = 0;
  if (v.is_number_integer() && !(v.is_number_unsigned() && v.get<uint64_t>() > static_cast<uint64_t>(kMax))) {
    out = v.get<int64_t>();
  } else if (v.is_number_float() && std::abs(v.get<double>()) < static_cast<double>(kMax) &&
             v.get<double>() == static_cast<double>(static_cast<int64_t>(v.get<double>()))) {
    out = static_cast<int64_t>(v.get<double>());  // Keras 2 files sometimes hold integral floats ("units": 10.0)
  } else {
    wrong(key, "an integer");
  }
  if (out > kMax || out < -kMax) wrong(key, "an integer of magnitude below 2^40");
  return out;
}
int64_t ConfigReader::integer(const std::string& key, int64_t fallback) {
  used_.insert(key);
  return has(key) ? integer(key) : fallback;
}
double ConfigReader::number(const std::string& key) {
  const Config& v = raw(key);
  if (!v.is_number()) wrong(key, "a number");
  return v.get<double>();
}
double ConfigReader::number(const std::string& key, double fallback) {
  used_.insert(key);
  return has(key) ? number(key) : fallback;
}
bool ConfigReader::boolean(const std::string& key, bool fallback) {
  used_.insert(key);
  if (!has(key)) return fallback;
  if (!config_[key].is_boolean()) wrong(key, "true or false");
  return config_[key].get<bool>();
}
std::string ConfigReader::string(const std::string& key) {
  const Config& v = raw(key);
  if (!v.is_string()) wrong(key, "a string");
  return v.get<std::string>();
}
std::string ConfigReader::string(const std::string& key, const std::string& fallback) {
  used_.insert(key);
  return has(key) ? string(key) : fallback;
}
std::optional<uint64_t> ConfigReader::seed(const std::string& key) {
  used_.insert(key);
  if (!has(key)) return std::nullopt;
  if (!config_[key].is_number_integer() || config_[key].get<int64_t>() < 0) wrong(key, "null or a non-negative integer");
  return config_[key].get<uint64_t>();
}
std::vector<int64_t> ConfigReader::ints(const std::string& key, size_t n) {
  constexpr int64_t kMax = int64_t{1} << 40;
  const Config& v = raw(key);
  auto bounded = [&](const Config& e) {
    if (!e.is_number_integer() || (e.is_number_unsigned() && e.get<uint64_t>() > static_cast<uint64_t>(kMax)) ||
        e.get<int64_t>() > kMax || e.get<int64_t>() < -kMax)
      wrong(key, "integers of magnitude below 2^40");
    return e.get<int64_t>();
  };
  if (v.is_number_integer()) return std::vector<int64_t>(n, bounded(v));
  if (!v.is_array() || v.size() != n) wrong(key, n == 1 ? "an integer" : "an integer or a list of integers of that rank");
  std::vector<int64_t> out;
  for (const auto& e : v) out.push_back(bounded(e));
  return out;
}
std::vector<int64_t> ConfigReader::int_list(const std::string& key) {
  const Config& v = raw(key);
  if (!v.is_array() || v.size() > 16) wrong(key, "a list of at most 16 integers");
  std::vector<int64_t> out;
  for (const auto& e : v) {
    if (!e.is_number_integer() || (e.is_number_unsigned() && e.get<uint64_t>() > (uint64_t{1} << 40)) ||
        std::abs(e.get<int64_t>()) > (int64_t{1} << 40))
      wrong(key, "a list of integers of magnitude below 2^40");
    out.push_back(e.get<int64_t>());
  }
  return out;
}
PartialShape ConfigReader::shape(const std::string& key) {
  return shape_from_config(raw(key), fmt::format("{}: \"{}\"", owner_, key));
}
std::string ConfigReader::activation(const std::string& key) {
  used_.insert(key);
  if (!has(key)) return "";
  const Config& v = config_[key];
  std::string name;
  if (v.is_string()) {
    name = v.get<std::string>();
  } else if (v.is_object() && v.contains("config") && v["config"].is_string()) {
    name = v["config"].get<std::string>();  // Keras 3's serialized function object
  } else if (v.is_object() && v.contains("class_name") && v["class_name"].is_string()) {
    name = to_snake_case(v["class_name"].get<std::string>());
  } else {
    wrong(key, "an activation name");
  }
  if (name == "linear") return "";
  if (name == "swish") name = "silu";
  try {
    activations::check_name(name);
  } catch (const ValueError& e) {
    throw ValueError(fmt::format("{}: \"{}\": {}", owner_, key, e.what()));
  }
  return name;
}
Initializer ConfigReader::initializer(const std::string& key, const std::string& fallback) {
  used_.insert(key);
  if (!has(key)) return Initializer(fallback);
  try {
    return initializers::deserialize(config_[key]);
  } catch (const ValueError& e) {
    throw ValueError(fmt::format("{}: \"{}\": {}", owner_, key, e.what()));
  }
}
Regularizer ConfigReader::regularizer(const std::string& key) {
  used_.insert(key);
  if (!has(key)) return {};
  try {
    return regularizers::deserialize(config_[key]);
  } catch (const ValueError& e) {
    throw ValueError(fmt::format("{}: \"{}\": {}", owner_, key, e.what()));
  }
}
Constraint ConfigReader::constraint(const std::string& key) {
  used_.insert(key);
  if (!has(key)) return {};
  try {
    return constraints::deserialize(config_[key]);
  } catch (const ValueError& e) {
    throw ValueError(fmt::format("{}: \"{}\": {}", owner_, key, e.what()));
  }
}
void ConfigReader::require(const std::string& key, const Config& supported) {
  used_.insert(key);
  if (!config_.contains(key) || config_[key] == supported) return;
  throw NotImplementedError(fmt::format("{}: \"{}\" = {} is not supported by kerascpp (only {})", owner_, key,
                                        config_[key].dump().substr(0, 200), supported.dump()));
}
std::string ConfigReader::name() {
  used_.insert("name");
  return has("name") ? string("name") : std::string();
}

void ConfigReader::finish() {
  std::vector<std::string> ignored;
  for (auto it = config_.begin(); it != config_.end(); ++it)
    if (!used_.count(it.key()) && !it.value().is_null()) ignored.push_back(it.key());
  if (!ignored.empty()) detail::log_info(fmt::format("{}: ignoring config keys {}", owner_, fmt::join(ignored, ", ")));
}

void ConfigReader::finish(Layer& layer) {
  // As Keras' constructors: "trainable": true leaves the layers inside as their own configs said (a
  // frozen model inside a TimeDistributed stays frozen); false freezes the whole layer.
  if (!boolean("trainable", true)) layer.set_trainable(false);
  if (has("activity_regularizer")) layer.set_activity_regularizer(regularizer("activity_regularizer"));
  used_.insert("activity_regularizer");
  used_.insert("dtype");
  if (has("dtype") && !config_["dtype"].is_null()) {
    try {
      layer.set_dtype_policy(mixed_precision::DTypePolicy::from_config(config_["dtype"]));
    } catch (const ValueError& e) {
      // A float64 or pure float16 model still loads, computing in float32, as it always did here.
      detail::log_warn(fmt::format("{}: {}; the layer runs as float32", owner_, e.what()));
      layer.set_dtype_policy(mixed_precision::DTypePolicy("float32"));
    }
  }
  // Keys Keras writes that change nothing here.
  for (const char* k : {"batch_input_shape", "batch_shape", "input_dim", "input_shape", "sparse", "ragged", "optional",
                        "quantization_config", "lora_rank", "lora_alpha", "autocast"})
    used_.insert(k);
  finish();
}

}  // namespace serialization
}  // namespace keras
