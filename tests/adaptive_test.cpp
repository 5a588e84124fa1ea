// Wakeup::adaptive(), the default, on the real kernel: a wakeup per record
// while traffic is light, none while it is heavy, back again when it calms
// down; across each switch a CPU's records stay in order (two events write
// into one ring), none is lost or delivered twice.
#include <gtest/gtest.h>

#include <perfbuf/reader.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include <bpf/libbpf.h>
#include <poll.h>

#include "bpf_support.h"
#include "process_info.h"
#include "write_tracer.h"

namespace perfbuf {
namespace {

using std::chrono::milliseconds;
using testing::fire_on_cpu;
using tools::WriteTracer;

// The records of one CPU, with the program's timestamps (write_event::time_ns).
struct Received {
  std::vector<std::uint64_t> times;
  std::size_t late = 0;  // flagged Sample::late
  SampleHandler handler() {
    return [this](const Sample& s) {
      const auto e = tools::checked_write_event(s);
      if (!e) ADD_FAILURE() << "a bad record";
      else times.push_back(e->time_ns);
      late += s.late;
    };
  }
  // Records that came after a newer one of the same CPU.
  std::size_t out_of_order() const {
    std::size_t n = 0;
    for (std::size_t i = 1; i < times.size(); ++i) n += times[i] < times[i - 1];
    return n;
  }
};

// One record at a time, each handed out by poll() after its own wakeup.
void expect_woken_per_record(Reader& reader, int prog, int records) {
  for (int i = 0; i < records; ++i) {
    const std::uint64_t wakeups = reader.total_stats().wakeups;
    std::thread writer([prog] {
      std::this_thread::sleep_for(milliseconds(2));
      fire_on_cpu(prog, 0);
    });
    const auto start = std::chrono::steady_clock::now();
    const auto r = reader.poll(milliseconds(5000));
    writer.join();
    ASSERT_TRUE(r.ok()) << r.error().what();
    EXPECT_EQ(*r, 1u) << "record " << i;
    EXPECT_EQ(reader.total_stats().wakeups, wakeups + 1) << "record " << i;
    // Woken, not flushed: max_delay is a minute.
    EXPECT_LT(std::chrono::steady_clock::now() - start, milliseconds(1000)) << "record " << i;
  }
}

TEST(Adaptive, IsTheDefault) {
  EXPECT_EQ(Options{}.wakeup.mode, Wakeup::Mode::adaptive);
}

TEST(Adaptive, LightTrafficWakesTheReaderOnEveryRecord) {
  REQUIRE_BPF();
  WriteTracer tracer({});
  Received got;
  Reader reader(tracer.events_map(), got.handler(), {},
                Options{.cpus = {0}, .max_delay = std::chrono::minutes(1)});
  expect_woken_per_record(reader, tracer.raw_tracepoint_fd(), 5);
  EXPECT_EQ(got.times.size(), 5u);
}

TEST(Adaptive, HeavyTrafficIsPolledInOrderAndLightTrafficIsWokenAgain) {
  REQUIRE_BPF();
  WriteTracer tracer({});
  Received got;
  std::uint64_t lost = 0;
  Reader reader(tracer.events_map(), got.handler(), [&](int, std::uint64_t n) { lost += n; },
                Options{.cpus = {0}, .max_delay = std::chrono::minutes(1)});
  const int prog = tracer.raw_tracepoint_fd();
  // Heavy: a flood from another thread while the reader polls.
  constexpr int kFlood = 20000;
  std::thread writer([prog] {
    for (int i = 0; i < kFlood; ++i) fire_on_cpu(prog, 0);
  });
  for (int i = 0; i < 2000 && got.times.size() + lost < kFlood; ++i)
    ASSERT_TRUE(reader.poll(milliseconds(10)).ok());
  writer.join();
  ASSERT_TRUE(reader.consume().ok());
  // Every record arrives or is counted lost (a reader descheduled for
  // milliseconds on a busy machine may lose some: whether it keeps up is the
  // bench's to measure), and in order.
  EXPECT_EQ(got.times.size() + lost, static_cast<std::size_t>(kFlood));
  // In order across every switch: both events write into the CPU's one ring.
  EXPECT_EQ(got.out_of_order(), 0u) << "a CPU's records came out of order across a switch";
  EXPECT_EQ(got.late, 0u);
  // Fewer wakeups than records: the producer stopped waking the reader. (Not
  // far fewer: on a machine busy with other work the flood has pauses, and
  // the reader goes back to a wakeup per record during them.)
  EXPECT_LT(reader.total_stats().wakeups, kFlood / 4u) << "still woken per record";

  // Quiet long enough for the rate to fall, then light traffic: woken per record again.
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(reader.poll(milliseconds(10)).ok());
  expect_woken_per_record(reader, prog, 3);
  ASSERT_TRUE(reader.consume().ok());
  EXPECT_EQ(got.times.size() + lost, kFlood + 3u);
  EXPECT_EQ(got.out_of_order(), 0u);
}

// Under heavy traffic the slot holds the event that wakes nobody below the
// watermark: the reader drains the ring every kAdaptivePoll on its own, not
// only at max_delay (a minute here).
TEST(Adaptive, ARecordInThePolledRingArrivesWithoutAWakeup) {
  REQUIRE_BPF();
  WriteTracer tracer({});
  const int prog = tracer.raw_tracepoint_fd();
  constexpr std::size_t kBurst = 1000;  // well inside the ring
  // A test stalled long enough lets the rate fall and the slot go back to the
  // ring that wakes: the record then wakes the reader, which proves nothing,
  // and the test tries again.
  int conclusive = 0;
  for (int attempt = 0; attempt < 5 && conclusive == 0; ++attempt) {
    Received got;
    Reader reader(tracer.events_map(), got.handler(), {},
                  Options{.cpus = {0}, .max_delay = std::chrono::minutes(1)});
    for (std::size_t i = 0; i < kBurst; ++i) ASSERT_EQ(fire_on_cpu(prog, 0), 0);
    // The burst's wakeup moves the slot to the event that does not wake.
    ASSERT_TRUE(reader.poll(milliseconds(1000)).ok());
    ASSERT_TRUE(reader.consume().ok());
    ASSERT_EQ(got.times.size(), kBurst);
    const std::uint64_t wakeups = reader.total_stats().wakeups;
    ASSERT_EQ(fire_on_cpu(prog, 0), 0);
    const auto r = reader.poll(milliseconds(200));
    ASSERT_TRUE(r.ok()) << r.error().what();
    if (reader.total_stats().wakeups != wakeups) continue;  // the slot had gone back to the event that wakes
    ++conclusive;
    EXPECT_EQ(*r, 1u) << "a record written while the ring was polled waited for max_delay";
  }
  EXPECT_EQ(conclusive, 1) << "the slot never stayed on the event that does not wake after a burst";
}

// At the first wakeup of a burst the slot must move to the event that does
// not wake before the reader works through the rest: from then on the
// producer no longer pays a wakeup per record (the ring's fd, which reports
// the wakeups of both events, stays quiet).
TEST(Adaptive, ABurstStopsTheWakeupsBeforeTheReaderWorksThroughIt) {
  REQUIRE_BPF();
  WriteTracer tracer({});
  const int prog = tracer.raw_tracepoint_fd();
  constexpr int kBurst = 40;
  constexpr int kMore = 100;  // 4 KB: far below the watermark
  std::size_t received = 0;
  std::uint64_t lost = 0;
  Reader reader(
      tracer.events_map(),
      [&](const Sample&) {
        // Past the first records of the burst, the producer goes on while
        // the handler runs.
        if (++received == kBurst - 4)
          for (int i = 0; i < kMore; ++i) fire_on_cpu(prog, 0);
      },
      [&](int, std::uint64_t n) { lost += n; }, Options{.cpus = {0}});
  for (int i = 0; i < kBurst; ++i) ASSERT_EQ(fire_on_cpu(prog, 0), 0);
  pollfd ring{reader.ring_fd(0), POLLIN, 0};
  ASSERT_EQ(poll(&ring, 1, 0), 1) << "the burst's records did not wake the reader";
  ASSERT_EQ(poll(&ring, 1, 0), 0);  // (perf's readiness is cleared by the poll that saw it)
  ASSERT_TRUE(reader.consume().ok());
  EXPECT_EQ(poll(&ring, 1, 0), 0) << "the records written while the handler ran woke the reader";
  ASSERT_TRUE(reader.consume().ok());  // those records: written after the first consume() began
  EXPECT_EQ(lost, 0u);
  EXPECT_EQ(received, static_cast<std::size_t>(kBurst + kMore));
}

TEST(Adaptive, RingBufferProgramStopsWakingTheReaderUnderHeavyTraffic) {
  REQUIRE_BPF();
  WriteTracer tracer({.only_tgid = 0, .ignore_tgid = 0, .transport = tools::Transport::ringbuf,
                      .ringbuf_bytes = 1 << 20});
  Received got;
  std::uint64_t lost = 0;
  Reader reader(tracer.events_map(), got.handler(), [&](int, std::uint64_t n) { lost += n; },
                Options{.max_delay = std::chrono::minutes(1)});
  reader.count_outputs(tracer.counts_map());
  const int prog = tracer.raw_tracepoint_fd();
  EXPECT_EQ(tracer.counts().wakeup_bytes, 0u) << "light traffic: the kernel's wakeup per record";
  expect_woken_per_record(reader, prog, 2);

  constexpr int kFlood = 20000;
  std::thread writer([prog] {
    for (int i = 0; i < kFlood; ++i) fire_on_cpu(prog, 0);
  });
  bool watermark_seen = false;
  for (int i = 0; i < 2000 && got.times.size() + lost < kFlood + 2u; ++i) {
    ASSERT_TRUE(reader.poll(milliseconds(10)).ok());
    watermark_seen = watermark_seen || tracer.counts().wakeup_bytes == 64u * 1024;
  }
  writer.join();
  ASSERT_TRUE(reader.consume().ok());
  EXPECT_TRUE(watermark_seen) << "the program kept waking the reader on every record";
  EXPECT_GE(reader.total_stats().switches, 1u);
  EXPECT_EQ(got.times.size() + lost, kFlood + 2u);
  EXPECT_EQ(got.out_of_order(), 0u);

  for (int i = 0; i < 5; ++i) ASSERT_TRUE(reader.poll(milliseconds(10)).ok());
  const std::size_t flooded = got.times.size();
  expect_woken_per_record(reader, prog, 2);
  EXPECT_EQ(tracer.counts().wakeup_bytes, 0u) << "light again: a wakeup per record";
  EXPECT_EQ(reader.total_stats().switches % 2, 0u) << "switches: an odd count is polled";
  EXPECT_EQ(got.times.size(), flooded + 2);
}

// A write through the event the slot left (one that read the slot just
// before a switch) lands in the same ring: read in order, not lost.
TEST(Adaptive, ARecordWrittenThroughTheOtherEventIsReadInOrder) {
  REQUIRE_BPF();
  WriteTracer tracer({});
  Received got;
  Reader reader(tracer.events_map(), got.handler(), {}, Options{.cpus = {0}});
  const int prog = tracer.raw_tracepoint_fd();
  ASSERT_EQ(fire_on_cpu(prog, 0), 0);  // light traffic: through the event that wakes per record
  // As if the slot had just moved: through the ring's own event (ring_fd()).
  const __u32 key = 0;
  const __u32 ring_event = static_cast<__u32>(reader.ring_fd(0));
  ASSERT_EQ(bpf_map_update_elem(bpf_map__fd(tracer.events_map()), &key, &ring_event, BPF_ANY), 0);
  ASSERT_EQ(fire_on_cpu(prog, 0), 0);
  ASSERT_TRUE(reader.consume().ok());
  ASSERT_EQ(got.times.size(), 2u) << "the record written through the other event was not read";
  EXPECT_LT(got.times[0], got.times[1]);
  EXPECT_EQ(got.late, 0u);
  EXPECT_EQ(reader.total_stats().lost, 0u);
}

// Back to a wakeup per record after a burst: an output that read the slot
// just before it moved writes through the event that does not wake, and
// nothing else may come to wake the reader. The max_delay flush stays on
// until a drain 1 ms after the switch, and brings that record.
TEST(Adaptive, ARecordThatMissedTheSwitchBackIsFlushed) {
  REQUIRE_BPF();
  WriteTracer tracer({});
  const int prog = tracer.raw_tracepoint_fd();
  using clock = std::chrono::steady_clock;
  // Conclusive when the reader drained the ring again (the pass a switch
  // asks for) within 1 ms of the switch: a test stalled longer lets the
  // flush end, rightly, and tries again.
  int conclusive = 0;
  for (int attempt = 0; attempt < 5 && conclusive == 0; ++attempt) {
    Received got;
    Reader reader(tracer.events_map(), got.handler(), {},
                  Options{.cpus = {0}, .max_delay = milliseconds(20)});
    for (int i = 0; i < 1000; ++i) ASSERT_EQ(fire_on_cpu(prog, 0), 0);
    ASSERT_TRUE(reader.poll(milliseconds(1000)).ok());
    ASSERT_EQ(reader.total_stats().switches, 1u) << "a burst of 1000 left the ring woken per record";
    // Quiet: the rate falls and the ring goes back to a wakeup per record
    // (an even count), in one of these short passes.
    clock::time_point pass_start;
    const clock::time_point give_up = clock::now() + std::chrono::seconds(2);
    while (reader.total_stats().switches % 2 == 1 && clock::now() < give_up) {
      pass_start = clock::now();
      ASSERT_TRUE(reader.poll(milliseconds(0)).ok());
    }
    ASSERT_EQ(reader.total_stats().switches % 2, 0u) << "never went back to a wakeup per record";
    ASSERT_TRUE(reader.poll(milliseconds(0)).ok());  // the drain the switch asked for
    if (clock::now() - pass_start >= milliseconds(1)) continue;
    ++conclusive;
    ASSERT_EQ(got.times.size(), 1000u);

    // The late output: through the ring's own event, which wakes nobody below the watermark.
    const __u32 key = 0;
    const __u32 ring_event = static_cast<__u32>(reader.ring_fd(0));
    ASSERT_EQ(bpf_map_update_elem(bpf_map__fd(tracer.events_map()), &key, &ring_event, BPF_ANY), 0);
    ASSERT_EQ(fire_on_cpu(prog, 0), 0);
    const std::uint64_t wakeups = reader.total_stats().wakeups;
    const auto r = reader.poll(milliseconds(2000));
    ASSERT_TRUE(r.ok()) << r.error().what();
    EXPECT_EQ(*r, 1u) << "the record that missed the switch was not flushed";
    EXPECT_EQ(reader.total_stats().wakeups, wakeups) << "woken: the test proves nothing";
  }
  EXPECT_EQ(conclusive, 1) << "the test never drained within 1 ms of the switch";
}

// A ring that fills while the slot holds the event that wakes per record (a
// reader that does not poll): what it dropped is counted from that event,
// though no later record brings the kernel's report of the loss.
TEST(Adaptive, DropsThroughTheEventThatWakesAreCounted) {
  REQUIRE_BPF();
  WriteTracer tracer({});
  Received got;
  std::uint64_t lost = 0;
  Reader reader(tracer.events_map(), got.handler(), [&](int, std::uint64_t n) { lost += n; },
                Options{.pages_per_cpu = 1, .cpus = {0}});
  const int prog = tracer.raw_tracepoint_fd();
  constexpr int kWrites = 300;  // a page holds about a hundred
  for (int i = 0; i < kWrites; ++i) ASSERT_EQ(fire_on_cpu(prog, 0), 0);
  ASSERT_TRUE(reader.consume().ok());
  EXPECT_GT(lost, 0u);
  EXPECT_EQ(got.times.size() + lost, static_cast<std::size_t>(kWrites));
  EXPECT_EQ(reader.total_stats().lost, lost);
}

// The sizes of this process's perf ring mappings, smallest first.
std::vector<std::size_t> perf_mapping_sizes() {
  std::ifstream maps("/proc/self/maps");
  std::vector<std::size_t> sizes;
  for (std::string line; std::getline(maps, line);) {
    if (line.find("perf_event") == std::string::npos) continue;
    std::size_t end = 0;
    const std::size_t from = std::stoul(line, &end, 16);
    const std::size_t to = std::stoul(line.substr(end + 1), nullptr, 16);
    sizes.push_back(to - from);
  }
  std::sort(sizes.begin(), sizes.end());
  return sizes;
}

// The second event writes into the CPU's ring: adaptive maps no more than
// any fixed policy (each mapping has one more page, for control).
TEST(Adaptive, EachCpuMapsOneRing) {
  REQUIRE_BPF();
  WriteTracer tracer({});
  ASSERT_TRUE(perf_mapping_sizes().empty());
  const std::size_t page = static_cast<std::size_t>(getpagesize());
  for (const Wakeup wakeup : {Wakeup::adaptive(), Wakeup::every_record()}) {
    Reader reader(tracer.events_map(), [](const Sample&) {}, {},
                  Options{.cpus = {0}, .wakeup = wakeup});
    ASSERT_EQ(reader.ring_count(), 1u);
    EXPECT_EQ(reader.ring_bytes(), kDefaultRingBytes);
    EXPECT_EQ(perf_mapping_sizes(), (std::vector<std::size_t>{kDefaultRingBytes + page}));
  }
}

// Destroyed while the map slot holds the event that does not wake (heavy
// traffic moved it there), with a record waiting: both events, the ring and
// the slot go with the reader.
TEST(Adaptive, ADestroyedReaderLeavesNothingWhicheverEventTheSlotHolds) {
  REQUIRE_BPF();
  WriteTracer tracer({});
  const int prog = tracer.raw_tracepoint_fd();
  const int fds = testing::count_fds();
  ASSERT_TRUE(perf_mapping_sizes().empty());
  {
    Reader reader(tracer.events_map(), [](const Sample&) {}, {},
                  Options{.cpus = {0}, .max_delay = std::chrono::minutes(1)});
    // A burst at one wakeup moves the slot to the event that does not wake.
    for (int i = 0; i < 200; ++i) ASSERT_EQ(fire_on_cpu(prog, 0), 0);
    ASSERT_TRUE(reader.poll(milliseconds(5000)).ok());
    ASSERT_EQ(reader.total_stats().switches, 1u) << "the slot did not move to the polled event";
    ASSERT_EQ(fire_on_cpu(prog, 0), 0);  // written through it, left unread
    EXPECT_EQ(tracer.failures(), 0u);
  }
  EXPECT_EQ(testing::count_fds(), fds);
  EXPECT_TRUE(perf_mapping_sizes().empty());
  const std::uint64_t failures = tracer.failures();
  ASSERT_EQ(fire_on_cpu(prog, 0), 0);
  EXPECT_EQ(tracer.failures(), failures + 1) << "the map slot still holds an event";
}

}  // namespace
}  // namespace perfbuf
