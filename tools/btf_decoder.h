// Decodes the bytes of a record with the BTF of its type, into a neutral value
// model that text and JSON printers share (see to_json(), to_text()).
//
// Integers of every width and signedness, bools, enums (by name), floats,
// char arrays (escaped text up to the first NUL), structs and unions (nested,
// anonymous members inlined), arrays, bitfields, and pointers (an address, in
// hex). A record shorter than the type decodes what is there and says so;
// bytes past the type are kept, as hex. Records are read in this machine's
// byte order (little-endian here), as the program that wrote them used.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "json_lines.h"

struct btf;
struct btf_type;

namespace perfbuf::tools {

struct Field;

// One decoded value.
struct Value {
  enum class Kind {
    signed_int,    // i
    unsigned_int,  // u
    boolean,       // u: 0 or 1 (any other byte value is kept in u)
    enumerator,    // text: the enumerator's name, or empty when no name has this value (i/u)
    floating,      // f
    string,        // text: a char array up to its first NUL, escaped (\n, \", \xNN ...)
    pointer,       // u: the address
    record,        // fields: a struct or union
    array,         // elements
    bytes,         // text: hex, for what has no better form (__int128, long double)
  };
  Kind kind = Kind::bytes;
  bool is_signed = false;  // enumerator: which of i/u holds the value
  std::int64_t i = 0;
  std::uint64_t u = 0;
  double f = 0;
  std::string text;
  std::vector<Field> fields;
  std::vector<Value> elements;
  // The record ended inside this value: what is there is decoded, the rest
  // of the fields or elements are missing.
  bool partial = false;
};

struct Field {
  std::string name;
  Value value;
};

// A whole record decoded.
struct Decoded {
  Value value;
  std::size_t type_size = 0;           // bytes the type takes
  std::size_t record_size = 0;         // bytes the record had
  bool short_record = false;           // record_size < type_size: fields are missing
  std::vector<std::uint8_t> trailing;  // bytes after the type (none when short)
};

class BtfDecoder {
 public:
  // type_id: a type of btf (which must outlive the decoder) that has a size.
  BtfDecoder(const struct btf* btf, std::uint32_t type_id);

  // The id of the struct, union or typedef called `name` in btf, or nothing.
  static std::optional<std::uint32_t> find_type(const struct btf* btf, std::string_view name);

  Decoded decode(std::span<const std::uint8_t> record) const;
  std::size_t type_size() const { return size_; }

 private:
  Value decode_type(std::uint32_t type_id, std::span<const std::uint8_t> bytes,
                    std::size_t bit_offset, std::uint32_t bitfield_bits) const;
  void decode_members(const struct btf_type* t, std::span<const std::uint8_t> bytes,
                      std::size_t base_bits, Value& out) const;
  std::uint32_t skip_modifiers(std::uint32_t type_id) const;

  const struct btf* btf_;
  std::uint32_t type_id_;
  std::size_t size_;
};

// JSON of a value: numbers, true/false, strings, objects, arrays; an
// enumerator by name (its number when no name has it); a pointer as "0x..".
// A partial struct or array gets "...": "partial" as its last entry / element.
Json to_json(const Value& v);
// One line of text: {a=1, b="x", c=[1, 2], flags=READ, p=0x7ff0}.
std::string to_text(const Value& v);
// Bytes as lower-case hex, no separators.
std::string to_hex(std::span<const std::uint8_t> bytes);

}  // namespace perfbuf::tools
