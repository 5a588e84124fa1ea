// BTF built in memory with libbpf's writer API: a struct with one member of
// every kind perfbuf cat decodes (integers of each width and sign, bool,
// char array, enum, union, nested struct, bitfields, pointer, float, typedef,
// __int128, array of structs). For the decoder's fuzzer and microbenchmark,
// which are built without the BPF toolchain.
#pragma once

#include <bpf/btf.h>

#include <cstdint>
#include <stdexcept>

namespace perfbuf::testing {

inline constexpr std::size_t kSampleSize = 88;

// Returns the BTF (free with btf__free) and sets type_id to `struct sample`.
inline struct btf* make_sample_btf(std::uint32_t& type_id) {
  struct btf* b = btf__new_empty();
  if (!b) throw std::runtime_error("btf__new_empty failed");
  const int u8 = btf__add_int(b, "unsigned char", 1, 0);
  const int s8 = btf__add_int(b, "signed char", 1, BTF_INT_SIGNED);
  const int u16 = btf__add_int(b, "unsigned short", 2, 0);
  const int s16 = btf__add_int(b, "short", 2, BTF_INT_SIGNED);
  const int s32 = btf__add_int(b, "int", 4, BTF_INT_SIGNED);
  const int u32 = btf__add_int(b, "unsigned int", 4, 0);
  const int u64 = btf__add_int(b, "unsigned long", 8, 0);
  const int s64 = btf__add_int(b, "long", 8, BTF_INT_SIGNED);
  const int boolean = btf__add_int(b, "_Bool", 1, BTF_INT_BOOL);
  const int chr = btf__add_int(b, "char", 1, BTF_INT_SIGNED);
  const int i128 = btf__add_int(b, "__int128", 16, BTF_INT_SIGNED);
  const int flt = btf__add_float(b, "float", 4);
  const int name = btf__add_array(b, u32, chr, 7);
  const int bytes4 = btf__add_array(b, u32, u8, 4);
  const int color = btf__add_enum(b, "color", 4);
  btf__add_enum_value(b, "RED", 1);
  btf__add_enum_value(b, "GREEN", 2);
  btf__add_enum_value(b, "NEGATIVE", -5);
  const int word = btf__add_union(b, "word", 4);
  btf__add_field(b, "w", u32, 0, 0);
  btf__add_field(b, "b", bytes4, 0, 0);
  const int point = btf__add_struct(b, "point", 4);
  btf__add_field(b, "x", s16, 0, 0);
  btf__add_field(b, "y", s16, 16, 0);
  const int points = btf__add_array(b, u32, point, 2);
  const int cvoid = btf__add_const(b, 0);
  const int ptr = btf__add_ptr(b, cvoid);
  const int seq = btf__add_typedef(b, "seq_t", u32);
  const int sample = btf__add_struct(b, "sample", kSampleSize);
  btf__add_field(b, "u8", u8, 0, 0);
  btf__add_field(b, "s8", s8, 8, 0);
  btf__add_field(b, "u16", u16, 16, 0);
  btf__add_field(b, "s32", s32, 32, 0);
  btf__add_field(b, "u64", u64, 64, 0);
  btf__add_field(b, "s64", s64, 128, 0);
  btf__add_field(b, "flag", boolean, 192, 0);
  btf__add_field(b, "name", name, 200, 0);
  btf__add_field(b, "color", color, 256, 0);
  btf__add_field(b, "word", word, 288, 0);
  btf__add_field(b, "origin", point, 320, 0);
  btf__add_field(b, "kind", u32, 352, 3);
  btf__add_field(b, "level", s32, 355, 5);
  btf__add_field(b, "big", u32, 360, 20);
  btf__add_field(b, "where", ptr, 384, 0);
  btf__add_field(b, "ratio", flt, 448, 0);
  btf__add_field(b, "seq", seq, 480, 0);
  btf__add_field(b, "wide", i128, 512, 0);
  if (btf__add_field(b, "path", points, 640, 0) != 0 || sample < 0)
    throw std::runtime_error("cannot build the sample BTF");
  type_id = static_cast<std::uint32_t>(sample);
  return b;
}

}  // namespace perfbuf::testing
