// Runs the perfbuf binary as a user would: a child process, output on pipes.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "process_info.h"

namespace perfbuf::testing {

// A child process running the perfbuf binary, stdout and stderr on pipes.
class Cli {
 public:
  // in_child runs in the child just before exec (e.g. to change its mount
  // namespace); `run_under`: a program that runs the binary (e.g. strace and
  // its options), or none.
  explicit Cli(std::vector<std::string> args, const std::function<void()>& in_child = {},
               const std::vector<std::string>& run_under = {}) {
    args.insert(args.begin(), PERFBUF_CLI);
    args.insert(args.begin(), run_under.begin(), run_under.end());
    int out[2], err[2];
    if (pipe2(out, O_CLOEXEC) || pipe2(err, O_CLOEXEC)) throw std::runtime_error("pipe");
    pid_ = fork();
    if (pid_ == 0) {
      dup2(out[1], STDOUT_FILENO);
      dup2(err[1], STDERR_FILENO);
      if (in_child) in_child();
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      execv(argv[0], argv.data());
      _exit(127);
    }
    close(out[1]);
    close(err[1]);
    out_ = fdopen(out[0], "r");
    err_fd_ = err[0];
  }
  ~Cli() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    if (out_) fclose(out_);
    if (err_fd_ >= 0) close(err_fd_);
  }

  std::optional<std::string> read_line() {
    char* line = nullptr;
    size_t cap = 0;
    const ssize_t n = getline(&line, &cap, out_);
    std::optional<std::string> s;
    if (n >= 0) s = std::string(line, n);
    free(line);
    return s;
  }
  void signal(int sig) { kill(pid_, sig); }
  pid_t pid() const { return pid_; }

  // Waits for exit; returns the exit code and collects the remaining output.
  int wait(std::string& out, std::string& err) {
    while (auto l = read_line()) out += *l;
    char buf[4096];
    for (ssize_t n; (n = read(err_fd_, buf, sizeof buf)) > 0;) err.append(buf, n);
    const int code = wait_exit_code(pid_);
    pid_ = -1;
    return code;
  }

 private:
  pid_t pid_ = -1;
  FILE* out_ = nullptr;
  int err_fd_ = -1;
};

inline int run_cli(std::vector<std::string> args, std::string& out, std::string& err) {
  Cli cli(std::move(args));
  return cli.wait(out, err);
}

// One line of the tool's JSON output, parsed; a discarded value (is_discarded())
// if it is not JSON.
inline nlohmann::json parse_json(const std::string& line) {
  return nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
}

// The JSON objects of a whole output, one per line; lines that are not JSON
// objects are left out.
inline std::vector<nlohmann::json> json_lines(const std::string& text) {
  std::vector<nlohmann::json> out;
  for (std::size_t at = 0, end; at < text.size(); at = end + 1) {
    end = text.find('\n', at);
    if (end == std::string::npos) end = text.size();
    nlohmann::json j = parse_json(text.substr(at, end - at));
    if (j.is_object()) out.push_back(std::move(j));
  }
  return out;
}

// The "type" of a JSON line ("start", "summary"...), or "" if it has none.
inline std::string json_type(const std::string& line) {
  const nlohmann::json j = parse_json(line);
  return j.is_object() && j.contains("type") && j["type"].is_string() ? j["type"].get<std::string>()
                                                                       : "";
}

// The number at `key` of a JSON object line, as an integer (a fraction is
// cut off); none if the line is not JSON or has no such number.
inline std::optional<long long> json_number(const std::string& line, const std::string& key) {
  const nlohmann::json j = parse_json(line);
  if (!j.is_object() || !j.contains(key) || !j[key].is_number()) return std::nullopt;
  return j[key].get<long long>();
}

inline std::string last_line(const std::string& text) {
  const auto end = text.find_last_not_of('\n');
  const auto start = text.rfind('\n', end);
  return text.substr(start == std::string::npos ? 0 : start + 1, end - start);
}

}  // namespace perfbuf::testing
