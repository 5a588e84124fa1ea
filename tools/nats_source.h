// The other end of the sink: reads a JetStream stream of frames back
// (perfbuf cat --source nats://...), prints or counts the records and reports
// gaps in each sender's sequence numbers.
#pragma once

#include <signal.h>

#include <cstdint>
#include <string>

namespace perfbuf::tools {

class BtfDecoder;

struct NatsSourceOptions {
  std::string url;
  std::string subject;
  std::string stream;  // empty: the stream capturing subject
  enum class Format { text, json, hex } format = Format::text;
  std::uint64_t count = 0;  // stop after this many records (0: no limit)
  double duration_s = 0;    // stop after this long (0: no limit)
  const BtfDecoder* decoder = nullptr;  // decode records as a type, else hex
};

// Reads until the last message the stream held at the start, count,
// duration or stop, whichever comes first; prints the summary on stderr (text) or as a
// JSON line. Returns the exit code: 0, or 1 when frames were corrupt or the
// stream could not be read. Throws SinkError when it cannot start.
int read_nats_source(const NatsSourceOptions& options, volatile sig_atomic_t& stop);

}  // namespace perfbuf::tools
