// Loads the write(2) tracing program and attaches it to whichever hook this
// kernel offers. Shared by `perfbuf trace` and the kernel tests.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <perfbuf/reader.h>

#include "write_event.h"

struct bpf_map;
struct write_events;
struct bpf_link;

namespace perfbuf::tools {

// The record in a sample, if it is a whole write_event with the right cookie.
inline std::optional<write_event> checked_write_event(const Sample& s) {
  write_event e;
  if (!s.read(e) || e.cookie != PERFBUF_WRITE_COOKIE) return std::nullopt;
  return e;
}

enum class AttachMode { automatic, kprobe, tracepoint, raw_tracepoint };

// Which map the program sends its records through.
enum class Transport { perf, ringbuf };

const char* to_string(Transport transport);
std::optional<Transport> parse_transport(std::string_view text);

const char* to_string(AttachMode mode);
std::optional<AttachMode> parse_attach_mode(std::string_view text);

class WriteTracer {
 public:
  struct Filter {
    std::uint32_t only_tgid = 0;    // 0: every process
    std::uint32_t ignore_tgid = 0;  // 0: none
    Transport transport = Transport::perf;
    std::uint32_t ringbuf_bytes = 256 * 1024;  // Transport::ringbuf: a power of two of pages
  };
  // Opens and loads the BPF object. Throws perfbuf::Error (with the verifier's
  // message when the kernel rejects a program).
  explicit WriteTracer(Filter filter);
  ~WriteTracer();
  WriteTracer(const WriteTracer&) = delete;
  WriteTracer& operator=(const WriteTracer&) = delete;

  // Attaches the program for `mode`; automatic tries kprobe, then tracepoint,
  // then raw_tracepoint. Returns the hook used. Each failed try is added to
  // `notes` with its reason. Throws perfbuf::Error when nothing attaches.
  AttachMode attach(AttachMode mode, std::vector<std::string>& notes);
  // Detaches the program (no more records), and unmounts tracefs if we mounted it.
  void detach();

  // The map the program writes to: the perf event array or the ring buffer.
  const bpf_map* events_map() const;
  // The raw_tracepoint program, for BPF_PROG_TEST_RUN (works without attaching).
  int raw_tracepoint_fd() const;
  // The program's output counts for that map (<perfbuf/bpf.h>), for
  // Reader::count_outputs, and their sums over CPUs.
  const bpf_map* counts_map() const;
  perfbuf_counts counts() const;
  std::uint64_t attempts() const { return counts().attempts; }  // records the program tried to send
  std::uint64_t failures() const { return counts().failures; }  // of which the output failed

 private:
  bool try_attach(AttachMode mode, std::string& why);

  write_events* skel_ = nullptr;
  Transport transport_;
  bpf_link* link_ = nullptr;
  bool mounted_tracefs_ = false;
};

}  // namespace perfbuf::tools
