// An in-memory overwritable ring written backward, laid out like the real
// mmap of a write_backward perf event mapped read-only: the kernel moves
// data_head down by a record's size and writes the record there (forward in
// memory, wrapping the end of the area like any other bytes), never looking
// at data_tail, so older records are overwritten. Bytes never written are
// zero. Shared by the flight recorder tests and the backward fuzz target's
// checks.
#pragma once

#include <linux/perf_event.h>

#include <cstdint>
#include <cstring>
#include <memory>
#include <span>
#include <vector>

namespace perfbuf::testing {

class FakeBackwardRing {
 public:
  explicit FakeBackwardRing(std::size_t data_size, bool has_time = false,
                            std::uint64_t start = 0)
      : control_(std::make_unique<perf_event_mmap_page>()), data_(data_size), has_time_(has_time) {
    control_->data_head = start;
  }

  perf_event_mmap_page* control() { return control_.get(); }
  std::span<std::byte> data() { return data_; }
  std::size_t size() const { return data_.size(); }
  bool has_time() const { return has_time_; }
  std::uint64_t head() const { return control_->data_head; }

  // The size of the sample record for a payload of n bytes (8-byte aligned).
  std::size_t sample_size(std::size_t payload) const {
    return (sizeof(perf_event_header) + (has_time_ ? 8 : 0) + 4 + payload + 7) & ~std::size_t(7);
  }

  // A PERF_RECORD_SAMPLE with PERF_SAMPLE_RAW (and TIME), written below the head.
  std::size_t add_sample(std::span<const std::byte> payload, std::uint64_t time_ns = 0) {
    const std::size_t size = sample_size(payload.size());
    std::vector<std::byte> rec(size);
    const perf_event_header h{PERF_RECORD_SAMPLE, 0, static_cast<std::uint16_t>(size)};
    std::size_t at = 0;
    put(rec, at, &h, sizeof h);
    if (has_time_) put(rec, at, &time_ns, 8);
    const std::uint32_t raw_size =
        static_cast<std::uint32_t>(size - sizeof h - (has_time_ ? 8 : 0) - 4);
    put(rec, at, &raw_size, 4);
    put(rec, at, payload.data(), payload.size());
    write(rec);
    return size;
  }

  // The kernel's report of `lost` outputs refused (while the ring was paused).
  void add_lost(std::uint64_t lost) {
    std::vector<std::byte> rec(24);
    const perf_event_header h{PERF_RECORD_LOST, 0, 24};
    const std::uint64_t body[2] = {7, lost};  // u64 id; u64 lost
    std::memcpy(rec.data(), &h, sizeof h);
    std::memcpy(rec.data() + 8, body, sizeof body);
    write(rec);
  }

  // Raw bytes as a record the way the kernel places one: head moves down by
  // their size, they go at the new head. For corrupt input.
  void write(std::span<const std::byte> bytes) {
    const std::uint64_t head = control_->data_head - bytes.size();
    for (std::size_t i = 0; i < bytes.size(); ++i)
      data_[(head + i) & (data_.size() - 1)] = bytes[i];
    control_->data_head = head;
  }

 private:
  static void put(std::vector<std::byte>& rec, std::size_t& at, const void* src, std::size_t n) {
    if (n) std::memcpy(rec.data() + at, src, n);  // an empty payload may have no data pointer
    at += n;
  }

  std::unique_ptr<perf_event_mmap_page> control_;
  std::vector<std::byte> data_;
  bool has_time_;
};

}  // namespace perfbuf::testing
