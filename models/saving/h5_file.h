#pragma once
// Internal: the small part of HDF5 that Keras' files use, made safe for untrusted files. Only hard
// links are followed (external and soft links are refused), datasets with external storage or
// virtual layouts are refused, and every dataset's shape is checked against what the caller
// expects before anything is read or allocated. HDF5 calls are serialized (Debian's libhdf5 is
// not thread-safe).
#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "../../core/shape.h"

namespace keras::saving::h5 {

class Group;

/// An open HDF5 file, on disk or as an in-memory image.
class File {
 public:
  /// Opens `path` read-only after a preflight read in a child process (see preflight()); throws
  /// IOError when it is not a readable HDF5 file.
  static File open(const std::string& path);
  /// Opens an in-memory image (a member of a .keras zip), preflighted; `label` names it in errors.
  static File open_image(std::vector<char> bytes, const std::string& label);
  /// The same without the preflight (the preflight's child reads with these).
  static File open_unguarded(const std::string& path);
  static File open_image_unguarded(std::vector<char> bytes, const std::string& label);
  /// A new, empty in-memory file; image() returns its bytes.
  static File create_image(const std::string& label);
  File(File&&) noexcept;
  File& operator=(File&&) noexcept;
  ~File();

  Group root() const;
  /// Flushes and returns the file's bytes (in-memory files).
  std::vector<char> image() const;
  const std::string& label() const;

 private:
  struct Impl;
  explicit File(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

/// Reads a whole untrusted HDF5 file (every group, string attribute and dataset) in a forked child
/// process first, so a corrupted file that crashes or hangs the HDF5 library itself (HDF5 1.10 has
/// such bugs) is refused with an IOError instead of taking the process down. Errors kerascpp's
/// own checks raise are left to the real read, which reports them. `path` names a file on disk;
/// `image` (when not empty) is an in-memory file.
void preflight(const std::string& path, const std::vector<char>* image = nullptr);
/// The preflight's time limit in seconds (models::set_hdf5_read_timeout).
std::atomic<double>& read_timeout();

/// What a dataset holds, read without reading its values.
struct DatasetInfo {
  std::vector<int64_t> dims;
  bool floating = false, integer = false;
};

/// A group: children by name, datasets and attributes.
class Group {
 public:
  Group(const Group&);
  Group& operator=(const Group&);
  Group(Group&&) noexcept;
  Group& operator=(Group&&) noexcept;
  ~Group();

  /// "/model_weights/dense" (for messages).
  const std::string& path() const { return path_; }
  /// Whether a child of that name exists (a hard link; any other link kind throws IOError).
  bool has(const std::string& name) const;
  bool has_group(const std::string& name) const;
  bool has_dataset(const std::string& name) const;
  /// A child group; `name` may hold '/' (each step is checked). Throws IOError when missing.
  Group group(const std::string& name) const;
  Group create_group(const std::string& name);
  /// Child names in HDF5's name order.
  std::vector<std::string> members() const;

  DatasetInfo dataset_info(const std::string& name) const;
  /// A float dataset (any float or integer storage type) of exactly `expected` shape, as float32.
  std::vector<float> read_floats(const std::string& name, const Shape& expected) const;
  /// A scalar integer (or float) dataset.
  int64_t read_int_scalar(const std::string& name) const;
  /// As float32, or as int32 (a layer's int32 variables, Normalization's count) where `as_int32`.
  void write_floats(const std::string& name, const Shape& shape, const std::vector<float>& values,
                    bool as_int32 = false);
  void write_int64_scalar(const std::string& name, int64_t value);
  void write_float_scalar(const std::string& name, float value);

  bool has_attribute(const std::string& name) const;
  /// A string attribute (fixed or variable length); Keras' chunked attributes (name0, name1, ...)
  /// are joined.
  std::string read_string_attribute(const std::string& name) const;
  /// A list-of-strings attribute (fixed or variable length); an empty numeric array is an empty list.
  std::vector<std::string> read_string_list_attribute(const std::string& name) const;
  void write_string_attribute(const std::string& name, const std::string& value);
  void write_string_list_attribute(const std::string& name, const std::vector<std::string>& values);
  /// The HDF5 identifier (for preflight's attribute walk).
  int64_t id_for_walk() const { return id_; }

 private:
  friend class File;
  Group(std::shared_ptr<void> file_keepalive, int64_t id, std::string path);
  std::shared_ptr<void> file_;  // keeps the file open while groups live
  int64_t id_ = -1;
  std::string path_;
};

}  // namespace keras::saving::h5
