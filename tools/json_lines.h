// JSON output of the tool: one object per line, written with nlohmann/json,
// so strings are escaped and numbers are numbers.
#pragma once

#include <cmath>
#include <cstdio>
#include <string>

#include <nlohmann/json.hpp>

namespace perfbuf::tools {

// Keys stay in the order they are set: lines read the same from one run to the next.
using Json = nlohmann::ordered_json;

// Writes `object` and a newline to `out`. Bytes that are not UTF-8 (a string
// from a record) come out as U+FFFD rather than as invalid JSON.
inline void print_json_line(const Json& object, std::FILE* out = stdout) {
  const std::string line = object.dump(-1, ' ', false, Json::error_handler_t::replace) + "\n";
  std::fwrite(line.data(), 1, line.size(), out);
}

// `value` rounded to `decimals` places, for figures whose last digits are noise.
inline double rounded(double value, int decimals) {
  const double scale = std::pow(10.0, decimals);
  return std::round(value * scale) / scale;
}

}  // namespace perfbuf::tools
