// Small helpers for strict command-line parsing.
#pragma once

#include <charconv>
#include <cstdint>
#include <optional>
#include <string_view>

namespace perfbuf::tools {

// The whole text as a number in [min, max], or nothing.
template <class T>
std::optional<T> parse_number(std::string_view text, T min, T max) {
  T value{};
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  // Written so that NaN (which from_chars accepts) fails the range check.
  if (ec != std::errc() || end != text.data() + text.size() || !(value >= min && value <= max))
    return std::nullopt;
  return value;
}

}  // namespace perfbuf::tools
