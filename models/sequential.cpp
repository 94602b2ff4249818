#include "models/sequential.h"

#include "core/check.h"
#include "core/ops.h"
#include "layers/convolutional/conv2d.h"
#include "layers/pooling/pooling2d.h"
#include "layers/normalization/batch_normalization.h"

namespace keras {

Sequential::Sequential(std::vector<LayerRef> layers, std::string name) : Model("Sequential", std::move(name)) {
  for (auto& l : layers) add(std::move(l));
}

void Sequential::add(LayerRef ref) {
  const std::shared_ptr<Layer>& layer = ref.get();
  KCPP_CHECK(layer, ValueError, "Sequential \"{}\": cannot add a null layer", name());
  forget_recorded_passes();
  if (auto input = std::dynamic_pointer_cast<layers::InputLayer>(layer)) {
    KCPP_CHECK(!input_ && layers_.empty(), ValueError,
               "Sequential \"{}\": an Input can only be the first layer, received \"{}\" after {} layer(s)", name(),
               input->name(), layers_.size());
    input_ = input;
    build_from(input_->batch_shape());
    return;
  }
  for (const auto& l : layers_)
    KCPP_CHECK(l->name() != layer->name(), ValueError,
               "All layers added to a Sequential model should have unique names. Name \"{}\" is already the name of a "
               "layer in this model.",
               layer->name());
  layers_.push_back(layer);
  // With a known input shape, the new layer is built now: a shape mismatch fails on this line.
  if (!output_shapes_.empty() || input_)
    output_shapes_.push_back(layer->build_for(output_shapes_.empty() ? input_->batch_shape() : output_shapes_.back()));
}

void Sequential::pop() {
  KCPP_CHECK(!layers_.empty(), ValueError, "Sequential \"{}\": there is no layer to remove", name());
  forget_recorded_passes();
  layers_.pop_back();
  if (!output_shapes_.empty()) output_shapes_.pop_back();
}

void Sequential::build_from(const PartialShape& shape) {
  output_shapes_.clear();
  PartialShape s = shape;
  for (const auto& l : layers_) {
    s = l->build_for(s);
    output_shapes_.push_back(s);
  }
}

void Sequential::build(const PartialShape& input_shape) {
  if (output_shapes_.size() != layers_.size()) build_from(input_shape);
}

std::vector<Layer*> Sequential::layers() const {
  std::vector<Layer*> out;
  for (const auto& l : layers_) out.push_back(l.get());
  return out;
}

std::vector<Tensor> Sequential::forward(const std::vector<Tensor>& xs, bool training, const std::vector<bool>& logits,
                                        std::vector<Tensor>* output_masks) {
  KCPP_CHECK(!layers_.empty(), ValueError, "Sequential \"{}\" has no layers", name());
  KCPP_CHECK(xs.size() == 1, ValueError, "Sequential \"{}\" takes one input, received {}", name(), xs.size());
  if (input_) (*input_)(xs[0]);  // checks the input against the declared shape
  const bool want_logits = !logits.empty() && logits[0];
  Tensor h = xs[0], mask;  // the mask travels beside the values (Embedding(mask_zero), Masking)
  for (size_t i = 0; i < layers_.size(); ++i) {
    Layer& l = *layers_[i];
    // Conv2D -> BatchNormalization (-> relu) with the moving statistics: one folded convolution.
    if (!mask.defined() && i + 1 < layers_.size() && foldable_conv(l) && foldable_batch_norm(*layers_[i + 1]) &&
        !(want_logits && i + 2 >= layers_.size())) {
      auto& bn = static_cast<layers::BatchNormalization&>(*layers_[i + 1]);
      const FoldedBatchNorm fold = bn.uses_moving_statistics(training) ? bn.inference_fold() : FoldedBatchNorm();
      if (fold.defined()) {
        const bool relu = i + 2 < layers_.size() && is_plain_relu(*layers_[i + 2]) &&
                          !layers_[i + 2]->activity_regularizer() && !(want_logits && i + 3 >= layers_.size());
        h = static_cast<layers::Conv2D&>(l).call_with_batch_norm(h, fold, relu ? "relu" : "");
        i += relu ? 2 : 1;
        continue;
      }
    }
    // Conv2D -> MaxPooling2D: one pass that never writes the convolution's output, where nothing
    // is differentiated (ops::conv_max_pool runs the two ops otherwise).
    if (!mask.defined() && i + 1 < layers_.size() && foldable_max_pool(l, *layers_[i + 1]) &&
        !(want_logits && i + 2 >= layers_.size())) {
      h = static_cast<layers::Conv2D&>(l).call_with_max_pool(
          h, static_cast<const layers::Pooling2D&>(*layers_[i + 1]).pool_options());
      ++i;
      continue;
    }
    if (i + 1 == layers_.size() && want_logits) {
      const Tensor in = h;
      h = l.logits(in, training);
      mask = mask.defined() && l.supports_masking() ? l.compute_mask(in, mask) : Tensor();
    } else {
      auto [y, m] = l.call_with_mask(h, mask, training);
      h = std::move(y);
      mask = std::move(m);
    }
    if (l.activity_regularizer()) l.record_activity_loss(i + 1 == layers_.size() && want_logits ? ops::softmax(h) : h);
  }
  if (output_masks) *output_masks = {mask};
  return {h};
}

bool Sequential::output_ends_with_softmax(size_t) const {
  return !layers_.empty() && layers_.back()->ends_with_softmax();
}
std::string Sequential::output_name(size_t) const { return layers_.empty() ? name() : layers_.back()->name(); }

PartialShape Sequential::compute_output_shape(const PartialShape& input_shape) const {
  PartialShape s = input_shape;
  for (const auto& l : layers_) s = l->compute_output_shape(s);
  return s;
}
std::vector<PartialShape> Sequential::compute_output_shapes(const std::vector<PartialShape>& shapes) const {
  KCPP_CHECK(shapes.size() == 1, ValueError, "Sequential \"{}\" takes one input, received {}", name(), shapes.size());
  return {compute_output_shape(shapes[0])};
}

std::vector<Model::SummaryRow> Sequential::summary_rows() const {
  std::vector<SummaryRow> rows;
  for (size_t i = 0; i < layers_.size(); ++i)
    rows.push_back({layers_[i].get(), i < output_shapes_.size() ? shape_to_string(output_shapes_[i]) : "?", ""});
  return rows;
}

}  // namespace keras
