// The thin layer over the system calls the reader makes. Every failure becomes
// a perfbuf::Error naming the call, its argument, errno and what to do.
#pragma once

#include <perfbuf/error.h>

#include <linux/perf_event.h>
#include <signal.h>
#include <sys/epoll.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace perfbuf::sys {

// An owned file descriptor: closed once, when the owner goes away.
class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) noexcept : fd_(fd) {}
  Fd(Fd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  Fd& operator=(Fd&& o) noexcept {
    if (this != &o) {
      reset();
      fd_ = std::exchange(o.fd_, -1);
    }
    return *this;
  }
  ~Fd() { reset(); }
  int get() const noexcept { return fd_; }
  void reset() noexcept;

 private:
  int fd_ = -1;
};

// An owned shared mapping of a perf event fd.
class Mapping {
 public:
  Mapping() = default;
  Mapping(void* addr, std::size_t len) noexcept : addr_(addr), len_(len) {}
  Mapping(Mapping&& o) noexcept
      : addr_(std::exchange(o.addr_, nullptr)), len_(std::exchange(o.len_, 0)) {}
  Mapping& operator=(Mapping&& o) noexcept {
    if (this != &o) {
      reset();
      addr_ = std::exchange(o.addr_, nullptr);
      len_ = std::exchange(o.len_, 0);
    }
    return *this;
  }
  ~Mapping() { reset(); }
  void* get() const noexcept { return addr_; }
  std::size_t size() const noexcept { return len_; }
  void reset() noexcept;

 private:
  void* addr_ = nullptr;
  std::size_t len_ = 0;
};

// An Error for the errno of the call that just failed, with a hint for the usual causes.
Error last_error(const std::string& call);
Error make_error(int errnum, const std::string& call);

std::size_t page_size();

// "0-3,5,7-8" -> {0,1,2,3,5,7,8}. Throws Error(EINVAL) on malformed text.
std::vector<int> parse_cpu_list(std::string_view text);
std::vector<int> read_cpu_list(const char* path);

// perf_event_open(attr, pid = -1, cpu, group = -1, FD_CLOEXEC).
Fd perf_event_open(perf_event_attr& attr, int cpu);
// MAP_SHARED mapping of a perf ring: control page + data pages. Read-write,
// or read-only (writable = false), which makes the ring overwritable: the
// kernel then ignores data_tail and overwrites the oldest records.
Mapping map_ring(int perf_fd, std::size_t bytes, int cpu, bool writable = true);

// The two mappings of a BPF ring buffer map of `data_bytes`: the consumer page
// (read-write) and the producer page followed by the data area mapped twice
// (read-only).
struct RingbufMappings {
  Mapping consumer;
  Mapping producer;
};
RingbufMappings map_ringbuf(int map_fd, std::size_t data_bytes, const std::string& name);

Fd epoll_create();
void epoll_del(int epoll_fd, int fd) noexcept;
void epoll_add(int epoll_fd, int fd, std::uint64_t token, bool edge_triggered = false);
// epoll_pwait2: waits up to `timeout` (>= 0), to the microsecond. -1 and errno as the call.
int epoll_wait_for(int epoll_fd, epoll_event* events, int max_events,
                   std::chrono::nanoseconds timeout, const sigset_t* sigmask);

// A non-blocking socket that receives the kernel's device events (netlink
// uevents), among them CPUs going offline and online; an invalid Fd where the
// kernel does not let this process listen (the reader then cannot follow hotplug).
Fd uevent_open() noexcept;
// Reads every pending event: whether one was about a CPU, and the CPUs that
// went offline.
struct CpuEvents {
  bool any = false;
  bool lost = false;  // the socket overflowed: events are missing
  std::vector<int> offline;
};
CpuEvents uevent_read_cpus(int fd);

// PERF_EVENT_IOC_PAUSE_OUTPUT. Throws Error.
void perf_event_pause_output(int perf_fd, bool paused);

// PERF_EVENT_IOC_SET_OUTPUT: `perf_fd`'s records go to the ring mapped for
// `ring_fd` (an event of the same CPU), under `perf_fd`'s own wakeup setting.
// Throws Error.
void perf_event_set_output(int perf_fd, int ring_fd);

// A non-blocking eventfd: signal() makes it readable from any thread (or a
// signal handler), clear() makes it not readable again.
Fd eventfd_create();
void eventfd_signal(int fd) noexcept;
void eventfd_clear(int fd) noexcept;

struct MapInfo {
  std::uint32_t id;
  std::uint32_t type;
  std::uint32_t key_size;
  std::uint32_t value_size;
  std::uint32_t max_entries;
  std::string name;
};
Fd dup_map_fd(int map_fd);
// Throws E2BIG, saying what to change, if a CPU id has no slot in a
// PERF_EVENT_ARRAY (its events are stored at key = CPU id).
void check_cpus_fit_map(const std::vector<int>& cpus, const MapInfo& info);
// Whether perf can stamp records with `clock` (-1: perf's own clock).
bool perf_can_stamp_with(clockid_t clock) noexcept;
// What is wrong with a caller's list of CPUs (a negative id, one listed
// twice), or an empty string.
std::string cpu_list_problem(const std::vector<int>& cpus);
MapInfo map_info(int map_fd);
void map_set(int map_fd, int key, int value);
void map_delete(int map_fd, int key) noexcept;

// The CPUs the kernel keeps per-CPU map values for (libbpf_num_possible_cpus).
int possible_cpus();
// A per-CPU array's value at `key` on every possible CPU, one after another,
// each value_size bytes rounded up to 8 (the kernel's layout).
std::vector<std::byte> percpu_lookup(int map_fd, std::uint32_t key, std::size_t value_size);
// The same into `values`, which keeps its memory from one call to the next.
void percpu_lookup(int map_fd, std::uint32_t key, std::size_t value_size,
                   std::vector<std::byte>& values);
// Sets a per-CPU array's value at `key` to `value` on every possible CPU.
void percpu_update_all(int map_fd, std::uint32_t key, const void* value, std::size_t value_size);

}  // namespace perfbuf::sys
