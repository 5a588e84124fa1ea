// The checks behind backward_check.h. Every loop is bounded by the input's size.
#include "backward_check.h"

#include <perfbuf/backward_ring.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <vector>

#include "fake_backward_ring.h"
#include "flight_snapshot.h"
#include "fuzz_input.h"

namespace perfbuf::testing {
namespace {

constexpr std::size_t kMaxOps = 4096;

// What the model knows of each record written, newest last.
struct Written {
  bool lost = false;
  std::size_t size = 0;      // bytes in the ring
  std::uint64_t count = 0;   // lost: how many
  std::vector<std::byte> payload;
  std::uint64_t time_ns = 0;
};

std::vector<std::byte> payload_of(std::size_t n, std::uint8_t seed) {
  std::vector<std::byte> p(n);
  for (std::size_t i = 0; i < n; ++i) p[i] = std::byte(static_cast<std::uint8_t>(seed * 31 + i));
  return p;
}

std::string snapshot_and_compare(FakeBackwardRing& ring, const std::vector<Written>& written,
                                 std::size_t in_flight, BackwardCheckStats* stats) {
  std::vector<std::byte> copy(ring.size());
  const std::uint64_t head = copy_backward_ring(ring.control(), ring.data(), copy);
  if (head != ring.head()) return "copy_backward_ring returned another head";
  const std::size_t limit = ring.size() - in_flight;
  std::vector<FlightRecord> got;
  const FlightCpu cpu = detail::collect_ring(copy, limit, ring.has_time(), 3, got);

  // The model: the newest records whose sizes fit in `limit`.
  std::size_t bytes = 0, whole = 0;
  std::uint64_t lost = 0;
  for (auto it = written.rbegin(); it != written.rend() && bytes + it->size <= limit; ++it) {
    bytes += it->size;
    ++whole;
    if (it->lost) lost += it->count;
  }
  const bool older = whole < written.size();
  const bool unwritten = !older && bytes < ring.size();
  const bool partial = older && bytes + 8 <= ring.size();
  if (stats) {
    ++stats->snapshots;
    stats->partial_dropped += partial;
    stats->unwritten_reached += unwritten;
    stats->exactly_full += bytes == ring.size();
    stats->untrusted_tail += in_flight != 0;
  }
  if (cpu.corrupt) return format("walk found corruption in a ring the kernel wrote: %s", cpu.corrupt);
  if (cpu.lost != lost)
    return format("lost %llu, expected %llu", (unsigned long long)cpu.lost, (unsigned long long)lost);
  if (cpu.complete != unwritten) return format("complete = %d, expected %d", cpu.complete, unwritten);
  if (cpu.dropped_partial != partial)
    return format("dropped_partial = %d, expected %d", cpu.dropped_partial, partial);
  // The samples among the newest `whole` records, oldest first.
  std::vector<const Written*> expected;
  for (std::size_t i = written.size() - whole; i < written.size(); ++i)
    if (!written[i].lost) expected.push_back(&written[i]);
  if (got.size() != expected.size() || cpu.records != got.size())
    return format("%zu records (%llu counted), expected %zu", got.size(),
                  (unsigned long long)cpu.records, expected.size());
  for (std::size_t i = 0; i < got.size(); ++i) {
    const Written& w = *expected[i];
    const FlightRecord& r = got[i];
    if (r.cpu != 3) return "record has the wrong cpu";
    if (r.time_ns != (ring.has_time() ? w.time_ns : 0))
      return format("record %zu: time %llu, expected %llu", i, (unsigned long long)r.time_ns,
                    (unsigned long long)w.time_ns);
    if (r.data.size() < w.payload.size() || r.data.size() > w.payload.size() + 7 ||
        !std::equal(w.payload.begin(), w.payload.end(), r.data.begin()))
      return format("record %zu: payload differs (%zu bytes, expected %zu)", i, r.data.size(),
                    w.payload.size());
    if (stats) {
      ++stats->records;
      stats->timed_records += ring.has_time();
    }
  }
  return "";
}

std::string check_content(Input in, BackwardCheckStats* stats) {
  std::uint8_t ring_choice = 0, options = 0;
  std::uint64_t start = 0;
  in.read(ring_choice);
  in.read(options);
  in.read(start);
  start &= ~std::uint64_t(7);
  const std::size_t size = std::size_t(64) << (ring_choice % 9);
  FakeBackwardRing ring(size, options & 1, start);
  std::vector<Written> written;
  if (stats) ++stats->content_inputs;
  bool crossed = false;
  std::uint8_t op;
  for (std::size_t n = 0; n < kMaxOps && in.read(op); ++n) {
    const std::uint64_t before = ring.head();
    switch (op % 3) {
      case 0: {
        std::uint16_t bytes = 0;
        std::uint8_t seed = 0;
        in.read(bytes);
        in.read(seed);
        Written w;
        w.payload = payload_of(bytes % 1024, seed);
        w.time_ns = 1000 + n * 7 + seed;
        if (ring.sample_size(w.payload.size()) > size) break;  // never fits: no kernel writes it
        w.size = ring.add_sample(w.payload, w.time_ns);
        const std::size_t offset = ring.head() & (size - 1);
        if (stats && offset + w.size > size) ++stats->records_across_end;
        written.push_back(std::move(w));
        break;
      }
      case 1: {
        std::uint8_t count = 0;
        in.read(count);
        if (24 > size) break;
        ring.add_lost(count + 1u);
        if (stats) ++stats->lost_records;
        written.push_back({true, 24, count + 1u, {}, 0});
        break;
      }
      case 2: {
        std::uint16_t in_flight = 0;
        in.read(in_flight);
        const std::string failure =
            snapshot_and_compare(ring, written, (in_flight % size) & ~std::size_t(7), stats);
        if (!failure.empty()) return failure;
        break;
      }
    }
    if (ring.head() > before) crossed = true;  // moved down past 0
  }
  if (stats && crossed) ++stats->crossed_2_64;
  return snapshot_and_compare(ring, written, 0, stats);
}

std::string check_raw(Input in, BackwardCheckStats* stats) {
  std::uint64_t head = 0;
  std::uint32_t limit = 0;
  std::uint8_t options = 0;
  in.read(head);
  in.read(limit);
  in.read(options);
  std::size_t size = 65536;
  while (size > 8 && size > in.rest().size()) size /= 2;
  if (in.rest().size() < size) return "";  // too short to hold a ring
  if (stats) ++stats->raw_inputs;
  FakeBackwardRing ring(size, options & 1, head);
  std::memcpy(ring.data().data(), in.rest().data(), size);
  std::vector<std::byte> copy(size);
  if (copy_backward_ring(ring.control(), {}, {}) != head)  // nothing to copy: no access
    return "copy_backward_ring of an empty area did not return the head";
  copy_backward_ring(ring.control(), ring.data(), copy);
  const std::size_t trusted = limit % (size + 1);
  const std::byte* const begin = copy.data();
  const std::byte* const end = copy.data() + trusted;
  struct Visitor {
    const std::byte* begin;
    const std::byte* end;
    std::uint64_t samples = 0, lost = 0;
    bool outside = false;
    void on_sample(const RawSample& s) {
      ++samples;
      if (s.data.data() < begin || s.data.data() + s.data.size() > end) outside = true;
    }
    void on_lost(std::uint64_t n) { lost += n; }
  } visitor{begin, end};
  const BackwardWalk walk = walk_backward_copy(copy, trusted, options & 1, visitor);
  if (visitor.outside) return "a sample's payload lies outside the trusted bytes";
  if (walk.bytes > trusted) return "the walk went past the trusted bytes";
  if (walk.records != visitor.samples) return "walk.records is not what was handed out";
  if (walk.lost != visitor.lost) return "walk.lost is not what was handed out";
  if (walk.bytes % 8 != 0) return "the walk ended off the 8-byte grid";
  if (stats && walk.corrupt) stats->corrupt_reasons.insert(walk.corrupt);
  return "";
}

}  // namespace

std::string check_backward_input(std::span<const std::uint8_t> input, BackwardCheckStats* stats) {
  Input in(input);
  std::uint8_t mode = 0;
  if (!in.read(mode)) return "";
  return mode % 2 == 0 ? check_content(in, stats) : check_raw(in, stats);
}

}  // namespace perfbuf::testing
