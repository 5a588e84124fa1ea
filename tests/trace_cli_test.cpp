// `perfbuf trace` run as a user runs it: a separate process, its output parsed.
#include <gtest/gtest.h>

#include <bpf/bpf.h>
#include <dirent.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <signal.h>

#include <algorithm>
#include <fstream>
#include <optional>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "bpf_support.h"
#include "cli_runner.h"

namespace perfbuf {
namespace {

using testing::Cli;
using testing::json_lines;
using testing::json_number;
using testing::json_type;
using testing::parse_json;
using testing::last_line;
using testing::run_cli;

TEST(TraceCli, BadArgumentsGiveUsageAndExitTwo) {
  for (std::vector<std::string> args :
       {std::vector<std::string>{"trace", "--bogus"}, {"trace", "--pages", "3"},
        {"trace", "--attach", "nope"}, {"trace", "--transport", "pipe"}, {"trace", "--ordered", "--transport", "ringbuf"}, {"trace", "--duration", "-1"}, {"trace", "--pid"},
        {"trace", "--pid", "abc"}, {"trace", "--pid", "1073741823"}, {"trace", "--duration", "nan"}, {"trace", "--duration", "inf"},
        {"nonsense"}}) {
    std::string out, err;
    EXPECT_EQ(run_cli(args, out, err), 2) << args.back();
    EXPECT_NE(err.find("usage: perfbuf"), std::string::npos) << err;
  }
}

TEST(TraceCli, HelpExitsZero) {
  std::string out, err;
  EXPECT_EQ(run_cli({"trace", "--help"}, out, err), 0);
  EXPECT_NE(out.find("--attach"), std::string::npos);
}

// Starts `perfbuf trace --pid CHILD`, lets the child write K times, reads the summary.
struct PidRun {
  int exit_code;
  std::string start, summary, out, err;
};

PidRun trace_child_writes(int writes, const std::string& attach,
                          const std::vector<std::string>& more_args = {}) {
  testing::WritingChild child(writes);
  std::vector<std::string> args{"trace", "--pid", std::to_string(child.pid()), "--json",
                                "--duration", "1.5", "--attach", attach};
  args.insert(args.end(), more_args.begin(), more_args.end());
  Cli cli(args);
  PidRun r;
  r.start = cli.read_line().value_or("");  // attached and reading from here on
  if (child.release_and_wait() != 0) throw std::runtime_error("child failed");
  r.exit_code = cli.wait(r.out, r.err);
  r.summary = last_line(r.out);
  return r;
}

// A record's bytes as the reader hands them out: the 24-byte write_event; a
// perf record's also carry the 4 bytes of padding the kernel adds.
constexpr long long kPerfRecordBytes = 28, kRingbufRecordBytes = 24;

// The ring telemetry of a --json summary: each ring's bytes are its records',
// a ring that handed out records was drained and filled no further than
// ring_bytes, and the summary's totals add its rings up.
void expect_ring_telemetry(const std::string& summary, long long record_bytes,
                           long long ring_bytes) {
  const nlohmann::json s = parse_json(summary);
  ASSERT_TRUE(s.is_object() && s.contains("per_cpu")) << summary;
  long long bytes = 0, drains = 0, drain_ns = 0, high_water = 0, switches = 0;
  for (const nlohmann::json& ring : s["per_cpu"]) {
    const long long records = ring.value("records", -1LL);
    const long long ring_high_water = ring.value("fill_high_water_bytes", -1LL);
    EXPECT_EQ(ring.value("bytes", -1LL), records * record_bytes) << ring.dump();
    if (records > 0) {
      EXPECT_GT(ring.value("drains", -1LL), 0) << ring.dump();
      EXPECT_GT(ring.value("drain_ns", -1LL), 0) << ring.dump();
      EXPECT_GT(ring_high_water, 0) << ring.dump();
    }
    EXPECT_LE(ring_high_water, ring_bytes) << ring.dump();
    EXPECT_GE(ring.value("switches", -1LL), 0) << ring.dump();
    bytes += ring.value("bytes", 0LL);
    drains += ring.value("drains", 0LL);
    drain_ns += ring.value("drain_ns", 0LL);
    high_water = std::max(high_water, ring_high_water);
    switches += ring.value("switches", 0LL);
  }
  EXPECT_EQ(json_number(summary, "bytes"), bytes) << summary;
  EXPECT_EQ(json_number(summary, "drains"), drains) << summary;
  EXPECT_EQ(json_number(summary, "drain_ns"), drain_ns) << summary;
  EXPECT_EQ(json_number(summary, "fill_high_water_bytes"), high_water) << summary;
  EXPECT_EQ(json_number(summary, "switches"), switches) << summary;
}

class TraceCliAttach : public ::testing::TestWithParam<const char*> {};

TEST_P(TraceCliAttach, PidFilterCountsExactlyTheChildsWrites) {
  REQUIRE_BPF();
  constexpr int kWrites = 5000;
  // Rings that hold the whole burst (1 MiB even for the ring that wakes per
  // record): then no record may be lost, even when the machine keeps the
  // reader off its CPUs for all of the child's writes.
  const PidRun r = trace_child_writes(kWrites, GetParam(), {"--pages", "1024"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(json_number(r.summary, "attempts"), kWrites) << r.summary;
  EXPECT_EQ(json_type(r.start), "start") << r.start;
  EXPECT_EQ(json_type(r.summary), "summary") << r.summary;
  EXPECT_EQ(json_number(r.summary, "received"), kWrites) << r.summary;
  EXPECT_EQ(json_number(r.summary, "lost"), 0) << r.summary;
  EXPECT_EQ(json_number(r.summary, "cookie_errors"), 0) << r.summary;
  EXPECT_TRUE(json_number(r.summary, "seconds").has_value()) << r.summary;
  EXPECT_EQ(json_number(r.summary, "bytes"), kWrites * kPerfRecordBytes) << r.summary;
  expect_ring_telemetry(r.summary, kPerfRecordBytes, 1024LL * getpagesize());
  const nlohmann::json summary = parse_json(r.summary);
  if (std::string(GetParam()) != "auto")
    EXPECT_EQ(summary.value("attach", ""), GetParam()) << r.summary;
  else
    EXPECT_NE(summary.value("attach", ""), "") << r.summary;
}

TEST(TraceCli, RingbufTransportCountsExactlyTheChildsWrites) {
  REQUIRE_BPF();
  constexpr int kWrites = 5000;
  const PidRun r = trace_child_writes(kWrites, "raw_tracepoint", {"--transport", "ringbuf"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(parse_json(r.start).value("transport", ""), "ringbuf") << r.start;
  EXPECT_EQ(json_number(r.start, "rings"), 1) << r.start;
  EXPECT_EQ(json_number(r.summary, "received"), kWrites) << r.summary;
  EXPECT_EQ(json_number(r.summary, "attempts"), kWrites) << r.summary;
  EXPECT_EQ(json_number(r.summary, "send_failures"), 0) << r.summary;
  const nlohmann::json per_cpu = parse_json(r.summary)["per_cpu"];
  ASSERT_EQ(per_cpu.size(), 1u) << r.summary;
  EXPECT_EQ(per_cpu[0]["cpu"], -1) << r.summary;
  EXPECT_EQ(per_cpu[0].value("bytes", -1LL), kWrites * kRingbufRecordBytes) << r.summary;
  expect_ring_telemetry(r.summary, kRingbufRecordBytes,
                        json_number(r.start, "pages").value_or(0) * getpagesize());
}

// A ring buffer's full-ring loss is an output that failed in the program:
// the tool is stopped while the child writes far more than one page holds.
TEST(TraceCli, JsonSummaryReportsRingBufferOutputsThatFailed) {
  REQUIRE_BPF();
  constexpr int kFlood = 20000;
  testing::WritingChild child(kFlood);
  Cli cli({"trace", "--pid", std::to_string(child.pid()), "--json", "--transport", "ringbuf",
           "--pages", "1", "--duration", "1.5"});
  const std::string start = cli.read_line().value_or("");
  ASSERT_EQ(json_type(start), "start") << start;
  cli.signal(SIGSTOP);
  const int child_exit = child.release_and_wait();  // every write while nobody reads
  cli.signal(SIGCONT);
  ASSERT_EQ(child_exit, 0);
  std::string out, err;
  ASSERT_EQ(cli.wait(out, err), 0) << err;

  const std::string summary = last_line(out);
  ASSERT_EQ(json_type(summary), "summary") << out;
  const long long failed = json_number(summary, "send_failures").value_or(-1);
  EXPECT_GT(failed, 0) << "the one-page ring buffer never filled, or its failures went unreported: "
                       << summary;
  EXPECT_EQ(json_number(summary, "attempts"), kFlood) << summary;
  EXPECT_EQ(json_number(summary, "lost"), failed) << summary;
  EXPECT_EQ(json_number(summary, "kernel_lost"), 0) << summary;
  EXPECT_EQ(json_number(summary, "received").value_or(-1) + failed, kFlood) << summary;
}

INSTANTIATE_TEST_SUITE_P(Modes, TraceCliAttach,
                         ::testing::Values("auto", "tracepoint", "raw_tracepoint"));

// Where the kernel has kprobes the kprobe path must count exactly; where it has
// none, asking for it must fail with the reason.
TEST(TraceCli, KprobeCountsExactlyWhereTheKernelHasKprobes) {
  REQUIRE_BPF();
  if (testing::kernel_has_kprobes()) {
    constexpr int kWrites = 2000;
    const PidRun r = trace_child_writes(kWrites, "kprobe");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(json_number(r.summary, "received"), kWrites) << r.summary;
    EXPECT_EQ(parse_json(r.summary).value("attach", ""), "kprobe") << r.summary;
  } else {
    std::string out, err;
    EXPECT_EQ(run_cli({"trace", "--attach", "kprobe", "--duration", "0.2"}, out, err), 1) << out;
    EXPECT_NE(err.find("could not attach to write(2) with --attach kprobe:\n  kprobe on "),
              std::string::npos)
        << err;
  }
}

TEST(TraceCli, AutoPicksTheFirstHookThisKernelHas) {
  REQUIRE_BPF();
  const PidRun r = trace_child_writes(100, "auto");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const char* expected = testing::kernel_has_kprobes() ? "kprobe" : "tracepoint";
  EXPECT_EQ(parse_json(r.summary).value("attach", ""), expected) << r.summary;
}

TEST(TraceCli, CtrlCPrintsTheSummaryAndExitsZero) {
  REQUIRE_BPF();
  Cli cli({"trace"});
  std::optional<std::string> line;
  while ((line = cli.read_line()) && line->find("tracing write(2) via") == std::string::npos) {
  }
  ASSERT_TRUE(line.has_value()) << "no start line";
  cli.signal(SIGINT);
  std::string out, err;
  EXPECT_EQ(cli.wait(out, err), 0) << err;
  EXPECT_NE(out.find("summary: received"), std::string::npos) << out;
  EXPECT_NE(out.find("cpu 0:"), std::string::npos) << out;
}

TEST(TraceCli, PrintsEveryEventAndARatePerSecond) {
  REQUIRE_BPF();
  constexpr int kWrites = 50;
  testing::WritingChild child(kWrites);
  const std::string pid = std::to_string(child.pid());
  Cli cli({"trace", "--duration", "1.2", "--events", "--pid", pid});
  std::optional<std::string> line;
  while ((line = cli.read_line()) && line->find("tracing write(2) via") == std::string::npos) {
  }
  ASSERT_TRUE(line.has_value()) << "no start line";
  ASSERT_EQ(child.release_and_wait(), 0);
  std::string out, err;
  ASSERT_EQ(cli.wait(out, err), 0) << err;
  // "<seconds>.<nanoseconds> cpu N pid P tid T", one per write, P and T the child's.
  const std::regex event("[0-9]+\\.[0-9]{9} cpu [0-9]+ pid " + pid + " tid " + pid + "\n");
  const auto events = std::distance(std::sregex_iterator(out.begin(), out.end(), event),
                                    std::sregex_iterator());
  EXPECT_EQ(events, kWrites) << out;
  EXPECT_NE(out.find("recv "), std::string::npos) << out;
  EXPECT_NE(out.find(" events/s"), std::string::npos) << out;
  EXPECT_NE(out.find("delay from the program to the reader over " + std::to_string(kWrites) +
                     " events: p50 "),
            std::string::npos)
      << out;
}

// With --events each event says how late it reached the reader, from the
// program's stamp on the same clock, and the summary gives their spread.
TEST(TraceCli, EventsCarryTheirDelayFromTheProgram) {
  REQUIRE_BPF();
  constexpr int kWrites = 50;
  constexpr double kRunUs = 1.2e6;
  for (const char* transport : {"perf", "ringbuf"}) {
    SCOPED_TRACE(transport);
    testing::WritingChild child(kWrites);
    Cli cli({"trace", "--duration", "1.2", "--events", "--json", "--transport", transport,
             "--pid", std::to_string(child.pid())});
    ASSERT_TRUE(cli.read_line().has_value()) << "no start line";
    ASSERT_EQ(child.release_and_wait(), 0);
    std::string out, err;
    ASSERT_EQ(cli.wait(out, err), 0) << err;
    int events = 0;
    double longest = 0;
    for (const nlohmann::json& line : json_lines(out)) {
      if (line.value("type", "") != "event") continue;
      ++events;
      // Not 0 (the reader reads the clock after the program did), and no
      // longer than the run (same clock: not a stamp of another one).
      const double delay = line.value("delay_us", -1.0);
      EXPECT_GT(delay, 0) << line.dump();
      EXPECT_LT(delay, kRunUs) << line.dump();
      longest = std::max(longest, delay);
    }
    EXPECT_EQ(events, kWrites) << out;
    const nlohmann::json summary = parse_json(last_line(out));
    const double p50 = summary.value("delay_p50_us", -1.0);
    const double p99 = summary.value("delay_p99_us", -1.0);
    EXPECT_GT(p50, 0) << summary.dump();
    EXPECT_LE(p50, p99) << summary.dump();
    EXPECT_LE(p99, summary.value("delay_max_us", -1.0)) << summary.dump();
    EXPECT_DOUBLE_EQ(summary.value("delay_max_us", -1.0), longest) << summary.dump();
  }
}

// A write of the tool's output that a signal cuts short (EINTR, made here by
// strace at the tool's third write(2), with no signal at all) is written
// again: no event line formatted before it is dropped.
TEST(TraceCli, AWriteCutShortByASignalLosesNoLine) {
  REQUIRE_BPF();
  if (access("/usr/bin/strace", X_OK) != 0) {
    if (std::getenv("CI")) FAIL() << "strace is missing (scripts/install-deps.sh installs it)";
    GTEST_SKIP() << "strace is not installed";
  }
  testing::WritingChild child(20000);  // ~2 MB of event lines: many writes
  // LeakSanitizer cannot run under ptrace: off for the tool in a sanitizer build.
  const char* asan = std::getenv("ASAN_OPTIONS");
  const std::string asan_options =
      "ASAN_OPTIONS=" + std::string(asan ? asan : "") + (asan ? ":" : "") + "detect_leaks=0";
  Cli cli({"trace", "--events", "--json", "--duration", "1.5", "--pid", std::to_string(child.pid())},
          {},
          {"/usr/bin/strace", "-qq", "-o", "/dev/null", "-E", asan_options, "-e", "trace=write",
           "-e", "inject=write:error=EINTR:when=3"});
  ASSERT_TRUE(cli.read_line().has_value()) << "no start line";
  ASSERT_EQ(child.release_and_wait(), 0);
  std::string out, err;
  ASSERT_EQ(cli.wait(out, err), 0) << err;
  long long events = 0;
  for (const nlohmann::json& line : json_lines(out)) events += line.value("type", "") == "event";
  const std::string summary = last_line(out);
  EXPECT_GT(events, 2 * 65536 / 100) << "too few lines for a third write of events";
  EXPECT_EQ(json_number(summary, "events_printed"), events) << summary;
  EXPECT_EQ(json_number(summary, "received"), events) << summary;
}

// The BPF programs a process holds, from the fdinfo of its fds.
std::vector<unsigned> bpf_prog_ids(pid_t pid) {
  std::vector<unsigned> ids;
  const std::string dir = "/proc/" + std::to_string(pid) + "/fdinfo";
  DIR* d = opendir(dir.c_str());
  if (!d) return ids;
  while (dirent* e = readdir(d)) {
    std::ifstream info(dir + "/" + e->d_name);
    for (std::string line; std::getline(info, line);)
      if (line.rfind("prog_id:", 0) == 0) ids.push_back(std::stoul(line.substr(8)));
  }
  closedir(d);
  return ids;
}

bool bpf_prog_exists(unsigned id) {
  const int fd = bpf_prog_get_fd_by_id(id);
  if (fd < 0) return false;
  close(fd);
  return true;
}

// True once `pid` is blocked writing to its stdout (a full pipe), from /proc/PID/syscall.
bool blocked_writing_stdout(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/syscall");
  std::string nr, fd;
  return in >> nr >> fd && nr == std::to_string(SYS_write) && fd == "0x1";
}

TEST(TraceCli, CtrlCDuringADrainPrintsTheSummaryAndLeavesNoProgram) {
  REQUIRE_BPF();
  testing::WritingChild child(300000);
  Cli cli({"trace", "--events", "--json", "--pid", std::to_string(child.pid())});
  std::optional<std::string> line = cli.read_line();
  ASSERT_TRUE(line && json_type(*line) == "start") << "no start line";
  const std::vector<unsigned> progs = bpf_prog_ids(cli.pid());
  EXPECT_FALSE(progs.empty());
  child.release();
  // Events stream out; we stop reading, so the tool blocks in a write from its
  // record handler, in the middle of a drain. That is where Ctrl-C lands.
  long long events_read = 0;
  for (int i = 0; i < 2000 && (line = cli.read_line()); ++i) events_read += json_type(*line) == "event";
  ASSERT_TRUE(line.has_value());
  EXPECT_EQ(json_type(*line), "event") << *line;
  bool blocked = false;
  for (int i = 0; i < 500 && !(blocked = blocked_writing_stdout(cli.pid())); ++i) usleep(10000);
  ASSERT_TRUE(blocked) << "the tool never blocked writing its output";
  cli.signal(SIGINT);
  std::string out, err;
  EXPECT_EQ(cli.wait(out, err), 0) << err;
  // After the signal it prints no new event: only what was already in the pipe
  // and in its output buffer (64 KiB each) comes out, then the summary (and
  // what this test's own stream had read ahead of its last line, up to 4 KiB).
  const std::size_t summary_at = out.rfind("{\"type\":\"summary\"");
  ASSERT_NE(summary_at, std::string::npos) << last_line(out);
  EXPECT_LE(summary_at, std::size_t(2 * 65536 + 4096 + 256)) << "events kept coming after Ctrl-C";
  const std::string summary = out.substr(summary_at);
  EXPECT_EQ(json_number(summary, "cookie_errors"), 0) << summary;
  // Every event line the tool printed reached us: the signal that cut a write
  // short dropped none of the lines waiting in its buffer.
  for (const nlohmann::json& l : json_lines(out)) events_read += l.value("type", "") == "event";
  EXPECT_EQ(json_number(summary, "events_printed"), events_read) << summary;
  // The records that piled up while the tool was blocked moved its ring to polling.
  EXPECT_GE(json_number(summary, "switches").value_or(-1), 1) << summary;
  // Complete: what was still in the rings at the signal is counted, not dropped.
  EXPECT_EQ(json_number(summary, "received").value_or(-1) + json_number(summary, "lost").value_or(-1),
            json_number(summary, "attempts").value_or(-2))
      << summary;
  // Nothing pinned: the kernel frees the programs with the process (give it a moment).
  for (unsigned id : progs) {
    for (int i = 0; i < 200 && bpf_prog_exists(id); ++i) usleep(10000);
    EXPECT_FALSE(bpf_prog_exists(id)) << "program " << id << " left loaded";
  }
}

// Whether SIGINT is in the signal set of /proc/PID/status line `field` (SigCgt, SigBlk, ShdPnd...).
bool sigint_in(pid_t pid, const std::string& field) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  for (std::string l; std::getline(in, l);)
    if (l.rfind(field + ":", 0) == 0) return std::stoull(l.substr(field.size() + 1), nullptr, 16) & 2;
  return false;
}

TEST(TraceCli, CtrlCDuringStartupExitsCleanly) {
  REQUIRE_BPF();
  // Start-up (load, attach) lasts tens of ms; on a busy machine this test may
  // miss the window, so it tries again, a bounded number of times.
  int landed_in_startup = 0;
  for (int attempt = 0; attempt < 10 && landed_in_startup == 0; ++attempt) {
    Cli cli({"trace", "--json"});
    // Wait until the tool handles SIGINT and holds it blocked while it starts.
    bool starting = false, started = false;
    for (int i = 0; i < 20000 && !starting && !started; ++i) {
      const bool handled = sigint_in(cli.pid(), "SigCgt");
      const bool blocked = sigint_in(cli.pid(), "SigBlk");
      starting = handled && blocked;
      started = handled && !blocked;  // missed it: start-up is over
      if (!starting && !started) usleep(100);
    }
    if (!starting) continue;
    cli.signal(SIGINT);
    // Still blocked and pending: the signal arrived during start-up (else the
    // tool had just finished starting; that run proves less, try again).
    if (sigint_in(cli.pid(), "SigBlk") &&
        (sigint_in(cli.pid(), "ShdPnd") || sigint_in(cli.pid(), "SigPnd")))
      ++landed_in_startup;
    std::string out, err;
    EXPECT_EQ(cli.wait(out, err), 0) << err;
    EXPECT_EQ(json_type(last_line(out)), "summary") << out;
  }
  EXPECT_EQ(landed_in_startup, 1) << "no Ctrl-C landed while the tool was starting";
}

// Every field of --json, with losses: the tool is stopped while a child pinned
// to one CPU writes far more than its one-page ring holds, then resumed; a
// second batch of writes makes the kernel report the loss.
TEST(TraceCli, JsonReportsEveryFieldIncludingLosses) {
  REQUIRE_BPF();
  constexpr int kFlood = 20000, kAfter = 100;
  const int cpu = online_cpus().front();
  testing::WritingChild child(kFlood, kAfter, cpu);
  Cli cli({"trace", "--pid", std::to_string(child.pid()), "--json", "--pages", "1", "--duration",
           "2.5"});
  const std::string start = cli.read_line().value_or("");
  ASSERT_EQ(json_type(start), "start") << start;
  EXPECT_EQ(json_number(start, "cpus"), static_cast<long long>(online_cpus().size())) << start;
  EXPECT_EQ(json_number(start, "pages"), 1) << start;
  cli.signal(SIGSTOP);
  child.release();  // the flood, while nobody reads
  usleep(300000);
  cli.signal(SIGCONT);
  usleep(100000);
  ASSERT_EQ(child.release_and_wait(), 0);
  std::string out, err;
  ASSERT_EQ(cli.wait(out, err), 0) << err;

  std::vector<std::string> intervals;
  std::string summary;
  for (const nlohmann::json& line : json_lines(out)) {
    if (line.value("type", "") == "interval") intervals.push_back(line.dump());
    if (line.value("type", "") == "summary") summary = line.dump();
  }
  ASSERT_FALSE(summary.empty()) << out;
  const long long received = json_number(summary, "received").value_or(-1);
  const long long lost = json_number(summary, "lost").value_or(-1);
  EXPECT_GT(lost, 0) << summary;
  EXPECT_GT(received, 0) << summary;
  EXPECT_EQ(json_number(summary, "attempts"), kFlood + kAfter) << summary;
  EXPECT_EQ(received + lost, kFlood + kAfter) << summary;
  // The ring was full: the kernel counted every loss, no output failed otherwise.
  EXPECT_EQ(json_number(summary, "kernel_lost"), lost) << summary;
  EXPECT_EQ(json_number(summary, "send_failures"), 0) << summary;
  EXPECT_EQ(json_number(summary, "cookie_errors"), 0) << summary;
  EXPECT_GT(json_number(summary, "wakeups").value_or(0), 0) << summary;
  EXPECT_GE(json_number(summary, "seconds").value_or(0), 2) << summary;  // whole seconds
  EXPECT_TRUE(json_number(summary, "events_per_s").has_value()) << summary;
  EXPECT_NE(parse_json(summary).value("attach", ""), "") << summary;

  // per_cpu: one entry per online CPU, adding up to the totals, all on the child's CPU.
  long long records_sum = 0, lost_sum = 0, wakeups_sum = 0;
  std::vector<int> cpus;
  const nlohmann::json summary_json = parse_json(summary);
  for (const nlohmann::json& entry : summary_json["per_cpu"]) {
    cpus.push_back(entry["cpu"].get<int>());
    records_sum += entry["records"].get<long long>();
    lost_sum += entry["lost"].get<long long>();
    wakeups_sum += entry["wakeups"].get<long long>();
    EXPECT_EQ(entry["send_failures"], 0) << summary;
    if (cpus.back() != cpu)
      EXPECT_EQ(entry["records"].get<long long>() + entry["lost"].get<long long>(), 0) << summary;
  }
  EXPECT_EQ(cpus, online_cpus()) << summary;
  EXPECT_EQ(records_sum, received) << summary;
  EXPECT_EQ(lost_sum, lost) << summary;
  EXPECT_EQ(wakeups_sum, json_number(summary, "wakeups")) << summary;
  // The flood filled the one-page ring: a drain found it (near) full.
  expect_ring_telemetry(summary, kPerfRecordBytes, getpagesize());
  for (const nlohmann::json& entry : summary_json["per_cpu"])
    if (entry["cpu"] == cpu)
      EXPECT_GE(entry.value("fill_high_water_bytes", 0LL), getpagesize() / 2) << entry.dump();

  // One interval line a second, each with the totals so far; the loss shows before the end.
  ASSERT_EQ(intervals.size(), 2u) << out;
  for (std::size_t i = 0; i < intervals.size(); ++i) {
    EXPECT_EQ(json_number(intervals[i], "second"), static_cast<long long>(i + 1)) << intervals[i];
    EXPECT_EQ(json_number(intervals[i], "cookie_errors"), 0) << intervals[i];
    EXPECT_TRUE(json_number(intervals[i], "events_per_s").has_value()) << intervals[i];
    // The telemetry so far, of all rings: the records' bytes, no more than the summary's.
    EXPECT_EQ(json_number(intervals[i], "bytes"),
              json_number(intervals[i], "received").value_or(-1) * kPerfRecordBytes)
        << intervals[i];
    EXPECT_LE(json_number(intervals[i], "drains").value_or(-1),
              json_number(summary, "drains").value_or(-2))
        << intervals[i];
    EXPECT_GE(json_number(intervals[i], "drain_ns").value_or(-1), 0) << intervals[i];
    EXPECT_LE(json_number(intervals[i], "fill_high_water_bytes").value_or(-1),
              json_number(summary, "fill_high_water_bytes").value_or(-2))
        << intervals[i];
  }
  EXPECT_GT(json_number(intervals[1], "drains").value_or(0), 0) << intervals[1];
  EXPECT_GT(json_number(intervals[1], "fill_high_water_bytes").value_or(0), 0) << intervals[1];
  EXPECT_EQ(json_number(intervals[1], "received"), received) << intervals[1];
  EXPECT_EQ(json_number(intervals[1], "lost"), lost) << intervals[1];
  EXPECT_EQ(json_number(intervals[0], "events_per_s").value_or(0) +
                json_number(intervals[1], "events_per_s").value_or(0),
            received)
      << out;
}

TEST(TraceCli, OrderedEventsComeInTimeOrder) {
  REQUIRE_BPF();
  // Writers on every CPU, so that the per-CPU rings interleave in time.
  std::vector<std::unique_ptr<testing::WritingChild>> children;
  Cli cli({"trace", "--events", "--json", "--ordered", "--duration", "1.5"});
  ASSERT_EQ(json_type(cli.read_line().value_or("")), "start");
  for (int cpu : online_cpus()) {
    children.push_back(std::make_unique<testing::WritingChild>(2000, 0, cpu));
    children.back()->release();
  }
  for (auto& c : children) ASSERT_EQ(c->release_and_wait(), 0);
  std::string out, err;
  ASSERT_EQ(cli.wait(out, err), 0) << err;
  std::uint64_t previous = 0, events = 0, backwards = 0;
  for (const nlohmann::json& line : json_lines(out)) {
    if (line.value("type", "") != "event") continue;
    ++events;
    const std::uint64_t t = line["time_ns"].get<std::uint64_t>();
    backwards += t < previous;
    previous = std::max(previous, t);
  }
  EXPECT_GE(events, 2000u * online_cpus().size());
  EXPECT_EQ(backwards, 0u) << "of " << events << " events";
}

// Two threads of a child, pinned to CPU 0 and to another CPU, take turns
// writing to a pipe (each write(2) traced) while the tool is stopped, so
// every record waits in its CPU's ring, interleaved in time with the other
// CPU's. A reader that drains ring by ring prints one thread's writes, then
// the other's, whatever the scheduler does; --ordered must print them
// alternating. --pid keeps everything else out of the rings: other tests'
// writes would fill them while the tool is stopped.
TEST(TraceCli, OrderedPrintsRecordsWaitingOnTwoCpusInTimeOrder) {
  REQUIRE_BPF();
  REQUIRE_SECOND_CPU(other);
  constexpr int kTurns = 500;
  int go[2];
  ASSERT_EQ(pipe(go), 0);
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    close(go[1]);
    char c;
    if (read(go[0], &c, 1) != 1) _exit(1);
    int to_second[2], to_first[2];
    if (pipe(to_second) != 0 || pipe(to_first) != 0) _exit(2);
    auto take_turns = [&](int cpu, bool first) {
      if (!testing::pin_to_cpu(cpu)) _exit(3);
      char x = 'x';
      for (int i = 0; i < kTurns; ++i) {
        if (!first && read(to_second[0], &x, 1) != 1) _exit(4);
        if (write(first ? to_second[1] : to_first[1], &x, 1) != 1) _exit(4);
        if (first && read(to_first[0], &x, 1) != 1) _exit(4);
      }
    };
    std::thread second([&] { take_turns(*other, false); });
    take_turns(0, true);
    second.join();
    _exit(0);
  }
  close(go[0]);
  Cli cli({"trace", "--events", "--json", "--ordered", "--pid", std::to_string(child),
           "--duration", "3"});
  const bool started = json_type(cli.read_line().value_or("")) == "start";
  if (started) cli.signal(SIGSTOP);
  int status = 0;  // every thread of the tool has stopped once this returns
  const bool stopped = started && waitpid(cli.pid(), &status, WUNTRACED) == cli.pid() &&
                       WIFSTOPPED(status);
  const bool released = stopped && write(go[1], "x", 1) == 1;
  close(go[1]);  // without a release the child ends at once
  const int child_exit = testing::wait_exit_code(child);
  if (stopped) cli.signal(SIGCONT);
  ASSERT_TRUE(started && stopped && released);
  ASSERT_EQ(child_exit, 0);
  std::string out, err;
  ASSERT_EQ(cli.wait(out, err), 0) << err;
  std::vector<int> cpus;  // the child's records, in the order printed
  std::uint64_t previous = 0, backwards = 0;
  for (const nlohmann::json& line : json_lines(out)) {
    if (line.value("type", "") != "event") continue;
    const std::uint64_t t = line["time_ns"].get<std::uint64_t>();
    backwards += t < previous;
    previous = std::max(previous, t);
    cpus.push_back(line["cpu"].get<int>());
  }
  EXPECT_EQ(backwards, 0u);
  // The turns, and under a sanitizer a few writes of its runtime as the
  // threads start or end (ASan: one per thread).
  ASSERT_GE(cpus.size(), 2u * kTurns) << last_line(out);
  ASSERT_LE(cpus.size(), 2u * kTurns + 8) << last_line(out);
  // The longest stretch of records that alternate between the two CPUs: the
  // turns, in order; printed ring by ring, a stretch of two.
  std::size_t longest = 1, run = 1;
  for (std::size_t i = 1; i < cpus.size(); ++i) {
    run = cpus[i] != cpus[i - 1] ? run + 1 : 1;
    longest = std::max(longest, run);
  }
  std::string sequence;
  for (int cpu : cpus) sequence += std::to_string(cpu);
  EXPECT_GE(longest, 2u * kTurns - 2) << "printed out of turn: " << sequence;
}

// The tool's own writes (its output) are not traced, or printing would feed the count.
TEST(TraceCli, IgnoresItsOwnWrites) {
  REQUIRE_BPF();
  Cli cli({"trace", "--events", "--json", "--duration", "1.2"});
  const pid_t cli_pid = cli.pid();
  std::string out, err;
  ASSERT_EQ(cli.wait(out, err), 0) << err;
  // It wrote at least its start and interval lines while tracing.
  int intervals = 0, own = 0;
  for (const nlohmann::json& line : json_lines(out)) {
    intervals += line.value("type", "") == "interval";
    own += line.value("type", "") == "event" && line["pid"] == cli_pid;
  }
  ASSERT_GT(intervals, 0) << last_line(out);
  EXPECT_EQ(own, 0) << "the tool traced itself";
}

TEST(TraceCli, FlightRecorderBadSizesNameTheFlagAndWhatItTakes) {
  for (std::vector<std::string> args :
       {std::vector<std::string>{"trace", "--flight-recorder", "3K"},
        {"trace", "--flight-recorder", "64X"}, {"trace", "--flight-recorder", "0"},
        {"trace", "--flight-recorder", "2G"}, {"trace", "--flight-recorder", "100"},
        {"trace", "--flight-recorder"}}) {
    std::string out, err;
    EXPECT_EQ(run_cli(args, out, err), 2) << args.back();
    EXPECT_NE(err.find("--flight-recorder"), std::string::npos) << err;
    if (args.size() == 3)
      EXPECT_NE(err.find("power of two of pages"), std::string::npos) << err;
  }
  const std::vector<std::pair<std::vector<std::string>, std::string>> conflicts = {
      {{"--transport", "ringbuf"}, "--transport ringbuf"},
      {{"--sink", "nats://127.0.0.1:1", "--subject", "s"}, "--sink"}};
  for (const auto& [extra, named] : conflicts) {
    std::vector<std::string> args = {"trace", "--flight-recorder", "64K"};
    args.insert(args.end(), extra.begin(), extra.end());
    std::string out, err;
    EXPECT_EQ(run_cli(args, out, err), 2) << named;
    EXPECT_NE(err.find("--flight-recorder: cannot be combined with " + named), std::string::npos)
        << err;
  }
}

// A child pinned to CPU 0 makes many more writes than a one-page ring keeps;
// SIGUSR1 prints exactly as many of its records as fit, in time order, and
// the end prints the same ones again (nothing was written since).
TEST(TraceCli, FlightRecorderPrintsTheChildsNewestRecordsOnSigusr1AndAtExit) {
  REQUIRE_BPF();
  constexpr int kWrites = 1000;
  const long page = getpagesize();
  const long fit = page / 48;  // 8 header + 8 time + 4 size + 24-byte event + 4 padding
  testing::WritingChild child(kWrites, 0, /*pin_cpu=*/0);
  const long pid = child.pid();
  Cli cli({"trace", "--flight-recorder", std::to_string(page / 1024) + "K", "--pid",
           std::to_string(pid), "--json", "--attach", "raw_tracepoint",
           "--duration", "10"});  // a bound: ends with the exit snapshot if a signal goes unseen
  const std::string start = cli.read_line().value_or("");
  ASSERT_EQ(json_type(start), "start") << start;
  EXPECT_EQ(json_number(start, "flight_recorder_bytes"), page) << start;
  ASSERT_EQ(child.release_and_wait(), 0);

  // Reads a snapshot line and its records.
  auto read_snapshot = [&](const char* reason) {
    std::vector<nlohmann::json> records;
    const std::string head = cli.read_line().value_or("");
    EXPECT_EQ(json_type(head), "snapshot") << head;
    const nlohmann::json snap = parse_json(head);
    EXPECT_EQ(snap.value("reason", ""), reason) << head;
    EXPECT_EQ(snap.value("records", -1L), fit) << head;
    EXPECT_EQ(snap.value("attempts", -1L), kWrites) << head;
    EXPECT_EQ(snap.value("cookie_errors", -1L), 0) << head;
    for (long i = 0; i < snap.value("records", 0L); ++i) {
      const std::string line = cli.read_line().value_or("");
      records.push_back(parse_json(line));
      EXPECT_EQ(records.back().value("type", ""), "record") << line;
      EXPECT_EQ(records.back().value("pid", -1L), pid) << line;
      EXPECT_EQ(records.back().value("cpu", -1), 0) << line;
      EXPECT_EQ(records.back().value("cookie", 0LL), 0x12345678LL) << line;
    }
    for (std::size_t i = 1; i < records.size(); ++i)
      EXPECT_LT(records[i - 1].value("time_ns", 0ULL), records[i].value("time_ns", 0ULL)) << i;
    return records;
  };
  cli.signal(SIGUSR1);
  const std::vector<nlohmann::json> first = read_snapshot("SIGUSR1");
  cli.signal(SIGINT);
  const std::vector<nlohmann::json> last = read_snapshot("exit");
  std::string out, err;
  EXPECT_EQ(cli.wait(out, err), 0) << err;
  EXPECT_EQ(out, "") << "nothing after the exit snapshot";
  ASSERT_EQ(first.size(), last.size());
  for (std::size_t i = 0; i < first.size(); ++i)
    EXPECT_EQ(first[i].value("time_ns", 0ULL), last[i].value("time_ns", 0ULL)) << i;
}

}  // namespace
}  // namespace perfbuf
