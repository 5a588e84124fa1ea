// What the fuzz checks (ring_check, ringbuf_check, backward_check) share: the
// input read as little-endian fields, and messages built printf-style.
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <span>
#include <string>

namespace perfbuf::testing {

// Fields off the front of the input; once it runs out, reads fail.
class Input {
 public:
  explicit Input(std::span<const std::uint8_t> bytes) : bytes_(bytes) {}
  template <class T>
  bool read(T& out) {
    if (bytes_.size() < sizeof out) return false;
    std::memcpy(&out, bytes_.data(), sizeof out);
    bytes_ = bytes_.subspan(sizeof out);
    return true;
  }
  std::span<const std::uint8_t> rest() const { return bytes_; }

 private:
  std::span<const std::uint8_t> bytes_;
};

// For a harness's own per-byte loops: the fuzzer learns nothing from them,
// and tracing every byte's comparison would cost most of its time.
#if defined(__clang__)
#define NO_COVERAGE __attribute__((no_sanitize("coverage"), noinline))
#else
#define NO_COVERAGE
#endif

template <class... Args>
std::string format(const char* fmt, Args... args) {
  char buf[320];
  std::snprintf(buf, sizeof buf, fmt, args...);
  return buf;
}

}  // namespace perfbuf::testing
