// Loading BPF objects with libbpf, with errors a user can act on.
#pragma once

#include <functional>
#include <string>

namespace perfbuf::tools {

// Collects libbpf's warnings while alive instead of letting them go to stderr,
// so that an expected failure (no kprobes here) is reported once, in our words,
// and a real one (the verifier's log) can be put into the error.
class LibbpfLog {
 public:
  LibbpfLog();
  ~LibbpfLog();
  LibbpfLog(const LibbpfLog&) = delete;
  LibbpfLog& operator=(const LibbpfLog&) = delete;
  const std::string& text() const;
};

// Runs `load` (a skeleton's __load; returns 0 or -errno). On failure throws
// perfbuf::Error: "load BPF object NAME: <errno text> (<hint>)" followed by
// libbpf's log, which holds the verifier's message for a rejected program.
void load_bpf_object(const std::string& name, const std::function<int()>& load);

}  // namespace perfbuf::tools
