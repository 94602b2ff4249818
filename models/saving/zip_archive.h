#pragma once
// Internal: Keras' .keras zip archives through libzip, with caps on member sizes and expansion
// ratios so a small hostile archive cannot exhaust memory.
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace keras::saving::zip {

struct Limits {
  uint64_t max_member_bytes;
  double max_expansion_ratio;  // uncompressed / compressed size, checked for members over 1 MiB
};

/// The names of the archive's members, in archive order; throws IOError on anything but a zip.
std::vector<std::string> member_names(const std::string& path);
/// Reads `name` within `limits`; throws IOError naming the archive and member when it is missing,
/// too large, too compressed, or corrupt.
std::vector<char> read_member(const std::string& path, const std::string& name, const Limits& limits);
/// An archive holding `members` in order (stored, not compressed, as Keras), as bytes.
std::string make_archive(const std::vector<std::pair<std::string, std::string_view>>& members);

}  // namespace keras::saving::zip
