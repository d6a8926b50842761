// Status and StatusOr<T>: errors as values that must be checked.
//
// Every fallible call in virt-shadow returns one of these; [[nodiscard]] makes the compiler
// reject a call whose result is dropped. Foreign error codes (virError, errno, libnbd,
// RocksDB, gRPC) are translated into a Status at the one boundary that includes that library.
//
// Thread-safety: values; copy freely.
#pragma once

#include <cassert>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace vs {

enum class Code {
  kOk,
  kInvalidArgument,     // the caller's input is wrong; retrying the same call fails again
  kNotFound,
  kAlreadyExists,
  kFailedPrecondition,  // the system is not in a state that allows the call
  kUnavailable,         // a peer or daemon is unreachable right now; retryable
  kDeadlineExceeded,    // retryable
  kAborted,             // a concurrent change won; retryable
  kResourceExhausted,
  kPermissionDenied,    // the caller is not allowed the call (e.g. a peer whose certificate names no host of the cluster)
  kDataLoss,
  kInternal,
};

std::string_view CodeName(Code code);

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(Code code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status Ok() { return Status(); }
  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  const std::string& message() const { return message_; }
  // True for failures where the same call may succeed later without any change of input.
  bool retryable() const {
    return code_ == Code::kUnavailable || code_ == Code::kDeadlineExceeded || code_ == Code::kAborted;
  }
  // "NOT_FOUND: domain 'x' ..."; "OK" for success.
  std::string ToString() const;
  // Prefixes the message with context, keeping the code: "while X: <message>".
  Status Annotate(std::string_view context) const;
  // Explicitly discards a status whose failure does not matter at this call site.
  void IgnoreError() const {}

 private:
  Code code_ = Code::kOk;
  std::string message_;
};

inline Status InvalidArgument(std::string m) { return {Code::kInvalidArgument, std::move(m)}; }
inline Status NotFound(std::string m) { return {Code::kNotFound, std::move(m)}; }
inline Status AlreadyExists(std::string m) { return {Code::kAlreadyExists, std::move(m)}; }
inline Status FailedPrecondition(std::string m) { return {Code::kFailedPrecondition, std::move(m)}; }
inline Status Unavailable(std::string m) { return {Code::kUnavailable, std::move(m)}; }
inline Status DeadlineExceeded(std::string m) { return {Code::kDeadlineExceeded, std::move(m)}; }
inline Status Aborted(std::string m) { return {Code::kAborted, std::move(m)}; }
inline Status ResourceExhausted(std::string m) { return {Code::kResourceExhausted, std::move(m)}; }
inline Status PermissionDenied(std::string m) { return {Code::kPermissionDenied, std::move(m)}; }
inline Status DataLoss(std::string m) { return {Code::kDataLoss, std::move(m)}; }
inline Status Internal(std::string m) { return {Code::kInternal, std::move(m)}; }

// A value or the Status that explains its absence. Precondition for value(): ok().
template <typename T>
class [[nodiscard]] StatusOr {
 public:
  StatusOr(T value) : v_(std::move(value)) {}  // NOLINT: implicit by design
  StatusOr(Status status) : v_(std::move(status)) {  // NOLINT
    assert(!std::get<Status>(v_).ok() && "StatusOr built from an OK status");
  }
  bool ok() const { return std::holds_alternative<T>(v_); }
  Status status() const { return ok() ? Status::Ok() : std::get<Status>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T& value() & { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  const T& operator*() const& { return value(); }
  T& operator*() & { return value(); }
  const T* operator->() const { return &value(); }
  T* operator->() { return &value(); }

 private:
  std::variant<Status, T> v_;
};

}  // namespace vs

#define VS_CONCAT_INNER(a, b) a##b
#define VS_CONCAT(a, b) VS_CONCAT_INNER(a, b)

// Returns the status from the enclosing function when it is not OK.
#define VS_RETURN_IF_ERROR(expr)             \
  do {                                       \
    ::vs::Status vs_status_ = (expr);        \
    if (!vs_status_.ok()) return vs_status_; \
  } while (0)

// `VS_ASSIGN_OR_RETURN(auto x, Call());` declares x from a StatusOr or returns its error.
#define VS_ASSIGN_OR_RETURN(lhs, expr) VS_ASSIGN_OR_RETURN_IMPL(VS_CONCAT(vs_or_, __LINE__), lhs, expr)
#define VS_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                             \
  if (!tmp.ok()) return tmp.status();            \
  lhs = std::move(tmp).value()
