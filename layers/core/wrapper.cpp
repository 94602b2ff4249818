#include "layers/core/wrapper.h"

#include "core/ops.h"

namespace keras::layers {

std::vector<Variable*> Wrapper::weights() {
  std::vector<Variable*> out;
  for (const auto& l : inner_)
    for (Variable* v : l->weights()) out.push_back(v);
  return out;
}
std::vector<Variable*> Wrapper::trainable_weights() {
  std::vector<Variable*> out;
  for (Variable* v : weights())
    if (v->trainable()) out.push_back(v);
  return out;
}
std::vector<Variable*> Wrapper::non_trainable_weights() {
  std::vector<Variable*> out;
  for (Variable* v : weights())
    if (!v->trainable()) out.push_back(v);
  return out;
}
int64_t Wrapper::count_params() const {
  int64_t n = 0;
  for (const auto& l : inner_) n += l->count_params();
  return n;
}
void Wrapper::set_trainable(bool trainable) {
  Layer::set_trainable(trainable);
  for (const auto& l : inner_) l->set_trainable(trainable);
}
Tensor Wrapper::regularization_loss() {
  Tensor total;
  for (const auto& l : inner_) {
    const Tensor r = l->regularization_loss();
    if (r.defined()) total = total.defined() ? total + r : r;
  }
  return total;
}
void Wrapper::apply_constraints() {
  for (const auto& l : inner_) l->apply_constraints();
}
std::vector<random::SeedGenerator*> Wrapper::seed_generators() {
  std::vector<random::SeedGenerator*> out;
  for (const auto& l : inner_)
    for (random::SeedGenerator* g : l->seed_generators()) out.push_back(g);
  return out;
}

}  // namespace keras::layers
