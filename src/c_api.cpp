// The C API (<perfbuf/perfbuf.h>): a thin layer over perfbuf::Reader. Every
// entry point catches every exception; a failure becomes -errno (NULL + errno
// for perfbuf__new) and a message for perfbuf_last_error().
#include <perfbuf/perfbuf.h>
#include <perfbuf/reader.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <new>
#include <string>
#include <type_traits>

struct perfbuf_c {
  perfbuf::Reader reader;
};

namespace {

thread_local std::string last_error;

// Keeps the message for perfbuf_last_error(); sets errno last, so that
// libbpf_get_error() right after a failed perfbuf__new() sees it.
int fail(int errnum, std::string message) noexcept {
  last_error.swap(message);
  errno = errnum;
  return -errnum;
}

// Runs body (returning a count or -errno); an exception becomes -errno.
template <class Body>
int guarded(const char* call, Body&& body) noexcept {
  try {
    return body();
  } catch (const perfbuf::Error& e) {
    return fail(e.errnum(), std::string(call) + ": " + e.what());
  } catch (const std::bad_alloc&) {
    return fail(ENOMEM, std::string(call) + ": out of memory");
  } catch (const std::exception& e) {
    // Only a callback written in C++ can get here: the records it saw count as consumed.
    return fail(ECANCELED, std::string(call) + ": a callback threw: " + e.what());
  } catch (...) {
    return fail(ECANCELED, std::string(call) + ": a callback threw an exception");
  }
}

void check_handle(const perfbuf_t* pb) {
  if (!pb) throw perfbuf::Error(EINVAL, "pb is NULL (perfbuf__new failed?)");
}

// The number of records a call handled, or its Error thrown (guarded() turns it into -errno).
template <class Call>
int records(const perfbuf_t* pb, Call&& call) {
  check_handle(pb);
  const perfbuf::Result<std::size_t> r = call();
  if (!r) throw r.error();
  return static_cast<int>(std::min<std::size_t>(*r, INT_MAX));
}

// The caller's struct perfbuf_opts, which may come from an older or newer
// perfbuf.h: fields past its sz keep their defaults (zero); bytes past our
// struct must be zero, or the caller asked for something this library lacks.
perfbuf_opts read_opts(const perfbuf_opts* given) {
  perfbuf_opts o{};
  if (!given) return o;
  if (given->sz < sizeof given->sz)
    throw perfbuf::Error(EINVAL, "opts->sz = " + std::to_string(given->sz) +
                                     ": set it to sizeof(struct perfbuf_opts)");
  const auto* bytes = reinterpret_cast<const unsigned char*>(given);
  for (std::size_t i = sizeof o; i < given->sz; ++i)
    if (bytes[i] != 0)
      throw perfbuf::Error(EINVAL, "opts->sz = " + std::to_string(given->sz) +
                                       " is larger than this library's struct perfbuf_opts (" +
                                       std::to_string(sizeof o) +
                                       " bytes) and sets fields it does not know: use the "
                                       "perfbuf library that matches your perfbuf.h");
  std::memcpy(&o, given, std::min(given->sz, sizeof o));
  return o;
}

perfbuf::Options to_options(std::size_t page_cnt, const perfbuf_opts& o) {
  if (page_cnt & (page_cnt - 1))
    throw perfbuf::Error(EINVAL, "page_cnt = " + std::to_string(page_cnt) +
                                     " must be a power of two (1, 2, 4, ... 64 ...), or 0 for "
                                     "the default of 512 KiB per CPU");
  perfbuf::Options options;
  options.pages_per_cpu = page_cnt;
  // A C caller may store any int in the enum; in C++ loading such a value as the
  // enum is undefined, so its bytes are read as the underlying integer.
  std::underlying_type_t<perfbuf_wakeup> wakeup;
  std::memcpy(&wakeup, &o.wakeup, sizeof wakeup);
  switch (wakeup) {
    case PERFBUF_WAKEUP_ADAPTIVE:
      options.wakeup = perfbuf::Wakeup::adaptive();
      break;
    case PERFBUF_WAKEUP_WATERMARK:
      options.wakeup = perfbuf::Wakeup::watermark(o.wakeup_value);
      break;
    case PERFBUF_WAKEUP_EVERY_RECORD:
      options.wakeup = perfbuf::Wakeup::every_record();
      break;
    case PERFBUF_WAKEUP_EVERY_N:
      if (o.wakeup_value == 0)
        throw perfbuf::Error(EINVAL, "opts->wakeup_value must be at least 1 with "
                                     "PERFBUF_WAKEUP_EVERY_N (wake after that many records)");
      options.wakeup = perfbuf::Wakeup::every(o.wakeup_value);
      break;
    default:
      throw perfbuf::Error(EINVAL, "opts->wakeup = " + std::to_string(wakeup) +
                                       " is not a PERFBUF_WAKEUP_* value");
  }
  if (o.max_delay_ms != 0) options.max_delay = std::chrono::milliseconds(o.max_delay_ms);
  options.busy_poll = std::chrono::microseconds(o.busy_poll_us);
  options.timestamps = o.sample_ts_cb != nullptr;
  return options;
}

// The handler that calls the C callback: with the timestamp when there is one.
perfbuf::SampleHandler sample_handler(perfbuf_sample_fn sample_cb,
                                      perfbuf_sample_ts_fn sample_ts_cb, void* ctx) {
  if (sample_cb && sample_ts_cb)
    throw perfbuf::Error(EINVAL, "set sample_cb or opts->sample_ts_cb, not both");
  if (sample_ts_cb)
    return [sample_ts_cb, ctx](const perfbuf::Sample& s) {
      sample_ts_cb(ctx, s.cpu, s.time_ns, const_cast<std::byte*>(s.data.data()),
                   static_cast<__u32>(s.data.size()));
    };
  if (sample_cb)
    return [sample_cb, ctx](const perfbuf::Sample& s) {
      sample_cb(ctx, s.cpu, const_cast<std::byte*>(s.data.data()),
                static_cast<__u32>(s.data.size()));
    };
  throw perfbuf::Error(EINVAL, "sample_cb is NULL: pass the function that handles each record");
}

}  // namespace

extern "C" {

perfbuf_t* perfbuf__new(int map_fd, size_t page_cnt, perfbuf_sample_fn sample_cb,
                        perfbuf_lost_fn lost_cb, void* ctx, const struct perfbuf_opts* opts) {
  perfbuf_t* pb = nullptr;
  const int err = guarded("perfbuf__new", [&] {
    const perfbuf_opts o = read_opts(opts);
    perfbuf::Options options = to_options(page_cnt, o);
    perfbuf::SampleHandler on_sample = sample_handler(sample_cb, o.sample_ts_cb, ctx);
    perfbuf::LostHandler on_lost;
    if (lost_cb) on_lost = [lost_cb, ctx](int cpu, std::uint64_t n) { lost_cb(ctx, cpu, n); };
    perfbuf::Reader reader(map_fd, std::move(on_sample), std::move(on_lost), std::move(options));
    if (o.counts_fd > 0) reader.count_outputs(o.counts_fd);
    pb = new perfbuf_c{std::move(reader)};
    return 0;
  });
  return err < 0 ? nullptr : pb;
}

void perfbuf__free(perfbuf_t* pb) { delete pb; }

int perfbuf__poll(perfbuf_t* pb, int timeout_ms) {
  return guarded("perfbuf__poll", [&] {
    return records(pb, [&] { return pb->reader.poll(std::chrono::milliseconds(timeout_ms)); });
  });
}

int perfbuf__consume(perfbuf_t* pb) {
  return guarded("perfbuf__consume", [&] { return records(pb, [&] { return pb->reader.consume(); }); });
}

int perfbuf__consume_buffer(perfbuf_t* pb, size_t buf_idx) {
  return guarded("perfbuf__consume_buffer",
                 [&] { return records(pb, [&] { return pb->reader.consume_ring(buf_idx); }); });
}

int perfbuf__wake(perfbuf_t* pb) {
  return guarded("perfbuf__wake", [&] {
    check_handle(pb);
    pb->reader.wake();
    return 0;
  });
}

int perfbuf__pause(perfbuf_t* pb) {
  return guarded("perfbuf__pause", [&] {
    check_handle(pb);
    pb->reader.pause();
    return 0;
  });
}

int perfbuf__resume(perfbuf_t* pb) {
  return guarded("perfbuf__resume", [&] {
    check_handle(pb);
    pb->reader.resume();
    return 0;
  });
}

bool perfbuf__is_paused(const perfbuf_t* pb) { return pb && pb->reader.paused(); }

size_t perfbuf__buffer_cnt(const perfbuf_t* pb) { return pb ? pb->reader.ring_count() : 0; }

int perfbuf__buffer_fd(const perfbuf_t* pb, size_t buf_idx) {
  return guarded("perfbuf__buffer_fd", [&] {
    check_handle(pb);
    if (buf_idx >= pb->reader.ring_count())
      throw perfbuf::Error(EINVAL, "buf_idx " + std::to_string(buf_idx) +
                                       " is out of range: there are " +
                                       std::to_string(pb->reader.ring_count()) + " rings");
    return pb->reader.ring_fd(buf_idx);
  });
}

int perfbuf__epoll_fd(const perfbuf_t* pb) {
  return guarded("perfbuf__epoll_fd", [&] {
    check_handle(pb);
    return pb->reader.epoll_fd();
  });
}

const char* perfbuf_last_error(void) { return last_error.c_str(); }

}  // extern "C"

extern "C" int perfbuf__ring_stats(const perfbuf_t* pb, size_t buf_idx,
                                   struct perfbuf_ring_stats* stats) {
  return guarded("perfbuf__ring_stats", [&] {
    if (!stats || stats->sz < sizeof stats->sz)
      throw perfbuf::Error(EINVAL, "stats is NULL or stats->sz is not set: set it to "
                                   "sizeof(struct perfbuf_ring_stats)");
    const std::vector<perfbuf::CpuStats> all = pb->reader.stats();
    if (buf_idx >= all.size())
      throw perfbuf::Error(EINVAL, "buf_idx " + std::to_string(buf_idx) + ": there are only " +
                                       std::to_string(all.size()) + " rings");
    const perfbuf::CpuStats& c = all[buf_idx];
    perfbuf_ring_stats out{};
    out.sz = stats->sz;
    out.cpu = c.cpu;
    out.records = c.records;
    out.bytes = c.bytes;
    out.lost = c.lost;
    out.attempts = c.attempts;
    out.failed = c.failed;
    out.wakeups = c.wakeups;
    out.drains = c.drains;
    out.drain_ns = c.drain_ns;
    out.fill_high_water = c.fill_high_water;
    out.reopens = c.reopens;
    out.switches = c.switches;
    std::memcpy(stats, &out, std::min(stats->sz, sizeof out));
    return 0;
  });
}
