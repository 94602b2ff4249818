#pragma once
// The benchmark models of ../shared/bench that both bench_models_cpu and bench_models_gpu build.
#include <memory>

#include "kerascpp.h"

namespace bench {

/// Integer ids in [0, vocab), (n, len).
inline keras::Tensor random_ids(int64_t n, int64_t len, int64_t vocab, uint64_t seed) {
  using namespace keras;
  return ops::cast(ops::floor(ops::random_uniform(Shape{n, len}, 0.f, static_cast<float>(vocab) - 0.5f, seed)),
                   DType::int32);
}

/// The video question-answering model of the Keras talk: a frozen InceptionV3 over each frame, an
/// LSTM over the frames, an Embedding and LSTM over a 20-token question, a classifier on top.
/// Compiled with Adam and sparse categorical cross-entropy.
inline std::unique_ptr<keras::Model> video_qa_model(int64_t frames, int64_t size) {
  using namespace keras;
  auto video = layers::Input({frames, size, size, 3});
  auto cnn = applications::InceptionV3({.include_top = false, .weights = "", .input_shape = {size, size, 3},
                                        .pooling = "avg"});
  cnn->set_trainable(false);
  auto v = layers::LSTM(256)(layers::TimeDistributed(cnn)(video));
  auto question = layers::Input({20}, {.dtype = "int32"});
  auto q = layers::LSTM(128)(layers::Embedding(10000, 256)(question));
  auto h = layers::Dense(128, {.activation = "relu"})(layers::concatenate({v, q}));
  auto m = std::make_unique<Model>(KerasTensorList{video, question},
                                   KerasTensorList{layers::Dense(1000, {.activation = "softmax"})(h)});
  m->compile({.optimizer = "adam", .loss = "sparse_categorical_crossentropy"});
  return m;
}

}  // namespace bench
