// A text classifier as Keras users write it: padded word ids -> Embedding(mask_zero) -> LSTM ->
// Dense(sigmoid), trained on synthetic reviews: words 1-99 are positive, 100-199 negative, the rest
// neutral, and a review is positive when it has more positive words than negative ones.
//
//   text_classifier [epochs=4]
#include <cstdio>
#include <cstdlib>
#include <random>

#include "kerascpp.h"

using namespace keras;

namespace {
struct Reviews {
  Tensor words, labels;
};

Reviews make_reviews(int64_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> length(5, 40), neutral(200, 1999), positive(1, 99), negative(100, 199), coin(0, 9);
  std::vector<std::vector<int64_t>> reviews;
  std::vector<float> labels;
  for (int64_t i = 0; i < n; ++i) {
    std::vector<int64_t> review;
    int score = 0;
    for (int k = length(rng); k > 0; --k) {
      const int c = coin(rng);
      if (c == 0) {
        review.push_back(positive(rng));
        ++score;
      } else if (c == 1) {
        review.push_back(negative(rng));
        --score;
      } else {
        review.push_back(neutral(rng));
      }
    }
    if (score == 0) {  // no ties: add one deciding word
      const bool up = coin(rng) < 5;
      review.push_back(up ? positive(rng) : negative(rng));
      score = up ? 1 : -1;
    }
    reviews.push_back(review);
    labels.push_back(score > 0 ? 1.f : 0.f);
  }
  return {utils::pad_sequences(reviews, {.maxlen = 40}), Tensor::from_vector(labels, Shape{n, 1})};
}
}  // namespace

int main(int argc, char** argv) {
  const int epochs = argc > 1 ? std::atoi(argv[1]) : 4;
  if (epochs < 1) {
    std::fprintf(stderr, "usage: text_classifier [epochs >= 1]\n");
    return 2;
  }
  utils::set_random_seed(42);
  const Reviews train = make_reviews(4000, 1), test = make_reviews(1000, 2);

  Sequential model({
      layers::Input({40}, {.dtype = "int32"}),
      layers::Embedding(2000, 32, {.mask_zero = true}),
      layers::LSTM(32),
      layers::Dense(1, {.activation = "sigmoid"}),
  });
  model.summary();
  model.compile({.optimizer = "adam", .loss = "binary_crossentropy", .metrics = {"accuracy"}});
  model.fit(train.words, train.labels, {.batch_size = 64, .epochs = epochs, .validation_split = 0.1});
  const auto logs = model.evaluate(test.words, test.labels);
  std::printf("Test accuracy: %.4f\n", logs.at("accuracy"));
  return logs.at("accuracy") > 0.8 ? 0 : 1;
}
