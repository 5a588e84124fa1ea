// A smoke run of `perfbuf bench`: every consumer runs, prints its figures, and
// the plot is a PNG. No thresholds: speed is for the benchmark to report.
#include <gtest/gtest.h>

#include <fstream>
#include <string>
#include <vector>

#include "bpf_support.h"
#include "cli_runner.h"

namespace perfbuf {
namespace {

using testing::json_number;
using testing::run_cli;

TEST(BenchCli, BadArgumentsGiveUsageAndExitTwo) {
  for (std::vector<std::string> args :
       {std::vector<std::string>{"bench", "--producers", "0"}, {"bench", "--size", "8"},
        {"bench", "--batch", "65"}, {"bench", "--consumers", "nope"}, {"bench", "--pages", "6"},
        {"bench", "--size", "8192", "--pages", "1"},
        {"bench", "--rounds"}, {"bench", "--what"}}) {
    std::string out, err;
    EXPECT_EQ(run_cli(args, out, err), 2) << args[1];
    EXPECT_NE(err.find("usage: perfbuf bench"), std::string::npos) << err;
  }
}

TEST(BenchCli, SmokeRunReportsEveryConsumerAndDrawsThePlot) {
  REQUIRE_BPF();
  const std::string png = ::testing::TempDir() + "perfbuf_bench_smoke.png";
  std::remove(png.c_str());
  std::string out, err;
  ASSERT_EQ(run_cli({"bench", "--duration", "0.1", "--rounds", "1", "--producers", "1", "--json",
                     "--plot", png},
                    out, err),
            0)
      << err;
  for (const char* consumer : {"ceiling", "perfbuf", "perfbuf-every-record", "perfbuf-every-64",
                               "perfbuf-low-latency", "libbpf-perfbuf", "libbpf-perfbuf-tuned", "libbpf-ringbuf"}) {
    const std::string key = std::string("{\"consumer\":\"") + consumer + "\"";
    const auto at = out.find(key);
    ASSERT_NE(at, std::string::npos) << consumer << " missing in\n" << out;
    const std::string line = out.substr(at, out.find('\n', at) - at);
    EXPECT_GT(json_number(line, "consumed_per_s").value_or(0), 0) << line;
    for (const char* field : {"producers", "size", "produced_per_s", "lost_per_s",
                              "cpu_ns_per_record", "p50_us", "p99_us"})
      EXPECT_TRUE(json_number(line, field).has_value()) << field << " in " << line;
    EXPECT_NE(line.find("\"ratio_to_ceiling\":"), std::string::npos) << line;
  }
  std::ifstream in(png, std::ios::binary);
  char magic[8] = {};
  in.read(magic, sizeof magic);
  EXPECT_EQ(std::string(magic + 1, 3), "PNG") << "no PNG written to " << png;
}

}  // namespace
}  // namespace perfbuf
