// An in-memory BPF ring buffer laid out like the real mmap: a consumer
// position, a producer position, and a data area mapped twice back to back
// (two mappings of one memfd, as the kernel maps its pages twice). Records are
// reserved, written and submitted or discarded the way the kernel does it.
#pragma once

#include <perfbuf/ringbuf.h>

#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <span>
#include <stdexcept>

namespace perfbuf::testing {

class FakeRingbuf {
 public:
  // size: a power of two, a multiple of the page size. start: the first position.
  explicit FakeRingbuf(std::size_t size, std::uint64_t start = 0) : size_(size) {
    const int fd = memfd_create("fake_ringbuf", MFD_CLOEXEC);
    if (fd < 0 || ftruncate(fd, static_cast<off_t>(size)) != 0)
      throw std::runtime_error("memfd for the fake ring buffer");
    void* area = mmap(nullptr, 2 * size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (area == MAP_FAILED) throw std::runtime_error("mmap");
    data_ = static_cast<std::byte*>(area);
    for (std::size_t half : {std::size_t{0}, size})
      if (mmap(data_ + half, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd, 0) ==
          MAP_FAILED)
        throw std::runtime_error("mmap twice");
    close(fd);
    consumer_ = producer_ = start;
  }
  ~FakeRingbuf() { munmap(data_, 2 * size_); }
  FakeRingbuf(const FakeRingbuf&) = delete;
  FakeRingbuf& operator=(const FakeRingbuf&) = delete;

  RingbufCursor cursor() { return RingbufCursor(&consumer_, &producer_, data_, size_); }
  std::uint64_t consumer() const { return consumer_; }
  std::uint64_t producer() const { return producer_; }
  std::byte* data() { return data_; }
  std::size_t size() const { return size_; }

  // Reserves room for `len` payload bytes (header BUSY) and returns its position.
  std::uint64_t reserve(std::uint32_t len) {
    const std::uint64_t pos = producer_;
    const std::uint64_t bytes = (len + RingbufCursor::kHeaderBytes + 7) & ~std::uint64_t{7};
    if (pos + bytes - consumer_ > size_) throw std::runtime_error("fake ring buffer full");
    put_len(pos, len | RingbufCursor::kBusyBit);
    producer_ = pos + bytes;
    return pos;
  }
  void write(std::uint64_t pos, std::span<const std::byte> payload) {
    // Through the first mapping only: the second must show the same bytes.
    for (std::size_t i = 0; i < payload.size(); ++i)
      data_[(pos + RingbufCursor::kHeaderBytes + i) & (size_ - 1)] = payload[i];
  }
  void submit(std::uint64_t pos) { put_len(pos, get_len(pos) & ~RingbufCursor::kBusyBit); }
  void discard(std::uint64_t pos) {
    put_len(pos, (get_len(pos) & ~RingbufCursor::kBusyBit) | RingbufCursor::kDiscardBit);
  }
  // reserve + write + submit.
  std::uint64_t output(std::span<const std::byte> payload) {
    const std::uint64_t pos = reserve(static_cast<std::uint32_t>(payload.size()));
    write(pos, payload);
    submit(pos);
    return pos;
  }
  // For corrupt input: any header, any producer position.
  void put_len(std::uint64_t pos, std::uint32_t len) {
    std::memcpy(data_ + (pos & (size_ - 1)), &len, sizeof len);
  }
  void set_producer(std::uint64_t pos) { producer_ = pos; }
  void set_consumer(std::uint64_t pos) { consumer_ = pos; }

 private:
  std::uint32_t get_len(std::uint64_t pos) const {
    std::uint32_t len;
    std::memcpy(&len, data_ + (pos & (size_ - 1)), sizeof len);
    return len;
  }

  std::size_t size_;
  std::byte* data_ = nullptr;
  std::uint64_t consumer_ = 0;
  std::uint64_t producer_ = 0;
};

}  // namespace perfbuf::testing
