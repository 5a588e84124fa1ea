// BPF ring buffers on the real kernel, alone and beside perf rings in one poll.
#include <gtest/gtest.h>

#include <perfbuf/reader.h>

#include <chrono>
#include <thread>
#include <vector>

#include "bpf_support.h"
#include "write_event.h"
#include "write_tracer.h"

namespace perfbuf {
namespace {

using std::chrono::milliseconds;
using testing::fire_on_cpu;
using tools::AttachMode;
using tools::Transport;
using tools::WriteTracer;

using testing::ringbuf_filter;

TEST(RingbufKernel, ChildDoingKWritesYieldsExactlyKEvents) {
  REQUIRE_BPF();
  constexpr int kWrites = 1000;
  testing::WritingChild child(kWrites);
  WriteTracer tracer(ringbuf_filter(256 * 1024, static_cast<std::uint32_t>(child.pid())));
  std::vector<write_event> events;
  std::vector<int> cpus;
  std::vector<std::size_t> sizes;
  Reader reader(tracer.events_map(), [&](const Sample& s) {
    write_event e{};
    EXPECT_TRUE(s.read(e));
    events.push_back(e);
    cpus.push_back(s.cpu);
    sizes.push_back(s.data.size());
  });
  ASSERT_EQ(reader.ring_count(), 1u);
  EXPECT_EQ(reader.ring_cpu(0), -1);
  std::vector<std::string> notes;
  tracer.attach(AttachMode::automatic, notes);
  const pid_t pid = child.pid();
  ASSERT_EQ(child.release_and_wait(), 0);
  tracer.detach();
  ASSERT_TRUE(reader.consume().ok());

  ASSERT_EQ(events.size(), static_cast<std::size_t>(kWrites));
  EXPECT_EQ(tracer.attempts(), static_cast<std::uint64_t>(kWrites));
  EXPECT_EQ(tracer.failures(), 0u);
  for (std::size_t i = 0; i < events.size(); ++i) {
    EXPECT_EQ(events[i].tgid, static_cast<std::uint32_t>(pid));
    EXPECT_EQ(events[i].cookie, PERFBUF_WRITE_COOKIE);
    EXPECT_EQ(cpus[i], -1) << "a ring buffer record has no CPU of its own";
    EXPECT_EQ(sizes[i], sizeof(write_event)) << "exactly what the program sent";
  }
  EXPECT_EQ(reader.total_stats().records, static_cast<std::uint64_t>(kWrites));
}

TEST(RingbufKernel, PollIsWokenByTheKernel) {
  REQUIRE_BPF();
  WriteTracer tracer(ringbuf_filter());
  int received = 0;
  Reader reader(tracer.events_map(), [&](const Sample&) { ++received; }, {},
                Options{.max_delay = std::chrono::minutes(1)});
  const int prog = tracer.raw_tracepoint_fd();
  std::thread writer([prog] {
    std::this_thread::sleep_for(milliseconds(30));
    fire_on_cpu(prog, 0);
  });
  const auto r = reader.poll(milliseconds(5000));
  writer.join();
  ASSERT_TRUE(r.ok()) << r.error().what();
  EXPECT_EQ(*r, 1u);
  EXPECT_EQ(received, 1);
  EXPECT_EQ(reader.total_stats().wakeups, 1u);
}

TEST(RingbufKernel, RecordsCommittedDuringADrainDoNotWaitForTheFlush) {
  REQUIRE_BPF();
  // The kernel wakes the reader only for a record written while it was caught
  // up: one committed while a drain runs wakes no one.
  WriteTracer tracer(ringbuf_filter(4 << 20));
  std::uint64_t received = 0;
  Reader reader(tracer.events_map(), [&](const Sample&) { ++received; }, {},
                Options{.max_delay = std::chrono::minutes(1)});
  const int prog = tracer.raw_tracepoint_fd();
  constexpr int kRecords = 20000;
  std::thread writer([prog] {
    for (int i = 0; i < kRecords; ++i) fire_on_cpu(prog, 0);
  });
  const auto start = std::chrono::steady_clock::now();
  while (received < kRecords && std::chrono::steady_clock::now() - start < std::chrono::seconds(10))
    ASSERT_TRUE(reader.poll(milliseconds(100)).ok());
  writer.join();
  EXPECT_EQ(received, static_cast<std::uint64_t>(kRecords)) << "records left waiting for the flush";
}

TEST(RingbufKernel, FullRingBufferAccountsForEveryRecord) {
  REQUIRE_BPF();
  // One page: room for 128 records of 32 bytes (8-byte header + 24).
  WriteTracer tracer(ringbuf_filter(static_cast<std::uint32_t>(getpagesize())));
  std::uint64_t received = 0;
  Reader reader(tracer.events_map(), [&](const Sample&) { ++received; });
  for (int i = 0; i < 2000; ++i) ASSERT_EQ(fire_on_cpu(tracer.raw_tracepoint_fd(), 0), 0);
  ASSERT_TRUE(reader.consume().ok());
  EXPECT_EQ(tracer.attempts(), 2000u);
  EXPECT_GT(tracer.failures(), 0u);
  EXPECT_EQ(received + tracer.failures(), tracer.attempts());
  // Room again after the drain.
  ASSERT_EQ(fire_on_cpu(tracer.raw_tracepoint_fd(), 0), 0);
  ASSERT_TRUE(reader.consume().ok());
  EXPECT_EQ(received + tracer.failures(), tracer.attempts());
}

TEST(RingbufKernel, TelemetryKeepsTheMostBytesFoundWaiting) {
  REQUIRE_BPF();
  WriteTracer tracer(ringbuf_filter());
  Reader reader(tracer.events_map(), [](const Sample&) {});
  constexpr std::uint64_t kRecords = 20;
  for (std::uint64_t i = 0; i < kRecords; ++i)
    ASSERT_EQ(fire_on_cpu(tracer.raw_tracepoint_fd(), 0), 0);
  ASSERT_TRUE(reader.consume().ok());
  // 32 bytes a record: the ring buffer's 8-byte header and the 24-byte event.
  EXPECT_EQ(reader.stats().at(0).fill_high_water, kRecords * 32);
  ASSERT_EQ(fire_on_cpu(tracer.raw_tracepoint_fd(), 0), 0);
  ASSERT_TRUE(reader.consume().ok());
  EXPECT_EQ(reader.stats().at(0).fill_high_water, kRecords * 32) << "a high-water mark stays";
  EXPECT_EQ(reader.total_stats().records, kRecords + 1);
}

TEST(RingbufKernel, PerfRingsAndARingBufferInOnePoll) {
  REQUIRE_BPF();
  WriteTracer perf_tracer({});
  WriteTracer ring_tracer(ringbuf_filter());
  std::vector<int> perf_cpus;
  int ring_records = 0;
  Reader reader(perf_tracer.events_map(), [&](const Sample& s) { perf_cpus.push_back(s.cpu); }, {},
                Options{.wakeup = Wakeup::every_record()});
  const std::size_t perf_rings = reader.ring_count();
  reader.add(ring_tracer.events_map(), [&](const Sample&) { ++ring_records; });
  ASSERT_EQ(reader.ring_count(), perf_rings + 1);
  EXPECT_EQ(reader.ring_cpu(perf_rings), -1);

  ASSERT_EQ(fire_on_cpu(perf_tracer.raw_tracepoint_fd(), 0), 0);
  ASSERT_EQ(fire_on_cpu(ring_tracer.raw_tracepoint_fd(), 0), 0);
  ASSERT_EQ(fire_on_cpu(ring_tracer.raw_tracepoint_fd(), 0), 0);
  for (int i = 0; i < 100 && (perf_cpus.size() < 1 || ring_records < 2); ++i)
    ASSERT_TRUE(reader.poll(milliseconds(50)).ok());
  EXPECT_EQ(perf_cpus, std::vector<int>{0});
  EXPECT_EQ(ring_records, 2);
  const std::vector<CpuStats> stats = reader.stats();
  ASSERT_EQ(stats.size(), perf_rings + 1);
  EXPECT_EQ(stats.front().source, 0);
  EXPECT_EQ(stats.back().source, 1);
  EXPECT_EQ(stats.back().cpu, -1);
  EXPECT_EQ(stats.back().records, 2u);
}

TEST(RingbufKernel, AddingAMapOfTheWrongTypeLeavesTheReaderAsItWas) {
  REQUIRE_BPF();
  WriteTracer tracer({});
  Reader reader(tracer.events_map(), [](const Sample&) {});
  const std::size_t rings = reader.ring_count();
  const int array = bpf_map_create(BPF_MAP_TYPE_ARRAY, "not_a_ring", 4, 4, 4, nullptr);
  ASSERT_GE(array, 0);
  try {
    reader.add(array, [](const Sample&) {});
    ADD_FAILURE() << "accepted an ARRAY map";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("BPF_MAP_TYPE_RINGBUF"), std::string::npos) << e.what();
  }
  close(array);
  EXPECT_EQ(reader.ring_count(), rings);
  ASSERT_EQ(fire_on_cpu(tracer.raw_tracepoint_fd(), 0), 0);
  auto r = reader.consume();
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, 1u);
}

TEST(RingbufKernel, OnePollTakesAtMostTheBudgetFromARing) {
  REQUIRE_BPF();
  WriteTracer tracer(ringbuf_filter());
  int received = 0;
  Reader reader(tracer.events_map(), [&](const Sample&) { ++received; }, {},
                Options{.ring_budget = 10});
  for (int i = 0; i < 50; ++i) ASSERT_EQ(fire_on_cpu(tracer.raw_tracepoint_fd(), 0), 0);
  testing::expect_prompt_polls(reader, 5, 10);
  EXPECT_EQ(received, 50);
}

// A ring that floods, behind a slow handler, cannot hold another ring's record
// back: each pass takes at most ring_budget records from a ring.
TEST(RingbufKernel, AFloodedRingCannotStarveAnother) {
  REQUIRE_BPF();
  WriteTracer ring_tracer(ringbuf_filter(1024 * 1024));
  WriteTracer perf_tracer({});
  constexpr int kFlood = 3000;
  constexpr std::uint64_t kBudget = 64;
  for (int i = 0; i < kFlood; ++i) ASSERT_EQ(fire_on_cpu(ring_tracer.raw_tracepoint_fd(), 0), 0);
  int ring_records = 0;
  int ring_records_before_perf = -1;
  Reader reader(ring_tracer.events_map(), [&](const Sample&) {
    ++ring_records;
    std::this_thread::sleep_for(std::chrono::microseconds(20));
  }, {}, Options{.wakeup = Wakeup::every_record(), .ring_budget = kBudget});
  reader.add(perf_tracer.events_map(), [&](const Sample&) {
    ring_records_before_perf = ring_records;
  });
  ASSERT_EQ(fire_on_cpu(perf_tracer.raw_tracepoint_fd(), 0), 0);
  for (int i = 0; i < 1000 && ring_records < kFlood; ++i)
    ASSERT_TRUE(reader.poll(milliseconds(100)).ok());
  EXPECT_EQ(ring_records, kFlood);
  ASSERT_GE(ring_records_before_perf, 0) << "the perf record never arrived";
  EXPECT_LE(ring_records_before_perf, static_cast<int>(2 * kBudget))
      << "the perf record waited behind the flooded ring";
}

}  // namespace
}  // namespace perfbuf
