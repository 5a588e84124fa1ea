// The BPF ring buffer cursor on an in-memory ring buffer: no kernel involved.
#include <gtest/gtest.h>

#include <limits>
#include <stdexcept>
#include <vector>

#include "fake_ring.h"
#include "fake_ringbuf.h"

namespace perfbuf {
namespace {

using testing::bytes_of;
using testing::FakeRingbuf;

constexpr std::size_t kRing = 4096;

struct Collector {
  std::vector<std::vector<std::byte>> samples;
  std::vector<const std::byte*> pointers;
  std::size_t stop_at = SIZE_MAX;
  std::size_t throw_at = SIZE_MAX;
  Action on_sample(const RawSample& s) {
    samples.emplace_back(s.data.begin(), s.data.end());
    pointers.push_back(s.data.data());
    if (samples.size() == throw_at) throw std::runtime_error("handler failed");
    return samples.size() == stop_at ? Action::stop : Action::next;
  }
};

std::uint64_t value_of(const std::vector<std::byte>& payload) {
  std::uint64_t v = 0;
  std::memcpy(&v, payload.data(), std::min(payload.size(), sizeof v));
  return v;
}

TEST(RingbufCursor, EmptyRingYieldsNothing) {
  FakeRingbuf rb(kRing);
  auto cursor = rb.cursor();
  EXPECT_FALSE(cursor.peek().has_value());
  Collector c;
  const DrainResult r = cursor.drain(c);
  EXPECT_EQ(r.records, 0u);
  EXPECT_EQ(r.corrupt, nullptr);
}

TEST(RingbufCursor, RecordsInOrderInPlaceWithTheirExactLength) {
  FakeRingbuf rb(kRing);
  for (std::uint64_t i = 0; i < 5; ++i) rb.output(bytes_of(i));
  const std::array<std::byte, 3> odd{std::byte{1}, std::byte{2}, std::byte{3}};
  rb.output(odd);  // not a multiple of 8: the length is exact, the record padded
  Collector c;
  const DrainResult r = rb.cursor().drain(c);
  ASSERT_EQ(r.records, 6u);
  for (std::uint64_t i = 0; i < 5; ++i) {
    EXPECT_EQ(value_of(c.samples[i]), i);
    EXPECT_EQ(c.pointers[i], rb.data() + 8 + i * 16) << "not handed out in place";
  }
  EXPECT_EQ(c.samples[5], std::vector<std::byte>(odd.begin(), odd.end()));
  EXPECT_EQ(r.bytes, 5 * 16 + 16u);
  EXPECT_EQ(rb.consumer(), rb.producer());
}

TEST(RingbufCursor, RecordAcrossTheEndIsContiguousWithoutACopy) {
  // Start 16 bytes before the end: the header fits, the payload runs over.
  FakeRingbuf rb(kRing, kRing - 16);
  std::vector<std::byte> payload(100);
  for (std::size_t i = 0; i < payload.size(); ++i) payload[i] = std::byte(i * 7);
  rb.output(payload);
  Collector c;
  ASSERT_EQ(rb.cursor().drain(c).records, 1u);
  EXPECT_EQ(c.samples[0], payload);
  EXPECT_EQ(c.pointers[0], rb.data() + kRing - 8) << "read through the second mapping";
}

TEST(RingbufCursor, BusyRecordHoldsBackLaterOnesUntilSubmitted) {
  FakeRingbuf rb(kRing);
  const std::uint64_t first = rb.reserve(8);  // reserved, not yet submitted
  rb.output(bytes_of(std::uint64_t{2}));
  Collector c;
  auto cursor = rb.cursor();
  EXPECT_EQ(cursor.drain(c).records, 0u);
  EXPECT_EQ(rb.consumer(), 0u);
  rb.write(first, bytes_of(std::uint64_t{1}));
  rb.submit(first);
  EXPECT_EQ(cursor.drain(c).records, 2u);
  ASSERT_EQ(c.samples.size(), 2u);
  EXPECT_EQ(value_of(c.samples[0]), 1u);
  EXPECT_EQ(value_of(c.samples[1]), 2u);
}

TEST(RingbufCursor, DiscardedRecordsAreSkipped) {
  FakeRingbuf rb(kRing);
  rb.output(bytes_of(std::uint64_t{1}));
  const std::uint64_t dropped = rb.reserve(8);
  rb.discard(dropped);
  rb.output(bytes_of(std::uint64_t{3}));
  Collector c;
  const DrainResult r = rb.cursor().drain(c);
  ASSERT_EQ(r.records, 2u);
  EXPECT_EQ(value_of(c.samples[0]), 1u);
  EXPECT_EQ(value_of(c.samples[1]), 3u);
  EXPECT_EQ(r.bytes, 48u);
  EXPECT_EQ(rb.consumer(), rb.producer());
}

TEST(RingbufCursor, PositionsWrapAroundTwoToThe64) {
  FakeRingbuf rb(kRing, std::numeric_limits<std::uint64_t>::max() - 31);
  for (std::uint64_t i = 0; i < 6; ++i) rb.output(bytes_of(i));
  Collector c;
  ASSERT_EQ(rb.cursor().drain(c).records, 6u);
  for (std::uint64_t i = 0; i < 6; ++i) EXPECT_EQ(value_of(c.samples[i]), i);
  EXPECT_EQ(rb.consumer(), rb.producer());
}

TEST(RingbufCursor, PeekDoesNotConsumeAndCommitPublishes) {
  FakeRingbuf rb(kRing);
  rb.output(bytes_of(std::uint64_t{7}));
  rb.output(bytes_of(std::uint64_t{8}));
  auto cursor = rb.cursor();
  auto a = cursor.peek();
  auto again = cursor.peek();
  ASSERT_TRUE(a && again);
  EXPECT_EQ(a->data(), again->data()) << "peek twice gives the same record";
  cursor.advance();
  auto b = cursor.peek();
  ASSERT_TRUE(b);
  std::uint64_t v;
  std::memcpy(&v, b->data(), 8);
  EXPECT_EQ(v, 8u);
  EXPECT_EQ(rb.consumer(), 0u) << "the kernel may not reuse space before commit()";
  cursor.advance();
  cursor.commit();
  EXPECT_EQ(rb.consumer(), rb.producer());
}

TEST(RingbufCursor, BudgetAndStopLeaveTheRestForTheNextDrain) {
  FakeRingbuf rb(kRing);
  for (std::uint64_t i = 0; i < 10; ++i) rb.output(bytes_of(i));
  auto cursor = rb.cursor();
  Collector c;
  EXPECT_EQ(cursor.drain(c, 4).records, 4u);
  EXPECT_EQ(rb.consumer(), 4 * 16u);
  c.stop_at = 6;
  const DrainResult stopped = cursor.drain(c);
  EXPECT_EQ(stopped.records, 2u);
  EXPECT_TRUE(stopped.stopped);
  EXPECT_EQ(cursor.drain(c).records, 4u);
  ASSERT_EQ(c.samples.size(), 10u);
  for (std::uint64_t i = 0; i < 10; ++i) EXPECT_EQ(value_of(c.samples[i]), i);
}

TEST(RingbufCursor, ThrowingHandlerConsumesItsRecord) {
  FakeRingbuf rb(kRing);
  for (std::uint64_t i = 0; i < 3; ++i) rb.output(bytes_of(i));
  auto cursor = rb.cursor();
  Collector c;
  c.throw_at = 1;
  EXPECT_THROW(cursor.drain(c), std::runtime_error);
  EXPECT_EQ(rb.consumer(), 16u);
  c.throw_at = SIZE_MAX;
  EXPECT_EQ(cursor.drain(c).records, 2u);
  EXPECT_EQ(value_of(c.samples.back()), 2u);
}

TEST(RingbufCursor, DrainReadsOnlyUpToTheProducerSeenAtTheStart) {
  FakeRingbuf rb(kRing);
  rb.output(bytes_of(std::uint64_t{1}));
  struct Producer : Collector {
    FakeRingbuf* rb;
    Action on_sample(const RawSample& s) {
      if (samples.size() < 3) rb->output(bytes_of(std::uint64_t{99}));  // the kernel writes on
      return Collector::on_sample(s);
    }
  } p;
  p.rb = &rb;
  auto cursor = rb.cursor();
  EXPECT_EQ(cursor.drain(p).records, 1u);
  EXPECT_EQ(cursor.readable(), 16u);
}

void expect_rejected(FakeRingbuf& rb, const std::string& reason) {
  auto cursor = rb.cursor();
  Collector c;
  const DrainResult r = cursor.drain(c);
  ASSERT_NE(r.corrupt, nullptr);
  EXPECT_NE(std::string(r.corrupt).find(reason), std::string::npos) << r.corrupt;
  EXPECT_EQ(rb.consumer(), rb.producer()) << "skipped to the producer";
  // Usable again afterwards.
  rb.output(bytes_of(std::uint64_t{42}));
  Collector after;
  const DrainResult next = cursor.drain(after);
  EXPECT_EQ(next.corrupt, nullptr);
  ASSERT_EQ(after.samples.size(), 1u);
  EXPECT_EQ(value_of(after.samples[0]), 42u);
}

TEST(RingbufCursor, RejectsProducerFurtherAheadThanTheRing) {
  FakeRingbuf rb(kRing);
  rb.set_producer(2 * kRing);
  expect_rejected(rb, "more than the ring size ahead");
}

TEST(RingbufCursor, RejectsMisalignedConsumer) {
  FakeRingbuf rb(kRing);
  rb.output(bytes_of(std::uint64_t{1}));
  rb.set_consumer(4);  // the kernel's positions are always 8-byte aligned
  expect_rejected(rb, "not 8-byte aligned");
}

TEST(RingbufCursor, RejectsRecordRunningPastTheProducer) {
  FakeRingbuf rb(kRing);
  rb.put_len(0, 100);
  rb.set_producer(16);
  expect_rejected(rb, "past the producer");
}

// Found by ringbuf_cursor_fuzz: a drain with no budget left reported the
// corruption an earlier drain had found and skipped what the kernel had
// written since, a record that was never corrupt.
TEST(RingbufCursor, ZeroBudgetDrainAfterCorruptionSkipsNothing) {
  FakeRingbuf rb(kRing);
  rb.set_producer(2 * kRing);
  auto cursor = rb.cursor();
  Collector c;
  ASSERT_NE(cursor.drain(c).corrupt, nullptr);
  rb.output(bytes_of(std::uint64_t{42}));
  const DrainResult none = cursor.drain(c, 0);
  EXPECT_EQ(none.corrupt, nullptr);
  EXPECT_EQ(none.bytes, 0u);
  EXPECT_EQ(rb.consumer(), 2 * kRing);
  ASSERT_EQ(cursor.drain(c).records, 1u);
  EXPECT_EQ(value_of(c.samples[0]), 42u);
}

// Found by ringbuf_cursor_fuzz: after a drain skipped a corrupt ring,
// advance() stepped back to where the corruption began.
TEST(RingbufCursor, AdvanceAfterACorruptDrainStaysPut) {
  FakeRingbuf rb(kRing);
  rb.output(bytes_of(std::uint64_t{1}));
  rb.put_len(16, 100);  // runs past the producer
  rb.set_producer(32);
  auto cursor = rb.cursor();
  Collector c;
  ASSERT_NE(cursor.drain(c).corrupt, nullptr);
  cursor.advance();
  cursor.commit();
  EXPECT_EQ(rb.consumer(), 32u);
}

}  // namespace
}  // namespace perfbuf
