// Reading a record's payload as a struct: Sample::read and FlightRecord::read.
#pragma once

#include <cstddef>
#include <cstring>
#include <span>
#include <type_traits>

namespace perfbuf {

// Copies the start of `data` into out; false if `data` is shorter. (A perf
// ring's payload is only 4-byte aligned, so it is not cast in place.)
template <class T>
bool read_payload(std::span<const std::byte> data, T& out) noexcept {
  static_assert(std::is_trivially_copyable_v<T>);
  if (data.size() < sizeof(T)) return false;
  std::memcpy(&out, data.data(), sizeof(T));
  return true;
}

}  // namespace perfbuf
