// Keras' video question-answering model (the one kerascpp exists for), trained on synthetic videos
// and questions: a frozen InceptionV3 over every frame, an LSTM over the frames, an Embedding and
// LSTM over the question, a classifier on top. The answer to each synthetic question is its last
// word (mod 10), so the loss falls within a few epochs.
//
//   video_qa [frames=4] [samples=32] [epochs=3] [devices]
//
// It trains on every GPU of the machine (MirroredStrategy: a replica per GPU, each batch split
// across them); `devices` names others, for example cuda:0,cuda:1, or cpu:0,cpu:1 to try the
// replicated path on one processor. Without a GPU it is one replica on the CPU.
//
// InceptionV3 starts from Keras' ImageNet weights when $KERAS_HOME/models (or ~/.keras/models)
// holds inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5, else from random weights.
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "kerascpp.h"

using namespace keras;

int main(int argc, char** argv) {
  const int64_t frames = argc > 1 ? std::atoll(argv[1]) : 4;
  const int64_t samples = argc > 2 ? std::atoll(argv[2]) : 32;
  const int epochs = argc > 3 ? std::atoi(argv[3]) : 3;
  std::vector<std::string> devices;
  for (std::string list = argc > 4 ? argv[4] : ""; !list.empty();) {
    const size_t comma = list.find(',');
    devices.push_back(list.substr(0, comma));
    list = comma == std::string::npos ? "" : list.substr(comma + 1);
  }
  if (frames < 1 || samples < 2 || epochs < 1) {
    std::fprintf(stderr, "usage: video_qa [frames >= 1] [samples >= 2] [epochs >= 1]\n");
    return 2;
  }
  utils::set_random_seed(7);
  const bool imagenet = std::filesystem::exists(std::filesystem::path(settings().keras_home) / "models" /
                                                "inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5");

  distribute::MirroredStrategy strategy =
      devices.empty() ? distribute::MirroredStrategy() : distribute::MirroredStrategy(devices);
  std::printf("replicas: %d\n", strategy.num_replicas_in_sync());

  // The model, as in Keras' documentation, built and compiled in the strategy's scope.
  Model model = strategy.scope([&] {
    auto video = layers::Input({std::nullopt, 150, 150, 3}, {.name = "video"});
    auto cnn =
        applications::InceptionV3({.include_top = false, .weights = imagenet ? "imagenet" : "", .pooling = "avg"});
    cnn->set_trainable(false);
    auto encoded_video = layers::LSTM(256)(layers::TimeDistributed(cnn)(video));
    auto question = layers::Input({100}, {.name = "question", .dtype = "int32"});
    auto encoded_question = layers::LSTM(128)(layers::Embedding(10000, 256)(question));
    auto x = layers::concatenate({encoded_video, encoded_question});
    x = layers::Dense(128, {.activation = "relu"})(x);
    auto outputs = layers::Dense(1000, {.activation = "softmax"})(x);
    Model m({video, question}, outputs);
    m.compile({.optimizer = optimizers::Adam(), .loss = "categorical_crossentropy", .metrics = {"accuracy"}});
    return m;
  });
  model.summary();
  std::printf("InceptionV3 weights: %s\n", imagenet ? "ImageNet (Keras' file)" : "random (no ImageNet file found)");

  // Synthetic data: random frames; questions of random words whose last word names the answer.
  const Tensor videos = applications::inception_v3::preprocess_input(
      ops::random_uniform(Shape{samples, frames, 150, 150, 3}, 0.f, 255.f, 1));
  const Tensor words = ops::cast(ops::floor(ops::random_uniform(Shape{samples, 100}, 1.f, 10000.f, 2)), DType::int32);
  std::vector<int64_t> answers;
  const auto host_words = words.to_vector<int32_t>();
  for (int64_t i = 0; i < samples; ++i) answers.push_back(host_words[static_cast<size_t>(i * 100 + 99)] % 10);
  const Tensor labels = utils::to_categorical(Tensor::from_vector(answers, Shape{samples}), 1000);

  const History history = model.fit({videos, words}, labels, {.batch_size = 8, .epochs = epochs});
  const auto& loss = history.history.at("loss");
  std::printf("loss %.4f -> %.4f\n", loss.front(), loss.back());
  return loss.back() < loss.front() ? 0 : 1;
}
