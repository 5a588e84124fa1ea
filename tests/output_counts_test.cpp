// Drop accounting through <perfbuf/bpf.h>: outputs the kernel does not count
// reach the lost handler and the stats, without counting a loss twice; and a
// ring buffer's program wakes the reader when the reader says.
#include <gtest/gtest.h>

#include <perfbuf/reader.h>

#include <bpf/bpf.h>

#include <chrono>
#include <map>
#include <string>

#include "bpf_support.h"
#include "write_tracer.h"

namespace perfbuf {
namespace {

using std::chrono::milliseconds;
using testing::fire_on_cpu;
using tools::Transport;
using tools::WriteTracer;

using testing::ringbuf_filter;

// What a reader's handlers saw.
struct Seen {
  std::uint64_t records = 0;
  std::map<int, std::uint64_t> lost_by_cpu;
  SampleHandler on_sample() {
    return [this](const Sample&) { ++records; };
  }
  LostHandler on_lost() {
    return [this](int cpu, std::uint64_t n) { lost_by_cpu[cpu] += n; };
  }
};

TEST(OutputCounts, FailedRingBufferOutputsReachTheLostHandlerWithTheirCpu) {
  REQUIRE_BPF();
  REQUIRE_SECOND_CPU(cpu);
  WriteTracer tracer(ringbuf_filter(static_cast<std::uint32_t>(getpagesize())));  // fills fast
  Seen seen;
  Reader reader(tracer.events_map(), seen.on_sample(), seen.on_lost());
  reader.count_outputs(tracer.counts_map());
  for (int i = 0; i < 1000; ++i) ASSERT_EQ(fire_on_cpu(tracer.raw_tracepoint_fd(), *cpu), 0);
  ASSERT_TRUE(reader.consume().ok());

  const std::uint64_t failures = tracer.failures();
  ASSERT_GT(failures, 0u) << "the ring buffer never filled";
  EXPECT_EQ(seen.lost_by_cpu, (std::map<int, std::uint64_t>{{*cpu, failures}}));
  const CpuStats total = reader.total_stats();
  EXPECT_EQ(total.attempts, 1000u);
  EXPECT_EQ(total.failed, failures);
  EXPECT_EQ(total.lost, 0u) << "the kernel counts nothing for a ring buffer";
  EXPECT_EQ(total.records + total.failed, total.attempts);
  EXPECT_EQ(seen.records, total.records);
}

TEST(OutputCounts, PerfOutputOnACpuWithoutARingIsReportedFailed) {
  REQUIRE_BPF();
  REQUIRE_SECOND_CPU(cpu);
  WriteTracer tracer({});
  Seen seen;
  Reader reader(tracer.events_map(), seen.on_sample(), seen.on_lost(),
                Options{.pages_per_cpu = 8, .cpus = {*cpu}});
  reader.count_outputs(tracer.counts_map());
  ASSERT_EQ(fire_on_cpu(tracer.raw_tracepoint_fd(), *cpu), 0);
  ASSERT_EQ(fire_on_cpu(tracer.raw_tracepoint_fd(), 0), 0);  // slot 0 is empty: the output fails
  ASSERT_TRUE(reader.consume().ok());

  EXPECT_EQ(seen.records, 1u);
  EXPECT_EQ(seen.lost_by_cpu, (std::map<int, std::uint64_t>{{0, 1}}));
  // CPU 0 has no ring: its counts show in the total only.
  ASSERT_EQ(reader.stats().size(), 1u);
  EXPECT_EQ(reader.stats()[0].attempts, 1u);
  EXPECT_EQ(reader.stats()[0].failed, 0u);
  const CpuStats total = reader.total_stats();
  EXPECT_EQ(total.attempts, 2u);
  EXPECT_EQ(total.failed, 1u);
  EXPECT_EQ(total.lost, 0u);
}

TEST(OutputCounts, FullPerfRingLossIsReportedOnceByTheKernelNotAgainAsFailed) {
  REQUIRE_BPF();
  REQUIRE_SECOND_CPU(cpu);
  WriteTracer tracer({});
  Seen seen;
  Reader reader(tracer.events_map(), seen.on_sample(), seen.on_lost(),
                Options{.pages_per_cpu = 1, .cpus = {*cpu}});
  reader.count_outputs(tracer.counts_map());
  for (int i = 0; i < 500; ++i) ASSERT_EQ(fire_on_cpu(tracer.raw_tracepoint_fd(), *cpu), 0);
  ASSERT_TRUE(reader.consume().ok());
  ASSERT_EQ(fire_on_cpu(tracer.raw_tracepoint_fd(), *cpu), 0);  // brings the kernel's loss record
  ASSERT_TRUE(reader.consume().ok());

  const perfbuf_counts counts = tracer.counts();
  ASSERT_GT(counts.kernel_counted, 0u) << "the ring never filled";
  EXPECT_EQ(counts.failures, counts.kernel_counted) << "every failure was a full ring";
  const CpuStats total = reader.total_stats();
  EXPECT_EQ(total.lost, counts.kernel_counted);
  EXPECT_EQ(total.failed, 0u);
  EXPECT_EQ(total.attempts, 501u);
  EXPECT_EQ(total.records + total.lost + total.failed, total.attempts);
  EXPECT_EQ(seen.lost_by_cpu, (std::map<int, std::uint64_t>{{*cpu, total.lost}}));
}

// Without a later record the kernel writes no loss record, and poll() does
// not read the kernel's count from the event (consume() does): the program's
// count is what reports the loss while the application polls.
TEST(OutputCounts, FullPerfRingLossIsReportedByPollWithoutALaterRecord) {
  REQUIRE_BPF();
  REQUIRE_SECOND_CPU(cpu);
  WriteTracer tracer({});
  Seen seen;
  // Every record wakes the reader: no switch between rings, whose end would read the kernel's count.
  Reader reader(tracer.events_map(), seen.on_sample(), seen.on_lost(),
                Options{.pages_per_cpu = 1, .cpus = {*cpu}, .wakeup = Wakeup::every_record()});
  reader.count_outputs(tracer.counts_map());
  constexpr std::uint64_t kFired = 500;
  for (std::uint64_t i = 0; i < kFired; ++i)
    ASSERT_EQ(fire_on_cpu(tracer.raw_tracepoint_fd(), *cpu), 0);
  const std::uint64_t dropped = tracer.counts().kernel_counted;
  ASSERT_GT(dropped, 0u) << "the ring never filled";

  auto lost = [&] {
    const auto it = seen.lost_by_cpu.find(*cpu);
    return it == seen.lost_by_cpu.end() ? std::uint64_t{0} : it->second;
  };
  for (int i = 0; i < 100 && seen.records + lost() < kFired; ++i)
    ASSERT_TRUE(reader.poll(milliseconds(20)).ok());
  EXPECT_EQ(seen.records, kFired - dropped);
  EXPECT_EQ(seen.lost_by_cpu, (std::map<int, std::uint64_t>{{*cpu, dropped}}))
      << "poll() did not report the loss";

  // consume() then reads the kernel's count of the same drops: not reported again.
  ASSERT_TRUE(reader.consume().ok());
  EXPECT_EQ(reader.total_stats().lost, dropped);
  EXPECT_EQ(seen.lost_by_cpu, (std::map<int, std::uint64_t>{{*cpu, dropped}}));
}

TEST(OutputCounts, OutputsBeforeTheReaderAreCountedToo) {
  REQUIRE_BPF();
  WriteTracer tracer(ringbuf_filter(64 * 1024));
  ASSERT_EQ(fire_on_cpu(tracer.raw_tracepoint_fd(), 0), 0);  // read later: still in the ring
  Seen seen;
  Reader reader(tracer.events_map(), seen.on_sample(), seen.on_lost());
  reader.count_outputs(tracer.counts_map());
  ASSERT_EQ(fire_on_cpu(tracer.raw_tracepoint_fd(), 0), 0);
  ASSERT_TRUE(reader.consume().ok());
  EXPECT_EQ(seen.records, 2u);
  EXPECT_EQ(reader.total_stats().attempts, 2u);
}

// Ring buffer wakeups: epoll reports the ring when the program wakes the reader.
std::uint64_t wakeups_after(Reader& reader, int prog, int records) {
  for (int i = 0; i < records; ++i)
    if (fire_on_cpu(prog, 0) != 0) ADD_FAILURE() << "fire failed";
  // The kernel's wakeup runs from irq_work: give it a moment to land.
  for (int i = 0; i < 5; ++i)
    if (!reader.poll(milliseconds(2)).ok()) ADD_FAILURE() << "poll failed";
  return reader.total_stats().wakeups;
}

TEST(OutputCounts, RingBufferProgramWakesTheReaderAtTheWatermark) {
  REQUIRE_BPF();
  WriteTracer tracer(ringbuf_filter(64 * 1024));  // watermark: a quarter, 16 KiB
  Seen seen;
  Reader reader(tracer.events_map(), seen.on_sample(), {},
                Options{.wakeup = Wakeup::watermark(0), .max_delay = std::chrono::minutes(1)});
  reader.count_outputs(tracer.counts_map());
  EXPECT_EQ(tracer.counts().wakeup_bytes, 16u * 1024);
  const int prog = tracer.raw_tracepoint_fd();
  // 32 bytes a record (8-byte header + 24): 512 reach the watermark.
  EXPECT_EQ(wakeups_after(reader, prog, 500), 0u) << "woken below the watermark";
  EXPECT_EQ(seen.records, 0u) << "records below the watermark wait for the flush";
  EXPECT_EQ(wakeups_after(reader, prog, 20), 1u) << "one wakeup as the watermark is crossed";
  EXPECT_EQ(seen.records, 520u);
  // The reader caught up: the next records wait again.
  EXPECT_EQ(wakeups_after(reader, prog, 10), 1u);
  ASSERT_TRUE(reader.consume().ok());
  EXPECT_EQ(seen.records, 530u);
}

TEST(OutputCounts, RingBufferEveryRecordKeepsTheKernelsWakeups) {
  REQUIRE_BPF();
  WriteTracer tracer(ringbuf_filter(64 * 1024));
  Seen seen;
  Reader reader(tracer.events_map(), seen.on_sample(), {},
                Options{.wakeup = Wakeup::every_record(), .max_delay = std::chrono::minutes(1)});
  reader.count_outputs(tracer.counts_map());
  EXPECT_EQ(tracer.counts().wakeup_bytes, 0u);
  const int prog = tracer.raw_tracepoint_fd();
  for (int i = 1; i <= 3; ++i) {
    EXPECT_EQ(wakeups_after(reader, prog, 1), static_cast<std::uint64_t>(i));
    EXPECT_EQ(seen.records, static_cast<std::uint64_t>(i));
  }
}

TEST(OutputCounts, RejectsAMapThatIsNotACountsMapAndAMissingSource) {
  REQUIRE_BPF();
  WriteTracer tracer({});
  Reader reader(tracer.events_map(), [](const Sample&) {});
  const int array = bpf_map_create(BPF_MAP_TYPE_ARRAY, "not_counts", 4, 32, 2, nullptr);
  ASSERT_GE(array, 0);
  try {
    reader.count_outputs(array);
    ADD_FAILURE() << "accepted an ARRAY map";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("PERFBUF_COUNTS_MAP"), std::string::npos) << e.what();
  }
  close(array);
  try {
    reader.count_outputs(tracer.counts_map(), 1);
    ADD_FAILURE() << "accepted map 1 of a reader with one map";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("there is no map 1"), std::string::npos) << e.what();
  }
  // The reader is as it was.
  ASSERT_EQ(fire_on_cpu(tracer.raw_tracepoint_fd(), 0), 0);
  const auto r = reader.consume();
  ASSERT_TRUE(r.ok()) << r.error().what();
  EXPECT_EQ(*r, 1u);
  EXPECT_EQ(reader.total_stats().attempts, 0u);
}

}  // namespace
}  // namespace perfbuf

namespace perfbuf {
namespace {

TEST(Pause, PerfOutputsWhilePausedAreCountedLostAndTheRestArrive) {
  REQUIRE_BPF();
  WriteTracer tracer({});
  Seen seen;
  Reader reader(tracer.events_map(), seen.on_sample(), seen.on_lost(), Options{.cpus = {0}});
  reader.count_outputs(tracer.counts_map());
  const int prog = tracer.raw_tracepoint_fd();
  for (int i = 0; i < 5; ++i) ASSERT_EQ(fire_on_cpu(prog, 0), 0);
  reader.pause();
  EXPECT_TRUE(reader.paused());
  for (int i = 0; i < 7; ++i) ASSERT_EQ(fire_on_cpu(prog, 0), 0);
  reader.resume();
  EXPECT_FALSE(reader.paused());
  for (int i = 0; i < 3; ++i) ASSERT_EQ(fire_on_cpu(prog, 0), 0);
  ASSERT_TRUE(reader.consume().ok());
  EXPECT_EQ(seen.records, 8u) << "what was written before and after the pause arrives";
  const CpuStats total = reader.total_stats();
  EXPECT_EQ(total.lost, 7u) << "the outputs while paused";
  EXPECT_EQ(total.failed, 0u);
  EXPECT_EQ(total.attempts, 15u);
  EXPECT_EQ(seen.lost_by_cpu, (std::map<int, std::uint64_t>{{0, 7}}));
}

TEST(Pause, RingBufferPausesThroughItsCountsMapOnly) {
  REQUIRE_BPF();
  WriteTracer tracer(ringbuf_filter(64 * 1024));
  Seen seen;
  Reader reader(tracer.events_map(), seen.on_sample(), seen.on_lost());
  try {
    reader.pause();
    ADD_FAILURE() << "paused a ring buffer without its counts map";
  } catch (const Error& e) {
    EXPECT_EQ(e.errnum(), EOPNOTSUPP);
    EXPECT_NE(std::string(e.what()).find("count_outputs()"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(reader.paused());
  reader.count_outputs(tracer.counts_map());
  const int prog = tracer.raw_tracepoint_fd();
  for (int i = 0; i < 2; ++i) ASSERT_EQ(fire_on_cpu(prog, 0), 0);
  reader.pause();
  EXPECT_EQ(tracer.counts().paused, 1u);
  for (int i = 0; i < 4; ++i) ASSERT_EQ(fire_on_cpu(prog, 0), 0);
  reader.resume();
  ASSERT_EQ(fire_on_cpu(prog, 0), 0);
  ASSERT_TRUE(reader.consume().ok());
  EXPECT_EQ(seen.records, 3u);
  const CpuStats total = reader.total_stats();
  EXPECT_EQ(total.failed, 4u);
  EXPECT_EQ(total.attempts, 7u);
  EXPECT_EQ(seen.lost_by_cpu, (std::map<int, std::uint64_t>{{0, 4}}));
}

}  // namespace
}  // namespace perfbuf
