// The --sink options that `perfbuf trace` and `perfbuf cat` share, and the
// sink's part of their start line and summary.
#pragma once

#include <cstdint>
#include <string>

#include "cli.h"
#include "json_lines.h"
#include "nats_sink.h"

namespace perfbuf::tools {

struct SinkArgs {
  std::string url;  // empty: no sink
  std::string subject;
  std::string stream;
  std::size_t frame_bytes = NatsSinkOptions{}.frame_bytes;
  std::uint32_t frame_records = 0;
  double ack_wait_s = 5;

  bool enabled() const { return !url.empty(); }
  NatsSinkOptions options() const;
};

// Adds --sink, --subject, --stream, --frame-bytes, --frame-records, --ack-wait.
void add_sink_options(CLI::App& app, SinkArgs& args);
// The checks that need every option in (from the app's callback).
void check_sink_args(const SinkArgs& args);

// The sink's summary: counts, the kernel's lost records beside them, and
// whether every record received is accounted for.
Json sink_summary_json(const SinkArgs& args, const NatsSink& sink, const SinkCounts& c,
                       std::uint64_t kernel_lost);
std::string sink_summary_text(const SinkArgs& args, const NatsSink& sink, const SinkCounts& c,
                              std::uint64_t kernel_lost);

}  // namespace perfbuf::tools
