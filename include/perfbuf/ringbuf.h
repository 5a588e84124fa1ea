// The BPF ring buffer cursor: no system calls, only the two positions and the
// data area of a BPF_MAP_TYPE_RINGBUF as user space maps it.
//
// One ring is shared by every CPU. The kernel reserves records at
// producer_pos, in order, each behind an 8-byte header {u32 len; u32 pg_off}
// whose len carries two flags: BUSY while the program has reserved but not yet
// submitted it, DISCARD when it threw it away. The reader consumes from
// consumer_pos. Both are free-running byte positions; position mod the data
// size is the offset. The data area is mapped twice back to back, so a record
// that runs past the end of the ring is still contiguous: nothing is copied.
//
// Stepwise use (a merge looks before it takes):
//   while (auto rec = cursor.peek()) { use(*rec); cursor.advance(); }
//   cursor.commit();
// or drain(visitor) for all of it in one go.
#pragma once

#include <linux/bpf.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>

#include <perfbuf/ring.h>

namespace perfbuf {

class RingbufCursor {
 public:
  static constexpr std::uint32_t kHeaderBytes = BPF_RINGBUF_HDR_SZ;
  static constexpr std::uint32_t kBusyBit = BPF_RINGBUF_BUSY_BIT;
  static constexpr std::uint32_t kDiscardBit = BPF_RINGBUF_DISCARD_BIT;

  // consumer_pos: the first word of the consumer page (read-write mapping).
  // producer_pos: the first word of the producer page (read-only mapping).
  // data: the data area, mapped twice: 2 * size bytes, size a power of two.
  RingbufCursor(std::uint64_t* consumer_pos, const std::uint64_t* producer_pos,
                const std::byte* data, std::size_t size) noexcept
      : consumer_pos_(consumer_pos), producer_pos_(producer_pos), data_(data), mask_(size - 1),
        pos_(load_consumer()) {}

  std::size_t size() const noexcept { return mask_ + 1; }

  // Bytes the kernel has reserved past the consumer position (some may be BUSY).
  std::uint64_t readable() const noexcept { return load_producer() - load_consumer(); }

  // The next submitted record's payload, skipping discarded ones; nullopt when
  // there is none yet (caught up, or the next one is still BUSY: records are
  // handed out in reservation order, so a later submitted one waits too).
  // The view stays valid until commit(). Sets corrupt() when the ring holds
  // what no kernel writes; the cursor then stays where it is.
  std::optional<std::span<const std::byte>> peek() noexcept { return peek_until(load_producer()); }
  // Past the record peek() returned.
  void advance() noexcept { pos_ = next_; }
  // Publishes the position reached, so the kernel may reuse that space.
  void commit() noexcept;

  // What peek() found wrong with the ring, or nullptr.
  const char* corrupt() const noexcept { return corrupt_; }

  // Hands every submitted record up to the producer position read at the start
  // (at most `budget` of them) to visitor.on_sample(const RawSample&), which
  // returns Action; commits once at the end, also when the visitor throws.
  template <class Visitor>
  DrainResult drain(Visitor&& visitor, std::uint64_t budget = UINT64_MAX);

 private:
  // Pairs with the kernel's release store of producer_pos after it reserved
  // space (__bpf_ringbuf_reserve): the headers below it are readable.
  std::uint64_t load_producer() const noexcept {
    return std::atomic_ref<const std::uint64_t>(*producer_pos_).load(std::memory_order_acquire);
  }
  std::uint64_t load_consumer() const noexcept {
    return std::atomic_ref<std::uint64_t>(*consumer_pos_).load(std::memory_order_relaxed);
  }
  // Pairs with the kernel's xchg of the header in bpf_ringbuf_commit: once BUSY
  // is clear, the payload written before it is visible.
  std::uint32_t load_len(std::uint64_t pos) const noexcept {
    const auto* len = reinterpret_cast<const std::uint32_t*>(data_ + (pos & mask_));
    return std::atomic_ref<const std::uint32_t>(*len).load(std::memory_order_acquire);
  }
  std::optional<std::span<const std::byte>> peek_until(std::uint64_t producer) noexcept;
  static std::uint64_t record_bytes(std::uint32_t len) noexcept {
    return (std::uint64_t{len & ~(kBusyBit | kDiscardBit)} + kHeaderBytes + 7) & ~std::uint64_t{7};
  }

  std::uint64_t* consumer_pos_;
  const std::uint64_t* producer_pos_;
  const std::byte* data_;
  std::uint64_t mask_;
  std::uint64_t pos_;   // where the next peek() looks
  std::uint64_t next_ = pos_;  // past the record the last peek() returned
  const char* corrupt_ = nullptr;
};

[[gnu::hot]] inline std::optional<std::span<const std::byte>> RingbufCursor::peek_until(
    std::uint64_t producer) noexcept {
  corrupt_ = nullptr;
  next_ = pos_;  // advance() without a record stays put
  while (pos_ != producer) {
    if (producer - pos_ > size() || pos_ % 8 != 0) {
      corrupt_ = producer - pos_ > size() ? "producer is more than the ring size ahead of consumer"
                                          : "consumer position is not 8-byte aligned";
      return std::nullopt;
    }
    const std::uint32_t len = load_len(pos_);
    if (len & kBusyBit) return std::nullopt;  // reserved, not yet submitted
    const std::uint64_t bytes = record_bytes(len);
    if (bytes > producer - pos_) {
      corrupt_ = "record runs past the producer position";
      return std::nullopt;
    }
    if (len & kDiscardBit) {  // the program threw it away: step over it
      pos_ += bytes;
      next_ = pos_;
      continue;
    }
    next_ = pos_ + bytes;
    // Contiguous even across the end of the ring: the data area is mapped twice.
    return std::span<const std::byte>(data_ + (pos_ & mask_) + kHeaderBytes,
                                      len & ~(kBusyBit | kDiscardBit));
  }
  return std::nullopt;
}

inline void RingbufCursor::commit() noexcept {
  std::atomic_ref<std::uint64_t>(*consumer_pos_).store(pos_, std::memory_order_release);
  // The kernel wakes the reader only when a record is submitted at the consumer
  // position (bpf_ringbuf_commit reads consumer_pos after its xchg). Without a
  // full barrier here our later load of producer_pos could be ordered before
  // this store: we would see no new record while the kernel saw an old
  // consumer position and skipped the wakeup, and the record would wait.
  std::atomic_thread_fence(std::memory_order_seq_cst);
}

template <class Visitor>
[[gnu::hot]] DrainResult RingbufCursor::drain(Visitor&& visitor, std::uint64_t budget) {
  DrainResult result;
  struct Commit {
    RingbufCursor& cursor;
    ~Commit() { cursor.commit(); }
  } commit{*this};
  const std::uint64_t start = pos_;
  const std::uint64_t end = load_producer();  // read once: the drain ends while the kernel writes on
  while (result.records < budget) {
    const auto rec = peek_until(end);
    if (!rec) {
      result.corrupt = corrupt_;  // what this drain found, not what an earlier peek() did
      break;
    }
    advance();  // before the visitor: a record whose handler throws counts as consumed
    ++result.records;
    if (visitor.on_sample(RawSample{0, *rec}) == Action::stop) {
      result.stopped = true;
      break;
    }
  }
  if (result.corrupt) {  // skip what cannot be parsed, up to what this drain saw
    pos_ = next_ = end;  // a later advance() must not step back to where it stopped
  }
  result.bytes = pos_ - start;
  return result;
}

}  // namespace perfbuf
