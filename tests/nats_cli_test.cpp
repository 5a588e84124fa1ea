// `perfbuf trace --sink nats://...` against a real nats-server started by the test.
#include <gtest/gtest.h>

#include <chrono>
#include <cstring>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "bpf_support.h"
#include "cli_runner.h"
#include "nats_server.h"
#include "write_event.h"

namespace perfbuf {
namespace {

using testing::Cli;
using testing::json_number;
using testing::last_line;
using testing::NatsServer;
using testing::parse_json;
using testing::read_stream;
using testing::run_cli;
using testing::StoredRecord;

std::vector<std::string> sink_args(const NatsServer& server, const std::string& stream) {
  return {"--sink", server.url(), "--subject", "perfbuf.writes." + stream, "--stream", stream};
}

TEST(NatsCli, ChildsWritesEndUpInTheStreamExactlyOnce) {
  REQUIRE_BPF();
  REQUIRE_NATS_SERVER();
  NatsServer server;
  constexpr int kWrites = 5000;
  testing::WritingChild child(kWrites);
  const auto child_pid = static_cast<std::uint32_t>(child.pid());
  std::vector<std::string> args{"trace", "--pid", std::to_string(child_pid), "--json",
                                "--duration", "1.5", "--attach", "raw_tracepoint", "--pages",
                                "1024"};
  for (const std::string& a : sink_args(server, "WRITES")) args.push_back(a);
  Cli cli(args);
  const std::string start = cli.read_line().value_or("");
  ASSERT_EQ(child.release_and_wait(), 0);
  std::string out, err;
  ASSERT_EQ(cli.wait(out, err), 0) << err;
  EXPECT_EQ(parse_json(start).value("stream", ""), "WRITES") << start;

  const nlohmann::json summary = parse_json(last_line(out));
  ASSERT_TRUE(summary.contains("sink")) << out;
  const nlohmann::json& sink = summary["sink"];
  EXPECT_EQ(summary["received"], kWrites) << out;
  EXPECT_EQ(sink["received"], kWrites) << sink;
  EXPECT_EQ(sink["published_records"], kWrites) << sink;
  EXPECT_EQ(sink["acknowledged"], kWrites) << sink;
  EXPECT_EQ(sink["dropped"], 0) << sink;
  EXPECT_EQ(sink["kernel_lost"], 0) << sink;
  EXPECT_EQ(sink["accounted"], true) << sink;

  const std::vector<StoredRecord> stored = read_stream(server.url(), "WRITES");
  ASSERT_EQ(stored.size(), static_cast<std::size_t>(kWrites));
  std::set<std::uint64_t> seqs;
  for (const StoredRecord& r : stored) {
    seqs.insert(r.seq);
    write_event e{};
    ASSERT_EQ(r.bytes.size(), sizeof e);
    std::memcpy(&e, r.bytes.data(), sizeof e);
    EXPECT_EQ(e.cookie, PERFBUF_WRITE_COOKIE);
    EXPECT_EQ(e.tgid, child_pid);
    EXPECT_EQ(r.header.run_id, sink["run_id"].get<std::uint64_t>());
  }
  // Sequences 0..K-1, each once: nothing missing, nothing twice.
  EXPECT_EQ(seqs.size(), static_cast<std::size_t>(kWrites));
  EXPECT_EQ(*seqs.begin(), 0u);
  EXPECT_EQ(*seqs.rbegin(), static_cast<std::uint64_t>(kWrites - 1));

  // perfbuf cat reads the same back, with no gap.
  std::string cat_out, cat_err;
  ASSERT_EQ(run_cli({"cat", "--source", server.url(), "--subject", "perfbuf.writes.WRITES",
                     "--format", "json", "--duration", "30"},
                    cat_out, cat_err),
            0)
      << cat_err;
  const nlohmann::json cat_summary = parse_json(last_line(cat_out));
  EXPECT_EQ(cat_summary.value("type", ""), "summary") << cat_out;
  EXPECT_EQ(cat_summary["stream"], "WRITES") << cat_summary;
  EXPECT_EQ(cat_summary["records"], kWrites) << cat_summary;
  EXPECT_EQ(cat_summary["senders"], 1) << cat_summary;
  EXPECT_EQ(cat_summary["gaps"], 0) << cat_summary;
  EXPECT_EQ(cat_summary["corrupt"], 0) << cat_summary;
}

// Frames with a gap between them, and a message that is not a frame: perfbuf
// cat --source reports both, and exits 1 for the corrupt one.
TEST(NatsCli, CatSourceReportsGapsAndCorruptMessages) {
  REQUIRE_NATS_SERVER();
  NatsServer server;
  testing::with_js(server, [](jsCtx* js) {
    ASSERT_EQ(testing::add_stream(js, "GAPS", "perfbuf.gaps"), NATS_OK);
    const std::uint8_t payload[4] = {1, 2, 3, 4};
    auto frame = [&](std::uint64_t first, std::uint32_t n) {
      std::vector<tools::FrameRecord> records(n, tools::FrameRecord{.time_ns = 1, .cpu = 0, .bytes = payload});
      return tools::encode_frame({.run_id = 7, .first_seq = first, .host = "h"}, records);
    };
    for (const std::vector<std::uint8_t>& m :
         {frame(0, 10), frame(15, 5), std::vector<std::uint8_t>{'n', 'o', 't'}, frame(20, 0)})
      ASSERT_EQ(testing::publish(js, "perfbuf.gaps", m), NATS_OK);
  });
  std::string out, err;
  EXPECT_EQ(run_cli({"cat", "--source", server.url(), "--subject", "perfbuf.gaps", "--format",
                     "json", "--duration", "30"},
                    out, err),
            1)
      << err;
  int gaps = 0, corrupt = 0;
  for (const nlohmann::json& line : testing::json_lines(out)) {
    if (line["type"] == "gap") {
      ++gaps;
      EXPECT_EQ(line["expected"], 10) << line;
      EXPECT_EQ(line["missing"], 5) << line;
      EXPECT_EQ(line["host"], "h") << line;
    }
    if (line["type"] == "corrupt") {
      ++corrupt;
      EXPECT_EQ(line["stream_seq"], 3) << line;
      EXPECT_NE(line["error"].get<std::string>().find("truncated"), std::string::npos) << line;
    }
  }
  EXPECT_EQ(gaps, 1) << out;
  EXPECT_EQ(corrupt, 1) << out;
  const nlohmann::json summary = parse_json(last_line(out));
  EXPECT_EQ(summary["records"], 15) << summary;
  EXPECT_EQ(summary["messages"], 4) << summary;
  EXPECT_EQ(summary["missing"], 5) << summary;

  // The text form says the same in words.
  out.clear();
  err.clear();
  EXPECT_EQ(run_cli({"cat", "--source", server.url(), "--subject", "perfbuf.gaps", "--duration",
                     "30"},
                    out, err),
            1);
  EXPECT_NE(out.find("gap: host h run 0000000000000007: expected record 10, frame starts at 15: "
                     "5 records missing"),
            std::string::npos)
      << out;
  EXPECT_NE(err.find("1 gaps (5 records missing)"), std::string::npos) << err;
  EXPECT_NE(err.find("is not a frame: truncated"), std::string::npos) << err;
}

// A stream emptied by a purge (no messages, a last sequence number all the
// same) is read at once: 0 records, no wait for messages that are gone.
TEST(NatsCli, CatSourceOfAPurgedStreamEndsAtOnce) {
  REQUIRE_NATS_SERVER();
  NatsServer server;
  testing::with_js(server, [](jsCtx* js) {
    ASSERT_EQ(testing::add_stream(js, "PURGED", "perfbuf.purged"), NATS_OK);
    ASSERT_EQ(testing::publish(js, "perfbuf.purged",
                               tools::encode_frame({.run_id = 7, .first_seq = 0, .host = "h"}, {})),
              NATS_OK);
    ASSERT_EQ(js_PurgeStream(js, "PURGED", nullptr, nullptr), NATS_OK);
  });
  std::string out, err;
  const auto started = std::chrono::steady_clock::now();
  EXPECT_EQ(run_cli({"cat", "--source", server.url(), "--subject", "perfbuf.purged", "--format",
                     "json", "--duration", "30"},
                    out, err),
            0)
      << err;
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(5));
  const nlohmann::json summary = parse_json(last_line(out));
  EXPECT_EQ(summary["records"], 0) << out;
  EXPECT_EQ(summary["gaps"], 0) << out;
}

TEST(NatsCli, CatSourceUsageErrors) {
  // Usage errors stop before any connection; should one not, it goes to a
  // free loopback port, never to a server someone runs.
  const std::string free = "nats://127.0.0.1:" + std::to_string(testing::free_loopback_port());
  for (std::vector<std::string> args :
       {std::vector<std::string>{"cat", "--source", free},
        {"cat", "--source", "nats:/x", "--subject", "a"},
        {"cat", "--source", free, "--subject", "a", "--map-id", "1"},
        {"cat", "--source", free, "--subject", "a", "--sink",
         free},
        {"cat", "--source", free, "--subject", "a", "--type", "t"},
        {"cat", "--map-id", "1", "--subject", "a"}}) {
    std::string out, err;
    EXPECT_EQ(run_cli(args, out, err), 2) << args.back();
    EXPECT_NE(err.find("usage: perfbuf cat"), std::string::npos) << err;
  }
}

TEST(NatsCli, BadUrlIsAUsageError) {
  const std::string port = std::to_string(testing::free_loopback_port());
  const std::string free = "nats://127.0.0.1:" + port;
  for (std::vector<std::string> args :
       {std::vector<std::string>{"trace", "--sink", "http://127.0.0.1:" + port, "--subject", "a"},
        {"trace", "--sink", "nats://127.0.0.1", "--subject", "a"},
        {"trace", "--sink", free},
        {"trace", "--sink", free, "--subject", "a.*"},
        {"trace", "--subject", "a"},
        {"trace", "--sink", free, "--subject", "a", "--stream", "a.b"}}) {
    std::string out, err;
    EXPECT_EQ(run_cli(args, out, err), 2) << args[2];
    EXPECT_NE(err.find("usage: perfbuf"), std::string::npos) << err;
  }
  std::string out, err;
  run_cli({"trace", "--sink", "http://127.0.0.1:" + port, "--subject", "a"}, out, err);
  EXPECT_NE(err.find("nats://HOST:PORT"), std::string::npos) << err;
}

TEST(NatsCli, UnreachableServerFailsAtStartWithTheReason) {
  REQUIRE_BPF();
  const std::string url = "nats://127.0.0.1:" + std::to_string(testing::free_loopback_port());
  std::string out, err;
  EXPECT_EQ(run_cli({"trace", "--duration", "5", "--sink", url, "--subject", "a"}, out, err), 1);
  EXPECT_NE(err.find("perfbuf trace: cannot connect to " + url), std::string::npos) << err;
  EXPECT_EQ(out.find("summary"), std::string::npos) << out;
}

// The server is killed while records flow and started again: the summary
// accounts for every record received, as acknowledged or dropped.
TEST(NatsCli, ServerKilledAndRestartedSummaryAccountsForEveryRecord) {
  REQUIRE_BPF();
  REQUIRE_NATS_SERVER();
  NatsServer server;
  constexpr int kWrites = 3000;
  testing::WritingChild child(kWrites, kWrites);
  std::vector<std::string> args{"trace", "--pid", std::to_string(child.pid()), "--json",
                                "--duration", "4", "--attach", "raw_tracepoint", "--pages",
                                "1024", "--ack-wait", "1", "--frame-records", "100"};
  for (const std::string& a : sink_args(server, "CRASH")) args.push_back(a);
  Cli cli(args);
  cli.read_line();  // started
  child.release();
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  server.kill();
  child.release();  // these are read while the server is gone
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  server.start();
  ASSERT_EQ(child.release_and_wait(), 0);
  std::string out, err;
  ASSERT_EQ(cli.wait(out, err), 0) << err;
  const nlohmann::json summary = parse_json(last_line(out));
  ASSERT_TRUE(summary.contains("sink")) << out;
  const nlohmann::json& sink = summary["sink"];
  EXPECT_EQ(sink["received"], 2 * kWrites) << sink;
  EXPECT_EQ(sink["received"].get<std::uint64_t>(),
            sink["acknowledged"].get<std::uint64_t>() + sink["dropped"].get<std::uint64_t>())
      << sink;
  EXPECT_EQ(sink["accounted"], true) << sink;
  EXPECT_GE(sink["disconnects"].get<int>(), 1) << sink;
  EXPECT_GE(sink["acknowledged"].get<int>(), kWrites) << "the first batch was acknowledged "
                                                      << sink;
  const std::vector<StoredRecord> stored = read_stream(server.url(), "CRASH");
  EXPECT_GE(stored.size(), sink["acknowledged"].get<std::size_t>());
  if (sink["dropped"].get<int>() > 0)
    EXPECT_NE(err.find("the sink dropped"), std::string::npos) << err;
}

// perfbuf bench --sink: the three modes run side by side, each accounts for
// every record, and the targets are printed (their figures are not judged here).
TEST(NatsCli, BenchSinkRunsEveryModeAndAccountsForEveryRecord) {
  REQUIRE_BPF();
  REQUIRE_NATS_SERVER();
  NatsServer server;
  std::string out, err;
  ASSERT_EQ(run_cli({"bench", "--sink", server.url(), "--producers", "1", "--duration", "0.3",
                     "--rounds", "1", "--json"},
                    out, err),
            0)
      << err;
  std::set<std::string> modes;
  int targets = 0;
  for (const nlohmann::json& line : testing::json_lines(out)) {
    if (line["type"] == "sink_bench") {
      modes.insert(line["mode"].get<std::string>());
      EXPECT_EQ(line["accounted"], true) << line;
      EXPECT_GT(line["received"].get<std::uint64_t>(), 0u) << line;
      EXPECT_EQ(line["received"].get<std::uint64_t>() + line["kernel_lost"].get<std::uint64_t>(),
                line["produced"].get<std::uint64_t>())
          << line;
      if (line["mode"] == "nats_per_record") EXPECT_EQ(line["records_per_message"], 1.0) << line;
    }
    if (line["type"] == "sink_targets") {
      ++targets;
      EXPECT_TRUE(line.contains("rate_met")) << line;
      EXPECT_TRUE(line.contains("ratio_met")) << line;
      EXPECT_EQ(line["no_silent_loss"], true) << line;
    }
  }
  EXPECT_EQ(modes, (std::set<std::string>{"devnull", "nats_packed", "nats_per_record"})) << out;
  EXPECT_EQ(targets, 1) << out;
}

}  // namespace
}  // namespace perfbuf
