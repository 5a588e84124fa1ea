// perfbuf bench --sink nats://...: the same records printed to /dev/null,
// shipped to JetStream packed into frames, and shipped one message per record,
// side by side in one run.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace perfbuf::bench {

struct SinkBenchArgs {
  std::string url;
  std::string stream = "PERFBUF_BENCH";
  std::string subject() const { return "perfbuf.bench." + stream; }
  std::vector<int> producers;
  std::vector<std::uint32_t> sizes;
  std::uint32_t batch = 1;
  double duration_s = 2;
  int rounds = 3;
  std::size_t pages = 0;
  std::size_t frame_bytes = 64 * 1024;
  bool json = false;
};

// Runs the comparison and prints it; the exit code. Throws perfbuf::Error or
// tools::SinkError.
int run_sink_bench(const SinkBenchArgs& args);

}  // namespace perfbuf::bench
