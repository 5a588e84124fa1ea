#include "btf_decoder.h"

#include <bpf/btf.h>

#include <cstdio>
#include <cstring>
#include <stdexcept>

namespace perfbuf::tools {

namespace {

// `bits` bits (1..64) from bit `bit_offset` of `bytes`, bit 0 being the low
// bit of byte 0 (little-endian, as the x86 and arm64 kernels lay out
// bitfields); nothing if any of them is past the end.
std::optional<std::uint64_t> read_bits(std::span<const std::uint8_t> bytes,
                                       std::size_t bit_offset, unsigned bits) {
  const std::size_t first = bit_offset / 8;
  const std::size_t last = (bit_offset + bits - 1) / 8;
  if (bits == 0 || bits > 64 || last >= bytes.size()) return std::nullopt;
  unsigned __int128 window = 0;
  for (std::size_t b = last + 1; b-- > first;) window = (window << 8) | bytes[b];
  window >>= bit_offset % 8;
  const std::uint64_t mask = bits == 64 ? ~std::uint64_t{0} : (std::uint64_t{1} << bits) - 1;
  return static_cast<std::uint64_t>(window) & mask;
}

std::int64_t sign_extend(std::uint64_t v, unsigned bits) {
  if (bits >= 64) return static_cast<std::int64_t>(v);
  const std::uint64_t sign = std::uint64_t{1} << (bits - 1);
  return static_cast<std::int64_t>((v ^ sign) - sign);
}

Value hex_value(std::span<const std::uint8_t> bytes, std::size_t offset, std::size_t size) {
  Value v;
  v.kind = Value::Kind::bytes;
  v.text = to_hex(bytes.subspan(offset, size));
  return v;
}

// Whether t is `char` (plain char, not signed/unsigned char: those are numbers).
bool is_char(const struct btf* btf, const btf_type* t) {
  if (!btf_is_int(t) || t->size != 1) return false;
  if (btf_int_encoding(t) & BTF_INT_CHAR) return true;
  const char* name = btf__name_by_offset(btf, t->name_off);
  return name && std::strcmp(name, "char") == 0;
}

// Strict UTF-8 (RFC 3629): no overlong forms, no surrogates, nothing past U+10FFFF.
bool valid_utf8(std::string_view s) {
  for (std::size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      ++i;
      continue;
    }
    std::size_t n;
    unsigned char lo = 0x80, hi = 0xbf;  // the second byte's range
    if (c >= 0xc2 && c <= 0xdf) {
      n = 2;
    } else if (c >= 0xe0 && c <= 0xef) {
      n = 3;
      if (c == 0xe0) lo = 0xa0;
      if (c == 0xed) hi = 0x9f;
    } else if (c >= 0xf0 && c <= 0xf4) {
      n = 4;
      if (c == 0xf0) lo = 0x90;
      if (c == 0xf4) hi = 0x8f;
    } else {
      return false;
    }
    if (i + n > s.size()) return false;
    const auto second = static_cast<unsigned char>(s[i + 1]);
    if (second < lo || second > hi) return false;
    for (std::size_t k = 2; k < n; ++k)
      if ((static_cast<unsigned char>(s[i + k]) >> 6) != 2) return false;
    i += n;
  }
  return true;
}

}  // namespace

std::string to_hex(std::span<const std::uint8_t> bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out(bytes.size() * 2, '0');
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    out[2 * i] = kDigits[bytes[i] >> 4];
    out[2 * i + 1] = kDigits[bytes[i] & 15];
  }
  return out;
}

BtfDecoder::BtfDecoder(const struct btf* btf, std::uint32_t type_id) : btf_(btf), type_id_(type_id) {
  const __s64 size = btf__resolve_size(btf, type_id);
  if (size < 0)
    throw std::invalid_argument("BTF type " + std::to_string(type_id) + " has no size");
  size_ = static_cast<std::size_t>(size);
}

std::optional<std::uint32_t> BtfDecoder::find_type(const struct btf* btf, std::string_view name) {
  const std::string n(name);
  for (const __u32 kind : {BTF_KIND_STRUCT, BTF_KIND_UNION, BTF_KIND_TYPEDEF}) {
    const __s32 id = btf__find_by_name_kind(btf, n.c_str(), kind);
    if (id > 0) return static_cast<std::uint32_t>(id);
  }
  return std::nullopt;
}

std::uint32_t BtfDecoder::skip_modifiers(std::uint32_t type_id) const {
  // Bounded: a malformed chain of modifiers cannot loop forever.
  for (int depth = 0; depth < 64; ++depth) {
    const btf_type* t = btf__type_by_id(btf_, type_id);
    if (!t || !(btf_is_mod(t) || btf_is_typedef(t))) return type_id;
    type_id = t->type;
  }
  return type_id;
}

Decoded BtfDecoder::decode(std::span<const std::uint8_t> record) const {
  Decoded d;
  d.type_size = size_;
  d.record_size = record.size();
  d.short_record = record.size() < size_;
  if (record.size() > size_) d.trailing.assign(record.begin() + size_, record.end());
  const std::span<const std::uint8_t> typed = record.first(std::min(record.size(), size_));
  d.value = decode_type(type_id_, typed, 0, 0);
  return d;
}

void BtfDecoder::decode_members(const btf_type* t, std::span<const std::uint8_t> bytes,
                                std::size_t base_bits, Value& out) const {
  const struct btf_member* m = btf_members(t);
  out.fields.reserve(out.fields.size() + btf_vlen(t));
  for (unsigned i = 0; i < btf_vlen(t); ++i, ++m) {
    const std::size_t bit = base_bits + btf_member_bit_offset(t, i);
    const std::uint32_t bitfield = btf_member_bitfield_size(t, i);
    const char* name = btf__name_by_offset(btf_, m->name_off);
    const std::uint32_t member_type = skip_modifiers(m->type);
    const btf_type* mt = btf__type_by_id(btf_, member_type);
    if (bit / 8 >= bytes.size()) {  // the record ends before this member
      out.partial = true;
      continue;
    }
    if ((!name || !*name) && mt && (btf_is_struct(mt) || btf_is_union(mt))) {
      // An anonymous struct or union: its members are the parent's, as in C.
      decode_members(mt, bytes, bit, out);
      continue;
    }
    // Decoded in place: no copy of the value into the list.
    Field& f = out.fields.emplace_back();
    f.value = decode_type(m->type, bytes, bit, bitfield);
    const Value& v = f.value;
    if (v.partial && v.kind != Value::Kind::record && v.kind != Value::Kind::array &&
        v.kind != Value::Kind::string) {
      out.fields.pop_back();
      out.partial = true;  // a scalar cut off by the end of the record: left out
      continue;
    }
    if (v.partial) out.partial = true;
    if (name) f.name = name;
  }
}

Value BtfDecoder::decode_type(std::uint32_t type_id, std::span<const std::uint8_t> bytes,
                              std::size_t bit_offset, std::uint32_t bitfield_bits) const {
  type_id = skip_modifiers(type_id);
  const btf_type* t = btf__type_by_id(btf_, type_id);
  Value v;
  if (!t) {
    v.partial = true;
    return v;
  }
  const std::size_t offset = bit_offset / 8;
  // A scalar that is not all inside the record comes back partial (left out).
  auto scalar = [&](unsigned bits) -> std::optional<std::uint64_t> {
    const auto raw = read_bits(bytes, bit_offset, bits);
    if (!raw) v.partial = true;
    return raw;
  };
  switch (btf_kind(t)) {
    case BTF_KIND_INT: {
      const unsigned bits = bitfield_bits ? bitfield_bits : btf_int_bits(t);
      const __u8 encoding = btf_int_encoding(t);
      if (bits > 64) {  // __int128
        if (offset + t->size > bytes.size()) {
          v.partial = true;
          return v;
        }
        return hex_value(bytes, offset, t->size);
      }
      if (!bitfield_bits) bit_offset += btf_int_offset(t);
      const auto raw = scalar(bits);
      if (!raw) return v;
      if (encoding & BTF_INT_BOOL) {
        v.kind = Value::Kind::boolean;
        v.u = *raw;
      } else if (encoding & BTF_INT_SIGNED) {
        v.kind = Value::Kind::signed_int;
        v.i = sign_extend(*raw, bits);
      } else {
        v.kind = Value::Kind::unsigned_int;
        v.u = *raw;
      }
      return v;
    }
    case BTF_KIND_PTR: {
      // BTF read from the kernel may not say its pointer size: then it is this machine's.
      const std::size_t pointer_size = btf__pointer_size(btf_);
      const auto raw = scalar(static_cast<unsigned>(8 * (pointer_size ? pointer_size : sizeof(void*))));
      if (!raw) return v;
      v.kind = Value::Kind::pointer;
      v.u = *raw;
      return v;
    }
    case BTF_KIND_ENUM:
    case BTF_KIND_ENUM64: {
      const unsigned bits = bitfield_bits ? bitfield_bits : 8 * t->size;
      const auto raw = scalar(bits);
      if (!raw) return v;
      v.kind = Value::Kind::enumerator;
      // Signed: the kind flag says so (LLVM >= 15); older compilers leave it
      // unset, and then a negative enumerator does.
      v.is_signed = btf_kflag(t);
      if (!v.is_signed && btf_is_enum(t)) {
        const struct btf_enum* e = btf_enum(t);
        for (unsigned k = 0; k < btf_vlen(t) && !v.is_signed; ++k, ++e) v.is_signed = e->val < 0;
      }
      v.u = *raw;
      v.i = sign_extend(*raw, bits);
      const std::uint64_t value = v.is_signed ? static_cast<std::uint64_t>(v.i) : v.u;
      if (btf_is_enum(t)) {
        const struct btf_enum* e = btf_enum(t);
        for (unsigned k = 0; k < btf_vlen(t); ++k, ++e) {
          const std::uint64_t ev = v.is_signed ? static_cast<std::uint64_t>(std::int64_t{e->val})
                                               : std::uint64_t{static_cast<std::uint32_t>(e->val)};
          if (ev == value) {
            v.text = btf__name_by_offset(btf_, e->name_off);
            break;
          }
        }
      } else {
        const struct btf_enum64* e = btf_enum64(t);
        for (unsigned k = 0; k < btf_vlen(t); ++k, ++e)
          if (btf_enum64_value(e) == value) {
            v.text = btf__name_by_offset(btf_, e->name_off);
            break;
          }
      }
      return v;
    }
    case BTF_KIND_FLOAT: {
      if (offset + t->size > bytes.size()) {
        v.partial = true;
        return v;
      }
      if (t->size == sizeof(float)) {
        float f;
        std::memcpy(&f, bytes.data() + offset, sizeof f);
        v.kind = Value::Kind::floating;
        v.f = f;
      } else if (t->size == sizeof(double)) {
        v.kind = Value::Kind::floating;
        std::memcpy(&v.f, bytes.data() + offset, sizeof v.f);
      } else {
        return hex_value(bytes, offset, t->size);  // long double
      }
      return v;
    }
    case BTF_KIND_STRUCT:
    case BTF_KIND_UNION:
      v.kind = Value::Kind::record;
      if (offset + t->size > bytes.size()) v.partial = true;
      decode_members(t, bytes, bit_offset, v);
      return v;
    case BTF_KIND_ARRAY: {
      const struct btf_array* a = btf_array(t);
      const std::uint32_t elem_id = skip_modifiers(a->type);
      const btf_type* et = btf__type_by_id(btf_, elem_id);
      const __s64 elem_size = btf__resolve_size(btf_, elem_id);
      if (!et || elem_size <= 0) {
        v.partial = true;
        return v;
      }
      const std::size_t available = offset < bytes.size() ? bytes.size() - offset : 0;
      if (is_char(btf_, et)) {
        v.kind = Value::Kind::string;
        const std::size_t n = std::min<std::size_t>(a->nelems, available);
        const auto* start = reinterpret_cast<const char*>(bytes.data() + offset);
        const void* nul = std::memchr(start, 0, n);
        v.text.assign(start, nul ? static_cast<const char*>(nul) - start : n);
        v.partial = !nul && n < a->nelems;
        return v;
      }
      v.kind = Value::Kind::array;
      const std::size_t step = static_cast<std::size_t>(elem_size);
      v.elements.reserve(std::min<std::size_t>(a->nelems, available / step + 1));
      for (std::uint32_t k = 0; k < a->nelems; ++k) {
        if (k * step >= available) {
          v.partial = true;
          break;
        }
        Value e = decode_type(elem_id, bytes, bit_offset + 8 * k * step, 0);
        const bool composite = e.kind == Value::Kind::record || e.kind == Value::Kind::array ||
                               e.kind == Value::Kind::string;
        if (e.partial) v.partial = true;
        if (e.partial && !composite) break;
        v.elements.push_back(std::move(e));
        if (v.partial) break;
      }
      return v;
    }
    default: {  // nothing else has a value in a record (void, functions...)
      const __s64 size = btf__resolve_size(btf_, type_id);
      if (size <= 0 || offset + size > bytes.size()) {
        v.partial = true;
        return v;
      }
      return hex_value(bytes, offset, static_cast<std::size_t>(size));
    }
  }
}

namespace {

void append_escaped(std::string& out, std::string_view s) {
  out += '"';
  for (const char c : s) {
    const auto u = static_cast<unsigned char>(c);
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      case '\r': out += "\\r"; break;
      default:
        if (u >= 0x20 && u < 0x7f) {
          out += c;
        } else {
          char buf[5];
          std::snprintf(buf, sizeof buf, "\\x%02x", u);
          out += buf;
        }
    }
  }
  out += '"';
}

void append_text(std::string& out, const Value& v) {
  char buf[40];
  switch (v.kind) {
    case Value::Kind::signed_int:
      std::snprintf(buf, sizeof buf, "%lld", static_cast<long long>(v.i));
      out += buf;
      break;
    case Value::Kind::unsigned_int:
      std::snprintf(buf, sizeof buf, "%llu", static_cast<unsigned long long>(v.u));
      out += buf;
      break;
    case Value::Kind::boolean:
      out += v.u == 0 ? "false" : v.u == 1 ? "true" : std::to_string(v.u);
      break;
    case Value::Kind::enumerator:
      if (!v.text.empty())
        out += v.text;
      else
        out += v.is_signed ? std::to_string(v.i) : std::to_string(v.u);
      break;
    case Value::Kind::floating:
      std::snprintf(buf, sizeof buf, "%g", v.f);
      out += buf;
      break;
    case Value::Kind::string:
      append_escaped(out, v.text);
      if (v.partial) out += "...";
      break;
    case Value::Kind::pointer:
      std::snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(v.u));
      out += buf;
      break;
    case Value::Kind::bytes:
      out += "0x" + v.text;
      break;
    case Value::Kind::record:
      out += '{';
      for (std::size_t k = 0; k < v.fields.size(); ++k) {
        if (k) out += ", ";
        out += v.fields[k].name;
        out += '=';
        append_text(out, v.fields[k].value);
      }
      if (v.partial) out += v.fields.empty() ? "..." : ", ...";
      out += '}';
      break;
    case Value::Kind::array:
      out += '[';
      for (std::size_t k = 0; k < v.elements.size(); ++k) {
        if (k) out += ", ";
        append_text(out, v.elements[k]);
      }
      if (v.partial) out += v.elements.empty() ? "..." : ", ...";
      out += ']';
      break;
  }
}

}  // namespace

std::string to_text(const Value& v) {
  std::string out;
  append_text(out, v);
  return out;
}

Json to_json(const Value& v) {
  switch (v.kind) {
    case Value::Kind::signed_int: return v.i;
    case Value::Kind::unsigned_int: return v.u;
    case Value::Kind::boolean: return v.u <= 1 ? Json(v.u == 1) : Json(v.u);
    case Value::Kind::enumerator:
      if (!v.text.empty()) return v.text;
      return v.is_signed ? Json(v.i) : Json(v.u);
    case Value::Kind::floating: return v.f;
    case Value::Kind::string: {
      if (valid_utf8(v.text)) return v.text;
      // Not UTF-8: each byte from 0x80 up as the code point of that value
      // (Latin-1), so the JSON is valid and no byte is lost.
      std::string s;
      for (const char c : v.text) {
        const auto u = static_cast<unsigned char>(c);
        if (u < 0x80) {
          s += c;
        } else {
          s += static_cast<char>(0xc0 | (u >> 6));
          s += static_cast<char>(0x80 | (u & 0x3f));
        }
      }
      return s;
    }
    case Value::Kind::pointer: {
      char buf[24];
      std::snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(v.u));
      return buf;
    }
    case Value::Kind::bytes: return "0x" + v.text;
    case Value::Kind::record: {
      Json o = Json::object();
      for (const Field& f : v.fields) o[f.name] = to_json(f.value);
      return o;
    }
    case Value::Kind::array: {
      Json a = Json::array();
      for (const Value& e : v.elements) a.push_back(to_json(e));
      return a;
    }
  }
  return nullptr;
}

}  // namespace perfbuf::tools
