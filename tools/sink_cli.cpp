#include "sink_cli.h"

#include <fmt/format.h>

namespace perfbuf::tools {

namespace {

// A subject one can publish to: dot-separated tokens, none empty, no
// wildcards, no white space.
bool publishable_subject(const std::string& s) {
  if (s.empty() || s.front() == '.' || s.back() == '.' || s.find("..") != std::string::npos)
    return false;
  return s.find_first_of("*> \t\r\n") == std::string::npos;
}

// A stream name as the server takes it: no dots, wildcards, slashes or spaces.
bool valid_stream_name(const std::string& s) {
  return !s.empty() && s.size() <= 255 && s.find_first_of(".*>/\\ \t\r\n") == std::string::npos;
}

}  // namespace

NatsSinkOptions SinkArgs::options() const {
  NatsSinkOptions o;
  o.url = url;
  o.subject = subject;
  o.stream = stream;
  o.frame_bytes = frame_bytes;
  o.frame_records = frame_records;
  o.ack_wait = std::chrono::milliseconds(static_cast<std::int64_t>(ack_wait_s * 1000));
  return o;
}

void add_sink_options(CLI::App& app, SinkArgs& args) {
  add_parsed(app, "--sink", "URL",
             "ship every record received to NATS JetStream at\n"
             "nats://HOST:PORT (several, comma-separated: a cluster)",
             "takes nats://HOST:PORT[,nats://HOST:PORT...]",
             nats_url_option,
             [&args](std::string v) { args.url = std::move(v); });
  add_parsed(app, "--subject", "SUBJ", "the subject records are published to (with --sink)",
             "takes a subject to publish to: dot-separated tokens, no wildcards or spaces",
             [](const std::string& v) -> std::optional<std::string> {
               if (!publishable_subject(v)) return std::nullopt;
               return v;
             },
             [&args](std::string v) { args.subject = std::move(v); });
  add_parsed(app, "--stream", "NAME",
             "the JetStream stream to store them in, created (file\n"
             "storage) if missing (default: the stream capturing SUBJ)",
             "takes a stream name: no dots, wildcards, slashes or spaces",
             [](const std::string& v) -> std::optional<std::string> {
               if (!valid_stream_name(v)) return std::nullopt;
               return v;
             },
             [&args](std::string v) { args.stream = std::move(v); });
  add_parsed(app, "--frame-bytes", "N",
             "send a message once its records take N bytes (default 65536)",
             "takes a number of bytes from 64 to 1048576",
             number_in<std::size_t>(64, std::size_t{1} << 20),
             [&args](std::size_t v) { args.frame_bytes = v; });
  add_parsed(app, "--frame-records", "N",
             "...or hold N records (1: one message per record)",
             "takes a number of records, 1 or more",
             number_in<std::uint32_t>(1, UINT32_MAX),
             [&args](std::uint32_t v) { args.frame_records = v; });
  // The stream's duplicate window must cover every send of a message: 60 s
  // times the sends keeps it within minutes.
  add_parsed(app, "--ack-wait", "SEC",
             fmt::format("a message not acknowledged within SEC seconds is sent\n"
                         "again, after {} sends it counts as dropped (default {})",
                         NatsSinkOptions{}.max_attempts,
                         std::chrono::duration<double>(NatsSinkOptions{}.ack_wait).count()),
             "takes a number of seconds from 0.01 to 60", number_in<double>(0.01, 60),
             [&args](double v) { args.ack_wait_s = v; });
}

void check_sink_args(const SinkArgs& args) {
  if (args.enabled() && args.subject.empty())
    throw CLI::ValidationError("--sink", "needs --subject SUBJ: where the records go");
  if (!args.enabled() && (!args.subject.empty() || !args.stream.empty()))
    throw CLI::ValidationError(args.subject.empty() ? "--stream" : "--subject",
                               "is for --sink nats://HOST:PORT");
}

Json sink_summary_json(const SinkArgs& args, const NatsSink& sink, const SinkCounts& c,
                       std::uint64_t kernel_lost) {
  return {{"url", args.url},
          {"subject", args.subject},
          {"stream", sink.stream()},
          {"host", sink.host()},
          {"run_id", sink.run_id()},
          {"received", c.received},
          {"published_records", c.published_records},
          {"published_messages", c.published_messages},
          {"acknowledged", c.acknowledged},
          {"acknowledged_messages", c.acknowledged_messages},
          {"resent_messages", c.resent_messages},
          {"duplicates", c.duplicates},
          {"dropped", c.dropped},
          {"dropped_queue_full", c.dropped_queue_full},
          {"dropped_publish", c.dropped_publish},
          {"dropped_ack", c.dropped_ack},
          {"dropped_at_finish", c.dropped_at_finish},
          {"kernel_lost", kernel_lost},
          {"accounted", c.received == c.acknowledged + c.dropped},
          {"disconnects", c.disconnects},
          {"reconnects", c.reconnects},
          {"publisher_cpu_s", rounded(c.publisher_cpu_s, 3)},
          {"last_error", c.last_error}};
}

std::string sink_summary_text(const SinkArgs& args, const NatsSink& sink, const SinkCounts& c,
                              std::uint64_t kernel_lost) {
  std::string text = fmt::format(
      "sink {} subject {} (stream {}): received {} records, published {} in {} messages, "
      "acknowledged {}, dropped {}, kernel lost {}; {}\n",
      args.url, args.subject, sink.stream(), c.received, c.published_records,
      c.published_messages, c.acknowledged, c.dropped, kernel_lost,
      c.received == c.acknowledged + c.dropped ? "every record received is accounted for"
                                               : "COUNTS DO NOT ADD UP");
  if (c.dropped)
    text += fmt::format("  dropped: {} queue full, {} publish refused, {} not acknowledged, "
                        "{} still unacknowledged at the end; last error: {}\n",
                        c.dropped_queue_full, c.dropped_publish, c.dropped_ack,
                        c.dropped_at_finish, c.last_error);
  if (c.disconnects || c.reconnects || c.resent_messages)
    text += fmt::format("  connection: {} disconnects, {} reconnects; {} messages sent again "
                        "after a missing ack, {} of them already stored\n",
                        c.disconnects, c.reconnects, c.resent_messages, c.duplicates);
  return text;
}

}  // namespace perfbuf::tools
