// The flight recorder on the real kernel: backward, overwritable perf rings
// filled by the write tracer's program, run on chosen CPUs with
// BPF_PROG_TEST_RUN (one record per run, nothing else writes: the program
// is loaded, not attached).
#include <gtest/gtest.h>

#include <perfbuf/flight_recorder.h>
#include <perfbuf/reader.h>

#include <time.h>
#include <unistd.h>

#include <memory>
#include <string>
#include <vector>

#include "bpf_support.h"
#include "write_event.h"
#include "write_tracer.h"

namespace perfbuf {
namespace {

using testing::fire_on_cpu;
using tools::WriteTracer;

std::uint64_t monotonic_ns() {
  timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1000000000ull + t.tv_nsec;
}

// A write_event record with PERF_SAMPLE_TIME: 8 header + 8 time + 4 size +
// 24 payload, 48 bytes with the kernel's padding.
constexpr std::size_t kRecordBytes = 48;

// Fires the program `n` times on `cpu`; stamps[i] is taken just before run i
// (and one more after the last), so run i's record is stamped in
// [stamps[i], stamps[i + 1]].
void fire(int prog, int cpu, int n, std::vector<std::uint64_t>& stamps) {
  for (int i = 0; i < n; ++i) {
    stamps.push_back(monotonic_ns());
    ASSERT_EQ(fire_on_cpu(prog, cpu), 0) << "cpu " << cpu;
  }
}

// The record is run `run`'s: its kernel stamp and the program's own lie
// between the stamps around that run, and its cookie is right.
void expect_run(const FlightRecord& r, const std::vector<std::uint64_t>& stamps, std::size_t run,
                std::size_t index) {
  write_event e{};
  ASSERT_TRUE(r.read(e)) << index;
  EXPECT_EQ(e.cookie, PERFBUF_WRITE_COOKIE) << index;
  EXPECT_GE(r.time_ns, stamps[run]) << "record " << index << " is not run " << run;
  EXPECT_LE(r.time_ns, stamps[run + 1]) << "record " << index << " is not run " << run;
  EXPECT_GE(e.time_ns, stamps[run]) << index;
  EXPECT_LE(e.time_ns, stamps[run + 1]) << index;
}

// On CPU 0 and on another CPU (the highest online one), each alone in a
// one-page recorder.
TEST(FlightKernel, KeepsExactlyTheNewestRecordsOfAKnownSequenceInOrder) {
  REQUIRE_BPF();
  REQUIRE_SECOND_CPU(other);
  WriteTracer tracer({});
  for (int cpu : {0, *other}) {
    SCOPED_TRACE("cpu " + std::to_string(cpu));
    FlightRecorder recorder(tracer.events_map(),
                            {.bytes_per_cpu = static_cast<std::size_t>(getpagesize()),
                             .cpus = {cpu}});
    const std::size_t fit = recorder.ring_bytes() / kRecordBytes;  // 85 in a 4 KiB page
    const int runs = static_cast<int>(fit) * 2 + 7;
    std::vector<std::uint64_t> stamps;
    fire(tracer.raw_tracepoint_fd(), cpu, runs, stamps);
    stamps.push_back(monotonic_ns());

    const Snapshot snap = recorder.snapshot();
    ASSERT_EQ(snap.records.size(), fit);
    ASSERT_EQ(snap.cpus.size(), 1u);
    EXPECT_EQ(snap.cpus[0].cpu, cpu);
    EXPECT_EQ(snap.cpus[0].records, fit);
    EXPECT_EQ(snap.cpus[0].dropped_partial, recorder.ring_bytes() % kRecordBytes != 0);
    EXPECT_FALSE(snap.cpus[0].complete);
    EXPECT_EQ(snap.cpus[0].corrupt, nullptr);
    EXPECT_EQ(snap.lost, 0u);
    for (std::size_t i = 0; i < fit; ++i) {
      EXPECT_EQ(snap.records[i].cpu, cpu);
      expect_run(snap.records[i], stamps, runs - fit + i, i);  // the last `fit` runs, in order
    }
  }
  EXPECT_EQ(tracer.failures(), 0u);
}

TEST(FlightKernel, OutputResumesAfterASnapshot) {
  REQUIRE_BPF();
  WriteTracer tracer({});
  FlightRecorder recorder(tracer.events_map(), {.cpus = {0}});  // 64 KiB: nothing overwritten
  std::vector<std::uint64_t> stamps;
  fire(tracer.raw_tracepoint_fd(), 0, 10, stamps);
  stamps.push_back(monotonic_ns());
  const Snapshot first = recorder.snapshot();
  ASSERT_EQ(first.records.size(), 10u);
  EXPECT_TRUE(first.cpus[0].complete);
  for (std::size_t i = 0; i < 10; ++i) expect_run(first.records[i], stamps, i, i);

  stamps.pop_back();
  fire(tracer.raw_tracepoint_fd(), 0, 5, stamps);
  stamps.push_back(monotonic_ns());
  const Snapshot second = recorder.snapshot();
  ASSERT_EQ(second.records.size(), 15u) << "output was not resumed after the first snapshot";
  for (std::size_t i = 0; i < 15; ++i) expect_run(second.records[i], stamps, i, i);
  EXPECT_EQ(second.lost, 0u);
  EXPECT_EQ(tracer.failures(), 0u);
}

TEST(FlightKernel, TwoCpusMergedByTime) {
  REQUIRE_BPF();
  REQUIRE_SECOND_CPU(other);
  WriteTracer tracer({});
  FlightRecorder recorder(tracer.events_map(), {.cpus = {0, *other}});
  std::vector<std::uint64_t> stamps;
  std::vector<int> cpus;
  for (int i = 0; i < 12; ++i) {
    const int cpu = i % 3 == 1 ? 0 : *other;  // the CPUs interleaved unevenly
    cpus.push_back(cpu);
    fire(tracer.raw_tracepoint_fd(), cpu, 1, stamps);
  }
  stamps.push_back(monotonic_ns());
  const Snapshot snap = recorder.snapshot();
  ASSERT_EQ(snap.records.size(), 12u);
  for (std::size_t i = 0; i < 12; ++i) {
    EXPECT_EQ(snap.records[i].cpu, cpus[i]) << i;
    expect_run(snap.records[i], stamps, i, i);
  }
}

TEST(FlightKernel, EveryOnlineCpuByDefaultAndSlotsEmptiedWhenItGoes) {
  REQUIRE_BPF();
  WriteTracer tracer({});
  {
    FlightRecorder recorder(tracer.events_map());
    EXPECT_EQ(recorder.cpus(), online_cpus());
    EXPECT_EQ(recorder.ring_bytes(), std::max<std::size_t>(64 * 1024, getpagesize()));
    for (int cpu : online_cpus()) ASSERT_EQ(fire_on_cpu(tracer.raw_tracepoint_fd(), cpu), 0);
    const Snapshot snap = recorder.snapshot();
    ASSERT_EQ(snap.records.size(), online_cpus().size());
    EXPECT_EQ(tracer.failures(), 0u);
  }
  // Its events are out of the map: the program's outputs now fail.
  ASSERT_EQ(fire_on_cpu(tracer.raw_tracepoint_fd(), 0), 0);
  EXPECT_EQ(tracer.failures(), 1u);
}

// One registry of slot owners for readers and recorders: whoever goes
// first leaves the newer one's ring in the map.
TEST(FlightKernel, ANewerReaderOrRecorderKeepsItsSlotWhenTheOlderGoes) {
  REQUIRE_BPF();
  WriteTracer tracer({});
  const int prog = tracer.raw_tracepoint_fd();
  Options reader_options;
  reader_options.cpus = {0};
  FlightOptions flight_options;
  flight_options.cpus = {0};

  auto recorder = std::make_unique<FlightRecorder>(tracer.events_map(), flight_options);
  int received = 0;
  auto reader = std::make_unique<Reader>(
      tracer.events_map(), [&](const Sample&) { ++received; }, LostHandler{}, reader_options);
  recorder.reset();
  ASSERT_EQ(fire_on_cpu(prog, 0), 0);
  ASSERT_TRUE(reader->consume().ok());
  EXPECT_EQ(received, 1) << "the recorder emptied the reader's slot";

  recorder = std::make_unique<FlightRecorder>(tracer.events_map(), flight_options);
  reader.reset();
  ASSERT_EQ(fire_on_cpu(prog, 0), 0);
  EXPECT_EQ(recorder->snapshot().records.size(), 1u) << "the reader emptied the recorder's slot";
  EXPECT_EQ(tracer.failures(), 0u);
}

TEST(FlightKernel, BadSizesAndMapsSayWhatIsAccepted) {
  REQUIRE_BPF();
  WriteTracer tracer({});
  const std::size_t page = getpagesize();
  for (std::size_t bytes : {3 * page, page / 2, 6 * page}) {
    try {
      FlightRecorder recorder(tracer.events_map(), {.bytes_per_cpu = bytes});
      ADD_FAILURE() << bytes << " bytes accepted";
    } catch (const Error& e) {
      EXPECT_EQ(e.errnum(), EINVAL);
      EXPECT_NE(std::string(e.what()).find("must be a power of two of pages"), std::string::npos)
          << e.what();
    }
  }
  try {
    FlightRecorder recorder(tracer.counts_map());
    ADD_FAILURE() << "a counts map accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("not BPF_MAP_TYPE_PERF_EVENT_ARRAY"), std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace perfbuf
