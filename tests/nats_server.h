// A real nats-server with JetStream for the sink's tests: on a free loopback
// port, its store in a fresh temporary folder, killed and removed at the end.
// Every wait is bounded. Without nats-server (scripts/install-deps.sh installs
// it) the tests skip, except with CI=true, where they fail.
#pragma once

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <nats/nats.h>

#include "frame.h"

namespace perfbuf::testing {

inline std::string nats_server_path() {
  for (const char* dir : {"/usr/bin", "/usr/sbin", "/usr/local/bin"}) {
    const std::string p = std::string(dir) + "/nats-server";
    if (access(p.c_str(), X_OK) == 0) return p;
  }
  return "";
}

// Skips the test when nats-server is not installed, or fails it under CI.
#define REQUIRE_NATS_SERVER()                                                             \
  do {                                                                                    \
    if (::perfbuf::testing::nats_server_path().empty()) {                                 \
      const char* ci = std::getenv("CI");                                                 \
      if (ci && std::string(ci) == "true")                                                \
        FAIL() << "nats-server is not installed (scripts/install-deps.sh installs it)";   \
      GTEST_SKIP() << "nats-server is not installed (scripts/install-deps.sh)";           \
    }                                                                                     \
  } while (0)

// A loopback port nobody listens on right now.
inline int free_loopback_port() {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    close(fd);
    throw std::runtime_error("no free loopback port");
  }
  close(fd);
  return ntohs(a.sin_port);
}

inline bool port_accepts(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(static_cast<std::uint16_t>(port));
  const bool ok = connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  close(fd);
  return ok;
}

class NatsServer {
 public:
  explicit NatsServer(bool jetstream = true) : jetstream_(jetstream), port_(free_loopback_port()) {
    char dir[] = "/tmp/perfbuf-nats-XXXXXX";
    if (!mkdtemp(dir)) throw std::runtime_error("mkdtemp");
    store_ = dir;
    start();
  }
  ~NatsServer() {
    kill();
    std::error_code ignored;
    std::filesystem::remove_all(store_, ignored);
  }
  NatsServer(const NatsServer&) = delete;
  NatsServer& operator=(const NatsServer&) = delete;

  int port() const { return port_; }
  std::string url() const { return "nats://127.0.0.1:" + std::to_string(port_); }
  std::string log() const { return store_ + "/server.log"; }

  // Starts the server (again, on the same port and store) and waits, at most
  // 10 s, until it accepts connections.
  void start() {
    const std::string path = nats_server_path();
    std::vector<std::string> args{path, "-a", "127.0.0.1", "-p", std::to_string(port_)};
    if (jetstream_) args.insert(args.end(), {"-js", "-sd", store_ + "/js"});
    // Everything the child needs, made before fork(): no allocation between
    // fork() and exec() (another thread may hold the allocator's lock).
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    const std::string log_path = log();
    const pid_t parent = getpid();
    pid_ = fork();
    if (pid_ < 0) throw std::runtime_error("fork");
    if (pid_ == 0) {
      // A test process that crashes or is killed (ctest's timeout) takes its
      // server with it.
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (getppid() != parent) _exit(127);  // the test died before the line above
      const int log_fd = open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      dup2(log_fd, STDOUT_FILENO);
      dup2(log_fd, STDERR_FILENO);
      execv(argv[0], argv.data());
      _exit(127);
    }
    for (int i = 0; i < 500; ++i) {
      if (port_accepts(port_)) return;
      if (waitpid(pid_, nullptr, WNOHANG) == pid_) {
        pid_ = -1;
        throw std::runtime_error("nats-server exited at start; see " + log());
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    throw std::runtime_error("nats-server did not listen on port " + std::to_string(port_) +
                             " within 10 s");
  }
  // Stops the server (SIGSTOP): connections stay open, nothing is read or
  // answered. resume() (SIGCONT) continues it; kill() works on a stopped one.
  void stop() {
    if (pid_ > 0) ::kill(pid_, SIGSTOP);
  }
  void resume() {
    if (pid_ > 0) ::kill(pid_, SIGCONT);
  }
  // Kills the server at once (SIGKILL), as a crash would.
  void kill() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }

 private:
  bool jetstream_;
  int port_;
  std::string store_;
  pid_t pid_ = -1;
};

// Runs f with a JetStream context on the server.
template <class F>
void with_js(const NatsServer& server, F f) {
  natsConnection* nc = nullptr;
  jsCtx* js = nullptr;
  ASSERT_EQ(natsConnection_ConnectTo(&nc, server.url().c_str()), NATS_OK);
  ASSERT_EQ(natsConnection_JetStream(&js, nc, nullptr), NATS_OK);
  f(js);
  jsCtx_Destroy(js);
  natsConnection_Destroy(nc);
}

// Creates stream `name` that stores `subject`.
inline natsStatus add_stream(jsCtx* js, const char* name, const char* subject) {
  jsStreamConfig config;
  jsStreamConfig_Init(&config);
  config.Name = name;
  const char* subjects[] = {subject};
  config.Subjects = subjects;
  config.SubjectsLen = 1;
  return js_AddStream(nullptr, js, &config, nullptr, nullptr);
}

inline natsStatus publish(jsCtx* js, const char* subject, const std::vector<std::uint8_t>& m) {
  return js_Publish(nullptr, js, subject, m.data(), static_cast<int>(m.size()), nullptr, nullptr);
}

// One record read back from a stream, with its frame's header.
struct StoredRecord {
  std::uint64_t stream_seq = 0;  // the message's sequence in the stream
  tools::FrameHeader header;
  std::uint64_t seq = 0;  // the record's sequence number in its run
  std::uint64_t time_ns = 0;
  std::int32_t cpu = 0;
  std::vector<std::uint8_t> bytes;
};

// Every record of every message in `stream`, read with js_GetMsg; a frame
// that does not decode fails the test.
inline std::vector<StoredRecord> read_stream(const std::string& url, const std::string& stream) {
  std::vector<StoredRecord> out;
  natsConnection* nc = nullptr;
  jsCtx* js = nullptr;
  jsStreamInfo* info = nullptr;
  if (natsConnection_ConnectTo(&nc, url.c_str()) != NATS_OK) {
    ADD_FAILURE() << "cannot connect to " << url;
    return out;
  }
  natsConnection_JetStream(&js, nc, nullptr);
  if (js_GetStreamInfo(&info, js, stream.c_str(), nullptr, nullptr) != NATS_OK) {
    ADD_FAILURE() << "no stream " << stream;
  } else {
    const std::uint64_t first = info->State.FirstSeq, last = info->State.LastSeq;
    for (std::uint64_t seq = first; seq <= last && seq != 0 && seq - first < 10000000; ++seq) {
      natsMsg* msg = nullptr;
      if (js_GetMsg(&msg, js, stream.c_str(), seq, nullptr, nullptr) != NATS_OK) {
        ADD_FAILURE() << "stream " << stream << " message " << seq << " unreadable";
        continue;
      }
      const std::span<const std::uint8_t> data(
          reinterpret_cast<const std::uint8_t*>(natsMsg_GetData(msg)),
          static_cast<std::size_t>(natsMsg_GetDataLength(msg)));
      const tools::FrameResult r = tools::decode_frame(data);
      EXPECT_TRUE(r.ok()) << "message " << seq << ": " << r.error;
      for (std::size_t i = 0; i < r.frame.records.size(); ++i) {
        const tools::FrameRecord& rec = r.frame.records[i];
        out.push_back({seq, r.frame.header, r.frame.header.first_seq + i, rec.time_ns, rec.cpu,
                       std::vector<std::uint8_t>(rec.bytes.begin(), rec.bytes.end())});
      }
      natsMsg_Destroy(msg);
    }
  }
  jsStreamInfo_Destroy(info);
  jsCtx_Destroy(js);
  natsConnection_Destroy(nc);
  return out;
}

}  // namespace perfbuf::testing
