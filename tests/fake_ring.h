// An in-memory ring laid out like the real mmap: a control page and a data
// area, written the way the kernel writes records. Positions start anywhere,
// including just below 2^64. Shared by the parser tests, the fuzz target's
// checks (ring_check.cpp) and the parser microbenchmark.
#pragma once

#include <perfbuf/ring.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>
#include <span>
#include <vector>

namespace perfbuf::testing {

class FakeRing {
 public:
  explicit FakeRing(std::size_t data_size, std::uint64_t start = 0, bool has_time = false)
      : control_(std::make_unique<perf_event_mmap_page>()),
        data_(data_size),
        has_time_(has_time) {
    control_->data_head = start;
    control_->data_tail = start;
  }

  RingParser parser() { return RingParser(control_.get(), data_, has_time_); }
  perf_event_mmap_page& control() { return *control_; }
  std::span<std::byte> data() { return data_; }
  std::size_t size() const { return data_.size(); }
  bool has_time() const { return has_time_; }
  std::uint64_t head() const { return control_->data_head; }
  std::uint64_t tail() const { return control_->data_tail; }

  // Bytes the kernel may write before it reaches the tail. It keeps one byte
  // free (CIRC_SPACE in ring_buffer_has_space), so a full ring never looks empty.
  std::size_t free_space() const { return data_.size() - 1 - (head() - tail()); }

  // Bytes in front of a sample's payload: header, time (with has_time), size.
  std::size_t sample_fixed_bytes() const {
    return sizeof(perf_event_header) + (has_time_ ? 8 : 0) + 4;
  }
  // The size of the record add_sample writes for a payload of n bytes.
  std::size_t sample_size(std::size_t payload) const {
    return (sample_fixed_bytes() + payload + 7) & ~std::size_t(7);
  }

  // A PERF_RECORD_SAMPLE with PERF_SAMPLE_RAW (and TIME when has_time), the
  // payload padded with zeros to keep records 8-byte aligned. Returns the
  // record's size.
  std::size_t add_sample(std::span<const std::byte> payload, std::uint64_t time_ns = 0) {
    const std::size_t fixed = sample_fixed_bytes();
    const std::size_t size = sample_size(payload.size());
    std::vector<std::byte> rec(size);
    perf_event_header h{PERF_RECORD_SAMPLE, 0, static_cast<std::uint16_t>(size)};
    std::size_t at = 0;
    put(rec, at, &h, sizeof h);
    if (has_time_) put(rec, at, &time_ns, 8);
    const std::uint32_t raw_size = static_cast<std::uint32_t>(size - fixed);
    put(rec, at, &raw_size, 4);
    put(rec, at, payload.data(), payload.size());
    append(rec);
    return size;
  }

  // A PERF_RECORD_LOST reporting `lost` dropped records.
  void add_lost(std::uint64_t lost) {
    const std::uint64_t body[2] = {0, lost};  // u64 id; u64 lost
    add_record(PERF_RECORD_LOST, std::as_bytes(std::span(body)));
  }

  // A record of any type: its header, then the body (a multiple of 8 bytes).
  void add_record(std::uint32_t type, std::span<const std::byte> body) {
    const perf_event_header h{type, 0, static_cast<std::uint16_t>(sizeof h + body.size())};
    append(std::span(reinterpret_cast<const std::byte*>(&h), sizeof h));
    append(body);
  }

  // Raw bytes at the head, as they are: for corrupt input.
  void append(std::span<const std::byte> bytes) {
    std::uint64_t pos = control_->data_head;
    while (!bytes.empty()) {  // up to the ring's end, then from its start
      const std::size_t offset = pos & (data_.size() - 1);
      const std::size_t n = std::min(bytes.size(), data_.size() - offset);
      std::memcpy(data_.data() + offset, bytes.data(), n);
      bytes = bytes.subspan(n);
      pos += n;
    }
    control_->data_head = pos;
  }

 private:
  static void put(std::vector<std::byte>& rec, std::size_t& at, const void* src, std::size_t n) {
    std::memcpy(rec.data() + at, src, n);
    at += n;
  }

  std::unique_ptr<perf_event_mmap_page> control_;
  std::vector<std::byte> data_;
  bool has_time_;
};

// The bytes of a value, as a payload.
template <class T>
std::span<const std::byte> bytes_of(const T& v) {
  return std::span(reinterpret_cast<const std::byte*>(&v), sizeof v);
}

}  // namespace perfbuf::testing
