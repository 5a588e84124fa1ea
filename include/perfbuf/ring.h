// The perf ring parser: no system calls, only a control page and the data area.
//
// The kernel writes records at data_head; the reader consumes from data_tail.
// Both are free-running 64-bit byte positions; position mod the data size is
// the offset. The data area is mapped once, so a record may wrap around its
// end: such a record is copied into a caller-provided scratch buffer, every
// other record is handed out in place.
//
// This is the raw tier: Reader (reader.h) drives one RingParser per CPU. Tests
// and advanced users can drive it over any memory laid out like the mmap.
#pragma once

#include <linux/perf_event.h>
#include <perfbuf/action.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>

namespace perfbuf {

// A PERF_RECORD_SAMPLE as found in the ring.
struct RawSample {
  std::uint64_t time_ns = 0;  // PERF_SAMPLE_TIME, 0 when timestamps are off
  // The PERF_SAMPLE_RAW bytes. The kernel pads them so that the record stays
  // 8-byte aligned: this may be up to 7 bytes longer than what the program sent.
  std::span<const std::byte> data;
};

// The outcome of one drain.
struct DrainResult {
  std::uint64_t records = 0;  // samples handed to the visitor
  std::uint64_t lost = 0;     // records the kernel dropped (sum of PERF_RECORD_LOST)
  std::uint64_t bytes = 0;    // ring bytes consumed, headers included
  bool stopped = false;       // the visitor returned Action::stop
  // Set when the ring held something no kernel writes (a size of 0, a record
  // longer than what is readable, misaligned positions, ...). The drain then
  // skips everything up to the head it read, so the ring is usable again.
  const char* corrupt = nullptr;
};

// One record at the cursor: a sample, or the kernel's report of records it dropped.
struct RingRecord {
  enum class Kind { sample, lost };
  Kind kind = Kind::sample;
  RawSample sample;        // Kind::sample
  std::uint64_t lost = 0;  // Kind::lost: how many records the kernel dropped
};

// Fills `out` from the bytes of one PERF_RECORD_SAMPLE with PERF_SAMPLE_RAW
// (and PERF_SAMPLE_TIME when has_time), header included; false when its
// sizes do not add up. Shared by the forward parser and the backward one
// (backward_ring.h).
inline bool parse_sample_record(std::span<const std::byte> rec, bool has_time,
                                RawSample& out) noexcept {
  std::size_t at = sizeof(perf_event_header);
  if (has_time) {
    if (rec.size() < at + sizeof(std::uint64_t)) return false;
    std::memcpy(&out.time_ns, rec.data() + at, sizeof(std::uint64_t));
    at += sizeof(std::uint64_t);
  }
  std::uint32_t raw_size;
  if (rec.size() < at + sizeof raw_size) return false;
  std::memcpy(&raw_size, rec.data() + at, sizeof raw_size);
  at += sizeof raw_size;
  if (raw_size > rec.size() - at) return false;
  out.data = rec.subspan(at, raw_size);
  return true;
}

class RingParser {
 public:
  // data.size() must be a power of two (the kernel enforces it for real rings).
  RingParser(perf_event_mmap_page* control, std::span<std::byte> data, bool has_time) noexcept
      : control_(control), data_(data.data()), mask_(data.size() - 1), has_time_(has_time),
        pos_(load_tail()) {}

  std::size_t size() const noexcept { return mask_ + 1; }

  // Bytes written by the kernel and not yet consumed.
  std::uint64_t readable() const noexcept { return load_head() - load_tail(); }
  // Bytes from the cursor to the head: what peek() has not passed yet (less
  // than readable() while records taken are not committed).
  std::uint64_t unread() const noexcept { return load_head() - pos_; }

  // Hands every record between the tail and the head (read once, so the drain
  // is bounded even while the kernel keeps writing) to the visitor:
  //   Action visitor.on_sample(const RawSample&)   // data valid until it returns
  //   void   visitor.on_lost(std::uint64_t count)
  // The tail is published once, when the drain ends, including when the
  // visitor stops it or throws: a record handed out counts as consumed.
  // scratch must hold min(size(), 65536) bytes; it receives wrapped records.
  template <class Visitor>
  DrainResult drain(Visitor&& visitor, std::span<std::byte> scratch);

  // The same in steps, for callers that look before they take (a merge):
  //   while (auto rec = ring.peek(scratch)) { use(*rec); ring.advance(); }
  //   ring.commit();
  // peek() returns the record at the cursor, skipping types that carry no data
  // for a BPF output event; its view is valid until the next peek() or
  // advance(). nullopt when the ring is empty or corrupt() is set.
  std::optional<RingRecord> peek(std::span<std::byte> scratch) noexcept {
    return peek_until(load_head(), scratch);
  }
  // Past the record peek() returned.
  void advance() noexcept { pos_ = next_; }
  // Publishes the cursor as the tail: the kernel may reuse the space before it.
  void commit() noexcept { store_tail(pos_); }
  // What peek() found that no kernel writes, or nullptr.
  const char* corrupt() const noexcept { return corrupt_; }
  // After corrupt(): skips everything up to the head and commits, so the ring
  // is usable again. Returns the bytes skipped.
  std::uint64_t skip_to_head() noexcept {
    const std::uint64_t skipped = load_head() - pos_;
    pos_ += skipped;
    commit();
    return skipped;
  }

 private:
  // Pairs with the kernel's store of data_head after the record bytes
  // (perf_output_put_handle, kernel/events/ring_buffer.c, 6.x): the bytes below
  // head are visible after this load.
  std::uint64_t load_head() const noexcept {
    return std::atomic_ref<__u64>(control_->data_head).load(std::memory_order_acquire);
  }
  // Only this reader writes data_tail.
  std::uint64_t load_tail() const noexcept {
    return std::atomic_ref<__u64>(control_->data_tail).load(std::memory_order_relaxed);
  }
  // Pairs with the kernel's read of data_tail before it overwrites space
  // (perf_output_begin): our reads of the records happen before it reuses them.
  void store_tail(std::uint64_t tail) noexcept {
    std::atomic_ref<__u64>(control_->data_tail).store(tail, std::memory_order_release);
  }

  std::optional<RingRecord> peek_until(std::uint64_t head, std::span<std::byte> scratch) noexcept {
    RingRecord rec;
    if (!read_record(head, scratch, rec)) return std::nullopt;
    return rec;
  }
  // peek_until() into `out`: false when there is no record (or corrupt_ is
  // set). Inlined into drain(), where a record then costs no copy.
  [[gnu::always_inline]] bool read_record(std::uint64_t head, std::span<std::byte> scratch,
                                          RingRecord& out) noexcept;
  bool fail(const char* why) noexcept {
    corrupt_ = why;
    return false;
  }

  // The record at pos as one contiguous span: in place, or copied into scratch
  // when it wraps. Empty when scratch is too small.
  std::span<const std::byte> record_at(std::uint64_t pos, std::size_t size,
                                       std::span<std::byte> scratch) const noexcept {
    const std::size_t offset = pos & mask_;
    if (offset + size <= size_t(mask_) + 1) return {data_ + offset, size};
    if (scratch.size() < size) return {};
    const std::size_t first = mask_ + 1 - offset;
    std::memcpy(scratch.data(), data_ + offset, first);
    std::memcpy(scratch.data() + first, data_, size - first);
    return {scratch.data(), size};
  }

  perf_event_mmap_page* control_;
  std::byte* data_;
  std::uint64_t mask_;
  bool has_time_;
  std::uint64_t pos_;   // the cursor: where the next peek() looks
  std::uint64_t next_ = pos_;  // past the record the last peek() returned
  const char* corrupt_ = nullptr;
};

inline bool RingParser::read_record(std::uint64_t head, std::span<std::byte> scratch,
                                    RingRecord& out) noexcept {
  corrupt_ = nullptr;
  next_ = pos_;  // advance() without a record stays put
  if (head - pos_ > size()) return fail("head is more than the ring size ahead of tail");
  if ((head | pos_) % 8 != 0) return fail("head or tail is not 8-byte aligned");
  for (std::uint64_t pos = pos_; pos != head; pos = pos_) {
    // Records are 8-byte aligned and at least 8 bytes, so a header never wraps.
    perf_event_header header;
    std::memcpy(&header, data_ + (pos & mask_), sizeof header);
    if (header.size < sizeof header) return fail("record size smaller than its header");
    if (header.size % 8 != 0) return fail("record size not a multiple of 8");
    if (header.size > head - pos) return fail("record runs past the head");

    const auto rec = record_at(pos, header.size, scratch);
    if (rec.empty()) return fail("wrapped record larger than the scratch buffer");
    next_ = pos + header.size;
    switch (header.type) {
      case PERF_RECORD_SAMPLE:
        if (!parse_sample_record(rec, has_time_, out.sample)) return fail("sample fields larger than the record");
        out.kind = RingRecord::Kind::sample;
        return true;
      case PERF_RECORD_LOST:
        // struct { header; u64 id; u64 lost; }
        if (rec.size() < sizeof header + 2 * sizeof out.lost) return fail("lost record too short");
        std::memcpy(&out.lost, rec.data() + sizeof header + sizeof out.lost, sizeof out.lost);
        out.kind = RingRecord::Kind::lost;
        return true;
      default:  // nothing else carries data for a BPF output event
        pos_ = next_;
    }
  }
  return false;
}

template <class Visitor>
[[gnu::hot]] DrainResult RingParser::drain(Visitor&& visitor, std::span<std::byte> scratch) {
  DrainResult result;
  const std::uint64_t start = pos_;
  const std::uint64_t head = load_head();
  // Publishes the tail on every way out, exceptions included.
  struct TailCommit {
    RingParser& ring;
    ~TailCommit() { ring.commit(); }
  } commit{*this};

  // After a record the checks of a peek at the head would pass (the cursor
  // stays aligned, below the head): an empty ring is looked at once.
  RingRecord rec;
  for (bool first = true; first || pos_ != head; first = false) {
    if (!read_record(head, scratch, rec)) break;
    advance();  // before the visitor: a record whose handler throws counts as consumed
    result.bytes = pos_ - start;
    if (rec.kind == RingRecord::Kind::lost) {
      result.lost += rec.lost;
      visitor.on_lost(rec.lost);
      continue;
    }
    ++result.records;
    if (visitor.on_sample(rec.sample) == Action::stop) {
      result.stopped = true;
      return result;
    }
  }
  if (corrupt_) {
    result.corrupt = corrupt_;
    pos_ = head;  // skip what cannot be parsed, so the next drain works
  }
  result.bytes = pos_ - start;
  return result;
}

}  // namespace perfbuf
