#include "sys.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <linux/netlink.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>

namespace perfbuf::sys {

void Fd::reset() noexcept {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

void Mapping::reset() noexcept {
  if (addr_) ::munmap(addr_, len_);
  addr_ = nullptr;
  len_ = 0;
}

namespace {
const char* hint(int errnum) {
  switch (errnum) {
    case EPERM:
    case EACCES:
      return "needs root, or CAP_BPF and CAP_PERFMON";
    case EMFILE:
    case ENFILE:
      return "too many open files: raise the fd limit (ulimit -n)";
    case EBADF:
      return "the fd is closed or not valid";
    default:
      return nullptr;
  }
}
}  // namespace

Error make_error(int errnum, const std::string& call) {
  std::string msg = call + ": " + std::strerror(errnum);
  if (const char* h = hint(errnum)) msg += std::string(" (") + h + ")";
  return Error(errnum, msg);
}

Error last_error(const std::string& call) { return make_error(errno, call); }

std::size_t page_size() {
  static const std::size_t size = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  return size;
}

std::vector<int> parse_cpu_list(std::string_view text) {
  std::vector<int> cpus;
  auto bad = [&] {
    return Error(EINVAL, "cpu list \"" + std::string(text) + "\" is malformed (expected e.g. 0-3,5)");
  };
  auto number = [&](std::string_view& s) {
    if (s.empty() || s[0] < '0' || s[0] > '9') throw bad();
    int v = 0;
    while (!s.empty() && s[0] >= '0' && s[0] <= '9') {
      v = v * 10 + (s[0] - '0');
      if (v > 1 << 20) throw bad();
      s.remove_prefix(1);
    }
    return v;
  };
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.remove_suffix(1);
  std::string_view s = text;
  while (!s.empty()) {
    const int first = number(s);
    int last = first;
    if (!s.empty() && s[0] == '-') {
      s.remove_prefix(1);
      last = number(s);
      if (last < first) throw bad();
    }
    for (int c = first; c <= last; ++c) cpus.push_back(c);
    if (!s.empty()) {
      if (s[0] != ',') throw bad();
      s.remove_prefix(1);
      if (s.empty()) throw bad();
    }
  }
  return cpus;
}

std::vector<int> read_cpu_list(const char* path) {
  std::ifstream in(path);
  if (!in) throw last_error(std::string("open ") + path);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return parse_cpu_list(text);
}

Fd perf_event_open(perf_event_attr& attr, int cpu) {
  const int fd = static_cast<int>(
      ::syscall(SYS_perf_event_open, &attr, -1 /* any pid */, cpu, -1 /* no group */,
                PERF_FLAG_FD_CLOEXEC));
  if (fd < 0) {
    const int err = errno;
    const std::string call = "perf_event_open(cpu " + std::to_string(cpu) + ")";
    if (err == ENODEV || err == EINVAL)
      throw Error(err, call + ": cpu " + std::to_string(cpu) +
                           " is offline or does not exist, or the kernel lacks "
                           "PERF_COUNT_SW_BPF_OUTPUT");
    if (err == EACCES || err == EPERM) {
      std::string paranoid = "?";
      std::ifstream("/proc/sys/kernel/perf_event_paranoid") >> paranoid;
      throw Error(err, call + ": a system-wide perf event needs root or CAP_PERFMON "
                              "(kernel.perf_event_paranoid is " + paranoid + ")");
    }
    throw make_error(err, call);
  }
  return Fd(fd);
}

Mapping map_ring(int perf_fd, std::size_t bytes, int cpu, bool writable) {
  void* addr =
      ::mmap(nullptr, bytes, writable ? PROT_READ | PROT_WRITE : PROT_READ, MAP_SHARED, perf_fd, 0);
  if (addr == MAP_FAILED) {
    const int err = errno;
    const std::string call =
        "mmap(ring of cpu " + std::to_string(cpu) + ", " + std::to_string(bytes) + " bytes)";
    if (err == EPERM || err == ENOMEM)
      throw Error(err, call + ": over the locked-memory limit for perf rings; use fewer "
                              "pages per CPU, or raise kernel.perf_event_mlock_kb / "
                              "RLIMIT_MEMLOCK (CAP_IPC_LOCK lifts both)");
    throw make_error(err, call);
  }
  return Mapping(addr, bytes);
}

RingbufMappings map_ringbuf(int map_fd, std::size_t data_bytes, const std::string& name) {
  const std::size_t page = page_size();
  auto map = [&](std::size_t bytes, int prot, off_t offset, const char* what) {
    void* addr = ::mmap(nullptr, bytes, prot, MAP_SHARED, map_fd, offset);
    if (addr == MAP_FAILED)
      throw make_error(errno, "mmap(" + std::string(what) + " of ring buffer \"" + name + "\", " +
                                  std::to_string(bytes) + " bytes)");
    return Mapping(addr, bytes);
  };
  RingbufMappings m;
  m.consumer = map(page, PROT_READ | PROT_WRITE, 0, "consumer page");
  m.producer = map(page + 2 * data_bytes, PROT_READ, static_cast<off_t>(page), "data area");
  return m;
}

Fd epoll_create() {
  const int fd = ::epoll_create1(EPOLL_CLOEXEC);
  if (fd < 0) throw last_error("epoll_create1");
  return Fd(fd);
}

void epoll_add(int epoll_fd, int fd, std::uint64_t token, bool edge_triggered) {
  epoll_event ev{};
  ev.events = EPOLLIN | (edge_triggered ? EPOLLET : 0u);
  ev.data.u64 = token;
  if (::epoll_ctl(epoll_fd, EPOLL_CTL_ADD, fd, &ev) < 0) throw last_error("epoll_ctl(ADD)");
}

void epoll_del(int epoll_fd, int fd) noexcept { ::epoll_ctl(epoll_fd, EPOLL_CTL_DEL, fd, nullptr); }

[[gnu::hot]] int epoll_wait_for(int epoll_fd, epoll_event* events, int max_events,
                                std::chrono::nanoseconds timeout, const sigset_t* sigmask) {
  static bool have_pwait2 = true;  // kernels before 5.11 lack it: whole milliseconds then
  if (have_pwait2) {
    const timespec ts{static_cast<time_t>(timeout.count() / 1000000000),
                      static_cast<long>(timeout.count() % 1000000000)};
    const int n = ::epoll_pwait2(epoll_fd, events, max_events, &ts, sigmask);
    if (n >= 0 || errno != ENOSYS) return n;
    have_pwait2 = false;
  }
  const auto ms = std::chrono::ceil<std::chrono::milliseconds>(timeout).count();
  return ::epoll_pwait(epoll_fd, events, max_events,
                       static_cast<int>(std::min<std::int64_t>(ms, INT_MAX)), sigmask);
}

Fd uevent_open() noexcept {
  const int fd = ::socket(AF_NETLINK, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
                          NETLINK_KOBJECT_UEVENT);
  if (fd < 0) return Fd();
  Fd owned(fd);
  sockaddr_nl addr{};
  addr.nl_family = AF_NETLINK;
  addr.nl_groups = 1;  // the kernel's own events
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) < 0) return Fd();
  return owned;
}

CpuEvents uevent_read_cpus(int fd) {
  CpuEvents events;
  char buf[8192];
  for (;;) {
    const ssize_t n = ::recv(fd, buf, sizeof buf - 1, 0);
    if (n < 0 && errno == ENOBUFS) {  // events were dropped: any CPU may have gone away
      events.any = events.lost = true;
      continue;
    }
    if (n <= 0) return events;  // EAGAIN: all read
    buf[n] = '\0';
    // "ACTION@DEVPATH\0KEY=VALUE\0...": the header names the device.
    constexpr char kCpu[] = "@/devices/system/cpu/cpu";
    const char* at = std::strstr(buf, kCpu);
    if (!at) continue;
    events.any = true;
    if (std::strncmp(buf, "offline@", 8) == 0)
      events.offline.push_back(std::atoi(at + sizeof kCpu - 1));
  }
}

void perf_event_pause_output(int perf_fd, bool paused) {
  if (::ioctl(perf_fd, PERF_EVENT_IOC_PAUSE_OUTPUT, paused ? 1 : 0) < 0)
    throw last_error("ioctl(PERF_EVENT_IOC_PAUSE_OUTPUT)");
}

void perf_event_set_output(int perf_fd, int ring_fd) {
  if (::ioctl(perf_fd, PERF_EVENT_IOC_SET_OUTPUT, ring_fd) < 0)
    throw last_error("ioctl(PERF_EVENT_IOC_SET_OUTPUT)");
}

Fd eventfd_create() {
  const int fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (fd < 0) throw last_error("eventfd");
  return Fd(fd);
}

// A full counter (EAGAIN) is already readable, so a failed write changes nothing.
void eventfd_signal(int fd) noexcept {
  const std::uint64_t one = 1;
  [[maybe_unused]] const ssize_t n = ::write(fd, &one, sizeof one);
}

void eventfd_clear(int fd) noexcept {
  std::uint64_t count;
  [[maybe_unused]] const ssize_t n = ::read(fd, &count, sizeof count);
}

Fd dup_map_fd(int map_fd) {
  if (map_fd < 0)
    throw Error(EBADF, "map fd " + std::to_string(map_fd) +
                           " is not valid: pass the fd of a loaded PERF_EVENT_ARRAY map");
  const int fd = ::fcntl(map_fd, F_DUPFD_CLOEXEC, 3);
  if (fd < 0) throw last_error("fcntl(F_DUPFD_CLOEXEC, map fd " + std::to_string(map_fd) + ")");
  return Fd(fd);
}

MapInfo map_info(int map_fd) {
  bpf_map_info info{};
  __u32 len = sizeof info;
  if (::bpf_obj_get_info_by_fd(map_fd, &info, &len) < 0) {
    const int err = errno;
    if (err == EINVAL || err == EBADF)
      throw Error(err, "bpf(OBJ_GET_INFO_BY_FD): fd " + std::to_string(map_fd) +
                           " is not a BPF map: pass the fd of a loaded PERF_EVENT_ARRAY or RINGBUF map");
    throw make_error(err, "bpf(OBJ_GET_INFO_BY_FD, map fd " + std::to_string(map_fd) + ")");
  }
  return {info.id, info.type, info.key_size, info.value_size, info.max_entries, info.name};
}

void map_set(int map_fd, int key, int value) {
  const __u32 k = static_cast<__u32>(key);
  const __u32 v = static_cast<__u32>(value);
  if (::bpf_map_update_elem(map_fd, &k, &v, BPF_ANY) < 0)
    throw last_error("bpf(MAP_UPDATE_ELEM, key " + std::to_string(key) + ")");
}

void map_delete(int map_fd, int key) noexcept {
  const __u32 k = static_cast<__u32>(key);
  ::bpf_map_delete_elem(map_fd, &k);
}

int possible_cpus() {
  static const int n = [] {
    const int r = ::libbpf_num_possible_cpus();
    if (r <= 0) throw make_error(-r, "libbpf_num_possible_cpus (/sys/devices/system/cpu/possible)");
    return r;
  }();
  return n;
}

// Hot: a counted map is read every max_delay, beside the loop's code.
[[gnu::hot]] void percpu_lookup(int map_fd, std::uint32_t key, std::size_t value_size,
                                std::vector<std::byte>& values) {
  values.resize(((value_size + 7) & ~std::size_t{7}) * possible_cpus());
  if (::bpf_map_lookup_elem(map_fd, &key, values.data()) < 0)
    throw last_error("bpf(MAP_LOOKUP_ELEM, per-CPU key " + std::to_string(key) + ")");
}

std::vector<std::byte> percpu_lookup(int map_fd, std::uint32_t key, std::size_t value_size) {
  std::vector<std::byte> values;
  percpu_lookup(map_fd, key, value_size, values);
  return values;
}

void percpu_update_all(int map_fd, std::uint32_t key, const void* value, std::size_t value_size) {
  const std::size_t stride = (value_size + 7) & ~std::size_t{7};
  std::vector<std::byte> values(stride * possible_cpus());
  for (std::size_t at = 0; at < values.size(); at += stride)
    std::memcpy(values.data() + at, value, value_size);
  if (::bpf_map_update_elem(map_fd, &key, values.data(), BPF_ANY) < 0)
    throw last_error("bpf(MAP_UPDATE_ELEM, per-CPU key " + std::to_string(key) + ")");
}

void check_cpus_fit_map(const std::vector<int>& cpus, const MapInfo& info) {
  for (int cpu : cpus)
    if (static_cast<std::uint32_t>(cpu) >= info.max_entries)
      throw Error(E2BIG, "map \"" + info.name + "\" has " + std::to_string(info.max_entries) +
                             " slots, but CPU " + std::to_string(cpu) + " needs key " +
                             std::to_string(cpu) +
                             ": leave max_entries unset (libbpf sizes it to the CPU count) "
                             "or make it larger than the highest CPU id");
}

bool perf_can_stamp_with(clockid_t clock) noexcept {
  switch (clock) {
    case CLOCK_MONOTONIC: case CLOCK_MONOTONIC_RAW: case CLOCK_REALTIME: case CLOCK_BOOTTIME:
    case CLOCK_TAI: case -1:  // kPerfClock
      return true;
    default:
      return false;
  }
}

std::string cpu_list_problem(const std::vector<int>& cpus) {
  for (std::size_t i = 0; i < cpus.size(); ++i) {
    if (cpus[i] < 0) return "cpus holds a negative CPU id (" + std::to_string(cpus[i]) + ")";
    if (std::find(cpus.begin(), cpus.begin() + i, cpus[i]) != cpus.begin() + i)
      return "cpus lists CPU " + std::to_string(cpus[i]) + " twice";
  }
  return {};
}

}  // namespace perfbuf::sys
