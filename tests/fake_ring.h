// An in-memory ring laid out like the real mmap: a control page and a data
// area, written the way the kernel writes records. Positions start anywhere,
// including just below 2^64.
#pragma once

#include <perfbuf/ring.h>

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
  std::uint64_t head() const { return control_->data_head; }
  std::uint64_t tail() const { return control_->data_tail; }

  // A PERF_RECORD_SAMPLE with PERF_SAMPLE_RAW (and TIME when has_time), padded
  // as the kernel pads it. Returns the record's size.
  std::size_t add_sample(std::span<const std::byte> payload, std::uint64_t time_ns = 0) {
    const std::size_t fixed = sizeof(perf_event_header) + (has_time_ ? 8 : 0) + 4;
    const std::size_t size = (fixed + payload.size() + 7) & ~std::size_t(7);
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
    struct {
      perf_event_header h;
      std::uint64_t id, lost;
    } rec{{PERF_RECORD_LOST, 0, 24}, 0, lost};
    append(std::span(reinterpret_cast<const std::byte*>(&rec), sizeof rec));
  }

  // Raw bytes at the head, as they are: for corrupt input.
  void append(std::span<const std::byte> bytes) {
    std::uint64_t pos = control_->data_head;
    for (std::byte b : bytes) data_[pos++ & (data_.size() - 1)] = b;
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
