// `perfbuf cat` run as a user runs it, on the maps of a test program
// (tests/bpf/cat_records.bpf.c) that this process loads, pins and runs with
// BPF_PROG_TEST_RUN (never attached: it sends only the records asked for).
#include <gtest/gtest.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/magic.h>
#include <grp.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <perfbuf/reader.h>

#include <cstdio>
#include <string>
#include <vector>

#include "bpf_support.h"
#include "cat_record_values.h"
#include "cat_records.skel.h"
#include "cli_runner.h"
#include "nats_server.h"

namespace perfbuf {
namespace {

using testing::Cli;
using testing::json_lines;
using testing::json_type;
using testing::known_cat_json;
using testing::known_cat_record;
using testing::run_cli;

__u32 map_id(int fd) {
  bpf_map_info info{};
  __u32 len = sizeof info;
  if (bpf_obj_get_info_by_fd(fd, &info, &len) != 0) throw std::runtime_error("map info");
  return info.id;
}

// The test program with maps of names no other process uses (map names are
// looked up machine-wide), pinned in a folder of its own on a bpffs.
class CatProgram {
 public:
  CatProgram() {
    // Unique among the maps of every process, and of this one's earlier tests
    // (the kernel frees a map a little after its last fd is closed).
    static int instance = 0;
    const std::string tag = std::to_string(getpid()) + "_" + std::to_string(++instance % 100);
    perf_name_ = "pbcp" + tag;
    ring_name_ = "pbcr" + tag;
    skel_ = cat_records__open();
    if (!skel_) throw std::runtime_error("cat_records__open failed");
    perf_fd_ = bpf_map_create(BPF_MAP_TYPE_PERF_EVENT_ARRAY, perf_name_.c_str(), 4, 4,
                              libbpf_num_possible_cpus(), nullptr);
    ring_fd_ = bpf_map_create(BPF_MAP_TYPE_RINGBUF, ring_name_.c_str(), 0, 0, 64 * 1024, nullptr);
    if (perf_fd_ < 0 || ring_fd_ < 0) throw std::runtime_error("bpf_map_create failed");
    if (bpf_map__reuse_fd(skel_->maps.cat_perf, perf_fd_) ||
        bpf_map__reuse_fd(skel_->maps.cat_ring, ring_fd_) || cat_records__load(skel_))
      throw std::runtime_error("cannot load cat_records.bpf.o");
    const cat_record rec = known_cat_record(0);
    const __u32 key = 0;
    if (bpf_map_update_elem(bpf_map__fd(skel_->maps.cat_template), &key, &rec, 0))
      throw std::runtime_error("cannot set the template record");
    // The usual bpffs if it is mounted; else a private one, unmounted at the end.
    struct statfs fs {};
    if (statfs("/sys/fs/bpf", &fs) == 0 && fs.f_type == BPF_FS_MAGIC) {
      dir_ = "/sys/fs/bpf/perfbuf-cat-test-" + tag;
    } else {
      mount_ = ::testing::TempDir() + "perfbuf-cat-bpffs-" + tag;
      mkdir(mount_.c_str(), 0700);
      if (mount("bpf", mount_.c_str(), "bpf", 0, nullptr) != 0)
        throw std::runtime_error("cannot mount a bpffs at " + mount_);
      dir_ = mount_ + "/perfbuf-cat-test";
    }
    mkdir(dir_.c_str(), 0700);
    if (bpf_obj_pin(perf_fd_, perf_path().c_str()) || bpf_obj_pin(ring_fd_, ring_path().c_str()))
      throw std::runtime_error("cannot pin the maps in " + dir_);
  }
  ~CatProgram() {
    unlink(perf_path().c_str());
    unlink(ring_path().c_str());
    rmdir(dir_.c_str());
    if (!mount_.empty()) {
      umount(mount_.c_str());
      rmdir(mount_.c_str());
    }
    cat_records__destroy(skel_);
    close(perf_fd_);
    close(ring_fd_);
  }
  std::string perf_path() const { return dir_ + "/perf"; }
  std::string ring_path() const { return dir_ + "/ring"; }
  const std::string& perf_name() const { return perf_name_; }
  int perf_fd() const { return perf_fd_; }
  int ring_fd() const { return ring_fd_; }
  int template_fd() const { return bpf_map__fd(skel_->maps.cat_template); }

  // The program sends the known record with this seq: to the perf event array
  // (on this CPU) or the ring buffer.
  void emit(bool ring, std::uint64_t seq) {
    __u64 args[2] = {ring ? 1u : 0u, seq};
    LIBBPF_OPTS(bpf_test_run_opts, opts, .ctx_in = args, .ctx_size_in = sizeof args);
    if (bpf_prog_test_run_opts(bpf_program__fd(skel_->progs.emit), &opts) != 0)
      throw std::runtime_error("BPF_PROG_TEST_RUN failed");
  }

 private:
  cat_records* skel_ = nullptr;
  int perf_fd_ = -1, ring_fd_ = -1;
  std::string perf_name_, ring_name_, dir_, mount_;
};

struct CatRun {
  int exit_code = -1;
  std::string out, err;
  std::vector<nlohmann::json> records;
  nlohmann::json start, summary;
};

// Starts perfbuf cat with args, waits for its start line, has the program
// send seqs 1..n, and collects what it printed (args should end it: --count).
CatRun cat_records(CatProgram& p, bool ring, int n, std::vector<std::string> args) {
  args.insert(args.begin(), "cat");
  Cli cli(args);
  CatRun r;
  const std::string first = cli.read_line().value_or("");
  r.start = testing::parse_json(first);
  if (json_type(first) == "start")
    for (int seq = 1; seq <= n; ++seq) p.emit(ring, seq);
  r.exit_code = cli.wait(r.out, r.err);
  r.out = first + r.out;
  for (nlohmann::json& line : json_lines(r.out)) {
    if (line.value("type", "") == "record") r.records.push_back(line);
    if (line.value("type", "") == "summary") r.summary = line;
  }
  return r;
}

void expect_known_records(const CatRun& r, int n) {
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ASSERT_EQ(r.records.size(), static_cast<std::size_t>(n)) << r.out << r.err;
  for (int i = 0; i < n; ++i) {
    EXPECT_EQ(r.records[i]["value"], known_cat_json(i + 1)) << r.records[i].dump();
    EXPECT_FALSE(r.records[i].contains("short")) << r.records[i].dump();
    EXPECT_FALSE(r.records[i].contains("trailing")) << r.records[i].dump();
  }
  EXPECT_EQ(r.summary.value("received", -1), n) << r.out;
  EXPECT_EQ(r.summary.value("lost", -1), 0) << r.out;
  EXPECT_FALSE(r.summary["per_ring"].empty()) << r.out;
}

TEST(CatCli, PinnedPerfArrayPrintsExactlyTheRecordsSent) {
  REQUIRE_BPF();
  CatProgram p;
  const CatRun r = cat_records(p, false, 3,
                               {"--pinned", p.perf_path(), "--type", "cat_record", "--format",
                                "json", "--count", "3", "--duration", "10"});
  expect_known_records(r, 3);
  EXPECT_EQ(r.start["map_type"], "perf_event_array") << r.start;
  EXPECT_EQ(r.start["type_size"], sizeof(cat_record)) << r.start;
  EXPECT_EQ(r.start["rings"], online_cpus().size()) << r.start;
  long long per_ring = 0;
  for (const auto& ring : r.summary["per_ring"]) per_ring += ring["records"].get<long long>();
  EXPECT_EQ(per_ring, 3) << r.summary;
  EXPECT_EQ(r.err.find("warning"), std::string::npos) << r.err;  // nobody held the slots
}

// --sink ships the records instead of printing them; --source reads them
// back, decoded with the program's BTF.
TEST(CatCli, SinkShipsTheRecordsAndSourceReadsThemBackDecoded) {
  REQUIRE_BPF();
  REQUIRE_NATS_SERVER();
  CatProgram p;
  testing::NatsServer server;
  const CatRun r = cat_records(p, true, 3,
                               {"--pinned", p.ring_path(), "--format", "json", "--count", "3",
                                "--duration", "10", "--sink", server.url(), "--subject",
                                "perfbuf.cat", "--stream", "CAT"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(r.records.empty()) << r.out;  // shipped, not printed
  EXPECT_EQ(r.start["stream"], "CAT") << r.start;
  const nlohmann::json& sink = r.summary["sink"];
  EXPECT_EQ(sink["received"], 3) << r.summary;
  EXPECT_EQ(sink["acknowledged"], 3) << r.summary;
  EXPECT_EQ(sink["dropped"], 0) << r.summary;

  std::string out, err;
  ASSERT_EQ(run_cli({"cat", "--source", server.url(), "--subject", "perfbuf.cat", "--btf",
                     PERFBUF_CAT_BPF_OBJ, "--type", "cat_record", "--format", "json", "--duration",
                     "30"},
                    out, err),
            0)
      << err;
  std::vector<nlohmann::json> records;
  for (nlohmann::json& line : json_lines(out))
    if (line.value("type", "") == "record") records.push_back(line);
  ASSERT_EQ(records.size(), 3u) << out;
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(records[i]["value"], known_cat_json(i + 1)) << records[i].dump();
    EXPECT_EQ(records[i]["seq"], i) << records[i].dump();
    EXPECT_EQ(records[i]["cpu"], -1) << records[i].dump();
  }
}

TEST(CatCli, PinnedRingBufferPrintsExactlyTheRecordsSent) {
  REQUIRE_BPF();
  CatProgram p;
  const CatRun r = cat_records(p, true, 3,
                               {"--pinned", p.ring_path(), "--type", "cat_record", "--format",
                                "json", "--count", "3", "--duration", "10"});
  expect_known_records(r, 3);
  EXPECT_EQ(r.start["map_type"], "ringbuf") << r.start;
  ASSERT_EQ(r.summary["per_ring"].size(), 1u) << r.summary;
  EXPECT_EQ(r.summary["per_ring"][0]["cpu"], -1) << r.summary;
  for (const auto& rec : r.records) EXPECT_EQ(rec["size"], sizeof(cat_record)) << rec;
}

TEST(CatCli, ByMapIdAndByNameWithTheBtfOfTheObjectFile) {
  REQUIRE_BPF();
  CatProgram p;
  expect_known_records(cat_records(p, true, 2,
                                   {"--map-id", std::to_string(map_id(p.ring_fd())), "--type",
                                    "cat_record", "--format", "json", "--count", "2",
                                    "--duration", "10"}),
                       2);
  const CatRun r = cat_records(p, false, 2,
                               {"--map", p.perf_name(), "--type", "cat_record", "--btf",
                                PERFBUF_CAT_BPF_OBJ, "--format", "json", "--count", "2",
                                "--duration", "10"});
  expect_known_records(r, 2);
  EXPECT_EQ(r.start["btf"], PERFBUF_CAT_BPF_OBJ) << r.start;
  EXPECT_EQ(r.start["map_id"], map_id(p.perf_fd())) << r.start;
}

TEST(CatCli, HexIsTheBytesSent) {
  REQUIRE_BPF();
  CatProgram p;
  const std::string expected = [] {
    std::string hex;
    char b[3];
    for (std::uint8_t byte : testing::bytes_of(known_cat_record(1))) {
      std::snprintf(b, sizeof b, "%02x", byte);
      hex += b;
    }
    return hex;
  }();
  for (bool ring : {false, true}) {
    Cli cli({"cat", "--pinned", ring ? p.ring_path() : p.perf_path(), "--format", "hex", "--count",
             "1", "--duration", "10"});
    // The start line goes to stderr in hex format: wait for the rings instead.
    usleep(300000);
    p.emit(ring, 1);
    std::string out, err;
    ASSERT_EQ(cli.wait(out, err), 0) << err;
    const auto colon = out.find(": ");
    ASSERT_NE(colon, std::string::npos) << out;
    const std::string hex = out.substr(colon + 2, out.find('\n') - colon - 2);
    // A perf record comes with the kernel's padding to 8 bytes (with its size).
    if (ring)
      EXPECT_EQ(hex, expected);
    else
      EXPECT_EQ(hex.substr(0, expected.size()), expected);
    EXPECT_LT(hex.size(), expected.size() + 16);
    EXPECT_NE(err.find("received 1 records"), std::string::npos) << err;
  }
}

TEST(CatCli, TextDecodesOneLinePerRecord) {
  REQUIRE_BPF();
  CatProgram p;
  Cli cli({"cat", "--pinned", p.ring_path(), "--type", "cat_record", "--count", "1", "--duration",
           "10"});
  usleep(300000);
  p.emit(true, 9);
  std::string out, err;
  ASSERT_EQ(cli.wait(out, err), 0) << err;
  EXPECT_EQ(out.rfind("cpu -1: {u8=200, s8=-100, ", 0), 0u) << out;
  EXPECT_NE(out.find(R"(comm="perf\"buf\\\n\x01", color=CAT_BLUE)"), std::string::npos) << out;
  EXPECT_NE(out.find("seq=9}\n"), std::string::npos) << out;
  EXPECT_NE(err.find("received 1 records"), std::string::npos) << err;
}

TEST(CatCli, WarnsWhenAnotherReaderHeldThePerfSlots) {
  REQUIRE_BPF();
  CatProgram p;
  Reader other(p.perf_fd(), [](const Sample&) {});
  const CatRun r = cat_records(p, false, 1,
                               {"--pinned", p.perf_path(), "--type", "cat_record", "--format",
                                "json", "--count", "1", "--duration", "10"});
  expect_known_records(r, 1);
  EXPECT_NE(r.err.find("warning: another reader's rings were in the slots of CPUs"),
            std::string::npos)
      << r.err;
}

TEST(CatCli, BadInputsSayWhatIsWrong) {
  REQUIRE_BPF();
  CatProgram p;
  struct Case {
    std::vector<std::string> args;
    int exit_code;
    std::string message;
  };
  const std::string template_id = std::to_string(map_id(p.template_fd()));
  const std::vector<Case> cases = {
      {{"--map-id", "2147483647"}, 1, "no map with id 2147483647"},
      {{"--pinned", p.perf_path() + "_none"}, 1, "no pinned BPF object at " + p.perf_path() + "_none"},
      {{"--map", "pbc_nosuchmap"}, 1, "no map named 'pbc_nosuchmap'"},
      {{"--map-id", template_id}, 1, "is a array map: perfbuf cat reads a perf_event_array or a ringbuf"},
      {{"--pinned", p.ring_path(), "--type", "no_such_type"}, 1,
       "no struct, union or typedef 'no_such_type' in the BTF of map"},
      {{"--pinned", p.ring_path(), "--type", "cat_record", "--btf", "/nonexistent/x.bpf.o"}, 1,
       "cannot read BTF from /nonexistent/x.bpf.o"},
      {{"--pinned", p.ring_path(), "--type", "cat_record", "--btf", "/proc/self/status"}, 1,
       "cannot read BTF from /proc/self/status"},
      {{"--pinned", p.ring_path(), "--type", "nope", "--btf", PERFBUF_CAT_BPF_OBJ}, 1,
       std::string("no struct, union or typedef 'nope' in the BTF of ") + PERFBUF_CAT_BPF_OBJ},
      {{"--pinned", p.ring_path(), "--ordered"}, 1, "--ordered is for perf event arrays"},
      {{}, 2, "which map?"},
      {{"--map-id", "1", "--map", "x"}, 2, "excludes"},
      {{"--pinned", p.ring_path(), "--format", "yaml"}, 2, "--format: takes text, json or hex"},
      {{"--pinned", p.ring_path(), "--btf", PERFBUF_CAT_BPF_OBJ}, 2, "--btf: needs --type"},
      {{"--pinned", p.ring_path(), "--count", "0"}, 2, "--count: takes a number of records"},
  };
  for (const Case& c : cases) {
    std::vector<std::string> args = c.args;
    args.insert(args.begin(), "cat");
    args.insert(args.end(), {"--duration", "0.2"});
    std::string out, err;
    EXPECT_EQ(run_cli(args, out, err), c.exit_code) << c.message << "\n" << err;
    EXPECT_NE(err.find(c.message), std::string::npos) << err;
    if (c.exit_code == 2) EXPECT_NE(err.find("usage: perfbuf cat"), std::string::npos) << err;
  }
}

TEST(CatCli, AmbiguousNameListsTheCandidates) {
  REQUIRE_BPF();
  CatProgram p;
  const int twin = bpf_map_create(BPF_MAP_TYPE_RINGBUF, p.perf_name().c_str(), 0, 0, 4096, nullptr);
  ASSERT_GE(twin, 0);
  std::string out, err;
  EXPECT_EQ(run_cli({"cat", "--map", p.perf_name(), "--duration", "0.2"}, out, err), 1);
  close(twin);
  EXPECT_NE(err.find("2 maps are named '" + p.perf_name() + "'"), std::string::npos) << err;
  EXPECT_NE(err.find("id " + std::to_string(map_id(p.perf_fd())) + " (perf_event_array)"),
            std::string::npos)
      << err;
  EXPECT_NE(err.find(" (ringbuf)"), std::string::npos) << err;
}

TEST(CatCli, WithoutRootSaysItNeedsRoot) {
  REQUIRE_BPF();
  CatProgram p;
  // As nobody: the child drops root before it runs perfbuf cat.
  Cli cli({"cat", "--map-id", std::to_string(map_id(p.perf_fd())), "--duration", "0.2"}, [] {
    if (setgroups(0, nullptr) != 0 || setgid(65534) != 0 || setuid(65534) != 0) _exit(126);
  });
  std::string out, err;
  const int code = cli.wait(out, err);
  ASSERT_NE(code, 126) << "could not become nobody";
  ASSERT_NE(code, 127) << "nobody cannot run " << PERFBUF_CLI;
  EXPECT_EQ(code, 1) << err;
  EXPECT_NE(err.find("needs root"), std::string::npos) << err;
}

}  // namespace
}  // namespace perfbuf
