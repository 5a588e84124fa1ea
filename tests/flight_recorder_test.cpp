// The flight recorder's pure half on rings written backward in memory
// (fake_backward_ring.h): what a snapshot of one ring holds, and the merge
// of several CPUs.
#include <gtest/gtest.h>

#include <perfbuf/backward_ring.h>
#include <perfbuf/flight_recorder.h>

#include <cstdint>
#include <vector>

#include "fake_backward_ring.h"
#include "flight_snapshot.h"

namespace perfbuf {
namespace {

using testing::FakeBackwardRing;

template <class T>
std::span<const std::byte> bytes_of(const T& v) {
  return std::as_bytes(std::span(&v, 1));
}

// Copies the ring as snapshot() does and collects it; `in_flight`: bytes the
// kernel wrote during the copy.
struct Collected {
  std::vector<FlightRecord> records;
  FlightCpu cpu;
};
Collected collect(FakeBackwardRing& ring, std::size_t in_flight = 0, int cpu = 0) {
  std::vector<std::byte> copy(ring.size());
  copy_backward_ring(ring.control(), ring.data(), copy);
  Collected c;
  c.cpu = detail::collect_ring(copy, ring.size() - in_flight, ring.has_time(), cpu, c.records);
  return c;
}

std::vector<std::uint64_t> seqs(const std::vector<FlightRecord>& records) {
  std::vector<std::uint64_t> out;
  for (const FlightRecord& r : records) {
    std::uint64_t v = ~0ull;
    EXPECT_TRUE(r.read(v));
    out.push_back(v);
  }
  return out;
}

std::vector<std::uint64_t> range(std::uint64_t first, std::uint64_t last) {
  std::vector<std::uint64_t> v;
  for (std::uint64_t i = first; i <= last; ++i) v.push_back(i);
  return v;
}

TEST(FlightRing, EmptyRingHasNoRecordsAndIsComplete) {
  FakeBackwardRing ring(256);
  const Collected c = collect(ring);
  EXPECT_TRUE(c.records.empty());
  EXPECT_TRUE(c.cpu.complete);
  EXPECT_FALSE(c.cpu.dropped_partial);
  EXPECT_EQ(c.cpu.corrupt, nullptr);
}

TEST(FlightRing, NeverWrappedRingGivesEveryRecordOldestFirst) {
  FakeBackwardRing ring(256, /*has_time=*/true);
  for (std::uint64_t i = 0; i < 4; ++i) ring.add_sample(bytes_of(i), 100 + i);
  const Collected c = collect(ring, 0, 5);
  EXPECT_EQ(seqs(c.records), range(0, 3));
  for (std::size_t i = 0; i < c.records.size(); ++i) {
    EXPECT_EQ(c.records[i].time_ns, 100 + i);
    EXPECT_EQ(c.records[i].cpu, 5);
    EXPECT_EQ(c.records[i].data.size(), 12u);  // 8 bytes and the kernel's 4 of padding
  }
  EXPECT_TRUE(c.cpu.complete);
  EXPECT_FALSE(c.cpu.dropped_partial);
  EXPECT_EQ(c.cpu.records, 4u);
}

// 24-byte records (8 header + 4 size + 8 payload + 4 padding) in 256 bytes:
// 10 whole ones fit; the 11th newest has been partly overwritten.
TEST(FlightRing, WrappedRingKeepsExactlyTheNewestThatFitAndDropsThePartlyOverwritten) {
  FakeBackwardRing ring(256);
  for (std::uint64_t i = 0; i < 100; ++i) ring.add_sample(bytes_of(i));
  const Collected c = collect(ring);
  EXPECT_EQ(seqs(c.records), range(90, 99));
  EXPECT_TRUE(c.cpu.dropped_partial);
  EXPECT_FALSE(c.cpu.complete);
  EXPECT_EQ(c.cpu.corrupt, nullptr);
}

TEST(FlightRing, RecordsThatFillTheRingExactlyAreAllKept) {
  FakeBackwardRing ring(256);
  // 8 + 4 + 16 = 28 bytes, 32 with padding: 8 records fill the ring.
  for (std::uint64_t i = 0; i < 20; ++i) {
    const std::uint64_t p[2] = {i, i * 3};
    ring.add_sample(std::as_bytes(std::span(p)));
  }
  const Collected c = collect(ring);
  EXPECT_EQ(seqs(c.records), range(12, 19));
  EXPECT_FALSE(c.cpu.dropped_partial);
  EXPECT_FALSE(c.cpu.complete);
}

TEST(FlightRing, ARecordAcrossTheEndOfTheAreaComesOutWhole) {
  // Head starts 8 bytes above the start: the first 24-byte record has 16
  // bytes at the end of the area and 8 at its start.
  FakeBackwardRing ring(64, false, 8);
  const std::uint64_t v = 0x1122334455667788;
  ring.add_sample(bytes_of(v));
  ASSERT_EQ(ring.head() & 63, 48u);
  const Collected c = collect(ring);
  ASSERT_EQ(c.records.size(), 1u);
  EXPECT_EQ(seqs(c.records)[0], v);
}

TEST(FlightRing, PositionsBelowZeroAndNear2To64) {
  for (std::uint64_t start : {0ull, 8ull, 0x8000000000000040ull, ~0ull - 7}) {
    FakeBackwardRing ring(128, false, start);
    for (std::uint64_t i = 0; i < 30; ++i) ring.add_sample(bytes_of(i));
    EXPECT_EQ(seqs(collect(ring).records), range(25, 29)) << start;  // 5 x 24 bytes fit
  }
}

TEST(FlightRing, LostRecordsAreCountedNotHandedOut) {
  FakeBackwardRing ring(256);
  std::uint64_t a = 1, b = 2;
  ring.add_sample(bytes_of(a));
  ring.add_lost(3);
  ring.add_sample(bytes_of(b));
  ring.add_lost(4);
  const Collected c = collect(ring);
  EXPECT_EQ(seqs(c.records), (std::vector<std::uint64_t>{1, 2}));
  EXPECT_EQ(c.cpu.lost, 7u);
}

TEST(FlightRing, BytesWrittenDuringTheCopyAreNotTrusted) {
  FakeBackwardRing ring(256);  // ten 24-byte records whole, 16 bytes of an older one
  for (std::uint64_t i = 0; i < 100; ++i) ring.add_sample(bytes_of(i));
  // 24 bytes written over the oldest part: the oldest whole record (90) no longer is.
  const Collected c = collect(ring, 24);
  EXPECT_EQ(seqs(c.records), range(91, 99));
  EXPECT_TRUE(c.cpu.dropped_partial);
}

// Corrupt bytes at the newest end: the walk stops there, cleanly; at the
// oldest end, what came before is handed out.
TEST(FlightRing, CorruptSizesStopTheWalkInsideTheRing) {
  struct Case {
    perf_event_header header;
    const char* corrupt;  // nullptr: taken as partly overwritten
  };
  for (const Case& k : {Case{{PERF_RECORD_SAMPLE, 0, 4}, "record size smaller than its header"},
                        Case{{PERF_RECORD_SAMPLE, 0, 12}, "record size not a multiple of 8"},
                        Case{{PERF_RECORD_SAMPLE, 0, 0xfff8}, nullptr},
                        Case{{PERF_RECORD_SAMPLE, 0, 8}, "sample fields larger than the record"},
                        Case{{PERF_RECORD_LOST, 0, 16}, "lost record too short"}}) {
    FakeBackwardRing ring(128);
    std::vector<std::byte> bad(16);
    std::memcpy(bad.data(), &k.header, sizeof k.header);
    ring.write(bad);  // the oldest
    std::uint64_t v = 42;
    ring.add_sample(bytes_of(v));  // then a good one, newest
    const Collected c = collect(ring);
    EXPECT_EQ(seqs(c.records), std::vector<std::uint64_t>{42}) << k.header.size;
    if (k.corrupt)
      EXPECT_STREQ(c.cpu.corrupt, k.corrupt);
    else
      EXPECT_TRUE(c.cpu.dropped_partial);
    EXPECT_FALSE(c.cpu.complete);
  }
}

TEST(FlightRing, SampleWhoseRawSizeRunsPastItsRecordStopsTheWalk) {
  FakeBackwardRing ring(128);
  std::vector<std::byte> bad(24);
  const perf_event_header h{PERF_RECORD_SAMPLE, 0, 24};
  const std::uint32_t raw = 100;
  std::memcpy(bad.data(), &h, sizeof h);
  std::memcpy(bad.data() + 8, &raw, 4);
  ring.write(bad);
  const Collected c = collect(ring);
  EXPECT_TRUE(c.records.empty());
  EXPECT_STREQ(c.cpu.corrupt, "sample fields larger than the record");
}

FlightRecord rec(int cpu, std::uint64_t time) { return {cpu, time, {}}; }

TEST(FlightMerge, CpusMergedByTimeEachCpuNewestLast) {
  std::vector<std::vector<FlightRecord>> per_cpu(3);
  per_cpu[0] = {rec(0, 10), rec(0, 40), rec(0, 50)};
  per_cpu[1] = {rec(1, 20), rec(1, 30), rec(1, 60)};
  per_cpu[2] = {};
  const std::vector<FlightRecord> merged = detail::merge_cpus(per_cpu, true);
  std::vector<std::uint64_t> times;
  for (const auto& r : merged) times.push_back(r.time_ns);
  EXPECT_EQ(times, (std::vector<std::uint64_t>{10, 20, 30, 40, 50, 60}));
}

TEST(FlightMerge, ACpusOwnOrderIsKeptWhereItsStampsGoBack) {
  std::vector<std::vector<FlightRecord>> per_cpu(2);
  per_cpu[0] = {rec(0, 10), rec(0, 5), rec(0, 30)};  // an NMI's earlier stamp written later
  per_cpu[1] = {rec(1, 20)};
  std::vector<std::pair<int, std::uint64_t>> got;
  for (const auto& r : detail::merge_cpus(per_cpu, true)) got.emplace_back(r.cpu, r.time_ns);
  EXPECT_EQ(got, (std::vector<std::pair<int, std::uint64_t>>{{0, 10}, {0, 5}, {1, 20}, {0, 30}}));
}

TEST(FlightMerge, WithoutTimestampsOneCpuAfterTheOther) {
  std::vector<std::vector<FlightRecord>> per_cpu(2);
  per_cpu[0] = {rec(0, 0), rec(0, 0)};
  per_cpu[1] = {rec(1, 0)};
  std::vector<int> cpus;
  for (const auto& r : detail::merge_cpus(per_cpu, false)) cpus.push_back(r.cpu);
  EXPECT_EQ(cpus, (std::vector<int>{0, 0, 1}));
}

}  // namespace
}  // namespace perfbuf
