// The sink's frame format without a server: what is packed comes back, and
// truncated or damaged frames are rejected with a reason.
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "frame.h"
#include "nats_sink.h"

namespace perfbuf::tools {
namespace {

std::span<const std::uint8_t> bytes_of(const std::string& s) {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

struct Sample3 {
  std::vector<std::string> payloads{"", "a", std::string(1000, 'x')};
  FrameHeader header{.run_id = 0x1122334455667788, .first_seq = 41, .record_count = 0,
                     .kernel_lost = 7, .sink_dropped = 3, .host = "host-1"};
  std::vector<std::uint8_t> encode() const {
    std::vector<FrameRecord> records;
    for (std::size_t i = 0; i < payloads.size(); ++i)
      records.push_back({.time_ns = 1000 + i, .cpu = static_cast<std::int32_t>(i) - 1,
                         .bytes = bytes_of(payloads[i])});
    return encode_frame(header, records);
  }
};

TEST(Frame, RoundTrip) {
  const Sample3 s;
  const std::vector<std::uint8_t> frame = s.encode();
  EXPECT_EQ(frame.size(), kFrameFixedHeader + 6 + 3 * kFrameRecordHeader + 1001);
  const FrameResult r = decode_frame(frame);
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(r.frame.header.run_id, s.header.run_id);
  EXPECT_EQ(r.frame.header.first_seq, 41u);
  EXPECT_EQ(r.frame.header.record_count, 3u);
  EXPECT_EQ(r.frame.header.kernel_lost, 7u);
  EXPECT_EQ(r.frame.header.sink_dropped, 3u);
  EXPECT_EQ(r.frame.header.host, "host-1");
  ASSERT_EQ(r.frame.records.size(), 3u);
  for (std::size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(r.frame.records[i].time_ns, 1000 + i);
    EXPECT_EQ(r.frame.records[i].cpu, static_cast<int>(i) - 1);
    EXPECT_EQ(std::string(r.frame.records[i].bytes.begin(), r.frame.records[i].bytes.end()),
              s.payloads[i]);
  }
  EXPECT_EQ(frame_record_count(frame), 3u);
}

TEST(Frame, EmptyFrameAndLongHostName) {
  FrameHeader h;
  h.host = std::string(400, 'h');  // cut to the most a frame holds
  const std::vector<std::uint8_t> frame = encode_frame(h, {});
  const FrameResult r = decode_frame(frame);
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(r.frame.header.host.size(), kFrameMaxHost);
  EXPECT_TRUE(r.frame.records.empty());
}

TEST(Frame, PackerReusesItsBufferForTheNextFrame) {
  FramePacker packer("h", 9);
  for (std::uint64_t first : {0, 2}) {
    packer.start(first, 0, 0);
    const std::string a = "ab", b = "cd";
    packer.add(1, 0, bytes_of(a));
    packer.add(2, 1, bytes_of(b));
    packer.finish();
    const FrameResult r = decode_frame(packer.buffer());
    ASSERT_TRUE(r.ok()) << r.error;
    EXPECT_EQ(r.frame.header.first_seq, first);
    EXPECT_EQ(r.frame.records.size(), 2u);
  }
}

TEST(Frame, EveryTruncationIsRejected) {
  const std::vector<std::uint8_t> frame = Sample3().encode();
  for (std::size_t n = 0; n < frame.size(); ++n) {
    const FrameResult r = decode_frame(std::span(frame).first(n));
    EXPECT_FALSE(r.ok()) << n;
    EXPECT_TRUE(r.frame.records.empty()) << n;
  }
  EXPECT_NE(decode_frame(std::span(frame).first(10)).error.find("truncated"), std::string::npos);
}

TEST(Frame, EveryFlippedByteIsRejected) {
  const std::vector<std::uint8_t> good = Sample3().encode();
  for (std::size_t i = 0; i < good.size(); ++i) {
    std::vector<std::uint8_t> bad = good;
    bad[i] ^= 0x40;
    EXPECT_FALSE(decode_frame(bad).ok()) << "byte " << i;
  }
}

TEST(Frame, ReasonsNameWhatIsWrong) {
  std::vector<std::uint8_t> f = Sample3().encode();
  auto error_of = [](std::vector<std::uint8_t> bytes) { return decode_frame(bytes).error; };

  std::vector<std::uint8_t> magic = f;
  magic[0] = 'X';
  EXPECT_NE(error_of(magic).find("bad magic"), std::string::npos);

  std::vector<std::uint8_t> version = f;
  version[4] = 2;
  EXPECT_NE(error_of(version).find("version 2 is not supported"), std::string::npos);

  std::vector<std::uint8_t> longer = f;
  longer.push_back(0);
  EXPECT_FALSE(decode_frame(longer).ok());

  // A frame whose checksum is right but whose last record claims more bytes
  // than there are: the structure is checked, not only the checksum.
  FramePacker packer("h", 1);
  packer.start(0, 0, 0);
  const std::string payload = "abcd";
  packer.add(5, 0, bytes_of(payload));
  packer.buffer().resize(packer.buffer().size() - 2);
  packer.finish();
  const std::string e = decode_frame(packer.buffer()).error;
  EXPECT_NE(e.find("record 0: length 4 runs past the end"), std::string::npos) << e;

  packer.start(0, 0, 0);
  packer.add(5, 0, bytes_of(payload));
  packer.buffer().push_back(0);
  packer.finish();
  EXPECT_NE(decode_frame(packer.buffer()).error.find("1 bytes after the last record"),
            std::string::npos);
}

namespace {
FrameHeader seq_frame(std::uint64_t first, std::uint32_t n) {
  return FrameHeader{.run_id = 1, .first_seq = first, .record_count = n, .host = "h"};
}
}  // namespace

TEST(SequenceCheck, InOrderIsNoJump) {
  SequenceCheck check;
  for (std::uint64_t f = 0; f < 100; f += 10) EXPECT_FALSE(check.add(seq_frame(f, 10)));
  EXPECT_FALSE(check.add(seq_frame(100, 0)));  // the run's end frame
  EXPECT_EQ(check.missing(), 0u);
  EXPECT_EQ(check.repeated(), 0u);
  EXPECT_EQ(check.late(), 0u);
  EXPECT_TRUE(check.holes().empty());
}

TEST(SequenceCheck, GapNeverFilledRemainsAHole) {
  SequenceCheck check;
  EXPECT_FALSE(check.add(seq_frame(0, 10)));
  const auto gap = check.add(seq_frame(20, 10));
  ASSERT_TRUE(gap);
  EXPECT_EQ(gap->kind, SequenceJump::gap);
  EXPECT_EQ(gap->records(), 10u);
  EXPECT_FALSE(check.add(seq_frame(30, 0)));
  ASSERT_EQ(check.holes().size(), 1u);
  EXPECT_EQ(check.holes()[0].from, 10u);
  EXPECT_EQ(check.holes()[0].to, 20u);
  EXPECT_EQ(check.missing(), 10u);
  EXPECT_EQ(check.repeated(), 0u);
}

// A message sent again after its ack did not come arrives after later ones:
// it fills the hole, no gap remains and nothing counts as seen twice.
TEST(SequenceCheck, HoleFilledLateIsNeitherGapNorOverlap) {
  SequenceCheck check;
  EXPECT_FALSE(check.add(seq_frame(0, 10)));
  const auto gap = check.add(seq_frame(20, 10));
  ASSERT_TRUE(gap);
  EXPECT_EQ(gap->kind, SequenceJump::gap);
  const auto late = check.add(seq_frame(10, 10));
  ASSERT_TRUE(late);
  EXPECT_EQ(late->kind, SequenceJump::late);
  EXPECT_EQ(late->records(), 10u);
  EXPECT_FALSE(check.add(seq_frame(30, 0)));
  EXPECT_TRUE(check.holes().empty());
  EXPECT_EQ(check.missing(), 0u);
  EXPECT_EQ(check.repeated(), 0u);
  EXPECT_EQ(check.late(), 10u);
}

// Part of a hole filled: the rest stays missing, on both sides.
TEST(SequenceCheck, HoleFilledInPart) {
  SequenceCheck check;
  EXPECT_FALSE(check.add(seq_frame(0, 10)));
  EXPECT_TRUE(check.add(seq_frame(40, 10)));  // hole [10, 40)
  const auto late = check.add(seq_frame(20, 10));
  ASSERT_TRUE(late);
  EXPECT_EQ(late->kind, SequenceJump::late);
  ASSERT_EQ(check.holes().size(), 2u);
  EXPECT_EQ(check.holes()[0].from, 10u);
  EXPECT_EQ(check.holes()[0].to, 20u);
  EXPECT_EQ(check.holes()[1].from, 30u);
  EXPECT_EQ(check.holes()[1].to, 40u);
  EXPECT_EQ(check.missing(), 20u);
}

TEST(SequenceCheck, TrueDuplicateIsAnOverlap) {
  SequenceCheck check;
  EXPECT_FALSE(check.add(seq_frame(0, 10)));
  EXPECT_FALSE(check.add(seq_frame(10, 10)));
  const auto again = check.add(seq_frame(10, 10));
  ASSERT_TRUE(again);
  EXPECT_EQ(again->kind, SequenceJump::overlap);
  EXPECT_EQ(again->records(), 10u);
  EXPECT_EQ(check.repeated(), 10u);
  EXPECT_EQ(check.missing(), 0u);
  EXPECT_EQ(check.late(), 0u);
}

TEST(SequenceCheck, GapsAndOverlapsPerSender) {
  SequenceCheck check;
  auto frame = [](std::string host, std::uint64_t run, std::uint64_t first, std::uint32_t n) {
    return FrameHeader{.run_id = run, .first_seq = first, .record_count = n, .host = host};
  };
  EXPECT_FALSE(check.add(frame("a", 1, 0, 10)));
  EXPECT_FALSE(check.add(frame("a", 1, 10, 5)));
  EXPECT_FALSE(check.add(frame("b", 1, 0, 3)));  // another sender counts on its own
  EXPECT_FALSE(check.add(frame("a", 2, 0, 3)));  // a new run of the same host too
  const auto gap = check.add(frame("a", 1, 20, 5));
  ASSERT_TRUE(gap);
  EXPECT_EQ(gap->kind, SequenceJump::gap);
  EXPECT_EQ(gap->expected, 15u);
  EXPECT_EQ(gap->records(), 5u);
  const auto again = check.add(frame("a", 1, 22, 10));
  ASSERT_TRUE(again);
  EXPECT_EQ(again->kind, SequenceJump::overlap);
  EXPECT_EQ(again->records(), 3u);
  EXPECT_FALSE(check.add(frame("a", 1, 32, 1)));
  const auto late_start = check.add(frame("c", 9, 100, 1));  // its first 100 are not there
  ASSERT_TRUE(late_start);
  EXPECT_EQ(late_start->records(), 100u);
  EXPECT_EQ(check.senders(), 4u);
  EXPECT_EQ(check.missing(), 105u);
  EXPECT_EQ(check.repeated(), 3u);
}

TEST(SinkUrl, AcceptsHostPortListsAndRejectsTheRest) {
  EXPECT_EQ(parse_sink_url("nats://127.0.0.1:4222").servers.size(), 1u);
  EXPECT_EQ(parse_sink_url("nats://a:1,nats://b:65535").servers.size(), 2u);
  for (const char* bad : {"", "nats://", "nats://host", "nats://host:", "nats://:4222",
                          "http://host:4222", "nats://host:0", "nats://host:65536",
                          "nats://host:42x", "nats://a:1,", "nats://u@host:1"}) {
    const SinkUrl u = parse_sink_url(bad);
    EXPECT_FALSE(u.error.empty()) << bad;
    EXPECT_TRUE(u.servers.empty()) << bad;
  }
}

}  // namespace
}  // namespace perfbuf::tools
