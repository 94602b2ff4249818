#include "models/saving/zip_archive.h"

#include <zip.h>

#include <memory>

#include "core/check.h"

namespace keras::saving::zip {
namespace {

struct ArchiveCloser {
  void operator()(zip_t* z) const { zip_discard(z); }
};
using Archive = std::unique_ptr<zip_t, ArchiveCloser>;

Archive open_archive(const std::string& path) {
  int code = 0;
  zip_t* z = zip_open(path.c_str(), ZIP_RDONLY | ZIP_CHECKCONS, &code);
  if (!z) {
    zip_error_t err;
    zip_error_init_with_code(&err, code);
    const std::string text = zip_error_strerror(&err);
    zip_error_fini(&err);
    throw IOError(fmt::format("{}: not a readable zip archive (a .keras file is one): {}", path, text));
  }
  return Archive(z);
}

}  // namespace

std::vector<std::string> member_names(const std::string& path) {
  Archive z = open_archive(path);
  const zip_int64_t n = zip_get_num_entries(z.get(), 0);
  KCPP_CHECK(n >= 0 && n <= 100000, IOError, "{}: the archive lists {} members", path, n);
  std::vector<std::string> out;
  for (zip_int64_t i = 0; i < n; ++i) {
    const char* name = zip_get_name(z.get(), static_cast<zip_uint64_t>(i), 0);
    KCPP_CHECK(name, IOError, "{}: cannot read member {}: {}", path, i, zip_strerror(z.get()));
    out.emplace_back(name);
  }
  return out;
}

std::vector<char> read_member(const std::string& path, const std::string& name, const Limits& limits) {
  Archive z = open_archive(path);
  const zip_int64_t index = zip_name_locate(z.get(), name.c_str(), 0);
  KCPP_CHECK(index >= 0, IOError, "{}: the archive has no member '{}'", path, name);
  zip_stat_t st;
  zip_stat_init(&st);
  KCPP_CHECK(zip_stat_index(z.get(), static_cast<zip_uint64_t>(index), 0, &st) == 0, IOError, "{}: {}: {}", path,
             name, zip_strerror(z.get()));
  KCPP_CHECK((st.valid & ZIP_STAT_SIZE) && (st.valid & ZIP_STAT_COMP_SIZE), IOError, "{}: {}: sizes unknown", path,
             name);
  KCPP_CHECK(st.size <= limits.max_member_bytes, IOError,
             "{}: member '{}' declares {} bytes, more than the {} accepted", path, name, st.size,
             limits.max_member_bytes);
  if (st.size > (1u << 20)) {
    const double ratio = static_cast<double>(st.size) / static_cast<double>(std::max<zip_uint64_t>(st.comp_size, 1));
    KCPP_CHECK(ratio <= limits.max_expansion_ratio, IOError,
               "{}: member '{}' expands {:.0f} times (limit {:.0f}); refused as a possible zip bomb", path, name, ratio,
               limits.max_expansion_ratio);
  }
  zip_file_t* f = zip_fopen_index(z.get(), static_cast<zip_uint64_t>(index), 0);
  KCPP_CHECK(f, IOError, "{}: cannot open member '{}': {}", path, name, zip_strerror(z.get()));
  std::unique_ptr<zip_file_t, int (*)(zip_file_t*)> file(f, zip_fclose);
  std::vector<char> out(st.size);
  zip_uint64_t got = 0;
  while (got < st.size) {
    const zip_int64_t n = zip_fread(file.get(), out.data() + got, st.size - got);
    KCPP_CHECK(n >= 0, IOError, "{}: member '{}' is corrupt: {}", path, name, zip_file_strerror(file.get()));
    if (n == 0) break;
    got += static_cast<zip_uint64_t>(n);
  }
  KCPP_CHECK(got == st.size, IOError, "{}: member '{}' is truncated ({} of {} bytes)", path, name, got, st.size);
  char extra;
  KCPP_CHECK(zip_fread(file.get(), &extra, 1) == 0, IOError, "{}: member '{}' is longer than declared", path, name);
  return out;
}

std::string make_archive(const std::vector<std::pair<std::string, std::string_view>>& members) {
  zip_error_t err;
  zip_error_init(&err);
  zip_source_t* buffer = zip_source_buffer_create(nullptr, 0, 0, &err);
  KCPP_CHECK(buffer, IOError, "cannot create a zip buffer: {}", zip_error_strerror(&err));
  zip_t* z = zip_open_from_source(buffer, ZIP_TRUNCATE, &err);
  if (!z) {
    zip_source_free(buffer);
    throw IOError(fmt::format("cannot create a zip archive: {}", zip_error_strerror(&err)));
  }
  zip_source_keep(buffer);  // read the bytes back after zip_close
  std::unique_ptr<zip_source_t, void (*)(zip_source_t*)> keep(buffer, zip_source_free);
  for (const auto& [name, data] : members) {
    zip_source_t* src = zip_source_buffer(z, data.data(), data.size(), 0);
    const zip_int64_t idx = src ? zip_file_add(z, name.c_str(), src, ZIP_FL_ENC_UTF_8) : -1;
    if (idx < 0) {
      if (src) zip_source_free(src);
      const std::string text = zip_strerror(z);
      zip_discard(z);
      throw IOError(fmt::format("cannot add '{}' to the zip archive: {}", name, text));
    }
    zip_set_file_compression(z, static_cast<zip_uint64_t>(idx), ZIP_CM_STORE, 0);
  }
  if (zip_close(z) != 0) {
    const std::string text = zip_strerror(z);
    zip_discard(z);
    throw IOError(fmt::format("cannot write the zip archive: {}", text));
  }
  zip_stat_t st;
  KCPP_CHECK(zip_source_open(buffer) == 0 && zip_source_stat(buffer, &st) == 0, IOError,
             "cannot read back the zip archive");
  std::string bytes(st.size, '\0');
  const zip_int64_t n = zip_source_read(buffer, bytes.data(), st.size);
  zip_source_close(buffer);
  KCPP_CHECK(n == static_cast<zip_int64_t>(st.size), IOError, "cannot read back the zip archive");
  return bytes;
}

}  // namespace keras::saving::zip
