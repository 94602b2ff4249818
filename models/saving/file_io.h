#pragma once
// Internal: whole-file reads with a size cap, and atomic writes (temporary file, fsync, rename), so a
// crash mid-save leaves the previous file intact.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace keras::saving {

/// Writes `bytes` to `path` atomically; throws IOError naming the file.
void write_file_atomically(const std::string& path, std::string_view bytes);
/// The whole file; throws IOError when it cannot be read or exceeds `max_bytes`.
std::vector<char> read_whole_file(const std::string& path, uint64_t max_bytes);
/// Whether `path` ends with `suffix` (case-sensitive, as Keras' checks).
bool ends_with(const std::string& path, const std::string& suffix);

}  // namespace keras::saving
