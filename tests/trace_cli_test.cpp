// `perfbuf trace` run as a user runs it: a separate process, its output parsed.
#include <gtest/gtest.h>

#include <bpf/bpf.h>
#include <dirent.h>
#include <signal.h>

#include <fstream>
#include <optional>
#include <regex>
#include <string>
#include <vector>

#include "bpf_support.h"
#include "cli_runner.h"

namespace perfbuf {
namespace {

using testing::Cli;
using testing::json_number;
using testing::last_line;
using testing::run_cli;

TEST(TraceCli, BadArgumentsGiveUsageAndExitTwo) {
  for (std::vector<std::string> args :
       {std::vector<std::string>{"trace", "--bogus"}, {"trace", "--pages", "3"},
        {"trace", "--attach", "nope"}, {"trace", "--duration", "-1"}, {"trace", "--pid"},
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

PidRun trace_child_writes(int writes, const std::string& attach) {
  testing::WritingChild child(writes);
  Cli cli({"trace", "--pid", std::to_string(child.pid()), "--json", "--duration", "1.5",
           "--attach", attach});
  PidRun r;
  r.start = cli.read_line().value_or("");  // attached and reading from here on
  if (child.release_and_wait() != 0) throw std::runtime_error("child failed");
  r.exit_code = cli.wait(r.out, r.err);
  r.summary = last_line(r.out);
  return r;
}

class TraceCliAttach : public ::testing::TestWithParam<const char*> {};

TEST_P(TraceCliAttach, PidFilterCountsExactlyTheChildsWrites) {
  REQUIRE_BPF();
  constexpr int kWrites = 5000;
  const PidRun r = trace_child_writes(kWrites, GetParam());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.start.find("\"type\":\"start\""), std::string::npos) << r.start;
  EXPECT_NE(r.summary.find("\"type\":\"summary\""), std::string::npos) << r.summary;
  EXPECT_EQ(json_number(r.summary, "received"), kWrites) << r.summary;
  EXPECT_EQ(json_number(r.summary, "lost"), 0) << r.summary;
  EXPECT_EQ(json_number(r.summary, "cookie_errors"), 0) << r.summary;
  EXPECT_TRUE(json_number(r.summary, "seconds").has_value()) << r.summary;
  if (std::string(GetParam()) != "auto")
    EXPECT_NE(r.summary.find(std::string("\"attach\":\"") + GetParam() + "\""), std::string::npos)
        << r.summary;
  else
    EXPECT_NE(r.summary.find("\"attach\":\""), std::string::npos) << r.summary;
}

INSTANTIATE_TEST_SUITE_P(Modes, TraceCliAttach,
                         ::testing::Values("auto", "tracepoint", "raw_tracepoint"));

TEST(TraceCli, KprobeEitherWorksOrSaysWhyAndExitsOne) {
  REQUIRE_BPF();
  std::string out, err;
  const int code = run_cli({"trace", "--attach", "kprobe", "--duration", "0.2"}, out, err);
  if (code == 0) {
    EXPECT_NE(out.find("via kprobe"), std::string::npos) << out;
  } else {
    EXPECT_EQ(code, 1);
    EXPECT_NE(err.find("kprobe"), std::string::npos) << err;
  }
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

TEST(TraceCli, CtrlCDuringADrainPrintsTheSummaryAndLeavesNoProgram) {
  REQUIRE_BPF();
  testing::WritingChild child(300000);
  Cli cli({"trace", "--events", "--pid", std::to_string(child.pid())});
  std::optional<std::string> line;
  while ((line = cli.read_line()) && line->find("tracing write(2) via") == std::string::npos) {
  }
  ASSERT_TRUE(line.has_value()) << "no start line";
  const std::vector<unsigned> progs = bpf_prog_ids(cli.pid());
  EXPECT_FALSE(progs.empty());
  child.release();
  // Stop while events are streaming out.
  for (int i = 0; i < 2000 && (line = cli.read_line()); ++i) {
  }
  ASSERT_TRUE(line.has_value());
  EXPECT_NE(line->find(" cpu "), std::string::npos) << *line;
  cli.signal(SIGINT);
  std::string out, err;
  EXPECT_EQ(cli.wait(out, err), 0) << err;
  EXPECT_NE(out.find("summary: received"), std::string::npos);
  EXPECT_NE(out.find("cookie errors 0"), std::string::npos);
  // Nothing pinned: the kernel frees the programs with the process (give it a moment).
  for (unsigned id : progs) {
    for (int i = 0; i < 200 && bpf_prog_exists(id); ++i) usleep(10000);
    EXPECT_FALSE(bpf_prog_exists(id)) << "program " << id << " left loaded";
  }
}

TEST(TraceCli, CtrlCDuringStartupExitsCleanly) {
  REQUIRE_BPF();
  for (int attempt = 0; attempt < 3; ++attempt) {
    Cli cli({"trace", "--json"});
    // Wait until the tool handles SIGINT (bit 2 of SigCgt), then interrupt it at once.
    const std::string status = "/proc/" + std::to_string(cli.pid()) + "/status";
    bool handled = false;
    for (int i = 0; i < 5000 && !handled; ++i) {
      std::ifstream in(status);
      for (std::string l; std::getline(in, l);)
        if (l.rfind("SigCgt:", 0) == 0) handled = std::stoull(l.substr(7), nullptr, 16) & 2;
      if (!handled) usleep(200);
    }
    ASSERT_TRUE(handled) << "the tool never installed its SIGINT handler";
    cli.signal(SIGINT);
    std::string out, err;
    EXPECT_EQ(cli.wait(out, err), 0) << err;
    EXPECT_NE(last_line(out).find("\"type\":\"summary\""), std::string::npos) << out;
  }
}

}  // namespace
}  // namespace perfbuf
