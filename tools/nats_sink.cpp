#include "nats_sink.h"

#include <nats/nats.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <random>

namespace perfbuf::tools {

namespace {

// The client's last error in this thread, in words.
std::string last_nats_error(natsStatus s) {
  natsStatus ignored;
  const char* text = nats_GetLastError(&ignored);
  return text && *text ? text : natsStatus_GetText(s);
}

std::uint64_t random_run_id() {
  std::random_device device;
  return (std::uint64_t{device()} << 32) | device();
}

std::string host_name() {
  char name[256] = {};
  if (gethostname(name, sizeof name - 1) != 0) return "unknown";
  return name;
}

double thread_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

}  // namespace

SinkUrl parse_sink_url(std::string_view text) {
  SinkUrl out;
  std::string_view rest = text;
  while (true) {
    const std::size_t comma = rest.find(',');
    const std::string_view one = rest.substr(0, comma);
    constexpr std::string_view scheme = "nats://";
    if (one.substr(0, scheme.size()) != scheme) {
      out.error = "'" + std::string(one) + "' is not a nats://HOST:PORT URL";
      break;
    }
    const std::string_view hostport = one.substr(scheme.size());
    const std::size_t colon = hostport.rfind(':');
    const std::string_view host = hostport.substr(0, colon);
    const std::string_view port = colon == std::string_view::npos ? "" : hostport.substr(colon + 1);
    const bool port_ok = !port.empty() && port.size() <= 5 &&
                         std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; }) &&
                         std::stoi(std::string(port)) >= 1 && std::stoi(std::string(port)) <= 65535;
    const bool host_ok = !host.empty() && host.find_first_of("/@?# ") == std::string_view::npos;
    if (!host_ok || !port_ok) {
      out.error = "'" + std::string(one) + "' needs a host and a port from 1 to 65535 (nats://HOST:PORT)";
      break;
    }
    out.servers.emplace_back(one);
    if (comma == std::string_view::npos) break;
    rest = rest.substr(comma + 1);
  }
  if (!out.error.empty()) out.servers.clear();
  return out;
}

struct NatsSink::Impl {
  natsOptions* options = nullptr;
  natsConnection* connection = nullptr;
  jsCtx* js = nullptr;
  // The connection's events come on the client's own thread, also after
  // natsConnection_Destroy() returns: what they touch lives here, and the
  // destructor waits for the last one (closed).
  std::atomic<std::uint64_t> disconnects{0}, reconnects{0};
  std::mutex mutex;
  std::condition_variable closed_changed;
  bool closed = false;

  ~Impl() {
    jsCtx_Destroy(js);
    if (connection) {
      natsConnection_Destroy(connection);
      std::unique_lock lock(mutex);
      closed_changed.wait_for(lock, std::chrono::seconds(5), [this] { return closed; });
    }
    natsOptions_Destroy(options);
  }
};

namespace {

// The frame in a message.
std::span<const std::uint8_t> frame_of(natsMsg* msg) {
  return {reinterpret_cast<const std::uint8_t*>(natsMsg_GetData(msg)),
          static_cast<std::size_t>(natsMsg_GetDataLength(msg))};
}

// Which send of its message this is (1: the first).
constexpr const char* kAttemptHeader = "Perfbuf-Attempt";
int attempt_of(natsMsg* msg) {
  const char* value = nullptr;
  return natsMsgHeader_Get(msg, kAttemptHeader, &value) == NATS_OK && value ? std::atoi(value) : 1;
}

}  // namespace

struct Callbacks {
  // The client's thread for acks: every message published gets here once,
  // with its ack or why there is none (NATS_TIMEOUT: none within ack_wait).
  static void on_ack(jsCtx*, natsMsg* msg, jsPubAck* ack, jsPubAckErr* error, void* closure) {
    auto* sink = static_cast<NatsSink*>(closure);
    const std::uint32_t records = frame_record_count(frame_of(msg));
    bool dropped = false;
    if (ack && !error) {
      sink->acknowledged_ += records;
      ++sink->acknowledged_messages_;
      if (ack->Duplicate) ++sink->duplicates_;  // a resend the server had stored already
    } else {
      std::string why = error && error->ErrText ? error->ErrText
                        : error                 ? natsStatus_GetText(error->Err)
                                                : "no ack";
      if (error && error->Err == NATS_TIMEOUT) why = "no ack within the ack wait";
      std::lock_guard lock(sink->mutex_);
      sink->last_error_ = "ack: " + why;
      // Sent again with the same message id: stored once whether or not the
      // server had it. The publisher takes it from here.
      if (!sink->no_resends_ && attempt_of(msg) < sink->options_.max_attempts) {
        sink->resends_.push_back(msg);
        msg = nullptr;
      } else {
        dropped = true;
      }
    }
    if (dropped) sink->drop(records, sink->dropped_ack_);
    natsMsg_Destroy(msg);
    {
      std::lock_guard lock(sink->mutex_);
      ++sink->acks_handled_;
    }
    sink->queue_changed_.notify_all();
  }
  static void on_disconnected(natsConnection*, void* closure) {
    ++static_cast<NatsSink::Impl*>(closure)->disconnects;
  }
  static void on_reconnected(natsConnection*, void* closure) {
    ++static_cast<NatsSink::Impl*>(closure)->reconnects;
  }
  static void on_closed(natsConnection*, void* closure) {
    auto* n = static_cast<NatsSink::Impl*>(closure);
    std::lock_guard lock(n->mutex);
    n->closed = true;
    n->closed_changed.notify_all();
  }
};

NatsSink::NatsSink(NatsSinkOptions options)
    : options_(std::move(options)),
      nats_(std::make_unique<Impl>()),
      host_(host_name()),
      run_id_(random_run_id()),
      packer_(host_, run_id_) {
  const SinkUrl url = parse_sink_url(options_.url);
  if (!url.error.empty()) throw SinkError("--sink: " + url.error);
  std::vector<const char*> servers;
  for (const std::string& s : url.servers) servers.push_back(s.c_str());

  auto check = [](natsStatus s, const std::string& what) {
    if (s != NATS_OK) throw SinkError(what + ": " + last_nats_error(s));
  };
  Impl& n = *nats_;
  check(natsOptions_Create(&n.options), "NATS options");
  check(natsOptions_SetServers(n.options, servers.data(), static_cast<int>(servers.size())),
        "--sink " + options_.url);
  natsOptions_SetName(n.options, "perfbuf");
  natsOptions_SetTimeout(n.options, options_.connect_timeout.count());
  // Once connected, reconnect for as long as the sink runs: a server that
  // comes back gets the buffered publishes, the rest is counted by its acks.
  natsOptions_SetMaxReconnect(n.options, -1);
  natsOptions_SetReconnectWait(n.options, 100);
  natsOptions_SetReconnectBufSize(n.options, options_.reconnect_buffer);
  natsOptions_SetDisconnectedCB(n.options, Callbacks::on_disconnected, &n);
  natsOptions_SetReconnectedCB(n.options, Callbacks::on_reconnected, &n);
  natsOptions_SetClosedCB(n.options, Callbacks::on_closed, &n);
  if (const natsStatus s = natsConnection_Connect(&n.connection, n.options); s != NATS_OK)
    throw SinkError("cannot connect to " + options_.url + ": " + last_nats_error(s) +
                    " (is nats-server running there, with -js?)");

  jsOptions jo;
  jsOptions_Init(&jo);
  jo.Wait = options_.connect_timeout.count();
  jo.PublishAsync.MaxPending = options_.max_pending;
  jo.PublishAsync.AckHandler = Callbacks::on_ack;
  jo.PublishAsync.AckHandlerClosure = this;
  jo.PublishAsync.StallWait = 100;  // how often a stalled publisher looks at give_up_
  check(natsConnection_JetStream(&n.js, n.connection, &jo), "JetStream context");

  // Which streams capture the subject: a publish nobody stores would only be
  // found out through its acks, record by record.
  auto streams_for_subject = [&]() {
    jsOptions filter;
    jsOptions_Init(&filter);
    filter.Wait = jo.Wait;
    filter.Stream.Info.SubjectsFilter = options_.subject.c_str();
    jsStreamNamesList* list = nullptr;
    jsErrCode code = static_cast<jsErrCode>(0);
    const natsStatus s = js_StreamNames(&list, n.js, &filter, &code);
    std::vector<std::string> names;
    if (s == NATS_NO_RESPONDERS)
      throw SinkError("the server at " + options_.url +
                      " does not answer JetStream requests: start it with -js (JetStream on)");
    if (s != NATS_OK && s != NATS_NOT_FOUND)
      throw SinkError("listing JetStream streams: " + last_nats_error(s));
    if (list)
      for (int i = 0; i < list->Count; ++i) names.emplace_back(list->List[i]);
    jsStreamNamesList_Destroy(list);
    return names;
  };
  const std::vector<std::string> capturing = streams_for_subject();
  if (!options_.stream.empty()) {
    if (std::find(capturing.begin(), capturing.end(), options_.stream) == capturing.end()) {
      jsStreamInfo* info = nullptr;
      jsErrCode code = static_cast<jsErrCode>(0);
      natsStatus s = js_GetStreamInfo(&info, n.js, options_.stream.c_str(), nullptr, &code);
      jsStreamInfo_Destroy(info);
      if (s == NATS_OK)
        throw SinkError("stream " + options_.stream + " exists and does not capture subject " +
                        options_.subject);
      if (s != NATS_NOT_FOUND) throw SinkError("stream " + options_.stream + ": " + last_nats_error(s));
      jsStreamConfig config;
      jsStreamConfig_Init(&config);
      config.Name = options_.stream.c_str();
      const char* subjects[] = {options_.subject.c_str()};
      config.Subjects = subjects;
      config.SubjectsLen = 1;
      config.Storage = js_FileStorage;
      config.MaxBytes = options_.stream_max_bytes;
      s = js_AddStream(&info, n.js, &config, nullptr, &code);
      jsStreamInfo_Destroy(info);
      if (s != NATS_OK)
        throw SinkError("cannot create stream " + options_.stream + " for subject " +
                        options_.subject + ": " + last_nats_error(s));
    }
    stream_ = options_.stream;
  } else if (capturing.empty()) {
    throw SinkError("no JetStream stream captures subject " + options_.subject +
                    ": pass --stream NAME to create one");
  } else {
    stream_ = capturing.front();
  }
  if (options_.purge_stream) {
    jsErrCode code = static_cast<jsErrCode>(0);
    if (const natsStatus s = js_PurgeStream(n.js, stream_.c_str(), nullptr, &code); s != NATS_OK)
      throw SinkError("cannot purge stream " + stream_ + ": " + last_nats_error(s));
  }
  thread_ = std::thread([this] { publisher(); });
}

NatsSink::~NatsSink() {
  // Not finished (an error ended the run): give up on what is left at once,
  // so no ack handler runs once the sink is gone.
  if (!finished_) {
    options_.finish_wait = std::chrono::milliseconds(0);
    finish();
  }
  nats_.reset();  // while the members its callbacks touch are still there
}

void NatsSink::drop(std::uint64_t records, std::atomic<std::uint64_t>& reason) { reason += records; }

void NatsSink::open_frame() {
  const std::uint64_t dropped = dropped_queue_full_ + dropped_publish_ + dropped_ack_;
  packer_.start(next_seq_, kernel_lost_, dropped);
  frame_opened_ = std::chrono::steady_clock::now();
}

void NatsSink::close_frame() {
  packer_.finish();
  const std::uint32_t records = packer_.record_count();
  next_seq_ += records;
  std::unique_lock lock(mutex_);
  if (queue_.size() >= options_.queue_frames) {
    lock.unlock();
    drop(records, dropped_queue_full_);
    return;  // the packer's buffer is reused by the next frame
  }
  std::vector<std::uint8_t> spare;
  if (!spare_buffers_.empty()) {
    spare = std::move(spare_buffers_.back());
    spare_buffers_.pop_back();
  }
  queue_.push_back(packer_.take(std::move(spare)));
  lock.unlock();
  queue_changed_.notify_all();
}

void NatsSink::flush_due(std::chrono::steady_clock::time_point now) {
  if (packer_.started() && now - frame_opened_ >= options_.frame_age) close_frame();
}

std::optional<std::chrono::steady_clock::time_point> NatsSink::next_deadline() const {
  if (!packer_.started()) return std::nullopt;
  return frame_opened_ + options_.frame_age;
}

void NatsSink::drop_messages(std::deque<void*>& messages) {
  for (void* m : messages) {
    drop(frame_record_count(frame_of(static_cast<natsMsg*>(m))), dropped_at_finish_);
    natsMsg_Destroy(static_cast<natsMsg*>(m));
  }
  messages.clear();
}

void NatsSink::publish(void* message, bool resend) {
  natsMsg* msg = static_cast<natsMsg*>(message);
  const std::span<const std::uint8_t> frame = frame_of(msg);
  const std::uint32_t records = frame_record_count(frame);
  jsPubOptions options;
  jsPubOptions_Init(&options);
  options.MaxWait = options_.ack_wait.count();  // an ack that does not come fails the message
  char id[64];
  if (resend) {
    natsMsgHeader_Set(msg, kAttemptHeader, std::to_string(attempt_of(msg) + 1).c_str());
  } else {
    // Names the frame: a resend of it is stored once.
    std::snprintf(id, sizeof id, "%016llx-%llu", static_cast<unsigned long long>(run_id_),
                  static_cast<unsigned long long>(frame_first_seq(frame)));
    options.MsgId = id;
  }
  publish_attempted_ = true;
  natsStatus s;
  while (true) {
    s = js_PublishMsgAsync(nats_->js, &msg, &options);
    // NATS_TIMEOUT: max_pending messages are unacknowledged; wait for acks
    // (back-pressure: the queue fills, then add() drops and counts).
    if (s != NATS_TIMEOUT) break;
    std::lock_guard lock(mutex_);
    if (give_up_) break;
  }
  if (s == NATS_OK) {  // the client owns the message now
    std::lock_guard lock(mutex_);
    ++publish_calls_;
    if (resend) {
      ++resent_messages_;
    } else {
      published_records_ += records;
      ++published_messages_;
    }
    return;
  }
  drop(records, s == NATS_TIMEOUT ? dropped_at_finish_ : dropped_publish_);
  if (s != NATS_TIMEOUT) {
    const std::string error = last_nats_error(s);
    std::lock_guard lock(mutex_);
    last_error_ = "publish: " + error;
  }
  natsMsg_Destroy(msg);
}

void NatsSink::publisher() {
  while (true) {
    std::vector<std::uint8_t> frame;
    natsMsg* resend = nullptr;
    {
      std::unique_lock lock(mutex_);
      // Stopping, it stays while messages are in flight: one whose ack fails
      // is sent again.
      queue_changed_.wait(lock, [this] {
        return !queue_.empty() || !resends_.empty() ||
               (stopping_ && (give_up_ || publish_calls_ == acks_handled_));
      });
      if (queue_.empty() && resends_.empty()) break;
      if (give_up_) {
        std::uint64_t records = 0;
        for (const auto& f : queue_) records += frame_record_count(f);
        queue_.clear();
        drop(records, dropped_at_finish_);
        drop_messages(resends_);
        break;
      }
      if (!resends_.empty()) {
        resend = static_cast<natsMsg*>(resends_.front());
        resends_.pop_front();
      } else {
        frame = std::move(queue_.front());
        queue_.pop_front();
      }
      publishing_ = true;
    }
    if (resend) {
      publish(resend, true);
    } else {
      natsMsg* msg = nullptr;
      const natsStatus s = natsMsg_Create(&msg, options_.subject.c_str(), nullptr,
                                          reinterpret_cast<const char*>(frame.data()),
                                          static_cast<int>(frame.size()));
      if (s == NATS_OK) {
        publish(msg, false);
      } else {
        drop(frame_record_count(frame), dropped_publish_);
        const std::string error = last_nats_error(s);
        std::lock_guard lock(mutex_);
        last_error_ = "publish: " + error;
      }
    }
    {
      std::lock_guard lock(mutex_);
      publishing_ = false;
      if (!frame.empty() && spare_buffers_.size() < options_.queue_frames)
        spare_buffers_.push_back(std::move(frame));
    }
    queue_changed_.notify_all();
  }
  const double cpu = thread_cpu_seconds();
  std::lock_guard lock(mutex_);
  publisher_cpu_s_ = cpu;
}

SinkCounts NatsSink::finish() {
  using clock = std::chrono::steady_clock;
  if (finished_) return counts();
  finished_ = true;
  if (packer_.started()) close_frame();
  // A last frame without records: the consumer learns where the run ended,
  // so records dropped at its end show as a gap too.
  open_frame();
  close_frame();
  const clock::time_point deadline = clock::now() + options_.finish_wait;
  if (thread_.joinable()) {
    {
      std::unique_lock lock(mutex_);
      stopping_ = true;
      queue_changed_.notify_all();
      // Everything sent and acknowledged (resends included), or time is up.
      if (!queue_changed_.wait_until(lock, deadline, [this] {
            return queue_.empty() && resends_.empty() && !publishing_ &&
                   publish_calls_ == acks_handled_;
          }))
        give_up_ = true;
    }
    queue_changed_.notify_all();
    thread_.join();
  }
  // From here a failed ack is final.
  {
    std::lock_guard lock(mutex_);
    no_resends_ = true;
    drop_messages(resends_);
  }
  // Whatever is still unacknowledged counts as dropped (its ack, if it
  // comes, is ignored).
  Impl& n = *nats_;
  jsPubOptions wait;
  jsPubOptions_Init(&wait);
  wait.MaxWait = std::max<std::int64_t>(
      1, std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock::now()).count());
  js_PublishAsyncComplete(n.js, &wait);
  natsMsgList pending{};
  std::uint64_t pending_messages = 0;
  // (The client's list exists only after a first publish: asking before crashes 3.4.)
  if (publish_attempted_ && js_PublishAsyncGetPendingList(&pending, n.js) == NATS_OK) {
    for (int i = 0; i < pending.Count; ++i) {
      drop(frame_record_count(frame_of(pending.Msgs[i])), dropped_at_finish_);
      ++pending_messages;
    }
    natsMsgList_Destroy(&pending);
    std::lock_guard lock(mutex_);
    last_error_ = std::to_string(pending_messages) + " messages not acknowledged in time";
  }
  // An ack handler may be running still (it took its message off the list
  // before our look): wait for it, a bounded while, so the counts add up.
  for (int i = 0; i < 200; ++i) {
    {
      std::lock_guard lock(mutex_);
      if (acks_handled_ + pending_messages >= publish_calls_) break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return counts();
}

SinkCounts NatsSink::counts() const {
  SinkCounts c;
  c.received = received_;
  c.published_records = published_records_;
  c.published_messages = published_messages_;
  c.acknowledged = acknowledged_;
  c.acknowledged_messages = acknowledged_messages_;
  c.resent_messages = resent_messages_;
  c.duplicates = duplicates_;
  c.dropped_queue_full = dropped_queue_full_;
  c.dropped_publish = dropped_publish_;
  c.dropped_ack = dropped_ack_;
  c.dropped_at_finish = dropped_at_finish_;
  c.dropped = c.dropped_queue_full + c.dropped_publish + c.dropped_ack + c.dropped_at_finish;
  c.disconnects = nats_->disconnects;
  c.reconnects = nats_->reconnects;
  std::lock_guard lock(mutex_);
  c.publisher_cpu_s = publisher_cpu_s_;
  c.last_error = last_error_;
  return c;
}

}  // namespace perfbuf::tools
