// What a user sees when something is missing: privileges, tracefs. Each case
// runs in a child process that takes the thing away from itself.
#include <gtest/gtest.h>

#include <perfbuf/reader.h>

#include <bpf/bpf.h>
#include <grp.h>
#include <linux/capability.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>

#include "bpf_support.h"
#include "cli_runner.h"
#include "write_tracer.h"

namespace perfbuf {
namespace {

using testing::Cli;

// Runs fn in a child process and returns what it wrote to the string.
std::string in_child(const std::function<std::string()>& fn) {
  int out[2];
  if (pipe(out) != 0) throw std::runtime_error("pipe");
  const pid_t pid = fork();
  if (pid == 0) {
    close(out[0]);
    const std::string text = fn();
    if (write(out[1], text.data(), text.size()) < 0) _exit(2);
    _exit(0);
  }
  close(out[1]);
  std::string text;
  char buf[4096];
  for (ssize_t n; (n = read(out[0], buf, sizeof buf)) > 0;) text.append(buf, n);
  close(out[0]);
  waitpid(pid, nullptr, 0);
  return text;
}

void drop_privileges() {
  if (setgroups(0, nullptr) != 0 || setresgid(65534, 65534, 65534) != 0 ||
      setresuid(65534, 65534, 65534) != 0)
    _exit(3);
}

TEST(FailureModes, WithoutPrivilegesEachStepSaysWhatIsNeeded) {
  REQUIRE_BPF();
  // Made while privileged, used after the privileges are gone.
  const int map = bpf_map_create(BPF_MAP_TYPE_PERF_EVENT_ARRAY, "unpriv", 4, 4, 64, nullptr);
  ASSERT_GE(map, 0);
  const std::string report = in_child([map] {
    drop_privileges();
    std::string r;
    try {
      tools::WriteTracer tracer({});
      r += "tracer: loaded\n";
    } catch (const Error& e) {
      r += "tracer: " + std::to_string(e.errnum()) + " " + e.what() + "\n";
    }
    try {
      Reader reader(map, [](const Sample&) {});
      r += "reader: built\n";
    } catch (const Error& e) {
      r += "reader: " + std::to_string(e.errnum()) + " " + e.what() + "\n";
    }
    return r;
  });
  close(map);
  EXPECT_NE(report.find("tracer: " + std::to_string(EPERM) + " load BPF object write_events"),
            std::string::npos)
      << report;
  EXPECT_NE(report.find("needs root, or CAP_BPF and CAP_PERFMON"), std::string::npos) << report;
  EXPECT_NE(report.find("reader: " + std::to_string(EACCES) + " perf_event_open(cpu"),
            std::string::npos)
      << report;
  EXPECT_NE(report.find("needs root or CAP_PERFMON"), std::string::npos) << report;
}

// Keeps every capability but CAP_IPC_LOCK and lowers RLIMIT_MEMLOCK to zero:
// the perf ring memory limits apply (kernel.perf_event_mlock_kb per user).
void without_memlock_privilege() {
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3] = {};
  const rlimit none{0, 0};
  if (syscall(SYS_capget, &header, data) != 0) _exit(3);
  data[CAP_IPC_LOCK / 32].effective &= ~(1u << (CAP_IPC_LOCK % 32));
  data[CAP_IPC_LOCK / 32].permitted &= ~(1u << (CAP_IPC_LOCK % 32));
  if (syscall(SYS_capset, &header, data) != 0 || setrlimit(RLIMIT_MEMLOCK, &none) != 0) _exit(3);
}

TEST(FailureModes, RingsOverTheLockedMemoryLimitSayWhatToChange) {
  REQUIRE_BPF();
  const int map = bpf_map_create(BPF_MAP_TYPE_PERF_EVENT_ARRAY, "memlock", 4, 4, 64, nullptr);
  ASSERT_GE(map, 0);
  const std::string report = in_child([map] {
    without_memlock_privilege();
    try {
      // 16 MiB per CPU: far over the default 516 KiB of kernel.perf_event_mlock_kb.
      Reader reader(map, [](const Sample&) {}, {}, Options{.pages_per_cpu = 4096});
      return std::string("built");
    } catch (const Error& e) {
      return std::to_string(e.errnum()) + " " + e.what();
    }
  });
  close(map);
  EXPECT_NE(report.find(std::to_string(EPERM) + " mmap(ring of cpu"), std::string::npos) << report;
  EXPECT_NE(report.find("perf_event_mlock_kb"), std::string::npos) << report;
}

// In a private mount namespace, hide /sys/kernel behind an empty read-only
// tmpfs: tracefs is not there and cannot be mounted.
void without_tracefs() {
  if (unshare(CLONE_NEWNS) != 0 || mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0 ||
      mount("none", "/sys/kernel", "tmpfs", MS_RDONLY, "size=64k") != 0)
    _exit(3);
}

TEST(FailureModes, TracepointWithoutTracefsSaysHowToMountIt) {
  REQUIRE_BPF();
  Cli cli({"trace", "--attach", "tracepoint", "--duration", "0.1"}, without_tracefs);
  std::string out, err;
  EXPECT_EQ(cli.wait(out, err), 1) << out << err;
  EXPECT_NE(err.find("tracefs is not mounted"), std::string::npos) << err;
  EXPECT_NE(err.find("mount -t tracefs nodev /sys/kernel/tracing"), std::string::npos) << err;
}

// Also hide the PMU list, so that kprobes cannot attach either (libbpf finds the
// kprobe PMU there, and its fallback needs tracefs): the same on every kernel.
void without_tracefs_or_kprobes() {
  without_tracefs();
  if (mount("none", "/sys/bus/event_source", "tmpfs", MS_RDONLY, "size=64k") != 0) _exit(3);
}

TEST(FailureModes, AutoFallsBackToRawTracepointWithoutTracefsOrKprobes) {
  REQUIRE_BPF();
  Cli cli({"trace", "--duration", "0.1"}, without_tracefs_or_kprobes);
  std::string out, err;
  EXPECT_EQ(cli.wait(out, err), 0) << out << err;
  EXPECT_NE(out.find("skipped kprobe"), std::string::npos) << out;
  EXPECT_NE(out.find("skipped tracepoint syscalls/sys_enter_write: tracefs is not mounted"),
            std::string::npos) << out;
  EXPECT_NE(out.find("via raw_tracepoint"), std::string::npos) << out;
}

}  // namespace
}  // namespace perfbuf
