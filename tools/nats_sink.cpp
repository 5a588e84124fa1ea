#include "nats_sink.h"

#include <nats/nats.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <random>

#include "nats_client.h"

namespace perfbuf::tools {

namespace {

constexpr std::int64_t kWriteDeadlineMs = 2000;
constexpr int kPingIntervalMs = 2000;
// Room left in a message for its headers (message id, attempt).
constexpr std::size_t kHeaderRoom = 256;
constexpr std::size_t kMinFrameBytes = 64;
// The pause before a negatively acknowledged message is sent again, times
// its attempt (at most ack_wait).
constexpr std::chrono::milliseconds kResendPause{250};
// At the end, the time for the server to confirm it sends no more acks.
constexpr std::chrono::milliseconds kDrainWait{1000};
constexpr std::chrono::milliseconds kCloseWait{500};

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

std::optional<std::string> nats_url_option(const std::string& text) {
  if (!parse_sink_url(text).error.empty()) return std::nullopt;
  return text;
}

struct NatsSink::State {
  int max_attempts = 3;
  std::chrono::milliseconds ack_wait{5000};

  struct Resend {
    natsMsg* msg;
    std::chrono::steady_clock::time_point due;  // not sent again before
  };
  std::mutex mutex;
  std::condition_variable changed;  // the queue, the resends, the acks handled
  std::deque<std::vector<std::uint8_t>> queue;
  std::deque<Resend> resends;  // whose ack failed, to send again
  bool no_resends = false;       // the publisher is gone: a failed ack is final
  std::vector<std::vector<std::uint8_t>> spare_buffers;
  bool stopping = false;
  bool give_up = false;     // finish() ran out of time: drop what is queued
  bool publishing = false;  // the publisher holds a frame outside the queue
  std::string last_error;   // the first failure (later ones are counted, not kept)
  double publisher_cpu_s = 0;
  // Publishes the client took, their acks (or failures) handled, and those
  // finish() took off the client's list: every publish gets exactly one.
  std::uint64_t publish_calls = 0, acks_handled = 0, taken_back = 0;
  bool closed = false;  // the connection's last event came (or there is no connection)
  // Set when the sink is gone while a callback may still come: the last one
  // releases the state.
  std::shared_ptr<State> self;

  std::atomic<std::uint64_t> published_records{0}, published_messages{0};
  std::atomic<std::uint64_t> acknowledged{0}, acknowledged_messages{0};
  std::atomic<std::uint64_t> resent_messages{0}, duplicates{0};
  std::atomic<std::uint64_t> dropped_queue_full{0}, dropped_publish{0}, dropped_ack{0},
      dropped_at_finish{0};
  std::atomic<std::uint64_t> disconnects{0}, reconnects{0};

  // Under mutex.
  void error(std::string what) {
    if (last_error.empty()) last_error = std::move(what);
  }
  bool callbacks_done() const { return closed && publish_calls == acks_handled + taken_back; }
  // Under mutex, at the end of a callback: the state to release (after the
  // unlock) if the sink is gone and no callback can come any more.
  std::shared_ptr<State> release_if_last() {
    changed.notify_all();
    if (self && callbacks_done()) return std::move(self);
    return nullptr;
  }
};

struct NatsSink::Impl {
  natsOptions* options = nullptr;
  natsConnection* connection = nullptr;
  jsCtx* js = nullptr;
  std::shared_ptr<State> state;  // the callbacks' closure

  ~Impl() {
    drain();
    jsCtx_Destroy(js);
    natsConnection_Destroy(connection);
    natsOptions_Destroy(options);
    // A callback may still come (the closed event; an ack handler that took
    // its message before finish() looked): the state stays until the last
    // one, which releases it. (Also when the constructor threw.)
    if (!state) return;
    std::lock_guard lock(state->mutex);
    if (!connection) state->closed = true;
    if (!state->callbacks_done()) state->self = state;
  }

  // libnats 3.4 (Debian 12's) can free a subscription while its read loop is
  // handing it a message (a use after free, fixed in nats.c 3.6.1): destroying
  // the JetStream context while acks are still coming is that race. Draining
  // the connection first has the server drop the acks' subscription (its
  // UNSUB and a round trip) before it goes; the drain ends by closing the
  // connection. Bounded: a server that does not answer costs kDrainWait and
  // the close after it (kCloseWait).
  void drain() {
    if (!connection || !state || natsConnection_Status(connection) != NATS_CONN_STATUS_CONNECTED)
      return;
    if (natsConnection_DrainTimeout(connection, kDrainWait.count()) != NATS_OK) return;
    std::unique_lock lock(state->mutex);
    state->changed.wait_for(lock, kDrainWait + kCloseWait, [this] { return state->closed; });
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

void drop_messages(NatsSink::State& st, std::deque<NatsSink::State::Resend>& messages) {  // under st.mutex
  for (const auto& m : messages) {
    st.dropped_at_finish += frame_record_count(frame_of(m.msg));
    natsMsg_Destroy(m.msg);
  }
  messages.clear();
}

}  // namespace

// The client's callbacks get the State (closure), never the sink: they may
// run after natsConnection_Destroy() returns, on the client's threads.
struct Callbacks {
  using State = NatsSink::State;
  // The client's thread for acks: every message published gets here once,
  // with its ack or why there is none (NATS_TIMEOUT: none within ack_wait),
  // unless finish() took it off the client's list.
  static void on_ack(jsCtx*, natsMsg* msg, jsPubAck* ack, jsPubAckErr* error, void* closure) {
    auto* st = static_cast<State*>(closure);
    const std::uint32_t records = frame_record_count(frame_of(msg));
    std::shared_ptr<State> release;  // destroyed last, after the unlock
    std::lock_guard lock(st->mutex);
    if (ack && !error) {
      st->acknowledged += records;
      ++st->acknowledged_messages;
      if (ack->Duplicate) ++st->duplicates;  // a resend the server had stored already
    } else {
      std::string why = error && error->ErrText ? error->ErrText
                        : error                 ? natsStatus_GetText(error->Err)
                                                : "no ack";
      if (error && error->Err == NATS_TIMEOUT) why = "no ack within the ack wait";
      st->error("ack: " + why);
      // Sent again with the same message id: stored once whether or not the
      // server had it. The publisher takes it from here.
      // A negative answer (no responders, a JetStream error) comes at once:
      // sent again after a pause growing with each attempt, so the attempts
      // are not used up in milliseconds. A missing ack has waited already.
      const int attempt = attempt_of(msg);
      if (!st->no_resends && attempt < st->max_attempts) {
        const auto pause = error && error->Err == NATS_TIMEOUT
                               ? std::chrono::milliseconds(0)
                               : std::min(st->ack_wait, kResendPause * attempt);
        st->resends.push_back({msg, std::chrono::steady_clock::now() + pause});
        msg = nullptr;
      } else {
        st->dropped_ack += records;
      }
    }
    natsMsg_Destroy(msg);
    ++st->acks_handled;
    release = st->release_if_last();
  }
  static void on_disconnected(natsConnection*, void* closure) {
    ++static_cast<State*>(closure)->disconnects;
  }
  static void on_reconnected(natsConnection*, void* closure) {
    ++static_cast<State*>(closure)->reconnects;
  }
  // The connection's last event.
  static void on_closed(natsConnection*, void* closure) {
    auto* st = static_cast<State*>(closure);
    std::shared_ptr<State> release;  // destroyed last, after the unlock
    std::lock_guard lock(st->mutex);
    st->closed = true;
    release = st->release_if_last();
  }
};

NatsSink::NatsSink(NatsSinkOptions options)
    : options_(std::move(options)),
      state_(std::make_shared<State>()),
      nats_(std::make_unique<Impl>()),
      host_(host_name()),
      run_id_(random_run_id()),
      packer_(host_, run_id_) {
  nats_->state = state_;
  const SinkUrl url = parse_sink_url(options_.url);
  if (!url.error.empty()) throw SinkError("--sink: " + url.error);
  std::vector<const char*> servers;
  for (const std::string& s : url.servers) servers.push_back(s.c_str());

  auto check = [](natsStatus s, const std::string& what) {
    if (s != NATS_OK) throw SinkError(what + ": " + last_nats_error(s));
  };
  Impl& n = *nats_;
  State& st = *state_;
  st.max_attempts = options_.max_attempts;
  st.ack_wait = options_.ack_wait;
  check(natsOptions_Create(&n.options), "NATS options");
  check(natsOptions_SetServers(n.options, servers.data(), static_cast<int>(servers.size())),
        "--sink " + options_.url);
  check(natsOptions_SetName(n.options, "perfbuf"), "NATS options");
  check(natsOptions_SetTimeout(n.options, options_.connect_timeout.count()), "NATS options");
  // Once connected, reconnect for as long as the sink runs: a server that
  // comes back gets the buffered publishes, the rest is counted by its acks.
  check(natsOptions_SetMaxReconnect(n.options, -1), "NATS options");
  check(natsOptions_SetReconnectWait(n.options, 100), "NATS options");
  check(natsOptions_SetReconnectBufSize(n.options, options_.reconnect_buffer), "NATS options");
  // A server that stops reading must not block a write (under the
  // connection's lock) forever: without a deadline the socket blocks, and
  // finish() would wait for it. A write that takes longer fails the
  // connection, which reconnects; a server that answers no pings is noticed
  // in seconds, not minutes.
  check(natsOptions_SetWriteDeadline(n.options, kWriteDeadlineMs), "NATS options");
  check(natsOptions_SetPingInterval(n.options, kPingIntervalMs), "NATS options");
  check(natsOptions_SetMaxPingsOut(n.options, 2), "NATS options");
  check(natsOptions_SetDisconnectedCB(n.options, Callbacks::on_disconnected, &st), "NATS options");
  check(natsOptions_SetReconnectedCB(n.options, Callbacks::on_reconnected, &st), "NATS options");
  check(natsOptions_SetClosedCB(n.options, Callbacks::on_closed, &st), "NATS options");
  if (const natsStatus s = natsConnection_Connect(&n.connection, n.options); s != NATS_OK)
    throw SinkError("cannot connect to " + options_.url + ": " + last_nats_error(s) +
                    " (is nats-server running there, with -js?)");

  // A message (headers included) must fit the server's max_payload: frames
  // are kept that much smaller.
  const std::int64_t max_payload = natsConnection_GetMaxPayload(n.connection);
  const std::int64_t max_frame = max_payload - static_cast<std::int64_t>(kHeaderRoom);
  if (max_frame < static_cast<std::int64_t>(kMinFrameBytes))
    throw SinkError("the server at " + options_.url + " takes messages of at most " +
                    std::to_string(max_payload) + " bytes: too small for --frame-bytes");
  if (static_cast<std::int64_t>(options_.frame_bytes) > max_frame)
    options_.frame_bytes = static_cast<std::size_t>(max_frame);

  jsOptions jo;
  jsOptions_Init(&jo);
  jo.Wait = options_.connect_timeout.count();
  jo.PublishAsync.MaxPending = options_.max_pending;
  jo.PublishAsync.AckHandler = Callbacks::on_ack;
  jo.PublishAsync.AckHandlerClosure = &st;
  jo.PublishAsync.StallWait = 100;  // how often a stalled publisher looks at give_up_
  check(natsConnection_JetStream(&n.js, n.connection, &jo), "JetStream context");

  // Which streams capture the subject: a publish nobody stores would only be
  // found out through its acks, record by record.
  const std::vector<std::string> capturing =
      streams_capturing(n.js, options_.subject, jo.Wait, options_.url);
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
      // The server's default (2 min), or longer if the sends take longer.
      config.Duplicates = std::max<std::int64_t>(120'000'000'000, duplicate_window_ns());
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
  // A message sent again after the stream's duplicate window is stored twice.
  {
    jsStreamInfo* info = nullptr;
    jsErrCode code = static_cast<jsErrCode>(0);
    if (const natsStatus s = js_GetStreamInfo(&info, n.js, stream_.c_str(), nullptr, &code);
        s != NATS_OK)
      throw SinkError("stream " + stream_ + ": " + last_nats_error(s));
    const std::int64_t window = info->Config ? info->Config->Duplicates : 0;
    jsStreamInfo_Destroy(info);
    if (window > 0 && window < duplicate_window_ns())
      std::fprintf(stderr,
                   "perfbuf: warning: stream %s detects duplicates within %.1f s, less than the "
                   "%d sends of %.1f s each (--ack-wait): a message sent late may be stored twice\n",
                   stream_.c_str(), window / 1e9, options_.max_attempts,
                   std::chrono::duration<double>(options_.ack_wait).count());
  }
  if (options_.purge_stream) {
    jsErrCode code = static_cast<jsErrCode>(0);
    if (const natsStatus s = js_PurgeStream(n.js, stream_.c_str(), nullptr, &code); s != NATS_OK)
      throw SinkError("cannot purge stream " + stream_ + ": " + last_nats_error(s));
  }
  thread_ = std::thread([this] { publisher(); });
}

std::int64_t NatsSink::duplicate_window_ns() const {
  // Every send, the pauses between them, and a margin.
  const auto window = options_.max_attempts * (options_.ack_wait + kResendPause) + std::chrono::seconds(10);
  return std::chrono::duration_cast<std::chrono::nanoseconds>(window).count();
}

NatsSink::~NatsSink() {
  // Not finished (an error ended the run): give up on what is left at once.
  if (!finished_) {
    options_.finish_wait = std::chrono::milliseconds(0);
    finish();
  }
}

void NatsSink::open_frame() {
  const State& st = *state_;
  const std::uint64_t dropped = st.dropped_queue_full + st.dropped_publish + st.dropped_ack;
  packer_.start(next_seq_, kernel_lost_, dropped);
  frame_opened_ = std::chrono::steady_clock::now();
}

void NatsSink::close_frame() {
  State& st = *state_;
  packer_.finish();
  const std::uint32_t records = packer_.record_count();
  next_seq_ += records;
  std::unique_lock lock(st.mutex);
  if (st.queue.size() >= options_.queue_frames) {
    lock.unlock();
    st.dropped_queue_full += records;
    return;  // the packer's buffer is reused by the next frame
  }
  std::vector<std::uint8_t> spare;
  if (!st.spare_buffers.empty()) {
    spare = std::move(st.spare_buffers.back());
    st.spare_buffers.pop_back();
  }
  st.queue.push_back(packer_.take(std::move(spare)));
  st.changed.notify_all();
}

void NatsSink::flush_due(std::chrono::steady_clock::time_point now) {
  if (packer_.started() && now - frame_opened_ >= options_.frame_age) close_frame();
}

std::optional<std::chrono::steady_clock::time_point> NatsSink::next_deadline() const {
  if (!packer_.started()) return std::nullopt;
  return frame_opened_ + options_.frame_age;
}

void NatsSink::publish(void* message, bool resend) {
  State& st = *state_;
  natsMsg* msg = static_cast<natsMsg*>(message);
  const std::span<const std::uint8_t> frame = frame_of(msg);
  const std::uint32_t records = frame_record_count(frame);
  jsPubOptions options;
  jsPubOptions_Init(&options);
  options.MaxWait = options_.ack_wait.count();  // an ack that does not come fails the message
  char id[64];
  natsStatus s = NATS_OK;
  if (resend) {
    s = natsMsgHeader_Set(msg, kAttemptHeader, std::to_string(attempt_of(msg) + 1).c_str());
  } else {
    // Names the frame: a resend of it is stored once.
    std::snprintf(id, sizeof id, "%016llx-%llu", static_cast<unsigned long long>(run_id_),
                  static_cast<unsigned long long>(frame_first_seq(frame)));
    options.MsgId = id;
  }
  while (s == NATS_OK) {
    s = js_PublishMsgAsync(nats_->js, &msg, &options);
    // NATS_TIMEOUT: max_pending messages are unacknowledged; wait for acks
    // (back-pressure: the queue fills, then add() drops and counts).
    if (s != NATS_TIMEOUT) break;
    std::lock_guard lock(st.mutex);
    if (st.give_up) break;
  }
  if (s == NATS_OK) {  // the client owns the message now
    publish_attempted_ = true;
    std::lock_guard lock(st.mutex);
    ++st.publish_calls;
    if (resend) {
      ++st.resent_messages;
    } else {
      st.published_records += records;
      ++st.published_messages;
    }
    return;
  }
  (s == NATS_TIMEOUT ? st.dropped_at_finish : st.dropped_publish) += records;
  if (s != NATS_TIMEOUT) {
    const std::string error = last_nats_error(s);
    std::lock_guard lock(st.mutex);
    st.error("publish: " + error);
  }
  natsMsg_Destroy(msg);
}

void NatsSink::publisher() {
  State& st = *state_;
  while (true) {
    std::vector<std::uint8_t> frame;
    natsMsg* resend = nullptr;
    {
      std::unique_lock lock(st.mutex);
      // A resend whose pause is over, if any.
      auto due_resend = [&st] {
        const auto now = std::chrono::steady_clock::now();
        return std::find_if(st.resends.begin(), st.resends.end(),
                            [now](const State::Resend& r) { return r.due <= now; });
      };
      // Stopping, it stays while messages are in flight: one whose ack fails
      // is sent again.
      while (!(!st.queue.empty() || due_resend() != st.resends.end() ||
               (st.stopping &&
                (st.give_up || (st.resends.empty() && st.publish_calls == st.acks_handled))))) {
        if (st.resends.empty()) {
          st.changed.wait(lock);
        } else {
          auto first_due = st.resends.front().due;
          for (const auto& r : st.resends) first_due = std::min(first_due, r.due);
          st.changed.wait_until(lock, first_due);
        }
      }
      if (st.queue.empty() && st.resends.empty()) break;
      if (st.give_up) {
        std::uint64_t records = 0;
        for (const auto& f : st.queue) records += frame_record_count(f);
        st.queue.clear();
        st.dropped_at_finish += records;
        drop_messages(st, st.resends);
        break;
      }
      if (const auto r = due_resend(); r != st.resends.end()) {
        resend = r->msg;
        st.resends.erase(r);
      } else if (!st.queue.empty()) {
        frame = std::move(st.queue.front());
        st.queue.pop_front();
      }
      st.publishing = true;
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
        st.dropped_publish += frame_record_count(frame);
        const std::string error = last_nats_error(s);
        std::lock_guard lock(st.mutex);
        st.error("publish: " + error);
      }
    }
    std::lock_guard lock(st.mutex);
    st.publishing = false;
    if (!frame.empty() && st.spare_buffers.size() < options_.queue_frames)
      st.spare_buffers.push_back(std::move(frame));
    st.changed.notify_all();
  }
  const double cpu = thread_cpu_seconds();
  std::lock_guard lock(st.mutex);
  st.publisher_cpu_s = cpu;
}

SinkCounts NatsSink::finish() {
  using clock = std::chrono::steady_clock;
  if (finished_) return counts();
  finished_ = true;
  State& st = *state_;
  if (packer_.started()) close_frame();
  // A last frame without records: the consumer learns where the run ended,
  // so records dropped at its end show as a gap too.
  open_frame();
  close_frame();
  const clock::time_point deadline = clock::now() + options_.finish_wait;
  if (thread_.joinable()) {
    {
      std::unique_lock lock(st.mutex);
      st.stopping = true;
      st.changed.notify_all();
      // Everything sent and acknowledged (resends included), or time is up.
      if (!st.changed.wait_until(lock, deadline, [&st] {
            return st.queue.empty() && st.resends.empty() && !st.publishing &&
                   st.publish_calls == st.acks_handled;
          }))
        st.give_up = true;
      st.changed.notify_all();
    }
    thread_.join();
  }
  // From here a failed ack is final.
  {
    std::lock_guard lock(st.mutex);
    st.no_resends = true;
    drop_messages(st, st.resends);
  }
  // Whatever is still unacknowledged counts as dropped (its ack, if it
  // comes, is ignored: the client no longer has it).
  natsMsgList pending{};
  // (The client's list exists only after a first publish: asking before crashes 3.4.)
  if (publish_attempted_ && js_PublishAsyncGetPendingList(&pending, nats_->js) == NATS_OK) {
    std::uint64_t records = 0;
    for (int i = 0; i < pending.Count; ++i) records += frame_record_count(frame_of(pending.Msgs[i]));
    st.dropped_at_finish += records;
    std::lock_guard lock(st.mutex);
    st.taken_back += static_cast<std::uint64_t>(pending.Count);
    if (pending.Count > 0) {  // kept after the first error, which says why
      const std::string note = std::to_string(pending.Count) + " messages not acknowledged in time";
      st.last_error = st.last_error.empty() ? note : st.last_error + "; " + note;
    }
    natsMsgList_Destroy(&pending);
  }
  // An ack handler may be running still (it took its message off the list
  // before our look): wait for it, a bounded while, so the counts add up. (If
  // it is later still, it only touches the state, which outlives the sink.)
  {
    std::unique_lock lock(st.mutex);
    st.changed.wait_for(lock, std::chrono::seconds(1),
                        [&st] { return st.acks_handled + st.taken_back >= st.publish_calls; });
  }
  return counts();
}

SinkCounts NatsSink::counts() const {
  const State& st = *state_;
  SinkCounts c;
  c.received = received_;
  c.published_records = st.published_records;
  c.published_messages = st.published_messages;
  c.acknowledged = st.acknowledged;
  c.acknowledged_messages = st.acknowledged_messages;
  c.resent_messages = st.resent_messages;
  c.duplicates = st.duplicates;
  c.dropped_queue_full = st.dropped_queue_full;
  c.dropped_publish = st.dropped_publish;
  c.dropped_ack = st.dropped_ack;
  c.dropped_at_finish = st.dropped_at_finish;
  c.dropped = c.dropped_queue_full + c.dropped_publish + c.dropped_ack + c.dropped_at_finish;
  c.disconnects = st.disconnects;
  c.reconnects = st.reconnects;
  std::lock_guard lock(const_cast<State&>(st).mutex);
  c.publisher_cpu_s = st.publisher_cpu_s;
  c.last_error = st.last_error;
  return c;
}

}  // namespace perfbuf::tools
