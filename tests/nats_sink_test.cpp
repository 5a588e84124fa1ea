// The NATS JetStream sink against a real nats-server started by the test.
#include <gtest/gtest.h>

#include <array>
#include <chrono>
#include <cstring>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "nats_server.h"
#include "nats_sink.h"

namespace perfbuf {
namespace {

using testing::NatsServer;
using testing::read_stream;
using testing::StoredRecord;
using testing::with_js;
using tools::NatsSink;
using tools::NatsSinkOptions;
using tools::SinkCounts;
using tools::SinkError;

NatsSinkOptions options_for(const NatsServer& server, const std::string& stream) {
  NatsSinkOptions o;
  o.url = server.url();
  o.subject = "perfbuf.test." + stream;
  o.stream = stream;
  o.connect_timeout = std::chrono::milliseconds(2000);
  o.finish_wait = std::chrono::milliseconds(10000);
  return o;
}

// Record i's bytes: its number, so the stream's content can be checked.
std::array<std::uint8_t, 16> payload(std::uint64_t i) {
  std::array<std::uint8_t, 16> p{};
  std::memcpy(p.data(), &i, sizeof i);
  std::memcpy(p.data() + 8, "perfbuf!", 8);
  return p;
}

TEST(NatsSink, EveryRecordIsStoredOnceAndAcknowledged) {
  REQUIRE_NATS_SERVER();
  NatsServer server;
  NatsSinkOptions o = options_for(server, "ONCE");
  o.frame_records = 10;  // 100 messages
  o.queue_frames = 128;  // the whole burst: add() outruns any publisher
  NatsSink sink(o);
  EXPECT_EQ(sink.stream(), "ONCE");
  constexpr std::uint64_t kRecords = 1000;
  for (std::uint64_t i = 0; i < kRecords; ++i) sink.add(100 + i, int(i % 2), payload(i));
  const SinkCounts c = sink.finish();
  EXPECT_EQ(c.received, kRecords);
  EXPECT_EQ(c.published_records, kRecords);
  EXPECT_EQ(c.published_messages, kRecords / 10 + 1);  // and the run's last, empty frame
  EXPECT_EQ(c.acknowledged, kRecords) << c.last_error;
  EXPECT_EQ(c.acknowledged_messages, kRecords / 10 + 1);
  EXPECT_EQ(c.dropped, 0u);

  const std::vector<StoredRecord> stored = read_stream(server.url(), "ONCE");
  ASSERT_EQ(stored.size(), kRecords);
  for (std::uint64_t i = 0; i < kRecords; ++i) {
    const StoredRecord& r = stored[i];
    EXPECT_EQ(r.seq, i);
    EXPECT_EQ(r.time_ns, 100 + i);
    EXPECT_EQ(r.cpu, int(i % 2));
    const auto p = payload(i);
    EXPECT_EQ(r.bytes, std::vector<std::uint8_t>(p.begin(), p.end())) << i;
    EXPECT_EQ(r.header.run_id, sink.run_id());
    EXPECT_EQ(r.header.host, sink.host());
  }
}

TEST(NatsSink, AnExistingStreamIsFoundBySubject) {
  REQUIRE_NATS_SERVER();
  NatsServer server;
  { NatsSink make(options_for(server, "FOUND")); }  // creates it
  NatsSinkOptions o = options_for(server, "FOUND");
  o.stream.clear();
  NatsSink sink(o);
  EXPECT_EQ(sink.stream(), "FOUND");
  sink.add(1, 0, payload(1));
  EXPECT_EQ(sink.finish().acknowledged, 1u);
}

// A sink an error ends before finish(), with or without records: it gives up
// on what is left at once, and nothing runs after it is gone.
TEST(NatsSink, DestroyedWithoutFinishIsSafe) {
  REQUIRE_NATS_SERVER();
  NatsServer server;
  for (int i = 0; i < 20; ++i) {
    NatsSink sink(options_for(server, "EARLY"));
    if (i % 2) sink.add(1, 0, payload(i));
  }
}

// At its end the sink drains the connection (so that no ack reaches the
// client's objects as they go) and waits for the server's answer at most
// 1 s, then 0.5 s for the close: a server that stopped answering does not
// hold up the end for longer (finish()'s own waits come on top).
TEST(NatsSink, DestroyedWhileTheServerIsStoppedEndsWithinTheDrainsBound) {
  REQUIRE_NATS_SERVER();
  NatsServer server;
  std::optional<NatsSink> sink(std::in_place, options_for(server, "STOPPED_END"));
  for (std::uint64_t i = 0; i < 10; ++i) sink->add(i, 0, payload(i));
  server.stop();
  const auto started = std::chrono::steady_clock::now();
  sink.reset();
  const auto elapsed = std::chrono::steady_clock::now() - started;
  server.resume();
  server.kill();
  EXPECT_LT(elapsed, std::chrono::seconds(5))
      << std::chrono::duration_cast<std::chrono::milliseconds>(elapsed).count() << " ms";
}

TEST(NatsSink, ClearErrorsWhenItCannotStart) {
  REQUIRE_NATS_SERVER();
  NatsServer server;
  NatsSinkOptions o = options_for(server, "S");
  auto error_of = [](const NatsSinkOptions& o) -> std::string {
    try {
      NatsSink sink(o);
    } catch (const SinkError& e) {
      return e.what();
    }
    return "no error";
  };

  NatsSinkOptions no_stream = o;
  no_stream.stream.clear();
  EXPECT_NE(error_of(no_stream).find("no JetStream stream captures subject perfbuf.test.S"),
            std::string::npos);

  { NatsSink make(o); }
  NatsSinkOptions other_subject = o;
  other_subject.subject = "elsewhere";
  EXPECT_NE(error_of(other_subject).find("stream S exists and does not capture subject elsewhere"),
            std::string::npos);

  const int dead_port = testing::free_loopback_port();
  NatsSinkOptions unreachable = o;
  unreachable.url = "nats://127.0.0.1:" + std::to_string(dead_port);
  EXPECT_NE(error_of(unreachable).find("cannot connect to " + unreachable.url),
            std::string::npos)
      << error_of(unreachable);

  NatsServer plain(/*jetstream=*/false);
  NatsSinkOptions no_jetstream = o;
  no_jetstream.url = plain.url();
  EXPECT_NE(error_of(no_jetstream).find("start it with -js"), std::string::npos)
      << error_of(no_jetstream);

  NatsSinkOptions bad_url = o;
  bad_url.url = "nats:/127.0.0.1";
  EXPECT_NE(error_of(bad_url).find("is not a nats://HOST:PORT URL"), std::string::npos);
}

// The server dies in the middle and comes back: every record is counted once,
// as acknowledged or dropped, and every acknowledged one is in the stream.
TEST(NatsSink, ServerKilledAndRestartedEveryRecordAccountedFor) {
  REQUIRE_NATS_SERVER();
  NatsServer server;
  NatsSinkOptions o = options_for(server, "CRASH");
  o.frame_records = 50;
  o.queue_frames = 400;
  o.ack_wait = std::chrono::milliseconds(1000);
  NatsSink sink(o);
  std::uint64_t i = 0;
  auto send = [&](std::uint64_t n) {
    for (std::uint64_t end = i + n; i < end; ++i) sink.add(i, 0, payload(i));
    sink.flush_due(std::chrono::steady_clock::now() + std::chrono::hours(1));
  };
  send(5000);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  server.kill();
  send(5000);  // into the client's buffer, or failing
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  server.start();
  send(5000);
  const SinkCounts c = sink.finish();
  EXPECT_EQ(c.received, 15000u);
  EXPECT_EQ(c.received, c.acknowledged + c.dropped)
      << "acknowledged " << c.acknowledged << " dropped " << c.dropped;
  EXPECT_GE(c.disconnects, 1u);
  EXPECT_GE(c.reconnects, 1u);
  EXPECT_GT(c.acknowledged, 5000u) << "records after the restart must get through";

  const std::vector<StoredRecord> stored = read_stream(server.url(), "CRASH");
  std::set<std::uint64_t> seen;
  for (const StoredRecord& r : stored) {
    EXPECT_TRUE(seen.insert(r.seq).second) << "record " << r.seq << " stored twice";
    const auto p = payload(r.seq);
    EXPECT_EQ(r.bytes, std::vector<std::uint8_t>(p.begin(), p.end())) << r.seq;
  }
  EXPECT_GE(seen.size(), c.acknowledged);  // acknowledged, so stored
  EXPECT_LE(seen.size(), c.received);
  // Messages sent again after a lost ack are stored once (their message id):
  // with nothing dropped, the stream holds exactly what was received.
  if (c.dropped == 0) EXPECT_EQ(stored.size(), c.received);
}

// A server that never answers: the in-flight window fills, the queue fills,
// records are dropped and counted, and finish() ends in bounded time.
TEST(NatsSink, ServerGoneForGoodDropsAreCountedAndFinishIsBounded) {
  REQUIRE_NATS_SERVER();
  NatsServer server;
  NatsSinkOptions o = options_for(server, "GONE");
  o.frame_records = 10;
  o.max_pending = 4;
  o.queue_frames = 4;
  o.ack_wait = std::chrono::milliseconds(500);
  o.finish_wait = std::chrono::milliseconds(2000);
  NatsSink sink(o);
  server.kill();
  for (std::uint64_t i = 0; i < 10000; ++i) sink.add(i, 0, payload(i));
  const auto started = std::chrono::steady_clock::now();
  const SinkCounts c = sink.finish();  // within finish_wait, and ack_wait for each in flight
  EXPECT_LT(std::chrono::steady_clock::now() - started, o.finish_wait + 2 * o.ack_wait);
  EXPECT_EQ(c.received, 10000u);
  EXPECT_EQ(c.acknowledged, 0u);
  EXPECT_EQ(c.dropped, 10000u);
  EXPECT_GT(c.dropped_queue_full, 0u);
  EXPECT_FALSE(c.last_error.empty());
}

// A server that stops reading (SIGSTOP) with large frames unsent: a write
// that fills the socket must not block finish() (libnats's write deadline),
// and every record is still counted.
TEST(NatsSink, ServerThatStopsReadingDoesNotBlockFinish) {
  REQUIRE_NATS_SERVER();
  NatsServer server;
  NatsSinkOptions o = options_for(server, "STOPPED");
  o.frame_bytes = 64 * 1024;
  o.queue_frames = 256;
  o.ack_wait = std::chrono::milliseconds(500);
  o.finish_wait = std::chrono::milliseconds(2000);
  NatsSink sink(o);
  std::vector<std::uint8_t> big(1000, 0x5a);
  std::uint64_t i = 0;
  for (; i < 200; ++i) sink.add(i, 0, big);
  server.stop();
  // Far more than the socket's buffers hold: the publisher's writes block.
  const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(500);
  while (std::chrono::steady_clock::now() < until && i < 200000) {
    for (int k = 0; k < 1000; ++k, ++i) sink.add(i, 0, big);
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  const auto started = std::chrono::steady_clock::now();
  const SinkCounts c = sink.finish();
  const auto elapsed = std::chrono::steady_clock::now() - started;
  server.resume();
  server.kill();
  // The write deadline (2 s) can hold the publisher past finish_wait once.
  EXPECT_LT(elapsed, o.finish_wait + std::chrono::milliseconds(2000 + 1500))
      << std::chrono::duration_cast<std::chrono::milliseconds>(elapsed).count() << " ms";
  EXPECT_EQ(c.received, i);
  EXPECT_EQ(c.received, c.acknowledged + c.dropped)
      << "acknowledged " << c.acknowledged << " dropped " << c.dropped;
  EXPECT_GT(c.dropped, 0u);
}

// The largest --frame-bytes (1 MiB) against a server whose max_payload is
// 1 MiB: frames are kept under it (headers included), none is refused.
TEST(NatsSink, FramesFitTheServersMaxPayload) {
  REQUIRE_NATS_SERVER();
  NatsServer server;
  NatsSinkOptions o = options_for(server, "BIGFRAMES");
  o.frame_bytes = 1048576;
  NatsSink sink(o);
  EXPECT_LE(sink.frame_bytes(), 1048576u - 64);
  std::vector<std::uint8_t> record(1000, 0x33);
  constexpr std::uint64_t kRecords = 3000;  // about three frames' worth
  for (std::uint64_t i = 0; i < kRecords; ++i) sink.add(i, 0, record);
  const SinkCounts c = sink.finish();
  EXPECT_EQ(c.acknowledged, kRecords) << c.last_error;
  EXPECT_EQ(c.dropped, 0u) << c.last_error;
  EXPECT_GE(c.published_messages, 3u);
}

// The stream gone after the start: every publish is answered at once with
// "no responders". Its resends wait 250 ms x attempt, so the 3 sends take
// some 750 ms, not milliseconds; then the records count as dropped.
TEST(NatsSink, NegativeAcksAreResentAfterAPause) {
  REQUIRE_NATS_SERVER();
  NatsServer server;
  NatsSinkOptions o = options_for(server, "NACK");
  o.ack_wait = std::chrono::milliseconds(2000);
  o.finish_wait = std::chrono::milliseconds(8000);
  NatsSink sink(o);
  with_js(server, [](jsCtx* js) { ASSERT_EQ(js_DeleteStream(js, "NACK", nullptr, nullptr), NATS_OK); });
  for (std::uint64_t i = 0; i < 10; ++i) sink.add(i, 0, payload(i));
  const auto started = std::chrono::steady_clock::now();
  const SinkCounts c = sink.finish();
  const auto elapsed = std::chrono::steady_clock::now() - started;
  EXPECT_EQ(c.acknowledged, 0u);
  EXPECT_EQ(c.dropped_ack, 10u) << c.last_error;
  EXPECT_GE(c.resent_messages, 2u);
  EXPECT_GE(elapsed, std::chrono::milliseconds(700));
  EXPECT_LT(elapsed, o.finish_wait);
}

// A stream the sink creates detects duplicates over every send of a message.
TEST(NatsSink, CreatedStreamsDuplicateWindowCoversEverySend) {
  REQUIRE_NATS_SERVER();
  NatsServer server;
  NatsSinkOptions o = options_for(server, "DUPWINDOW");
  o.ack_wait = std::chrono::milliseconds(60000);
  NatsSink sink(o);
  sink.finish();
  with_js(server, [&](jsCtx* js) {
    jsStreamInfo* info = nullptr;
    ASSERT_EQ(js_GetStreamInfo(&info, js, "DUPWINDOW", nullptr, nullptr), NATS_OK);
    EXPECT_GE(info->Config->Duplicates, std::int64_t{3} * 60 * 1000000000);
    jsStreamInfo_Destroy(info);
  });
}

}  // namespace
}  // namespace perfbuf
