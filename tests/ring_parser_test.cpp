// The ring parser on in-memory rings: no kernel involved.
#include <gtest/gtest.h>

#include <array>
#include <limits>
#include <stdexcept>

#include "fake_ring.h"
#include "sys.h"

namespace perfbuf {
namespace {

using testing::bytes_of;
using testing::FakeRing;

// Records what the parser hands out; optionally stops or throws at record n.
struct Collector {
  std::vector<std::vector<std::byte>> samples;
  std::vector<std::uint64_t> times;
  std::vector<const std::byte*> pointers;
  std::uint64_t lost = 0;
  std::size_t stop_at = SIZE_MAX;
  std::size_t throw_at = SIZE_MAX;

  Action on_sample(const RawSample& s) {
    samples.emplace_back(s.data.begin(), s.data.end());
    times.push_back(s.time_ns);
    pointers.push_back(s.data.data());
    if (samples.size() == throw_at) throw std::runtime_error("handler failed");
    return samples.size() == stop_at ? Action::stop : Action::next;
  }
  void on_lost(std::uint64_t n) { lost += n; }
};

std::array<std::byte, 65536> scratch;

std::uint64_t value_of(const std::vector<std::byte>& payload) {
  std::uint64_t v = 0;
  std::memcpy(&v, payload.data(), std::min(payload.size(), sizeof v));
  return v;
}

TEST(RingParser, EmptyRingYieldsNothing) {
  FakeRing ring(4096);
  Collector c;
  const DrainResult r = ring.parser().drain(c, scratch);
  EXPECT_EQ(r.records, 0u);
  EXPECT_EQ(r.corrupt, nullptr);
  EXPECT_TRUE(c.samples.empty());
  EXPECT_EQ(ring.tail(), ring.head());
}

TEST(RingParser, OneRecordInPlaceWithoutCopy) {
  FakeRing ring(4096);
  const std::uint64_t v = 0x1122334455667788;
  ring.add_sample(bytes_of(v));
  Collector c;
  const DrainResult r = ring.parser().drain(c, scratch);
  ASSERT_EQ(r.records, 1u);
  // 8 header + 4 size + 8 payload = 20, padded to 24; raw part is 12 bytes.
  EXPECT_EQ(r.bytes, 24u);
  ASSERT_EQ(c.samples[0].size(), 12u);
  EXPECT_EQ(value_of(c.samples[0]), v);
  // Zero copy: the payload points into the ring itself.
  EXPECT_GE(c.pointers[0], ring.data().data());
  EXPECT_LT(c.pointers[0], ring.data().data() + ring.data().size());
  EXPECT_EQ(ring.tail(), ring.head());
}

TEST(RingParser, ManyRecordsInOrderWithTimestamps) {
  FakeRing ring(4096, 0, /*has_time=*/true);
  for (std::uint64_t i = 0; i < 100; ++i) ring.add_sample(bytes_of(i), 1000 + i);
  Collector c;
  const DrainResult r = ring.parser().drain(c, scratch);
  ASSERT_EQ(r.records, 100u);
  for (std::uint64_t i = 0; i < 100; ++i) {
    EXPECT_EQ(value_of(c.samples[i]), i);
    EXPECT_EQ(c.times[i], 1000 + i);
  }
}

TEST(RingParser, RecordWrappingTheEndIsDeliveredWhole) {
  // Start 16 bytes before the end: a 48-byte record (8+4+36) wraps.
  FakeRing ring(256, 256 - 16);
  std::array<std::uint8_t, 36> payload;
  for (std::size_t i = 0; i < payload.size(); ++i) payload[i] = static_cast<std::uint8_t>(i + 1);
  ring.add_sample(std::as_bytes(std::span(payload)));
  Collector c;
  const DrainResult r = ring.parser().drain(c, scratch);
  ASSERT_EQ(r.records, 1u);
  ASSERT_EQ(c.samples[0].size(), 36u);
  for (std::size_t i = 0; i < payload.size(); ++i)
    EXPECT_EQ(std::to_integer<std::uint8_t>(c.samples[0][i]), i + 1) << "byte " << i;
  EXPECT_EQ(ring.tail(), ring.head());
}

TEST(RingParser, LostRecordIsReported) {
  FakeRing ring(4096);
  ring.add_sample(bytes_of(std::uint64_t{1}));
  ring.add_lost(42);
  ring.add_sample(bytes_of(std::uint64_t{2}));
  Collector c;
  const DrainResult r = ring.parser().drain(c, scratch);
  EXPECT_EQ(r.records, 2u);
  EXPECT_EQ(r.lost, 42u);
  EXPECT_EQ(c.lost, 42u);
}

TEST(RingParser, PositionsWrapAroundTwoToThe64) {
  const std::uint64_t start = std::numeric_limits<std::uint64_t>::max() - 63;  // 8-aligned
  FakeRing ring(128, start);
  for (std::uint64_t i = 0; i < 3; ++i) ring.add_sample(bytes_of(i));  // 3 x 24 bytes
  ASSERT_LT(ring.head(), start);  // the head wrapped past zero
  Collector c;
  const DrainResult r = ring.parser().drain(c, scratch);
  ASSERT_EQ(r.records, 3u);
  for (std::uint64_t i = 0; i < 3; ++i) EXPECT_EQ(value_of(c.samples[i]), i);
  EXPECT_EQ(ring.tail(), ring.head());
}

TEST(RingParser, ReadsOnlyUpToTheHeadSeenAtTheStart) {
  FakeRing ring(4096);
  ring.add_sample(bytes_of(std::uint64_t{1}));
  struct Producer : Collector {
    FakeRing* ring;
    Action on_sample(const RawSample& s) {
      // The kernel keeps writing (a few records: a drain that chased the head would end too).
      if (samples.size() < 3) ring->add_sample(bytes_of(std::uint64_t{99}));
      return Collector::on_sample(s);
    }
  } p;
  p.ring = &ring;
  EXPECT_EQ(ring.parser().drain(p, scratch).records, 1u);
  EXPECT_EQ(ring.parser().readable(), 24u);  // the new record waits for the next drain
}

TEST(RingParser, StopLeavesTheRestForTheNextDrain) {
  FakeRing ring(4096);
  for (std::uint64_t i = 0; i < 5; ++i) ring.add_sample(bytes_of(i));
  Collector c;
  c.stop_at = 2;
  const DrainResult r = ring.parser().drain(c, scratch);
  EXPECT_TRUE(r.stopped);
  EXPECT_EQ(r.records, 2u);
  EXPECT_EQ(ring.parser().readable(), 3 * 24u);
  Collector rest;
  ASSERT_EQ(ring.parser().drain(rest, scratch).records, 3u);
  EXPECT_EQ(value_of(rest.samples[0]), 2u);
}

TEST(RingParser, ThrowingHandlerConsumesItsRecordAndKeepsTheRing) {
  FakeRing ring(4096);
  for (std::uint64_t i = 0; i < 4; ++i) ring.add_sample(bytes_of(i));
  Collector c;
  c.throw_at = 2;
  EXPECT_THROW(ring.parser().drain(c, scratch), std::runtime_error);
  Collector rest;
  const DrainResult r = ring.parser().drain(rest, scratch);
  ASSERT_EQ(r.records, 2u);
  EXPECT_EQ(value_of(rest.samples[0]), 2u);
}

// Corrupt input: an error naming the problem, the ring skipped to the head, no hang.
struct CorruptCase {
  const char* name;
  void (*fill)(FakeRing&);
};

void expect_rejected(FakeRing& ring, std::uint64_t good_before, bool recovers = true) {
  Collector c;
  const DrainResult r = ring.parser().drain(c, scratch);
  EXPECT_NE(r.corrupt, nullptr);
  EXPECT_EQ(r.records, good_before);
  EXPECT_EQ(ring.tail(), ring.head());
  if (!recovers) return;
  // The ring works again afterwards.
  ring.add_sample(bytes_of(std::uint64_t{7}));
  Collector after;
  const DrainResult again = ring.parser().drain(after, scratch);
  EXPECT_EQ(again.corrupt, nullptr);
  ASSERT_EQ(again.records, 1u);
  EXPECT_EQ(value_of(after.samples[0]), 7u);
}

TEST(RingParser, RejectsZeroSizedRecord) {
  FakeRing ring(4096);
  ring.add_sample(bytes_of(std::uint64_t{1}));
  const perf_event_header h{PERF_RECORD_SAMPLE, 0, 0};
  ring.append(bytes_of(h));
  expect_rejected(ring, 1);
}

TEST(RingParser, RejectsSizeNotMultipleOfEight) {
  FakeRing ring(4096);
  std::array<std::byte, 16> rec{};
  const perf_event_header h{PERF_RECORD_SAMPLE, 0, 12};
  std::memcpy(rec.data(), &h, sizeof h);
  ring.append(rec);
  expect_rejected(ring, 0);
}

TEST(RingParser, RejectsRecordRunningPastTheHead) {
  FakeRing ring(4096);
  std::array<std::byte, 16> rec{};
  const perf_event_header h{PERF_RECORD_SAMPLE, 0, 64};
  std::memcpy(rec.data(), &h, sizeof h);
  ring.append(rec);
  expect_rejected(ring, 0);
}

TEST(RingParser, RejectsHeadFurtherAheadThanTheRingSize) {
  FakeRing ring(256);
  ring.control().data_head = 4096;
  expect_rejected(ring, 0);
}

TEST(RingParser, RejectsHeadBehindTail) {
  FakeRing ring(256, 512);
  ring.control().data_head = 256;
  expect_rejected(ring, 0);
}

TEST(RingParser, RejectsMisalignedPositions) {
  FakeRing ring(256);
  ring.control().data_head = 12;
  // Skipped to the (misaligned) head; every later drain rejects it again, none hangs.
  expect_rejected(ring, 0, /*recovers=*/false);
  expect_rejected(ring, 0, /*recovers=*/false);
}

TEST(RingParser, RejectsRawSizeLargerThanTheRecord) {
  FakeRing ring(4096);
  struct {
    perf_event_header h;
    std::uint32_t raw_size;
    std::uint32_t payload;
  } rec{{PERF_RECORD_SAMPLE, 0, 16}, 1000, 0};
  ring.append(bytes_of(rec));
  expect_rejected(ring, 0);
}

TEST(RingParser, RejectsTruncatedLostRecord) {
  FakeRing ring(4096);
  struct {
    perf_event_header h;
    std::uint64_t id;
  } rec{{PERF_RECORD_LOST, 0, 16}, 0};
  ring.append(bytes_of(rec));
  expect_rejected(ring, 0);
}

TEST(RingParser, SkipsOtherRecordTypes) {
  FakeRing ring(4096);
  struct {
    perf_event_header h;
    std::uint64_t body;
  } rec{{PERF_RECORD_THROTTLE, 0, 16}, 0};
  ring.append(bytes_of(rec));
  ring.add_sample(bytes_of(std::uint64_t{5}));
  Collector c;
  const DrainResult r = ring.parser().drain(c, scratch);
  EXPECT_EQ(r.corrupt, nullptr);
  ASSERT_EQ(r.records, 1u);
  EXPECT_EQ(value_of(c.samples[0]), 5u);
}

// The kernel may overwrite what lies below data_tail: the tail must not move
// while records are still being handed out, and must reach the head at the end.
TEST(RingParser, TailIsPublishedOnceAfterTheRecordsAreUsed) {
  FakeRing ring(4096);
  for (std::uint64_t i = 0; i < 10; ++i) ring.add_sample(bytes_of(i));
  ring.add_lost(3);
  ring.add_sample(bytes_of(std::uint64_t{10}));
  const std::uint64_t start = ring.tail();
  struct Watcher {
    FakeRing& ring;
    std::uint64_t start;
    int moved = 0;
    Action on_sample(const RawSample&) {
      moved += ring.tail() != start;
      return Action::next;
    }
    void on_lost(std::uint64_t) { moved += ring.tail() != start; }
  } watcher{ring, start};
  const DrainResult r = ring.parser().drain(watcher, scratch);
  EXPECT_EQ(r.records, 11u);
  EXPECT_EQ(watcher.moved, 0) << "the tail moved during the drain";
  EXPECT_EQ(ring.tail(), ring.head());
}

TEST(RingParser, PeekLooksWithoutTakingAndCommitPublishes) {
  FakeRing ring(4096);
  ring.add_sample(bytes_of(std::uint64_t{1}));
  ring.add_lost(5);
  const std::array<std::byte, 16> other{};  // a record type that carries no data for us
  perf_event_header h{PERF_RECORD_COMM, 0, 24};
  ring.append(bytes_of(h));
  ring.append(other);
  ring.add_sample(bytes_of(std::uint64_t{2}));
  RingParser parser = ring.parser();

  auto first = parser.peek(scratch);
  auto again = parser.peek(scratch);
  ASSERT_TRUE(first && again);
  EXPECT_EQ(first->kind, RingRecord::Kind::sample);
  EXPECT_EQ(first->sample.data.data(), again->sample.data.data());
  parser.advance();
  auto lost = parser.peek(scratch);
  ASSERT_TRUE(lost);
  EXPECT_EQ(lost->kind, RingRecord::Kind::lost);
  EXPECT_EQ(lost->lost, 5u);
  parser.advance();
  auto second = parser.peek(scratch);  // the COMM record is stepped over
  ASSERT_TRUE(second);
  EXPECT_EQ(value_of({second->sample.data.begin(), second->sample.data.end()}), 2u);
  EXPECT_EQ(ring.tail(), 0u) << "nothing published before commit()";
  parser.advance();
  EXPECT_FALSE(parser.peek(scratch).has_value());
  EXPECT_EQ(parser.corrupt(), nullptr);
  parser.commit();
  EXPECT_EQ(ring.tail(), ring.head());
}

TEST(RingParser, PeekReportsCorruptionAndSkipToHeadRecovers) {
  FakeRing ring(4096);
  const perf_event_header zero{PERF_RECORD_SAMPLE, 0, 0};
  ring.append(bytes_of(zero));
  RingParser parser = ring.parser();
  EXPECT_FALSE(parser.peek(scratch).has_value());
  ASSERT_NE(parser.corrupt(), nullptr);
  EXPECT_EQ(parser.skip_to_head(), 8u);
  EXPECT_EQ(ring.tail(), ring.head());
  ring.add_sample(bytes_of(std::uint64_t{3}));
  auto rec = parser.peek(scratch);
  ASSERT_TRUE(rec);
  EXPECT_EQ(parser.corrupt(), nullptr);
}

TEST(CpuList, ParsesRangesAndSingles) {
  EXPECT_EQ(sys::parse_cpu_list("0-3,5,7-8\n"), (std::vector<int>{0, 1, 2, 3, 5, 7, 8}));
  EXPECT_EQ(sys::parse_cpu_list("0"), (std::vector<int>{0}));
  EXPECT_EQ(sys::parse_cpu_list("2,4"), (std::vector<int>{2, 4}));
}

TEST(CpuList, RejectsMalformedText) {
  for (const char* bad : {"", "a", "1-", "3-1", "1,,2", "1,", "-1"}) {
    if (*bad == '\0') {
      EXPECT_TRUE(sys::parse_cpu_list(bad).empty());
      continue;
    }
    EXPECT_THROW(sys::parse_cpu_list(bad), Error) << bad;
  }
}

}  // namespace
}  // namespace perfbuf
