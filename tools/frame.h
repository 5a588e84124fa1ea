// The frame: how perfbuf packs several records into one message for a sink
// (perfbuf trace --sink nats://...), and how a consumer unpacks them.
//
// All integers little-endian. A frame is a header, then record_count records:
//
//   offset size  field
//   0      4     magic "PBFR"
//   4      2     version (1)
//   6      2     header_bytes: 52 + host_len (where the first record starts)
//   8      8     run_id: random, drawn when the sink starts; (host, run_id)
//                names one sender, whose sequences count from 0
//   16     8     first_seq: sequence number of the first record in this frame;
//                the sender numbers every record it received, so the next
//                frame of the same run starts at first_seq + record_count
//                unless records were dropped in between (a gap)
//   24     4     record_count
//   28     4     crc32 (zlib) of the whole frame, with these 4 bytes as zero
//   32     8     kernel_lost: records the kernel dropped (full ring, failed
//                output) since the sender started, as known when the frame
//                was packed; those never got a sequence number
//   40     8     sink_dropped: records of this run the sender dropped (queue
//                full, publish failed, no ack) as known when the frame was packed
//   48     2     host_len, then
//   50     n     host: the sender's host name (not terminated)
//   50+n   2     reserved, zero
//
// and each record:
//
//   0      8     time_ns: the record's time (CLOCK_MONOTONIC of the sender)
//   8      4     cpu: the CPU whose ring held it, -1 for a BPF ring buffer
//   12     4     length
//   16     n     the record's bytes
//
// A frame ends exactly after its last record; anything else is corrupt. A
// sender ends its run with a frame of no records whose first_seq is the count
// of records it received: a gap before it means records dropped at the end.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace perfbuf::tools {

inline constexpr std::uint16_t kFrameVersion = 1;
inline constexpr std::size_t kFrameFixedHeader = 52;  // the header without the host name
inline constexpr std::size_t kFrameRecordHeader = 16;
inline constexpr std::size_t kFrameMaxHost = 255;

struct FrameHeader {
  std::uint64_t run_id = 0;
  std::uint64_t first_seq = 0;
  std::uint32_t record_count = 0;
  std::uint64_t kernel_lost = 0;
  std::uint64_t sink_dropped = 0;
  std::string host;
};

struct FrameRecord {
  std::uint64_t time_ns = 0;
  std::int32_t cpu = -1;
  std::span<const std::uint8_t> bytes;  // points into the frame
};

struct DecodedFrame {
  FrameHeader header;
  std::vector<FrameRecord> records;
};

// A decoded frame, or why the bytes are not one.
struct FrameResult {
  DecodedFrame frame;
  std::string error;  // empty: the frame is good
  bool ok() const { return error.empty(); }
};

// Checks and unpacks a frame; its records point into `bytes`.
FrameResult decode_frame(std::span<const std::uint8_t> bytes);

// The record count of a frame, read from its header without checking the rest
// (for the publisher's ack accounting of frames it packed itself); 0 if the
// bytes are too short to hold a header.
std::uint32_t frame_record_count(std::span<const std::uint8_t> bytes);
// Its first sequence number, the same way.
std::uint64_t frame_first_seq(std::span<const std::uint8_t> bytes);

// Packs records into one frame at a time, in a reused buffer.
class FramePacker {
 public:
  // host is cut to kFrameMaxHost bytes.
  FramePacker(std::string_view host, std::uint64_t run_id);

  // Starts a frame whose first record gets sequence first_seq.
  void start(std::uint64_t first_seq, std::uint64_t kernel_lost, std::uint64_t sink_dropped);
  void add(std::uint64_t time_ns, std::int32_t cpu, std::span<const std::uint8_t> bytes);
  // Fills in the count and checksum; the frame is then `bytes()`.
  void finish();

  bool started() const { return started_; }
  std::uint32_t record_count() const { return count_; }
  std::size_t size() const { return buffer_.size(); }
  std::vector<std::uint8_t>& buffer() { return buffer_; }
  // Hands the frame's buffer out (and takes `spare` in its place, to reuse).
  std::vector<std::uint8_t> take(std::vector<std::uint8_t> spare = {});

 private:
  std::string host_;
  std::uint64_t run_id_;
  std::vector<std::uint8_t> buffer_;
  std::uint32_t count_ = 0;
  bool started_ = false;
};

// What a consumer sees in the sequence numbers of one sender's frames.
struct SequenceJump {
  // gap: the frame starts past the records expected (a hole opens);
  // late: it fills (part of) an earlier hole, as a resend does;
  // overlap: it holds records already seen.
  enum Kind { gap, late, overlap } kind;
  std::uint64_t expected = 0;   // the sequence the frame should have started at
  std::uint64_t first_seq = 0;  // where it did
  std::uint64_t count = 0;      // records missing (gap), filled in (late), seen again (overlap)
  std::uint64_t records() const { return count; }
};

// Records of a sender not seen (yet): [from, to).
struct SequenceHole {
  std::string host;
  std::uint64_t run_id = 0;
  std::uint64_t from = 0, to = 0;
};

// Follows the sequences of every sender (host, run_id) in the order frames
// arrive; a sender's first frame is expected to start at 0. A hole that a
// later frame fills (a message sent again after its ack did not come) is no
// loss: missing() is what is still not seen.
class SequenceCheck {
 public:
  std::optional<SequenceJump> add(const FrameHeader& h);
  std::size_t senders() const { return senders_.size(); }
  std::uint64_t missing() const { return missing_; }    // records in holes now
  std::uint64_t repeated() const { return repeated_; }  // seen twice
  std::uint64_t late() const { return late_; }          // arrived after later ones
  std::vector<SequenceHole> holes() const;               // by sender, in order

 private:
  struct Sender {
    std::uint64_t next = 0;                     // past the highest record seen
    std::map<std::uint64_t, std::uint64_t> holes;  // from -> to
  };
  std::map<std::pair<std::string, std::uint64_t>, Sender> senders_;
  std::uint64_t missing_ = 0;
  std::uint64_t repeated_ = 0;
  std::uint64_t late_ = 0;
};

// One whole frame with these records (for tests and one-off senders).
std::vector<std::uint8_t> encode_frame(const FrameHeader& header,
                                       const std::vector<FrameRecord>& records);

}  // namespace perfbuf::tools
