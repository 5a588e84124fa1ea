// `perfbuf trace` run as a user runs it: a separate process, its output parsed.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <optional>
#include <regex>
#include <string>
#include <vector>

#include "bpf_support.h"

namespace perfbuf {
namespace {

// A child process running the perfbuf binary, stdout and stderr on pipes.
class Cli {
 public:
  explicit Cli(std::vector<std::string> args) {
    args.insert(args.begin(), PERFBUF_CLI);
    int out[2], err[2];
    if (pipe2(out, O_CLOEXEC) || pipe2(err, O_CLOEXEC)) throw std::runtime_error("pipe");
    pid_ = fork();
    if (pid_ == 0) {
      dup2(out[1], STDOUT_FILENO);
      dup2(err[1], STDERR_FILENO);
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      execv(argv[0], argv.data());
      _exit(127);
    }
    close(out[1]);
    close(err[1]);
    out_ = fdopen(out[0], "r");
    err_fd_ = err[0];
  }
  ~Cli() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    if (out_) fclose(out_);
    if (err_fd_ >= 0) close(err_fd_);
  }

  std::optional<std::string> read_line() {
    char* line = nullptr;
    size_t cap = 0;
    const ssize_t n = getline(&line, &cap, out_);
    std::optional<std::string> s;
    if (n >= 0) s = std::string(line, n);
    free(line);
    return s;
  }
  void signal(int sig) { kill(pid_, sig); }

  // Waits for exit; returns the exit code and collects the remaining output.
  int wait(std::string& out, std::string& err) {
    while (auto l = read_line()) out += *l;
    char buf[4096];
    for (ssize_t n; (n = read(err_fd_, buf, sizeof buf)) > 0;) err.append(buf, n);
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }

 private:
  pid_t pid_ = -1;
  FILE* out_ = nullptr;
  int err_fd_ = -1;
};

int run(std::vector<std::string> args, std::string& out, std::string& err) {
  Cli cli(std::move(args));
  return cli.wait(out, err);
}

std::optional<long long> json_number(const std::string& text, const std::string& key) {
  std::smatch m;
  if (!std::regex_search(text, m, std::regex("\"" + key + "\":(-?[0-9.]+)"))) return std::nullopt;
  return std::stoll(m[1]);
}

std::string last_line(const std::string& text) {
  const auto end = text.find_last_not_of('\n');
  const auto start = text.rfind('\n', end);
  return text.substr(start == std::string::npos ? 0 : start + 1, end - start);
}

TEST(TraceCli, BadArgumentsGiveUsageAndExitTwo) {
  for (std::vector<std::string> args :
       {std::vector<std::string>{"trace", "--bogus"}, {"trace", "--pages", "3"},
        {"trace", "--attach", "nope"}, {"trace", "--duration", "-1"}, {"trace", "--pid"},
        {"trace", "--pid", "abc"}, {"nonsense"}}) {
    std::string out, err;
    EXPECT_EQ(run(args, out, err), 2) << args.back();
    EXPECT_NE(err.find("usage: perfbuf"), std::string::npos) << err;
  }
}

TEST(TraceCli, HelpExitsZero) {
  std::string out, err;
  EXPECT_EQ(run({"trace", "--help"}, out, err), 0);
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
  const int code = run({"trace", "--attach", "kprobe", "--duration", "0.2"}, out, err);
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
  ASSERT_EQ(run({"trace", "--duration", "1.2", "--events", "--pid", "1"}, out, err), 0) << err;
  EXPECT_NE(out.find("recv "), std::string::npos) << out;
  EXPECT_NE(out.find(" events/s"), std::string::npos) << out;
}

}  // namespace
}  // namespace perfbuf
