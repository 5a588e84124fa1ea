// Errors: what failed, the errno it failed with, and what to do about it.
#pragma once

#include <cerrno>
#include <stdexcept>
#include <string>
#include <system_error>
#include <utility>
#include <variant>

namespace perfbuf {

// Thrown when a reader cannot be built, returned (inside Result) when a poll fails.
// what() says what failed and what to do, e.g. "perf_event_open(cpu 3): a
// system-wide perf event needs root or CAP_PERFMON (...)"; errnum() is the errno.
class Error : public std::runtime_error {
 public:
  Error(int errnum, const std::string& message) : std::runtime_error(message), errnum_(errnum) {}

  int errnum() const noexcept { return errnum_; }
  std::error_code code() const noexcept { return {errnum_, std::generic_category()}; }
  // A signal interrupted the wait (e.g. Ctrl-C): exit cleanly, this is not a failure.
  bool interrupted() const noexcept { return errnum_ == EINTR; }

 private:
  int errnum_;
};

// A value or the Error that prevented it. Used on hot paths where throwing is not wanted.
template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}
  Result(Error error) : v_(std::move(error)) {}

  bool ok() const noexcept { return v_.index() == 0; }
  explicit operator bool() const noexcept { return ok(); }
  bool interrupted() const noexcept { return !ok() && error().interrupted(); }

  // The value; throws the Error when there is none.
  const T& value() const {
    if (!ok()) throw std::get<1>(v_);
    return std::get<0>(v_);
  }
  const T& operator*() const { return value(); }
  const Error& error() const { return std::get<1>(v_); }

 private:
  std::variant<T, Error> v_;
};

}  // namespace perfbuf
