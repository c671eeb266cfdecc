#pragma once
// Errors raised by domain and storage code. They carry a transport-neutral code
// that the gRPC adapter maps one-to-one onto a status code.
#include <stdexcept>
#include <string>
#include <string_view>

namespace physio {

enum class ErrorCode {
  kInvalidArgument,
  kNotFound,
  kAlreadyExists,
  kFailedPrecondition,
  kAborted,
  kPermissionDenied,
  kUnauthenticated,
  kUnavailable,
  kDeadlineExceeded,
  kResourceExhausted,
  kInternal,
};

std::string_view ErrorCodeName(ErrorCode code);

class Error : public std::runtime_error {
 public:
  Error(ErrorCode code, const std::string& message) : std::runtime_error(message), code_(code) {}
  ErrorCode code() const { return code_; }

 private:
  ErrorCode code_;
};

// "field: problem" so a caller can tell which field to fix.
[[noreturn]] void ThrowInvalidArgument(std::string_view field, std::string_view problem);
[[noreturn]] void ThrowNotFound(std::string_view what);

}  // namespace physio
