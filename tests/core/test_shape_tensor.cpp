#include <limits>

#include "tests/support/test_support.h"

using namespace keras;

TEST_CASE("Shape counts elements and prints like a Python tuple", "[cpu][core]") {
  CHECK(Shape{2, 3, 4}.num_elements() == 24);
  CHECK(Shape{}.num_elements() == 1);
  CHECK(Shape{0, 5}.num_elements() == 0);
  CHECK(Shape{32, 4}.to_string() == "(32, 4)");
  CHECK(Shape{5}.to_string() == "(5,)");
  CHECK(Shape{}.to_string() == "()");
  CHECK(Shape{2, 3, 4}.strides() == std::vector<int64_t>{12, 4, 1});
  CHECK(Shape{2, 3}.dim(-1) == 3);
}

TEST_CASE("Shape rejects negative and overflowing dimensions", "[cpu][core]") {
  kt::require_throws_with<ValueError>([] { Shape s{2, -3}; }, {"(2, -3)", "non-negative", "-3"});
  const int64_t big = int64_t{1} << 40;
  kt::require_throws_with<ValueError>([&] { Shape s{big, big}; }, {"overflows"});
  kt::require_throws_with<ValueError>([] { Shape{2, 3}.dim(2); }, {"axis 2", "rank 2", "(2, 3)"});
  // An allocation whose byte count overflows is refused before anything is allocated.
  const int64_t n = std::numeric_limits<int64_t>::max() / 2;
  kt::require_throws_with<ValueError>([&] { Tensor::empty(Shape{n}, DType::float32); }, {"overflows"});
}

TEST_CASE("broadcast_shapes follows NumPy and names both shapes on failure", "[cpu][core]") {
  CHECK(broadcast_shapes(Shape{3, 1, 5}, Shape{4, 1}) == Shape{3, 4, 5});
  CHECK(broadcast_shapes(Shape{}, Shape{2, 2}) == Shape{2, 2});
  kt::require_throws_with<ShapeError>(
      [] {
        broadcast_shapes(Shape{32, 4}, Shape{32, 3});
      },
      {"(32, 4)", "(32, 3)", "cannot be broadcast"});
}

TEST_CASE("Tensor round-trips host values and checks dtypes and sizes", "[cpu][core]") {
  const Tensor t = Tensor::from_vector<float>({1, 2, 3, 4, 5, 6}, Shape{2, 3});
  CHECK(t.shape() == Shape{2, 3});
  CHECK(t.dtype() == DType::float32);
  CHECK(t.device() == default_backend().device());  // the tests run on whichever backend auto picks
  CHECK(t.to_vector<float>() == std::vector<float>{1, 2, 3, 4, 5, 6});
  kt::require_throws_with<TypeError>([&] { t.to_vector<int32_t>(); }, {"expected a tensor of dtype int32", "float32"});
  kt::require_throws_with<ShapeError>(
      [] {
        Tensor::from_vector<float>({1, 2, 3}, Shape{2, 2});
      },
      {"(2, 2)", "needs 4 values", "received 3"});
  kt::require_throws_with<ShapeError>([&] { t.view(Shape{4}); }, {"(2, 3)", "(4,)"});
  CHECK(t.view(Shape{3, 2}).to_vector<float>() == t.to_vector<float>());
  kt::require_throws_with<ValueError>([&] { t.item(); }, {"one element", "(2, 3)"});
  CHECK(Tensor::scalar(2.5f).item() == 2.5);
  kt::require_throws_with<ValueError>([] { Tensor().shape(); }, {"undefined"});
}

TEST_CASE("dtype names match Keras and unknown names are refused", "[cpu][core]") {
  CHECK(dtype_name(DType::bfloat16) == "bfloat16");
  CHECK(dtype_from_name("int64") == DType::int64);
  CHECK(dtype_size(DType::float16) == 2);
  kt::require_throws_with<ValueError>([] { dtype_from_name("float64x"); }, {"float64x", "float32"});
}

TEST_CASE("arange counts from 0 in any dtype, and each call's tensor is the caller's own", "[cpu][core]") {
  CHECK(ops::arange(5).dtype() == DType::int64);
  CHECK(ops::arange(5).to_vector<int64_t>() == std::vector<int64_t>{0, 1, 2, 3, 4});
  CHECK(ops::arange(4, DType::float32).to_vector<float>() == std::vector<float>{0, 1, 2, 3});
  CHECK(ops::arange(3, DType::int32).to_vector<int32_t>() == std::vector<int32_t>{0, 1, 2});
  CHECK(ops::arange(0).num_elements() == 0);
  // Writing into one call's result leaves the next call's as it was (the values are kept per length).
  Tensor first = ops::arange(6, DType::float32);
  ops::copy_into(ops::zeros(Shape{6}), first);
  CHECK(ops::arange(6, DType::float32).to_vector<float>() == std::vector<float>{0, 1, 2, 3, 4, 5});
  CHECK_FALSE(ops::arange(6, DType::float32).is_same(ops::arange(6, DType::float32)));
  // On the backend asked for.
  Backend& cpu3 = backend::get_backend("cpu:3");
  CHECK(ops::arange(3, DType::int64, &cpu3).backend() == &cpu3);
  kt::require_throws_with<ValueError>([] { ops::arange(-1); }, {"non-negative", "-1"});
}
