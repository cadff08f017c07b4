// Errors as values. A function that can fail on bad input returns Result<T> (a value
// or an Error) or Status (nothing or an Error); callers propagate with GM_TRY /
// GM_ASSIGN_OR_RETURN. No exceptions cross a parser boundary.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <variant>

namespace gm {

// What kind of failure an error is: callers decide by it (set aside, retry, refuse,
// answer 404), never by the message, which is for people.
enum class ErrorCode {
  kInvalid,    // input that is not what it should be (malformed, out of range): the default
  kCorrupt,    // bytes that fail their own integrity check (a checksum)
  kIo,         // the system refused an operation (disk full, permission, I/O error)
  kNotFound,   // what was asked for does not exist
  kOverLimit,  // input that may well be valid but passes one of our limits (rows, ops,
               // bytes): not proof of damage, so stored data that hits one stays in place
  kFailedPrecondition,  // well-formed input whose stated condition does not hold (a
                        // JSON Patch `test` that fails): nothing was done
};

struct Error {
  std::string message;
  ErrorCode code = ErrorCode::kInvalid;
};

inline Error error(std::string message) { return Error{std::move(message)}; }
inline Error error(ErrorCode code, std::string message) { return Error{std::move(message), code}; }
inline Error limit_error(std::string message) { return Error{std::move(message), ErrorCode::kOverLimit}; }

// Prefixes an error with where it happened ("change 3: ..."); the code stays.
inline Error context(std::string where, const Error& e) { return Error{std::move(where) + ": " + e.message, e.code}; }

template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}
  Result(Error e) : v_(std::move(e)) {}

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }
  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  // By value, so `for (auto& x : f().value())` does not dangle.
  T value() && { return std::get<0>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T operator*() && { return std::move(*this).value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  const Error& error() const { return std::get<1>(v_); }

 private:
  std::variant<T, Error> v_;
};

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(Error e) : e_(std::move(e)) {}
  static Status Ok() { return Status(); }
  bool ok() const { return !e_.has_value(); }
  explicit operator bool() const { return ok(); }
  const Error& error() const { return *e_; }

 private:
  std::optional<Error> e_;
};

}  // namespace gm

#define GM_CONCAT_INNER(a, b) a##b
#define GM_CONCAT(a, b) GM_CONCAT_INNER(a, b)

// Returns the error of a Status or Result expression from the enclosing function.
#define GM_TRY(expr)                                          \
  do {                                                        \
    auto&& gm_try_result = (expr);                            \
    if (!gm_try_result.ok()) return gm_try_result.error();    \
  } while (0)

// `GM_ASSIGN_OR_RETURN(auto x, f());` declares x from a Result or returns its error.
#define GM_ASSIGN_OR_RETURN(lhs, expr) GM_ASSIGN_OR_RETURN_IMPL(GM_CONCAT(gm_result_, __LINE__), lhs, expr)
#define GM_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                             \
  if (!tmp.ok()) return tmp.error();             \
  lhs = std::move(tmp).value()
