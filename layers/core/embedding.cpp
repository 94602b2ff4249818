#include "layers/core/embedding.h"

#include "core/check.h"
#include "core/ops.h"

namespace keras::layers {

Embedding::Embedding(int64_t input_dim, int64_t output_dim, EmbeddingOptions options)
    : Layer("Embedding", options.name), input_dim_(input_dim), output_dim_(output_dim), options_(std::move(options)) {
  set_activity_regularizer(options_.activity_regularizer);
  set_autocast(false);  // as Keras: the float32 table is gathered, then the rows are cast
  KCPP_CHECK(input_dim > 0 && output_dim > 0, ValueError,
             "Embedding: expected positive input_dim and output_dim, received input_dim={}, output_dim={}", input_dim,
             output_dim);
}

void Embedding::build(const PartialShape&) {
  embeddings_ = &add_weight("embeddings", Shape{input_dim_, output_dim_}, options_.embeddings_initializer, true,
                            options_.embeddings_regularizer, options_.embeddings_constraint);
}

PartialShape Embedding::compute_output_shape(const PartialShape& s) const {
  PartialShape out = s;
  out.emplace_back(output_dim_);
  return out;
}

namespace {
// Models hand integer data to their layers as float32 unless an Input declares an int dtype.
Tensor as_ids(const Tensor& x) {
  return x.dtype() == DType::int32 || x.dtype() == DType::int64 ? x : ops::cast(x, DType::int32);
}
}  // namespace

Tensor Embedding::call(const Tensor& x, bool) {
  return ops::cast(ops::embedding(embeddings_->value(), as_ids(x)), compute_dtype());
}

Tensor Embedding::compute_mask(const Tensor& x, const Tensor&) const {
  if (!options_.mask_zero) return {};
  const Tensor ids = as_ids(x);
  return ops::not_equal(ids, ops::zeros({}, ids.dtype(), ids.backend()));
}

Config Embedding::get_config() const {
  Config c = Layer::get_config();
  c["input_dim"] = input_dim_;
  c["output_dim"] = output_dim_;
  c["embeddings_initializer"] = options_.embeddings_initializer.serialized();
  c["embeddings_regularizer"] = options_.embeddings_regularizer.serialized();
  c["activity_regularizer"] = nullptr;
  c["embeddings_constraint"] = options_.embeddings_constraint.serialized();
  c["mask_zero"] = options_.mask_zero;
  return c;
}

std::shared_ptr<Layer> Embedding::from_config(const Config& config) {
  serialization::ConfigReader r(config, "Embedding config");
  EmbeddingOptions o;
  o.name = r.name();
  const int64_t input_dim = r.integer("input_dim");
  const int64_t output_dim = r.integer("output_dim");
  o.embeddings_initializer = r.initializer("embeddings_initializer", "uniform");
  o.embeddings_regularizer = r.regularizer("embeddings_regularizer");
  o.embeddings_constraint = r.constraint("embeddings_constraint");
  o.mask_zero = r.boolean("mask_zero", false);
  r.require("lora_rank", nullptr);
  r.integer("input_length", 0);  // Keras 2 only; the shape comes from the input
  auto layer = std::make_shared<Embedding>(input_dim, output_dim, std::move(o));
  r.finish(*layer);
  return layer;
}

}  // namespace keras::layers
