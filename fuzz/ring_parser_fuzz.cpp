// libFuzzer target: arbitrary control-page positions and ring bytes into the
// ring parser. Whatever the input, a drain must end, read only inside the ring
// (or the scratch copy), and leave the ring usable.
//
// Input layout: u64 tail | u32 head - tail | u8 flags | ring bytes.
// The ring is the largest power-of-two prefix of the remaining bytes (at most
// 64 KiB), in a heap block of exactly that size so that ASan sees any overread.
// flags bit 0: records carry PERF_SAMPLE_TIME; bits 1-7: stop after that many
// samples (0: never).
#include <perfbuf/ring.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

namespace {

struct Checker {
  const std::byte* ring;
  std::size_t ring_size;
  const std::byte* scratch;
  std::size_t scratch_size;
  unsigned stop_after;
  unsigned samples = 0;
  std::uint64_t sum = 0;

  bool inside(const std::byte* p, std::size_t n, const std::byte* base, std::size_t size) const {
    return p >= base && p + n <= base + size;
  }
  perfbuf::Action on_sample(const perfbuf::RawSample& s) {
    if (!s.data.empty() && !inside(s.data.data(), s.data.size(), ring, ring_size) &&
        !inside(s.data.data(), s.data.size(), scratch, scratch_size))
      std::abort();  // a view outside the ring and the scratch buffer
    for (std::byte b : s.data) sum += std::to_integer<unsigned>(b);  // touch every byte
    ++samples;
    return stop_after && samples >= stop_after ? perfbuf::Action::stop : perfbuf::Action::next;
  }
  void on_lost(std::uint64_t n) { sum += n; }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  constexpr std::size_t kHeader = 8 + 4 + 1;
  if (size < kHeader + 8) return 0;
  std::uint64_t tail;
  std::uint32_t delta;
  std::memcpy(&tail, data, 8);
  std::memcpy(&delta, data + 8, 4);
  const std::uint8_t flags = data[12];
  std::size_t ring_size = 8;
  while (ring_size * 2 <= size - kHeader && ring_size * 2 <= 65536) ring_size *= 2;

  auto control = std::make_unique<perf_event_mmap_page>();
  control->data_tail = tail;
  control->data_head = tail + delta;
  auto ring = std::make_unique<std::byte[]>(ring_size);
  std::memcpy(ring.get(), data + kHeader, ring_size);
  const std::size_t scratch_size = ring_size;
  auto scratch = std::make_unique<std::byte[]>(scratch_size);

  perfbuf::RingParser parser(control.get(), std::span(ring.get(), ring_size), flags & 1);
  Checker checker{ring.get(), ring_size, scratch.get(), scratch_size,
                  static_cast<unsigned>(flags >> 1)};
  // Bounded: every drain either consumes to the head it read or stops early.
  for (int drains = 0; drains < 1 + 65536 / 8 && parser.readable() != 0; ++drains) {
    const perfbuf::DrainResult r = parser.drain(checker, std::span(scratch.get(), scratch_size));
    if (!r.stopped && control->data_tail != control->data_head) std::abort();
    if (r.stopped && r.records == 0) std::abort();
  }
  if (parser.readable() != 0) std::abort();  // did not finish
  return 0;
}
