#include "models/datasets/datasets.h"

#include <zlib.h>

#include <filesystem>
#include <memory>
#include <vector>

#include "core/check.h"
#include "core/config.h"
#include "core/registry.h"

namespace keras::datasets {
namespace {

std::vector<uint8_t> read_all(const std::string& path) {
  gzFile f = gzopen(path.c_str(), "rb");  // reads plain files too
  KCPP_CHECK(f, IOError, "cannot open {}", path);
  std::unique_ptr<gzFile_s, int (*)(gzFile)> closer(f, gzclose);
  std::vector<uint8_t> out;
  uint8_t buffer[1 << 16];
  for (;;) {
    const int n = gzread(f, buffer, sizeof buffer);
    if (n < 0) {
      int err = 0;
      throw IOError(fmt::format("cannot read {}: {}", path, gzerror(f, &err)));
    }
    if (n == 0) break;
    out.insert(out.end(), buffer, buffer + n);
    KCPP_CHECK(out.size() < (size_t{1} << 32), IOError, "{}: larger than 4 GiB once decompressed, refused", path);
  }
  return out;
}

uint32_t be32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

}  // namespace

Tensor read_idx(const std::string& path) {
  const std::vector<uint8_t> bytes = read_all(path);
  KCPP_CHECK(bytes.size() >= 4, IOError, "{}: not an IDX file (only {} bytes)", path, bytes.size());
  KCPP_CHECK(bytes[0] == 0 && bytes[1] == 0, IOError, "{}: not an IDX file (bad magic number)", path);
  KCPP_CHECK(bytes[2] == 0x08, IOError, "{}: IDX element type 0x{:02x} is not supported (expected 0x08, unsigned byte)",
             path, bytes[2]);
  const size_t ndims = bytes[3];
  KCPP_CHECK(ndims >= 1 && ndims <= 4, IOError, "{}: IDX files with {} dimensions are not supported (1 to 4)", path,
             ndims);
  const size_t header = 4 + 4 * ndims;
  KCPP_CHECK(bytes.size() >= header, IOError, "{}: truncated header ({} bytes, expected at least {})", path,
             bytes.size(), header);
  std::vector<int64_t> dims;
  int64_t count = 1;
  for (size_t i = 0; i < ndims; ++i) {
    const uint32_t d = be32(&bytes[4 + 4 * i]);
    KCPP_CHECK(d <= static_cast<uint32_t>(INT32_MAX), IOError, "{}: dimension {} is {}, too large", path, i, d);
    dims.push_back(d);
    KCPP_CHECK(!__builtin_mul_overflow(count, static_cast<int64_t>(d), &count), IOError,
               "{}: the declared shape overflows (dimension {} is {})", path, i, d);
  }
  KCPP_CHECK(bytes.size() - header == static_cast<size_t>(count), IOError,
             "{}: expected {} data bytes for shape ({}), found {} (truncated or corrupted)", path, count,
             fmt::join(dims, ", "), bytes.size() - header);
  std::vector<uint8_t> data(bytes.begin() + static_cast<std::ptrdiff_t>(header), bytes.end());
  return Tensor::from_vector(data, Shape(dims), &backend::get_backend("cpu"));
}

namespace fashion_mnist {
std::pair<Split, Split> load_data(const std::string& directory_arg) {
  const std::string directory = directory_arg.empty() ? settings().datasets_dir + "/fashion-mnist" : directory_arg;
  auto file = [&](const char* name) {
    for (const std::string suffix : {".gz", ""}) {
      const std::string p = directory + "/" + name + suffix;
      if (std::filesystem::exists(p)) return p;
    }
    throw IOError(fmt::format(
        "Fashion-MNIST: {}/{}.gz not found; install Debian's dataset-fashion-mnist package (apt-get install "
        "dataset-fashion-mnist) or pass the folder holding the IDX files",
        directory, name));
  };
  Split train{read_idx(file("train-images-idx3-ubyte")), read_idx(file("train-labels-idx1-ubyte"))};
  Split test{read_idx(file("t10k-images-idx3-ubyte")), read_idx(file("t10k-labels-idx1-ubyte"))};
  KCPP_CHECK(
      train.x.rank() == 3 && train.y.rank() == 1 && train.x.dim(0) == train.y.dim(0) && test.x.dim(0) == test.y.dim(0),
      IOError, "Fashion-MNIST in {}: unexpected shapes {} / {}", directory, train.x.shape().to_string(),
      train.y.shape().to_string());
  return {std::move(train), std::move(test)};
}
}  // namespace fashion_mnist

}  // namespace keras::datasets
