#pragma once
#include <stdexcept>
#include <string>

#include "export.h"

namespace keras {

/// Root of every exception kerascpp throws; catch this to catch them all.
class KERASCPP_API Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

/// A value is out of its allowed range or otherwise wrong (Python's ValueError).
class KERASCPP_API ValueError : public Error {
 public:
  using Error::Error;
};
/// A tensor has the wrong shape or rank.
class KERASCPP_API ShapeError : public ValueError {
 public:
  using ValueError::ValueError;
};
/// A tensor has the wrong dtype.
class KERASCPP_API TypeError : public Error {
 public:
  using Error::Error;
};
/// A feature exists in Keras but not (yet) here, or not on this backend.
class KERASCPP_API NotImplementedError : public Error {
 public:
  using Error::Error;
};
/// Selecting, loading or running a backend failed (plugin, device, vendor library).
class KERASCPP_API BackendError : public Error {
 public:
  using Error::Error;
};
/// A collective operation or a peer process failed.
class KERASCPP_API DistributedError : public Error {
 public:
  using Error::Error;
};
/// Reading or writing a file failed.
class KERASCPP_API IOError : public Error {
 public:
  using Error::Error;
};
/// An internal invariant was broken: a bug in kerascpp, never the user's input.
class KERASCPP_API InternalError : public Error {
 public:
  using Error::Error;
};

}  // namespace keras
