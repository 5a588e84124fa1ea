// A cat_record (tests/bpf/cat_record.h) with a known value in every field,
// and the JSON `perfbuf cat` must print for it, written out by hand.
#pragma once

#include <cstdint>
#include <cstring>
#include <vector>

#include <nlohmann/json.hpp>

#include "cat_record.h"

namespace perfbuf::testing {

inline constexpr char kCatComm[] = "perf\"buf\\\n\x01";  // quote, backslash, newline, control

inline cat_record known_cat_record(std::uint64_t seq) {
  cat_record r;
  std::memset(&r, 0, sizeof r);  // padding too: the bytes are compared
  r.u8 = 200;
  r.s8 = -100;
  r.u16 = 60000;
  r.s16 = -30000;
  r.u32 = 4000000000u;
  r.s32 = -2000000000;
  r.u64 = 18000000000000000000ull;
  r.s64 = -9000000000000000000ll;
  r.flag = true;
  std::memcpy(r.comm, kCatComm, sizeof kCatComm);
  r.color = CAT_BLUE;
  r.delta = CAT_DOWN;
  r.origin = {-5, 7};
  r.path[0] = {1, 2};
  r.path[1] = {-3, -4};
  r.word.word = 0x04030201;
  r.counts[0] = 1;
  r.counts[1] = 2;
  r.counts[2] = 3;
  r.kind = 5;
  r.level = -9;
  r.big = 1000000;
  r.where = reinterpret_cast<const void*>(std::uintptr_t{0xffff888012345678});
  r.lo = 0x1234;
  r.hi = 0xabcd;
  r.seq = seq;
  return r;
}

inline nlohmann::json known_cat_json(std::uint64_t seq) {
  return {
      {"u8", 200},
      {"s8", -100},
      {"u16", 60000},
      {"s16", -30000},
      {"u32", 4000000000u},
      {"s32", -2000000000},
      {"u64", 18000000000000000000ull},
      {"s64", -9000000000000000000ll},
      {"flag", true},
      {"comm", kCatComm},
      {"color", "CAT_BLUE"},
      {"delta", "CAT_DOWN"},
      {"origin", {{"x", -5}, {"y", 7}}},
      {"path", {{{"x", 1}, {"y", 2}}, {{"x", -3}, {"y", -4}}}},
      {"word", {{"word", 0x04030201}, {"bytes", {1, 2, 3, 4}}}},
      {"counts", {1, 2, 3}},
      {"kind", 5},
      {"level", -9},
      {"big", 1000000},
      {"where", "0xffff888012345678"},
      {"lo", 0x1234},
      {"hi", 0xabcd},
      {"seq", seq},
  };
}

inline std::vector<std::uint8_t> bytes_of(const cat_record& r) {
  const auto* p = reinterpret_cast<const std::uint8_t*>(&r);
  return {p, p + sizeof r};
}

}  // namespace perfbuf::testing
