// CPU hotplug on the real kernel: a CPU taken offline and brought back, under
// load, several times. Every CPU is brought back online whatever happens.
#include <gtest/gtest.h>

#include <perfbuf/reader.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <fstream>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "bpf_support.h"
#ifdef PERFBUF_CLI
#include "cli_runner.h"
#endif
#include "write_tracer.h"

namespace perfbuf {
namespace {

using std::chrono::milliseconds;
using testing::fire_on_cpu;
using tools::WriteTracer;

std::string online_file(int cpu) {
  return "/sys/devices/system/cpu/cpu" + std::to_string(cpu) + "/online";
}

// Empty on success, else why the kernel refused.
std::string set_online(int cpu, bool online) {
  std::ofstream f(online_file(cpu));
  if (!f) return "cannot open " + online_file(cpu) + " (not root, or the CPU cannot be unplugged)";
  f << (online ? "1" : "0") << std::flush;
  if (!f) return "the kernel refused to take CPU " + std::to_string(cpu) +
                 (online ? " online" : " offline");
  return {};
}

// Brings every CPU that is offline back online when the test ends, passed or not.
struct AllCpusBackOnline {
  ~AllCpusBackOnline() {
    for (int cpu = 1; cpu < 4096; ++cpu) {
      std::ifstream f(online_file(cpu));
      if (!f) {
        if (cpu > 64) break;
        continue;
      }
      int online = 1;
      f >> online;
      if (!online) set_online(cpu, true);
    }
  }
};

TEST(Hotplug, CpuOfflineAndBackUnderLoadLosesNothingSilently) {
  REQUIRE_BPF();
  REQUIRE_SECOND_CPU(cpu);
  AllCpusBackOnline restore;
  WriteTracer tracer({});
  std::map<int, std::uint64_t> received;
  std::uint64_t lost = 0;
  Reader reader(tracer.events_map(), [&](const Sample& s) { ++received[s.cpu]; },
                [&](int, std::uint64_t n) { lost += n; });
  reader.count_outputs(tracer.counts_map());
  const int prog = tracer.raw_tracepoint_fd();

  // Load on both CPUs all along (a fire on an offline CPU fails: not an output).
  std::atomic<bool> stop{false};
  std::thread load([&] {
    for (int i = 0; i < 1000000 && !stop; ++i) {
      fire_on_cpu(prog, 0);
      fire_on_cpu(prog, *cpu);
    }
  });
  constexpr int kCycles = 3, kAfter = 200;
  for (int cycle = 0; cycle < kCycles; ++cycle) {
    for (int i = 0; i < 5; ++i) ASSERT_TRUE(reader.poll(milliseconds(5)).ok());
    const std::string off = set_online(*cpu, false);
    if (!off.empty()) {
      stop = true;
      load.join();
      FAIL() << off;
    }
    for (int i = 0; i < 5; ++i) ASSERT_TRUE(reader.poll(milliseconds(5)).ok());
    const std::string on = set_online(*cpu, true);
    if (!on.empty()) {
      stop = true;
      load.join();
      FAIL() << on;
    }
    // The kernel sends its CPU event before the write returns: one poll takes it.
    ASSERT_TRUE(reader.poll(milliseconds(5)).ok());
    // Records written on the CPU after it came back arrive.
    const std::uint64_t before = received[*cpu];
    for (int i = 0; i < kAfter; ++i) ASSERT_EQ(fire_on_cpu(prog, *cpu), 0);
    for (int i = 0; i < 200 && received[*cpu] < before + kAfter; ++i)
      ASSERT_TRUE(reader.poll(milliseconds(10)).ok());
    EXPECT_GE(received[*cpu], before + kAfter) << "cycle " << cycle << ": the CPU's records stopped";
  }
  stop = true;
  load.join();
  ASSERT_TRUE(reader.consume().ok());

  const CpuStats total = reader.total_stats();
  std::uint64_t records = 0;
  for (const auto& [c, n] : received) records += n;
  EXPECT_EQ(records, total.records);
  EXPECT_EQ(total.attempts, tracer.attempts());
  EXPECT_EQ(total.records + total.lost + total.failed, total.attempts)
      << "records " << total.records << ", lost " << total.lost << ", failed " << total.failed;
  EXPECT_EQ(lost, total.lost + total.failed);
  EXPECT_EQ(reader.ring_count(), online_cpus().size()) << "one ring per CPU, no more";
  for (const CpuStats& s : reader.stats())  // (more if the kernel's CPU events overflowed)
    if (s.cpu == *cpu) EXPECT_GE(s.reopens, static_cast<std::uint64_t>(kCycles));
}

TEST(Hotplug, WhatARingHeldWhenItsCpuWentOfflineIsDeliveredBeforeItsNewerRecords) {
  REQUIRE_BPF();
  REQUIRE_SECOND_CPU(cpu);
  AllCpusBackOnline restore;
  WriteTracer tracer({});
  std::vector<std::uint64_t> times;  // write_event::time_ns of the CPU's records, as received
  std::uint64_t lost = 0;
  // Below the watermark and with a minute's max_delay, nothing reads the ring
  // before the reader sees the CPU come back: the records are still in the
  // old ring when its events are replaced.
  Reader reader(
      tracer.events_map(),
      [&](const Sample& s) {
        const auto e = tools::checked_write_event(s);
        if (!e) ADD_FAILURE() << "a bad record";
        else if (s.cpu == *cpu) times.push_back(e->time_ns);
      },
      [&](int, std::uint64_t n) { lost += n; },
      Options{.wakeup = Wakeup::watermark(0), .max_delay = std::chrono::minutes(1)});
  reader.count_outputs(tracer.counts_map());
  const int prog = tracer.raw_tracepoint_fd();

  constexpr int kBefore = 50, kAfter = 30;
  for (int i = 0; i < kBefore; ++i) ASSERT_EQ(fire_on_cpu(prog, *cpu), 0);
  const std::string off = set_online(*cpu, false);
  ASSERT_TRUE(off.empty()) << off;
  const std::string on = set_online(*cpu, true);
  ASSERT_TRUE(on.empty()) << on;
  // The kernel sends its CPU events before the writes return: this poll
  // gives the CPU new events, and reads nothing (no wakeup, no flush due).
  ASSERT_TRUE(reader.poll(milliseconds(20)).ok());
  for (int i = 0; i < kAfter; ++i) ASSERT_EQ(fire_on_cpu(prog, *cpu), 0);
  ASSERT_TRUE(reader.consume().ok());

  EXPECT_EQ(tracer.failures(), 0u) << "an output found no ring: the new events came too late";
  EXPECT_EQ(lost, 0u);
  ASSERT_EQ(times.size(), static_cast<std::size_t>(kBefore + kAfter))
      << "what the ring held when its CPU went offline was not delivered";
  EXPECT_TRUE(std::is_sorted(times.begin(), times.end())) << "the old ring's records came later";
}

#ifdef PERFBUF_CLI
// The scenario as a user meets it: `perfbuf trace --pid` running while the
// CPU a child is pinned to goes offline and comes back; every write the
// child makes on that CPU afterwards is counted, none is reported as lost.
TEST(Hotplug, TracePidCountsEveryWriteOfAChildOnACpuThatCameBack) {
  REQUIRE_BPF();
  REQUIRE_SECOND_CPU(cpu);
  AllCpusBackOnline restore;
  constexpr int kWrites = 20000;
  // Rings that hold all of it: whether the reader keeps up is not the question.
  testing::WritingChild child(kWrites, 0, *cpu);
  testing::Cli cli({"trace", "--pid", std::to_string(child.pid()), "--json", "--pages", "1024"});
  const std::string start = cli.read_line().value_or("");  // attached and reading from here on
  ASSERT_EQ(testing::json_type(start), "start") << start;
  ASSERT_EQ(set_online(*cpu, false), "");
  ASSERT_EQ(set_online(*cpu, true), "");
  // Until the tool has followed the CPU back (an interval line, once a
  // second, says so), the program's outputs there fail (counted): wait.
  bool followed = false;
  for (int i = 0; i < 20 && !followed; ++i) {
    const std::optional<std::string> line = cli.read_line();
    ASSERT_TRUE(line.has_value()) << "perfbuf trace ended early";
    followed = testing::json_type(*line) == "interval" && testing::json_number(*line, "reopens") >= 1;
  }
  ASSERT_TRUE(followed) << "no interval line said the CPU's events were reopened";
  ASSERT_EQ(child.release_and_wait(), 0) << "the child's writes failed";
  // The tool reads the rest and prints its summary at Ctrl-C.
  cli.signal(SIGINT);
  std::string out, err;
  ASSERT_EQ(cli.wait(out, err), 0) << err;
  const std::string summary = testing::last_line(out);
  EXPECT_EQ(testing::json_number(summary, "attempts"), kWrites) << summary;
  EXPECT_EQ(testing::json_number(summary, "received"), kWrites) << summary;
  EXPECT_EQ(testing::json_number(summary, "lost"), 0) << summary;
  EXPECT_EQ(testing::json_number(summary, "send_failures"), 0) << summary;
  EXPECT_EQ(testing::json_number(summary, "reopens"), 1) << summary;
  // All on the CPU that came back.
  std::uint64_t on_cpu = 0;
  const nlohmann::json parsed = testing::parse_json(summary);
  for (const auto& entry : parsed["per_cpu"])
    if (entry["cpu"] == *cpu) on_cpu = entry["records"];
  EXPECT_EQ(on_cpu, static_cast<std::uint64_t>(kWrites)) << summary;
}
#endif

}  // namespace
}  // namespace perfbuf
