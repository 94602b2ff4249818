#include "models/saving/weights_file.h"

#include "models/saving/file_io.h"

#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>

#include "core/check.h"
#include "core/ops.h"

namespace keras::saving {
namespace {
constexpr char kMagic[8] = {'K', 'C', 'P', 'P', 'W', 'T', '0', '1'};
constexpr uint64_t kMaxName = 4096, kMaxRank = 16;

template <typename T>
void put(std::string& out, T v) {
  out.append(reinterpret_cast<const char*>(&v), sizeof v);
}

struct Reader {
  const std::string& path;
  const std::vector<char>& data;
  size_t pos = 0;
  template <typename T>
  T get(const char* what) {
    KCPP_CHECK(data.size() - pos >= sizeof(T), IOError, "{}: truncated while reading {} at byte {}", path, what, pos);
    T v;
    std::memcpy(&v, data.data() + pos, sizeof v);
    pos += sizeof v;
    return v;
  }
};
}  // namespace

void write_file_atomically(const std::string& path, std::string_view bytes) {
  const std::string tmp = fmt::format("{}.tmp-{}", path, getpid());
  {
    std::unique_ptr<std::FILE, int (*)(std::FILE*)> f(std::fopen(tmp.c_str(), "wb"), std::fclose);
    KCPP_CHECK(f, IOError, "cannot write {}: {}", tmp, std::strerror(errno));
    const bool ok = std::fwrite(bytes.data(), 1, bytes.size(), f.get()) == bytes.size() && std::fflush(f.get()) == 0 &&
                    fsync(fileno(f.get())) == 0;
    if (!ok) {
      const std::string reason = std::strerror(errno);
      f.reset();
      std::remove(tmp.c_str());
      throw IOError(fmt::format("cannot write {}: {}", tmp, reason));
    }
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    std::remove(tmp.c_str());
    throw IOError(fmt::format("cannot replace {}: {}", path, ec.message()));
  }
}

std::vector<char> read_whole_file(const std::string& path, uint64_t max_bytes) {
  std::error_code ec;
  KCPP_CHECK(std::filesystem::is_regular_file(path, ec), IOError, "cannot open {}: no such file", path);
  const uint64_t size = std::filesystem::file_size(path, ec);
  KCPP_CHECK(!ec, IOError, "cannot read the size of {}: {}", path, ec.message());
  KCPP_CHECK(size <= max_bytes, IOError, "{}: the file has {} bytes, more than the {} accepted", path, size, max_bytes);
  std::ifstream in(path, std::ios::binary);
  KCPP_CHECK(in.good(), IOError, "cannot open {}", path);
  std::vector<char> data(size);
  in.read(data.data(), static_cast<std::streamsize>(size));
  KCPP_CHECK(static_cast<uint64_t>(in.gcount()) == size, IOError, "{}: short read", path);
  return data;
}

bool ends_with(const std::string& path, const std::string& suffix) {
  return path.size() >= suffix.size() && path.compare(path.size() - suffix.size(), suffix.size(), suffix) == 0;
}

void write_weights_file(const std::string& path, const std::vector<Variable*>& variables) {
  std::string bytes(kMagic, sizeof kMagic);
  put<uint64_t>(bytes, variables.size());
  for (const Variable* v : variables) {
    const Tensor value = ops::cast(v->value(), DType::float32);
    put<uint64_t>(bytes, v->name().size());
    bytes += v->name();
    put<uint64_t>(bytes, value.rank());
    for (int64_t d : value.shape().dims()) put<int64_t>(bytes, d);
    const auto host = value.to_vector<float>();
    bytes.append(reinterpret_cast<const char*>(host.data()), host.size() * sizeof(float));
  }
  write_file_atomically(path, bytes);
}

void read_weights_file(const std::string& path, const std::vector<Variable*>& variables) {
  std::ifstream in(path, std::ios::binary);
  KCPP_CHECK(in.good(), IOError, "cannot open {}", path);
  const std::vector<char> data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  Reader r{path, data};
  KCPP_CHECK(data.size() >= sizeof kMagic && std::memcmp(data.data(), kMagic, sizeof kMagic) == 0, IOError,
             "{}: not a kerascpp weights file", path);
  r.pos = sizeof kMagic;
  const uint64_t count = r.get<uint64_t>("the variable count");
  KCPP_CHECK(count == variables.size(), IOError, "{}: holds {} variables, the model has {}", path, count,
             variables.size());
  std::vector<Tensor> values;
  for (uint64_t i = 0; i < count; ++i) {
    const uint64_t name_size = r.get<uint64_t>("a name length");
    KCPP_CHECK(name_size <= kMaxName && data.size() - r.pos >= name_size, IOError, "{}: bad name of variable {}", path,
               i);
    const std::string name(data.data() + r.pos, name_size);
    r.pos += name_size;
    const uint64_t rank = r.get<uint64_t>("a rank");
    KCPP_CHECK(rank <= kMaxRank, IOError, "{}: variable '{}' declares rank {}", path, name, rank);
    std::vector<int64_t> dims;
    for (uint64_t k = 0; k < rank; ++k) dims.push_back(r.get<int64_t>("a dimension"));
    const Variable& v = *variables[i];
    // Checked against the model before anything is allocated from the file's numbers.
    KCPP_CHECK(dims == v.shape().dims(), IOError,
               "{}: variable {} ('{}') has shape ({}), the model's '{}' has shape {}", path, i, name,
               fmt::join(dims, ", "), v.name(), v.shape().to_string());
    const size_t bytes = static_cast<size_t>(v.shape().num_elements()) * sizeof(float);
    KCPP_CHECK(data.size() - r.pos >= bytes, IOError, "{}: truncated in the values of '{}'", path, name);
    std::vector<float> host(static_cast<size_t>(v.shape().num_elements()));
    std::memcpy(host.data(), data.data() + r.pos, bytes);
    r.pos += bytes;
    values.push_back(Tensor::from_vector(host, v.shape(), v.value().backend()));
  }
  KCPP_CHECK(r.pos == data.size(), IOError, "{}: {} unexpected bytes after the last variable", path,
             data.size() - r.pos);
  for (size_t i = 0; i < values.size(); ++i) variables[i]->assign(ops::cast(values[i], variables[i]->dtype()));
}

}  // namespace keras::saving
