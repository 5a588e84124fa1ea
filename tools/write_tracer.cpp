#include "write_tracer.h"

#include <perfbuf/error.h>

#include <bpf/libbpf.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "bpf_load.h"
#include "write_events.skel.h"

namespace perfbuf::tools {

namespace {

constexpr const char* kTracefs = "/sys/kernel/tracing";

#if defined(__x86_64__)
constexpr const char* kWriteFunction = "__x64_sys_write";
#elif defined(__aarch64__)
constexpr const char* kWriteFunction = "__arm64_sys_write";
#else
constexpr const char* kWriteFunction = "ksys_write";
#endif

bool path_exists(const char* path) {
  struct stat st;
  return ::stat(path, &st) == 0;
}

}  // namespace

const char* to_string(AttachMode mode) {
  switch (mode) {
    case AttachMode::automatic: return "auto";
    case AttachMode::kprobe: return "kprobe";
    case AttachMode::tracepoint: return "tracepoint";
    case AttachMode::raw_tracepoint: return "raw_tracepoint";
  }
  return "?";
}

std::optional<AttachMode> parse_attach_mode(std::string_view text) {
  for (AttachMode m : {AttachMode::automatic, AttachMode::kprobe, AttachMode::tracepoint,
                       AttachMode::raw_tracepoint})
    if (text == to_string(m)) return m;
  return std::nullopt;
}

const char* to_string(Transport transport) {
  return transport == Transport::perf ? "perf" : "ringbuf";
}

std::optional<Transport> parse_transport(std::string_view text) {
  for (Transport t : {Transport::perf, Transport::ringbuf})
    if (text == to_string(t)) return t;
  return std::nullopt;
}

WriteTracer::WriteTracer(Filter filter) : transport_(filter.transport) {
  skel_ = write_events__open();
  if (!skel_) throw Error(errno, "open BPF object write_events: " + std::string(std::strerror(errno)));
  skel_->rodata->target_tgid = filter.only_tgid;
  skel_->rodata->ignore_tgid = filter.ignore_tgid;
  skel_->rodata->write_syscall_nr = SYS_write;
  skel_->rodata->use_ringbuf = filter.transport == Transport::ringbuf;
  // The ring buffer costs kernel memory even when unused: one page then.
  bpf_map__set_max_entries(skel_->maps.ring_events, filter.transport == Transport::ringbuf
                                                        ? filter.ringbuf_bytes
                                                        : static_cast<std::uint32_t>(getpagesize()));
  try {
    load_bpf_object("write_events", [this] { return write_events__load(skel_); });
  } catch (...) {
    write_events__destroy(skel_);
    skel_ = nullptr;
    throw;
  }
}

WriteTracer::~WriteTracer() {
  detach();
  write_events__destroy(skel_);
}

bool WriteTracer::try_attach(AttachMode mode, std::string& why) {
  LibbpfLog quiet;  // the reason goes into `why`, in our words
  switch (mode) {
    case AttachMode::kprobe:
      link_ = bpf_program__attach_kprobe(skel_->progs.write_kprobe, false, kWriteFunction);
      if (!link_)
        why = std::string("kprobe on ") + kWriteFunction + ": " + std::strerror(errno) +
              " (kernel built without CONFIG_KPROBE_EVENTS, or the function is not probeable)";
      break;
    case AttachMode::tracepoint:
      if (!path_exists("/sys/kernel/tracing/events")) {
        if (::mount("nodev", kTracefs, "tracefs", 0, nullptr) == 0) {
          mounted_tracefs_ = true;
        } else {
          why = std::string("tracepoint syscalls/sys_enter_write: tracefs is not mounted and "
                            "mounting it failed (") + std::strerror(errno) +
                "); as root run: mount -t tracefs nodev /sys/kernel/tracing";
          return false;
        }
      }
      link_ = bpf_program__attach_tracepoint(skel_->progs.write_tracepoint, "syscalls",
                                             "sys_enter_write");
      if (!link_)
        why = std::string("tracepoint syscalls/sys_enter_write: ") + std::strerror(errno) +
              (errno == ENOENT ? " (kernel built without CONFIG_FTRACE_SYSCALLS?)" : "");
      break;
    case AttachMode::raw_tracepoint:
      link_ = bpf_program__attach_raw_tracepoint(skel_->progs.write_raw_tracepoint, "sys_enter");
      if (!link_) why = std::string("raw_tracepoint sys_enter: ") + std::strerror(errno);
      break;
    case AttachMode::automatic:
      break;
  }
  if (!link_ && mounted_tracefs_) {
    ::umount2(kTracefs, MNT_DETACH);
    mounted_tracefs_ = false;
  }
  return link_ != nullptr;
}

AttachMode WriteTracer::attach(AttachMode mode, std::vector<std::string>& notes) {
  const std::vector<AttachMode> order =
      mode == AttachMode::automatic
          ? std::vector{AttachMode::kprobe, AttachMode::tracepoint, AttachMode::raw_tracepoint}
          : std::vector{mode};
  std::string failures;
  for (AttachMode m : order) {
    std::string why;
    if (try_attach(m, why)) return m;
    notes.push_back(why);
    failures += "\n  " + why;
  }
  throw Error(ENOTSUP, std::string("could not attach to write(2) with --attach ") +
                           to_string(mode) + ":" + failures);
}

void WriteTracer::detach() {
  if (link_) bpf_link__destroy(link_);
  link_ = nullptr;
  if (mounted_tracefs_) ::umount2(kTracefs, MNT_DETACH);
  mounted_tracefs_ = false;
}

const bpf_map* WriteTracer::events_map() const {
  return transport_ == Transport::perf ? skel_->maps.events : skel_->maps.ring_events;
}
int WriteTracer::raw_tracepoint_fd() const {
  return bpf_program__fd(skel_->progs.write_raw_tracepoint);
}
const bpf_map* WriteTracer::counts_map() const {
  return transport_ == Transport::perf ? skel_->maps.events_counts : skel_->maps.ring_events_counts;
}
perfbuf_counts WriteTracer::counts() const { return sum_output_counts(bpf_map__fd(counts_map())); }

}  // namespace perfbuf::tools
