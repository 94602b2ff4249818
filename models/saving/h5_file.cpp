#include "models/saving/h5_file.h"

#include <fcntl.h>
#include <hdf5.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <thread>

#include "core/check.h"
#include "models/saving/saving.h"

namespace keras::saving::h5 {
namespace {

constexpr int kMaxRank = 32;
constexpr hsize_t kMaxAttributeBytes = 64ull << 20;  // Keras' attributes are a few kilobytes
constexpr size_t kMaxListItems = 1u << 20;

std::recursive_mutex& h5_mutex() {
  static std::recursive_mutex m;
  return m;
}

// HDF5 prints its error stack to stderr by default; we collect it into the exception instead.
void silence_hdf5() {
  static std::once_flag once;
  std::call_once(once, [] { H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr); });
}

std::string hdf5_error_text() {
  std::vector<std::string> descs;
  H5Ewalk2(
      H5E_DEFAULT, H5E_WALK_DOWNWARD,
      [](unsigned, const H5E_error2_t* e, void* data) -> herr_t {
        if (e && e->desc) static_cast<std::vector<std::string>*>(data)->push_back(e->desc);
        return 0;
      },
      &descs);
  H5Eclear2(H5E_DEFAULT);
  if (descs.empty()) return "no detail from HDF5";
  return descs.size() == 1 ? descs[0] : descs.front() + " (" + descs.back() + ")";
}

template <typename T>
T checked(T result, const char* expr, const std::string& where) {
  if (result < 0) throw IOError(fmt::format("{}: HDF5 call {} failed: {}", where, expr, hdf5_error_text()));
  return result;
}
#define KCPP_H5(expr, where) checked((expr), #expr, (where))

// An identifier we own, released on scope exit.
class Id {
 public:
  Id() = default;
  explicit Id(hid_t id) : id_(id) {}
  Id(const Id&) = delete;
  Id& operator=(const Id&) = delete;
  Id(Id&& o) noexcept : id_(o.id_) { o.id_ = -1; }
  Id& operator=(Id&& o) noexcept {
    std::swap(id_, o.id_);
    return *this;
  }
  ~Id() {
    if (id_ >= 0) H5Idec_ref(id_);
  }
  hid_t get() const { return id_; }
  hid_t release() {
    hid_t id = id_;
    id_ = -1;
    return id;
  }

 private:
  hid_t id_ = -1;
};

std::string join(const std::string& path, const std::string& name) {
  return path == "/" ? "/" + name : path + "/" + name;
}

// Each component of `name` must be a hard link: external links could read other files (Keras'
// CVE-2026-1669), soft links could loop.
void check_hard_links(hid_t loc, const std::string& base, const std::string& name) {
  KCPP_CHECK(!name.empty() && name.front() != '/', IOError, "{}: invalid child name '{}'", base, name);
  std::string prefix;
  size_t start = 0;
  while (start <= name.size()) {
    const size_t slash = name.find('/', start);
    const std::string part = name.substr(start, slash == std::string::npos ? std::string::npos : slash - start);
    KCPP_CHECK(!part.empty() && part != "." && part != "..", IOError, "{}: invalid child name '{}'", base, name);
    prefix += (prefix.empty() ? "" : "/") + part;
    const htri_t exists = KCPP_H5(H5Lexists(loc, prefix.c_str(), H5P_DEFAULT), base);
    KCPP_CHECK(exists > 0, IOError, "{}: no member '{}'", base, prefix);
    H5L_info_t info;
    KCPP_H5(H5Lget_info(loc, prefix.c_str(), &info, H5P_DEFAULT), base);
    KCPP_CHECK(info.type == H5L_TYPE_HARD, IOError,
               "{}: '{}' is an HDF5 {} link; only plain members are accepted in Keras files", base, prefix,
               info.type == H5L_TYPE_EXTERNAL ? "external" : info.type == H5L_TYPE_SOFT ? "soft" : "user-defined");
    if (slash == std::string::npos) break;
    start = slash + 1;
  }
}

H5O_type_t object_type(hid_t loc, const std::string& base, const std::string& name) {
  check_hard_links(loc, base, name);
  H5O_info_t info;
  KCPP_H5(H5Oget_info_by_name(loc, name.c_str(), &info, H5P_DEFAULT), base);
  return info.type;
}

// Opens a dataset after refusing storage outside the file (external files, virtual datasets).
Id open_dataset(hid_t loc, const std::string& base, const std::string& name) {
  KCPP_CHECK(object_type(loc, base, name) == H5O_TYPE_DATASET, IOError, "{}: '{}' is not a dataset", base, name);
  const std::string where = join(base, name);
  Id ds(KCPP_H5(H5Dopen2(loc, name.c_str(), H5P_DEFAULT), where));
  Id dcpl(KCPP_H5(H5Dget_create_plist(ds.get()), where));
  const int external = KCPP_H5(H5Pget_external_count(dcpl.get()), where);
  KCPP_CHECK(external == 0, IOError, "{}: the dataset stores its data in external files; refused", where);
  const H5D_layout_t layout = H5Pget_layout(dcpl.get());
  KCPP_CHECK(layout != H5D_VIRTUAL, IOError, "{}: virtual datasets are refused", where);
  KCPP_CHECK(layout >= 0, IOError, "{}: cannot read the dataset layout: {}", where, hdf5_error_text());
  return ds;
}

std::vector<int64_t> dims_of(hid_t space, const std::string& where) {
  const H5S_class_t cls = H5Sget_simple_extent_type(space);
  KCPP_CHECK(cls == H5S_SIMPLE || cls == H5S_SCALAR || cls == H5S_NULL, IOError, "{}: unsupported dataspace", where);
  if (cls == H5S_NULL) return {0};
  const int rank = KCPP_H5(H5Sget_simple_extent_ndims(space), where);
  KCPP_CHECK(rank <= kMaxRank, IOError, "{}: rank {} exceeds {}", where, rank, kMaxRank);
  std::vector<hsize_t> d(static_cast<size_t>(rank));
  if (rank > 0) KCPP_H5(H5Sget_simple_extent_dims(space, d.data(), nullptr), where);
  std::vector<int64_t> out;
  for (hsize_t v : d) {
    KCPP_CHECK(v <= static_cast<hsize_t>(INT64_MAX), IOError, "{}: a dimension overflows", where);
    out.push_back(static_cast<int64_t>(v));
  }
  return out;
}

// The number of elements, refusing products that overflow.
uint64_t count_of(const std::vector<int64_t>& dims, const std::string& where) {
  uint64_t n = 1;
  for (int64_t d : dims) {
    KCPP_CHECK(d == 0 || n <= UINT64_MAX / static_cast<uint64_t>(d), IOError, "{}: the element count overflows", where);
    n *= static_cast<uint64_t>(d);
  }
  return n;
}

std::string shape_text(const std::vector<int64_t>& dims) {
  std::string s = "(";
  for (size_t i = 0; i < dims.size(); ++i) s += (i ? ", " : "") + std::to_string(dims[i]);
  if (dims.size() == 1) s += ",";
  return s + ")";
}

// Reads a string or list-of-strings attribute (fixed or variable length).
std::vector<std::string> read_strings(hid_t attr, const std::string& where) {
  Id space(KCPP_H5(H5Aget_space(attr), where));
  const auto dims = dims_of(space.get(), where);
  const uint64_t n = count_of(dims, where);
  KCPP_CHECK(n <= kMaxListItems, IOError, "{}: {} strings exceed the {} accepted", where, n, kMaxListItems);
  Id type(KCPP_H5(H5Aget_type(attr), where));
  const H5T_class_t cls = H5Tget_class(type.get());
  if (cls != H5T_STRING) {
    // h5py writes an empty list as an empty float64 array.
    KCPP_CHECK(n == 0, IOError, "{}: expected strings, found an attribute of another type", where);
    return {};
  }
  const hsize_t storage = H5Aget_storage_size(attr);
  KCPP_CHECK(storage <= kMaxAttributeBytes, IOError, "{}: the attribute's {} bytes exceed the {} accepted", where,
             storage, kMaxAttributeBytes);
  std::vector<std::string> out;
  if (n == 0) return out;
  const htri_t variable = KCPP_H5(H5Tis_variable_str(type.get()), where);
  if (variable > 0) {
    Id mem(KCPP_H5(H5Tcopy(H5T_C_S1), where));
    KCPP_H5(H5Tset_size(mem.get(), H5T_VARIABLE), where);
    KCPP_H5(H5Tset_cset(mem.get(), H5Tget_cset(type.get())), where);
    std::vector<char*> ptrs(n, nullptr);
    KCPP_H5(H5Aread(attr, mem.get(), ptrs.data()), where);
    for (char* p : ptrs) out.emplace_back(p ? p : "");
    H5Dvlen_reclaim(mem.get(), space.get(), H5P_DEFAULT, ptrs.data());
  } else {
    const size_t size = H5Tget_size(type.get());
    KCPP_CHECK(size > 0 && size <= kMaxAttributeBytes && n * size <= kMaxAttributeBytes, IOError,
               "{}: string sizes out of range", where);
    Id mem(KCPP_H5(H5Tcopy(H5T_C_S1), where));
    KCPP_H5(H5Tset_size(mem.get(), size), where);
    KCPP_H5(H5Tset_strpad(mem.get(), H5T_STR_NULLPAD), where);
    std::vector<char> buf(n * size);
    KCPP_H5(H5Aread(attr, mem.get(), buf.data()), where);
    for (uint64_t i = 0; i < n; ++i) {
      const char* p = buf.data() + i * size;
      out.emplace_back(p, strnlen(p, size));
    }
  }
  return out;
}

struct FileHolder {
  hid_t id = -1;
  ~FileHolder() {
    std::lock_guard lock(h5_mutex());
    if (id >= 0) H5Fclose(id);
  }
};

}  // namespace

// File ----------------------------------------------------------------------------------------------

struct File::Impl {
  std::shared_ptr<FileHolder> holder = std::make_shared<FileHolder>();
  std::string label;
};

File::File(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
File::File(File&&) noexcept = default;
File& File::operator=(File&&) noexcept = default;
File::~File() = default;
const std::string& File::label() const { return impl_->label; }

File File::open(const std::string& path) {
  preflight(path);
  return open_unguarded(path);
}

File File::open_unguarded(const std::string& path) {
  std::lock_guard lock(h5_mutex());
  silence_hdf5();
  auto impl = std::make_unique<Impl>();
  impl->label = path;
  const htri_t is_h5 = H5Fis_hdf5(path.c_str());
  if (is_h5 <= 0) {
    H5Eclear2(H5E_DEFAULT);
    throw IOError(fmt::format("{}: not an HDF5 file (or not readable)", path));
  }
  Id fapl(KCPP_H5(H5Pcreate(H5P_FILE_ACCESS), path));
  impl->holder->id = KCPP_H5(H5Fopen(path.c_str(), H5F_ACC_RDONLY, fapl.get()), path);
  return File(std::move(impl));
}

File File::open_image(std::vector<char> bytes, const std::string& label) {
  preflight(label, &bytes);
  return open_image_unguarded(std::move(bytes), label);
}

File File::open_image_unguarded(std::vector<char> bytes, const std::string& label) {
  std::lock_guard lock(h5_mutex());
  silence_hdf5();
  KCPP_CHECK(bytes.size() >= 8 && std::memcmp(bytes.data(), "\x89HDF\r\n\x1a\n", 8) == 0, IOError,
             "{}: not an HDF5 file", label);
  auto impl = std::make_unique<Impl>();
  impl->label = label;
  Id fapl(KCPP_H5(H5Pcreate(H5P_FILE_ACCESS), label));
  KCPP_H5(H5Pset_fapl_core(fapl.get(), 1 << 16, 0), label);
  KCPP_H5(H5Pset_file_image(fapl.get(), bytes.data(), bytes.size()), label);  // HDF5 copies the image
  impl->holder->id = KCPP_H5(H5Fopen(label.c_str(), H5F_ACC_RDONLY, fapl.get()), label);
  return File(std::move(impl));
}

File File::create_image(const std::string& label) {
  std::lock_guard lock(h5_mutex());
  silence_hdf5();
  auto impl = std::make_unique<Impl>();
  impl->label = label;
  Id fapl(KCPP_H5(H5Pcreate(H5P_FILE_ACCESS), label));
  KCPP_H5(H5Pset_fapl_core(fapl.get(), 1 << 20, 0), label);
  impl->holder->id = KCPP_H5(H5Fcreate(label.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, fapl.get()), label);
  return File(std::move(impl));
}

Group File::root() const {
  std::lock_guard lock(h5_mutex());
  const hid_t g = KCPP_H5(H5Gopen2(impl_->holder->id, "/", H5P_DEFAULT), impl_->label);
  return Group(impl_->holder, g, "/");
}

std::vector<char> File::image() const {
  std::lock_guard lock(h5_mutex());
  const hid_t f = impl_->holder->id;
  KCPP_H5(H5Fflush(f, H5F_SCOPE_GLOBAL), impl_->label);
  const ssize_t size = KCPP_H5(H5Fget_file_image(f, nullptr, 0), impl_->label);
  std::vector<char> out(static_cast<size_t>(size));
  KCPP_H5(H5Fget_file_image(f, out.data(), out.size()), impl_->label);
  return out;
}

// Group ---------------------------------------------------------------------------------------------

Group::Group(std::shared_ptr<void> file, int64_t id, std::string path)
    : file_(std::move(file)), id_(id), path_(std::move(path)) {}
Group::Group(const Group& o) : file_(o.file_), path_(o.path_) {
  std::lock_guard lock(h5_mutex());
  id_ = o.id_;
  if (id_ >= 0) H5Iinc_ref(id_);
}
Group& Group::operator=(const Group& o) {
  if (this != &o) {
    Group copy(o);
    *this = std::move(copy);
  }
  return *this;
}
Group::Group(Group&& o) noexcept : file_(std::move(o.file_)), id_(o.id_), path_(std::move(o.path_)) { o.id_ = -1; }
Group& Group::operator=(Group&& o) noexcept {
  std::swap(file_, o.file_);
  std::swap(id_, o.id_);
  std::swap(path_, o.path_);
  return *this;
}
Group::~Group() {
  if (id_ >= 0) {
    std::lock_guard lock(h5_mutex());
    H5Idec_ref(id_);
  }
}

bool Group::has(const std::string& name) const {
  std::lock_guard lock(h5_mutex());
  if (name.empty() || name.find('/') != std::string::npos) {
    try {
      check_hard_links(id_, path_, name);
      return true;
    } catch (const IOError& e) {
      if (std::string(e.what()).find("no member") != std::string::npos) return false;
      throw;
    }
  }
  const htri_t exists = KCPP_H5(H5Lexists(id_, name.c_str(), H5P_DEFAULT), path_);
  if (exists <= 0) return false;
  check_hard_links(id_, path_, name);
  return true;
}

bool Group::has_group(const std::string& name) const {
  std::lock_guard lock(h5_mutex());
  return has(name) && object_type(id_, path_, name) == H5O_TYPE_GROUP;
}

bool Group::has_dataset(const std::string& name) const {
  std::lock_guard lock(h5_mutex());
  return has(name) && object_type(id_, path_, name) == H5O_TYPE_DATASET;
}

Group Group::group(const std::string& name) const {
  std::lock_guard lock(h5_mutex());
  KCPP_CHECK(object_type(id_, path_, name) == H5O_TYPE_GROUP, IOError, "{}: '{}' is not a group", path_, name);
  const hid_t g = KCPP_H5(H5Gopen2(id_, name.c_str(), H5P_DEFAULT), join(path_, name));
  return Group(file_, g, join(path_, name));
}

Group Group::create_group(const std::string& name) {
  std::lock_guard lock(h5_mutex());
  const hid_t g = KCPP_H5(H5Gcreate2(id_, name.c_str(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), join(path_, name));
  return Group(file_, g, join(path_, name));
}

std::vector<std::string> Group::members() const {
  std::lock_guard lock(h5_mutex());
  std::vector<std::string> names;
  hsize_t idx = 0;
  KCPP_H5(H5Literate(
              id_, H5_INDEX_NAME, H5_ITER_INC, &idx,
              [](hid_t, const char* name, const H5L_info_t*, void* data) -> herr_t {
                auto* v = static_cast<std::vector<std::string>*>(data);
                if (v->size() >= kMaxListItems) return 1;  // stop: a hostile file with millions of members
                v->emplace_back(name);
                return 0;
              },
              &names),
          path_);
  return names;
}

DatasetInfo Group::dataset_info(const std::string& name) const {
  std::lock_guard lock(h5_mutex());
  const std::string where = join(path_, name);
  Id ds = open_dataset(id_, path_, name);
  Id space(KCPP_H5(H5Dget_space(ds.get()), where));
  Id type(KCPP_H5(H5Dget_type(ds.get()), where));
  DatasetInfo info;
  info.dims = dims_of(space.get(), where);
  const H5T_class_t cls = H5Tget_class(type.get());
  info.floating = cls == H5T_FLOAT;
  info.integer = cls == H5T_INTEGER;
  return info;
}

std::vector<float> Group::read_floats(const std::string& name, const Shape& expected) const {
  std::lock_guard lock(h5_mutex());
  const std::string where = join(path_, name);
  Id ds = open_dataset(id_, path_, name);
  Id space(KCPP_H5(H5Dget_space(ds.get()), where));
  Id type(KCPP_H5(H5Dget_type(ds.get()), where));
  const H5T_class_t cls = H5Tget_class(type.get());
  KCPP_CHECK(cls == H5T_FLOAT || cls == H5T_INTEGER, IOError,
             "{}: expected a numeric dataset, found HDF5 type class {}", where, static_cast<int>(cls));
  const auto dims = dims_of(space.get(), where);
  // The shape is checked before anything is allocated: a tiny file cannot declare a huge tensor.
  KCPP_CHECK(dims == expected.dims(), ValueError, "{}: expected shape {}, the file holds shape {}", where,
             expected.to_string(), shape_text(dims));
  std::vector<float> out(static_cast<size_t>(expected.num_elements()));
  if (!out.empty()) KCPP_H5(H5Dread(ds.get(), H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, out.data()), where);
  return out;
}

int64_t Group::read_int_scalar(const std::string& name) const {
  std::lock_guard lock(h5_mutex());
  const std::string where = join(path_, name);
  Id ds = open_dataset(id_, path_, name);
  Id space(KCPP_H5(H5Dget_space(ds.get()), where));
  Id type(KCPP_H5(H5Dget_type(ds.get()), where));
  const H5T_class_t cls = H5Tget_class(type.get());
  KCPP_CHECK(cls == H5T_FLOAT || cls == H5T_INTEGER, IOError, "{}: expected a number", where);
  const auto dims = dims_of(space.get(), where);
  KCPP_CHECK(count_of(dims, where) == 1, IOError, "{}: expected a scalar, found shape {}", where, shape_text(dims));
  int64_t v = 0;
  KCPP_H5(H5Dread(ds.get(), H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, &v), where);
  return v;
}

void Group::write_floats(const std::string& name, const Shape& shape, const std::vector<float>& values,
                         bool as_int32) {
  std::lock_guard lock(h5_mutex());
  const std::string where = join(path_, name);
  KCPP_ASSERT(static_cast<int64_t>(values.size()) == shape.num_elements());
  std::vector<hsize_t> dims(shape.dims().begin(), shape.dims().end());
  Id space(dims.empty() ? KCPP_H5(H5Screate(H5S_SCALAR), where)
                        : KCPP_H5(H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr), where));
  Id ds(KCPP_H5(H5Dcreate2(id_, name.c_str(), as_int32 ? H5T_STD_I32LE : H5T_IEEE_F32LE, space.get(), H5P_DEFAULT,
                           H5P_DEFAULT, H5P_DEFAULT),
                where));
  if (!values.empty())  // HDF5 converts the floats to the file's type
    KCPP_H5(H5Dwrite(ds.get(), H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, values.data()), where);
}

void Group::write_int64_scalar(const std::string& name, int64_t value) {
  std::lock_guard lock(h5_mutex());
  const std::string where = join(path_, name);
  Id space(KCPP_H5(H5Screate(H5S_SCALAR), where));
  Id ds(KCPP_H5(H5Dcreate2(id_, name.c_str(), H5T_STD_I64LE, space.get(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT),
                where));
  KCPP_H5(H5Dwrite(ds.get(), H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, &value), where);
}

void Group::write_float_scalar(const std::string& name, float value) { write_floats(name, Shape{}, {value}); }

bool Group::has_attribute(const std::string& name) const {
  std::lock_guard lock(h5_mutex());
  return KCPP_H5(H5Aexists(id_, name.c_str()), path_) > 0;
}

std::string Group::read_string_attribute(const std::string& name) const {
  std::lock_guard lock(h5_mutex());
  // One string, or Keras' chunks name0, name1, ... joined (read_string_list_attribute collects them).
  const bool chunked = !has_attribute(name);
  const auto parts = read_string_list_attribute(name);
  KCPP_CHECK(chunked || parts.size() == 1, IOError, "{} (attribute {}): expected one string, found {}", path_, name,
             parts.size());
  std::string joined;
  for (const auto& p : parts) joined += p;
  return joined;
}

std::vector<std::string> Group::read_string_list_attribute(const std::string& name) const {
  std::lock_guard lock(h5_mutex());
  const std::string where = fmt::format("{} (attribute {})", path_, name);
  if (!has_attribute(name)) {
    KCPP_CHECK(has_attribute(name + "0"), IOError, "{}: missing", where);
    std::vector<std::string> all;
    for (int i = 0; has_attribute(name + std::to_string(i)); ++i) {
      auto part = read_string_list_attribute(name + std::to_string(i));
      all.insert(all.end(), part.begin(), part.end());
      KCPP_CHECK(all.size() <= kMaxListItems, IOError, "{}: too many strings", where);
    }
    return all;
  }
  Id attr(KCPP_H5(H5Aopen(id_, name.c_str(), H5P_DEFAULT), where));
  return read_strings(attr.get(), where);
}

void Group::write_string_attribute(const std::string& name, const std::string& value) {
  std::lock_guard lock(h5_mutex());
  const std::string where = fmt::format("{} (attribute {})", path_, name);
  Id type(KCPP_H5(H5Tcopy(H5T_C_S1), where));
  KCPP_H5(H5Tset_size(type.get(), H5T_VARIABLE), where);
  KCPP_H5(H5Tset_cset(type.get(), H5T_CSET_UTF8), where);
  Id space(KCPP_H5(H5Screate(H5S_SCALAR), where));
  Id attr(KCPP_H5(H5Acreate2(id_, name.c_str(), type.get(), space.get(), H5P_DEFAULT, H5P_DEFAULT), where));
  const char* ptr = value.c_str();
  KCPP_H5(H5Awrite(attr.get(), type.get(), &ptr), where);
}

void Group::write_string_list_attribute(const std::string& name, const std::vector<std::string>& values) {
  std::lock_guard lock(h5_mutex());
  const std::string where = fmt::format("{} (attribute {})", path_, name);
  const hsize_t n = values.size();
  if (n == 0) {  // as h5py writes an empty list: an empty float64 array
    Id space(KCPP_H5(H5Screate_simple(1, &n, nullptr), where));
    Id attr(KCPP_H5(H5Acreate2(id_, name.c_str(), H5T_IEEE_F64LE, space.get(), H5P_DEFAULT, H5P_DEFAULT), where));
    return;
  }
  size_t size = 1;
  for (const auto& v : values) size = std::max(size, v.size());
  std::vector<char> buf(n * size, '\0');
  for (size_t i = 0; i < values.size(); ++i) std::memcpy(buf.data() + i * size, values[i].data(), values[i].size());
  Id type(KCPP_H5(H5Tcopy(H5T_C_S1), where));
  KCPP_H5(H5Tset_size(type.get(), size), where);
  KCPP_H5(H5Tset_strpad(type.get(), H5T_STR_NULLPAD), where);
  Id space(KCPP_H5(H5Screate_simple(1, &n, nullptr), where));
  Id attr(KCPP_H5(H5Acreate2(id_, name.c_str(), type.get(), space.get(), H5P_DEFAULT, H5P_DEFAULT), where));
  KCPP_H5(H5Awrite(attr.get(), type.get(), buf.data()), where);
}

}  // namespace keras::saving::h5

namespace keras::saving::h5 {
namespace {

std::vector<std::string> attribute_names(hid_t loc, const std::string& where) {
  std::vector<std::string> names;
  hsize_t idx = 0;
  KCPP_H5(H5Aiterate2(
              loc, H5_INDEX_NAME, H5_ITER_INC, &idx,
              [](hid_t, const char* name, const H5A_info_t*, void* data) -> herr_t {
                auto* v = static_cast<std::vector<std::string>*>(data);
                if (v->size() >= kMaxListItems) return 1;
                v->emplace_back(name);
                return 0;
              },
              &names),
          where);
  return names;
}

// Touches everything a loader could read.
void walk_everything(const Group& g, int depth) {
  if (depth > 64) return;
  for (const std::string& a : attribute_names(g.id_for_walk(), g.path())) {
    try {
      (void)g.read_string_list_attribute(a);
    } catch (const IOError&) {
      // not a string attribute: fine
    }
  }
  for (const std::string& name : g.members()) {
    if (g.has_group(name)) {
      walk_everything(g.group(name), depth + 1);
    } else if (g.has_dataset(name)) {
      const DatasetInfo info = g.dataset_info(name);
      uint64_t n = 1;
      for (int64_t d : info.dims) n = d == 0 ? 0 : (n > (uint64_t{1} << 40) / static_cast<uint64_t>(d) ? (uint64_t{1} << 40) : n * static_cast<uint64_t>(d));
      if ((info.floating || info.integer) && n <= (uint64_t{1} << 28)) (void)g.read_floats(name, Shape(info.dims));
    }
  }
}

}  // namespace

std::atomic<double>& read_timeout() {
  static std::atomic<double> seconds{60.0};
  return seconds;
}

}  // namespace keras::saving::h5

// Sanitizer builds (the fuzzers): a memory error inside libhdf5 in the preflight child must end the
// child like a crash ends it in a normal build, not be reported as a finding of the parent.
extern "C" void __sanitizer_set_death_callback(void (*callback)(void)) __attribute__((weak));

namespace keras::saving::h5 {
namespace {
constexpr int kChildRefused = 1;  // kerascpp's own checks refused the file: the real read says why
constexpr int kChildCrashed = 3;  // a sanitizer caught libhdf5 misbehaving
[[noreturn]] void child_crashed() { _exit(kChildCrashed); }
}  // namespace

void preflight(const std::string& path, const std::vector<char>* image) {
  std::error_code ec;
  const uint64_t bytes = image ? image->size() : std::filesystem::file_size(path, ec);
  const auto limit = std::chrono::milliseconds(
      static_cast<int64_t>(1000 * (read_timeout().load() + static_cast<double>((ec ? 0 : bytes) >> 26))));
  const pid_t child = fork();
  if (child < 0) return;  // cannot fork: the real read goes ahead unguarded
  if (child == 0) {
    // The child only reads; whatever happens, it exits without running the parent's destructors, its
    // crash handlers (a test framework's, a crash reporter's) or its diagnostics: a crash here is
    // just a status for the parent, which reports the refusal itself.
    for (int sig : {SIGSEGV, SIGBUS, SIGABRT, SIGFPE, SIGILL}) std::signal(sig, SIG_DFL);
    if (const int null_fd = ::open("/dev/null", O_WRONLY); null_fd >= 0) ::dup2(null_fd, STDERR_FILENO);
    if (__sanitizer_set_death_callback) __sanitizer_set_death_callback(child_crashed);
    int code = 0;
    try {
      const File f = image ? File::open_image_unguarded(*image, path) : File::open_unguarded(path);
      walk_everything(f.root(), 0);
    } catch (...) {
      code = kChildRefused;
    }
    _exit(code);
  }
  const auto deadline = std::chrono::steady_clock::now() + limit;
  int status = 0;
  for (;;) {
    const pid_t r = waitpid(child, &status, WNOHANG);
    if (r == child) break;
    if (r < 0) return;
    if (std::chrono::steady_clock::now() > deadline) {
      kill(child, SIGKILL);
      waitpid(child, &status, 0);
      throw IOError(fmt::format("{}: the HDF5 library did not finish reading the file within {:.1f} s; a corrupted "
                                "or hostile file, refused",
                                path, static_cast<double>(limit.count()) / 1000));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  if (WIFSIGNALED(status))
    throw IOError(fmt::format("{}: the HDF5 library crashed reading the file (signal {}); a corrupted or hostile "
                              "file, refused",
                              path, WTERMSIG(status)));
  if (WIFEXITED(status) && WEXITSTATUS(status) != 0 && WEXITSTATUS(status) != kChildRefused)
    throw IOError(fmt::format("{}: the HDF5 library failed reading the file (a memory error, exit {}); a corrupted "
                              "or hostile file, refused",
                              path, WEXITSTATUS(status)));
}

}  // namespace keras::saving::h5

namespace keras::models {
void set_hdf5_read_timeout(double seconds) {
  KCPP_CHECK(seconds > 0, ValueError, "set_hdf5_read_timeout: expected a positive number of seconds, received {}",
             seconds);
  saving::h5::read_timeout().store(seconds);
}
}  // namespace keras::models
