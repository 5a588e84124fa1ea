#include "bpf_load.h"

#include <perfbuf/error.h>

#include <bpf/libbpf.h>

#include <cstdarg>
#include <cstdio>
#include <cstring>

namespace perfbuf::tools {

namespace {

std::string g_log;

int collect(libbpf_print_level level, const char* fmt, va_list args) {
  if (level == LIBBPF_DEBUG) return 0;
  va_list copy;
  va_copy(copy, args);
  const int n = std::vsnprintf(nullptr, 0, fmt, copy);
  va_end(copy);
  if (n <= 0) return n;
  const std::size_t at = g_log.size();
  g_log.resize(at + static_cast<std::size_t>(n) + 1);
  std::vsnprintf(g_log.data() + at, static_cast<std::size_t>(n) + 1, fmt, args);
  g_log.pop_back();  // the terminating NUL
  return n;
}

libbpf_print_fn_t g_previous = nullptr;

}  // namespace

LibbpfLog::LibbpfLog() {
  g_log.clear();
  g_previous = libbpf_set_print(collect);
}

LibbpfLog::~LibbpfLog() { libbpf_set_print(g_previous); }

const std::string& LibbpfLog::text() const { return g_log; }

void load_bpf_object(const std::string& name, const std::function<int()>& load) {
  LibbpfLog log;
  const int err = load();
  if (err == 0) return;
  const int errnum = err < 0 ? -err : err;
  std::string msg = "load BPF object " + name + ": " + std::strerror(errnum);
  if (errnum == EPERM) {
    // The kernel refused the bpf() call itself: libbpf's log adds only guesses.
    throw Error(errnum, msg + ": needs root, or CAP_BPF and CAP_PERFMON");
  }
  if (errnum == EACCES || errnum == EINVAL) msg += ": the kernel's verifier rejected a program";
  throw Error(errnum, msg + "; libbpf's log:\n" + log.text());
}

}  // namespace perfbuf::tools
