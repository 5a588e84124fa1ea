// A sink that ships records to NATS JetStream, packed into frames (frame.h).
//
// The reader's thread calls add() for every record: it only appends to the
// open frame and, when the frame is full (or old: flush_due()), hands it to a
// bounded queue, so the rings keep being drained whatever the server does.
// A publishing thread takes frames from the queue and publishes them with
// js_PublishMsgAsync, at most max_pending unacknowledged at a time.
//
// Nothing is lost silently: every record added ends up counted once, as
// acknowledged (the server stored it) or dropped (the queue was full, the
// publish failed, the ack was negative or did not come within ack_wait on
// each of max_attempts tries, or finish() ran out of time). After finish():
// received == acknowledged + dropped. Each message carries a message id
// (Nats-Msg-Id: run id and first sequence number), so a message sent again
// after a lost ack is stored once: the server acknowledges it as a duplicate.
// The connection reconnects on its own (forever) while the sink runs;
// publishes made while it is down are buffered by the client (up to
// reconnect_buffer bytes) and count as dropped if their ack never comes, or
// as dropped_publish at once when that buffer is full.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "frame.h"

namespace perfbuf::tools {

// A sink that could not start: unreachable server, no JetStream, no stream.
struct SinkError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// The servers of a --sink URL, "nats://HOST:PORT[,nats://HOST:PORT...]"; an
// error message if it is not one (for a usage error).
struct SinkUrl {
  std::vector<std::string> servers;
  std::string error;
};
SinkUrl parse_sink_url(std::string_view text);
// The check of a URL option (--sink, --source): the text if it is one.
std::optional<std::string> nats_url_option(const std::string& text);

struct NatsSinkOptions {
  std::string url;      // nats://HOST:PORT, or several comma-separated (a cluster)
  std::string subject;  // where frames are published
  std::string stream;   // created (file storage, capturing subject) if missing; empty: any
                        // existing stream that captures subject
  // A frame is sent once this big (at most the server's max_payload less
  // room for the headers: larger is cut to that)...
  std::size_t frame_bytes = 64 * 1024;
  std::uint32_t frame_records = 0;      // ...or holding this many records (0: no limit)
  std::chrono::milliseconds frame_age{50};  // ...or this old
  std::size_t queue_frames = 64;            // frames waiting for the publisher
  int max_pending = 64;                     // messages published and not yet acknowledged
  std::chrono::milliseconds ack_wait{5000};    // an ack not in by then: sent again, or dropped
  // Sends of one message before it counts as dropped. The stream's duplicate
  // window (2 min unless set otherwise) must cover them all.
  int max_attempts = 3;
  std::chrono::milliseconds connect_timeout{2000};
  std::chrono::milliseconds finish_wait{10000};  // finish(): time for the rest to be acknowledged
  int reconnect_buffer = 32 * 1024 * 1024;       // bytes buffered while disconnected
  std::int64_t stream_max_bytes = -1;  // a stream created here keeps at most this much (-1: no limit)
  bool purge_stream = false;           // empty the stream at start (a bench's own stream)
};

struct SinkCounts {
  std::uint64_t received = 0;            // records given to add()
  std::uint64_t published_records = 0;   // records in messages handed to the client
  std::uint64_t published_messages = 0;
  std::uint64_t acknowledged = 0;        // records the server confirmed storing
  std::uint64_t acknowledged_messages = 0;
  std::uint64_t resent_messages = 0;     // sent again after a failed or missing ack
  std::uint64_t duplicates = 0;          // of which the server already had (acknowledged)
  std::uint64_t dropped = 0;             // records given up on, for any reason below
  std::uint64_t dropped_queue_full = 0;  // of which: the queue to the publisher was full
  std::uint64_t dropped_publish = 0;     //   the client refused the publish
  std::uint64_t dropped_ack = 0;         //   negative ack, or none within ack_wait
  std::uint64_t dropped_at_finish = 0;   //   still unacknowledged when finish() gave up
  std::uint64_t disconnects = 0;
  std::uint64_t reconnects = 0;
  double publisher_cpu_s = 0;  // CPU time of the publishing thread (after finish())
  std::string last_error;      // the last publish or ack failure, for the summary
};

class NatsSink {
 public:
  // Connects, finds or creates the stream, starts the publisher. Throws
  // SinkError with what went wrong and what to do.
  explicit NatsSink(NatsSinkOptions options);
  ~NatsSink();
  NatsSink(const NatsSink&) = delete;
  NatsSink& operator=(const NatsSink&) = delete;

  // From the reader's thread only (add, flush_due, set_kernel_lost, finish).
  void add(std::uint64_t time_ns, std::int32_t cpu, std::span<const std::uint8_t> bytes) {
    // A record that would take the frame past frame_bytes goes into the next
    // one (frame_bytes is a limit: the server refuses a message over its max).
    if (packer_.started() && packer_.record_count() > 0 &&
        packer_.size() + kFrameRecordHeader + bytes.size() > options_.frame_bytes)
      close_frame();
    if (!packer_.started()) open_frame();
    packer_.add(time_ns, cpu, bytes);
    ++received_;
    if (packer_.size() >= options_.frame_bytes ||
        (options_.frame_records && packer_.record_count() >= options_.frame_records))
      close_frame();
  }
  // Sends the open frame if it is older than frame_age.
  void flush_due(std::chrono::steady_clock::time_point now);
  // When the open frame must be sent (none when no frame is open).
  std::optional<std::chrono::steady_clock::time_point> next_deadline() const;
  // The kernel's lost count so far, stamped into the frames packed from now on.
  void set_kernel_lost(std::uint64_t lost) { kernel_lost_ = lost; }

  // Sends the open frame and an empty one that marks the end of the run, waits (at most finish_wait) for the queue to empty
  // and every ack, counts what is left as dropped and stops the publisher.
  SinkCounts finish();
  // Counts so far (the reader's thread; the others' counts are atomic).
  SinkCounts counts() const;

  std::string_view stream() const { return stream_; }
  std::size_t frame_bytes() const { return options_.frame_bytes; }  // after the server's limit
  std::uint64_t run_id() const { return run_id_; }
  const std::string& host() const { return host_; }

  struct Impl;   // the NATS side (nats_sink.cpp)
  struct State;  // what the publisher and the client's callbacks share (nats_sink.cpp)

 private:
  void open_frame();
  void close_frame();
  void publisher();
  // Publishes a natsMsg: the client takes it, or it is counted as dropped and
  // destroyed.
  void publish(void* msg, bool resend);
  // How long the stream must detect duplicates: all sends of a message.
  std::int64_t duplicate_window_ns() const;

  NatsSinkOptions options_;
  // Kept alive by the client's callbacks too: one may still run after the
  // sink is gone (libnats does not wait for them).
  std::shared_ptr<State> state_;
  std::unique_ptr<Impl> nats_;
  std::string stream_;
  std::string host_;
  std::uint64_t run_id_;
  FramePacker packer_;
  std::chrono::steady_clock::time_point frame_opened_;
  std::uint64_t received_ = 0;  // reader's thread
  std::uint64_t next_seq_ = 0;
  std::uint64_t kernel_lost_ = 0;
  bool finished_ = false;
  std::atomic<bool> publish_attempted_{false};  // the client took a publish (its pending list exists)
  std::thread thread_;

  friend struct Callbacks;
};

}  // namespace perfbuf::tools
