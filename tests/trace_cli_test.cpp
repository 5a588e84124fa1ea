// `perfbuf trace` run as a user runs it: a separate process, its output parsed.
#include <gtest/gtest.h>

#include <signal.h>

#include <optional>
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
        {"trace", "--pid", "abc"}, {"nonsense"}}) {
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

TEST(TraceCli, PrintsARatePerSecondAndEvents) {
  REQUIRE_BPF();
  std::string out, err;
  ASSERT_EQ(run_cli({"trace", "--duration", "1.2", "--events", "--pid", "1"}, out, err), 0) << err;
  EXPECT_NE(out.find("recv "), std::string::npos) << out;
  EXPECT_NE(out.find(" events/s"), std::string::npos) << out;
}

}  // namespace
}  // namespace perfbuf
