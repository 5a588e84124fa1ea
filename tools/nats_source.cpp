#include "nats_source.h"

#include <nats/nats.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <memory>
#include <vector>

#include <fmt/format.h>

#include "btf_decoder.h"
#include "frame.h"
#include "json_lines.h"
#include "nats_client.h"
#include "nats_sink.h"

namespace perfbuf::tools {

namespace {

// The client objects, destroyed in order.
struct Client {
  natsOptions* options = nullptr;
  natsConnection* connection = nullptr;
  jsCtx* js = nullptr;
  natsSubscription* subscription = nullptr;
  ~Client() {
    natsSubscription_Destroy(subscription);
    jsCtx_Destroy(js);
    natsConnection_Destroy(connection);
    natsOptions_Destroy(options);
  }
};

// What the last frame of each sender said about its losses.
struct SenderLosses {
  std::uint64_t kernel_lost = 0;
  std::uint64_t sink_dropped = 0;
};

}  // namespace

int read_nats_source(const NatsSourceOptions& o, volatile sig_atomic_t& stop) {
  using clock = std::chrono::steady_clock;
  const SinkUrl url = parse_sink_url(o.url);
  if (!url.error.empty()) throw SinkError("--source: " + url.error);
  std::vector<const char*> servers;
  for (const std::string& s : url.servers) servers.push_back(s.c_str());
  Client c;
  // Every option is checked: options that failed would connect elsewhere
  // (a client without options goes to localhost:4222).
  auto check_option = [](natsStatus s, const std::string& what) {
    if (s != NATS_OK) throw SinkError(what + ": " + last_nats_error(s));
  };
  check_option(natsOptions_Create(&c.options), "NATS options");
  check_option(natsOptions_SetServers(c.options, servers.data(), static_cast<int>(servers.size())),
        "--source " + o.url);
  check_option(natsOptions_SetTimeout(c.options, 2000), "NATS options");
  check_option(natsOptions_SetName(c.options, "perfbuf cat"), "NATS options");
  if (const natsStatus s = natsConnection_Connect(&c.connection, c.options); s != NATS_OK)
    throw SinkError("cannot connect to " + o.url + ": " + last_nats_error(s) +
                    " (is nats-server running there?)");
  if (const natsStatus s = natsConnection_JetStream(&c.js, c.connection, nullptr); s != NATS_OK)
    throw SinkError("JetStream context: " + last_nats_error(s));

  std::string stream = o.stream;
  if (stream.empty()) {
    const std::vector<std::string> capturing = streams_capturing(c.js, o.subject, 5000, o.url);
    if (!capturing.empty()) stream = capturing.front();
    if (stream.empty()) throw SinkError("no JetStream stream captures subject " + o.subject);
  }
  jsStreamInfo* info = nullptr;
  if (const natsStatus s = js_GetStreamInfo(&info, c.js, stream.c_str(), nullptr, nullptr);
      s != NATS_OK)
    throw SinkError("stream " + stream + ": " +
                    (s == NATS_NOT_FOUND ? std::string("not found") : last_nats_error(s)));
  const std::uint64_t last_at_start = info->State.LastSeq;
  const std::uint64_t messages_at_start = info->State.Msgs;
  jsStreamInfo_Destroy(info);

  jsSubOptions sub_options;
  jsSubOptions_Init(&sub_options);
  sub_options.Stream = stream.c_str();
  sub_options.Ordered = true;  // the library restarts it on a gap: every message, in order
  sub_options.Config.DeliverPolicy = js_DeliverAll;
  if (const natsStatus s =
          js_SubscribeSync(&c.subscription, c.js, o.subject.c_str(), nullptr, &sub_options, nullptr);
      s != NATS_OK)
    throw SinkError("cannot read stream " + stream + ": " + last_nats_error(s));

  const bool json = o.format == NatsSourceOptions::Format::json;
  if (json)
    print_json_line({{"type", "start"},
                     {"source", o.url},
                     {"subject", o.subject},
                     {"stream", stream},
                     {"messages", messages_at_start},
                     {"last_seq", last_at_start}});
  else
    std::fprintf(stderr, "perfbuf cat: reading stream %s (%llu messages), subject %s at %s\n",
                 stream.c_str(), static_cast<unsigned long long>(messages_at_start),
                 o.subject.c_str(), o.url.c_str());

  SequenceCheck check;
  std::map<std::pair<std::string, std::uint64_t>, SenderLosses> losses;
  std::uint64_t messages = 0, records = 0, corrupt = 0, overlaps = 0;
  std::uint64_t stream_seq = 0;
  int status = 0;
  const clock::time_point start = clock::now();
  const clock::time_point end =
      o.duration_s > 0 ? start + std::chrono::duration_cast<clock::duration>(
                                     std::chrono::duration<double>(o.duration_s))
                       : clock::time_point::max();
  // A stream that stops delivering before its last message is an error, not
  // a wait without end.
  constexpr auto kStalled = std::chrono::seconds(10);
  clock::time_point last_message = start;
  while (!stop && !(o.count && records >= o.count)) {
    // An empty stream (never written, or purged: no messages, a last
    // sequence number all the same) has nothing to wait for.
    if (messages_at_start == 0 || stream_seq >= last_at_start) break;
    const clock::time_point now = clock::now();
    if (now >= end) break;
    natsMsg* msg = nullptr;
    const natsStatus s = natsSubscription_NextMsg(&msg, c.subscription, 100);
    if (s == NATS_TIMEOUT) {
      if (now - last_message > kStalled) {
        std::fprintf(stderr, "perfbuf cat: stream %s delivered nothing for %lld s, at message %llu of %llu\n",
                     stream.c_str(), static_cast<long long>(kStalled.count()),
                     static_cast<unsigned long long>(stream_seq),
                     static_cast<unsigned long long>(last_at_start));
        status = 1;
        break;
      }
      continue;
    }
    if (s != NATS_OK) {
      std::fprintf(stderr, "perfbuf cat: reading stream %s: %s\n", stream.c_str(),
                   last_nats_error(s).c_str());
      status = 1;
      break;
    }
    std::unique_ptr<natsMsg, void (*)(natsMsg*)> owned(msg, natsMsg_Destroy);
    last_message = clock::now();
    jsMsgMetaData* meta = nullptr;
    if (natsMsg_GetMetaData(&meta, msg) == NATS_OK) {
      stream_seq = meta->Sequence.Stream;
      jsMsgMetaData_Destroy(meta);
    }
    ++messages;
    const std::span<const std::uint8_t> data(reinterpret_cast<const std::uint8_t*>(natsMsg_GetData(msg)),
                                             static_cast<std::size_t>(natsMsg_GetDataLength(msg)));
    const FrameResult r = decode_frame(data);
    if (!r.ok()) {
      ++corrupt;
      if (json)
        print_json_line({{"type", "corrupt"}, {"stream_seq", stream_seq}, {"error", r.error}});
      else
        std::fprintf(stderr, "perfbuf cat: message %llu of stream %s is not a frame: %s\n",
                     static_cast<unsigned long long>(stream_seq), stream.c_str(), r.error.c_str());
      continue;
    }
    const FrameHeader& h = r.frame.header;
    // Counts only grow: a frame sent again late carries older ones.
    SenderLosses& l = losses[{h.host, h.run_id}];
    l.kernel_lost = std::max(l.kernel_lost, h.kernel_lost);
    l.sink_dropped = std::max(l.sink_dropped, h.sink_dropped);
    // Gaps are reported at the end, where they are still holes: a frame
    // sent again (its ack did not come in time) may fill one later.
    if (const std::optional<SequenceJump> jump = check.add(h);
        jump && jump->kind != SequenceJump::gap) {
      const bool overlap = jump->kind == SequenceJump::overlap;
      overlaps += overlap;
      if (json)
        print_json_line({{"type", overlap ? "overlap" : "late"},
                         {"host", h.host},
                         {"run_id", h.run_id},
                         {"expected", jump->expected},
                         {"first_seq", jump->first_seq},
                         {overlap ? "repeated" : "late", jump->records()},
                         {"sink_dropped", h.sink_dropped},
                         {"kernel_lost", h.kernel_lost}});
      else if (overlap)
        std::printf("overlap: host %s run %016llx: expected record %llu, frame starts at %llu: "
                    "%llu records seen again\n",
                    h.host.c_str(), static_cast<unsigned long long>(h.run_id),
                    static_cast<unsigned long long>(jump->expected),
                    static_cast<unsigned long long>(jump->first_seq),
                    static_cast<unsigned long long>(jump->records()));
    }
    for (std::size_t i = 0; i < r.frame.records.size(); ++i) {
      if (o.count && records >= o.count) break;
      ++records;
      const FrameRecord& rec = r.frame.records[i];
      const std::uint64_t seq = h.first_seq + i;
      std::optional<Decoded> d;
      if (o.decoder && o.format != NatsSourceOptions::Format::hex) d = o.decoder->decode(rec.bytes);
      if (json) {
        Json line = {{"type", "record"}, {"host", h.host}, {"run_id", h.run_id}, {"seq", seq},
                     {"cpu", rec.cpu},   {"time_ns", rec.time_ns}, {"size", rec.bytes.size()}};
        if (d)
          line["value"] = to_json(d->value);
        else
          line["hex"] = to_hex(rec.bytes);
        print_json_line(line);
      } else {
        const std::string text = fmt::format("{} seq {} cpu {} time {}.{:09}: {}", h.host, seq,
                                             rec.cpu, rec.time_ns / 1000000000,
                                             rec.time_ns % 1000000000,
                                             d ? to_text(d->value) : to_hex(rec.bytes));
        std::puts(text.c_str());
      }
    }
  }
  const double seconds = std::chrono::duration<double>(clock::now() - start).count();
  // The holes left: records never seen.
  const std::vector<SequenceHole> holes = check.holes();
  for (const SequenceHole& hole : holes) {
    const SenderLosses& l = losses[{hole.host, hole.run_id}];
    if (json)
      print_json_line({{"type", "gap"},
                       {"host", hole.host},
                       {"run_id", hole.run_id},
                       {"expected", hole.from},
                       {"first_seq", hole.to},
                       {"missing", hole.to - hole.from},
                       {"sink_dropped", l.sink_dropped},
                       {"kernel_lost", l.kernel_lost}});
    else
      std::printf("gap: host %s run %016llx: expected record %llu, frame starts at %llu: %llu "
                  "records missing (the sender dropped %llu in all)\n",
                  hole.host.c_str(), static_cast<unsigned long long>(hole.run_id),
                  static_cast<unsigned long long>(hole.from), static_cast<unsigned long long>(hole.to),
                  static_cast<unsigned long long>(hole.to - hole.from),
                  static_cast<unsigned long long>(l.sink_dropped));
  }
  const std::uint64_t gaps = holes.size();
  std::uint64_t kernel_lost = 0, sink_dropped = 0;
  for (const auto& [sender, l] : losses) {
    kernel_lost += l.kernel_lost;
    sink_dropped += l.sink_dropped;
  }
  if (json) {
    print_json_line({{"type", "summary"},
                     {"stream", stream},
                     {"messages", messages},
                     {"records", records},
                     {"senders", check.senders()},
                     {"gaps", gaps},
                     {"missing", check.missing()},
                     {"overlaps", overlaps},
                     {"repeated", check.repeated()},
                     {"late", check.late()},
                     {"corrupt", corrupt},
                     {"kernel_lost", kernel_lost},
                     {"sink_dropped", sink_dropped},
                     {"seconds", rounded(seconds, 3)}});
  } else {
    std::fflush(stdout);
    std::fprintf(stderr,
                 "perfbuf cat: read %llu records in %llu messages of stream %s from %zu "
                 "senders in %.2f s: %llu gaps (%llu records missing), %llu overlaps (%llu "
                 "records seen again), %llu records late, %llu corrupt messages; the senders' "
                 "frames say kernel lost %llu, sink dropped %llu\n",
                 static_cast<unsigned long long>(records), static_cast<unsigned long long>(messages),
                 stream.c_str(), check.senders(), seconds, static_cast<unsigned long long>(gaps),
                 static_cast<unsigned long long>(check.missing()),
                 static_cast<unsigned long long>(overlaps),
                 static_cast<unsigned long long>(check.repeated()),
                 static_cast<unsigned long long>(check.late()),
                 static_cast<unsigned long long>(corrupt),
                 static_cast<unsigned long long>(kernel_lost),
                 static_cast<unsigned long long>(sink_dropped));
  }
  std::fflush(stdout);
  return corrupt ? 1 : status;
}

}  // namespace perfbuf::tools
