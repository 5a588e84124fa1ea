/*
 * perfbuf's C API, shaped like libbpf's perf buffer: code written for
 * libbpf's perf_buffer__* calls is ported by renaming every "perf_buffer" to
 * "perfbuf" and including this header. Compiles as C99 and later, and as C++.
 *
 *   struct perfbuf *pb = perfbuf__new(bpf_map__fd(skel->maps.events), 8,
 *                                     on_sample, on_lost, ctx, NULL);
 *   if (libbpf_get_error(pb)) { fprintf(stderr, "%s\n", perfbuf_last_error()); ... }
 *   while (!exiting) {
 *       int err = perfbuf__poll(pb, 100);
 *       if (err < 0 && err != -EINTR) break;
 *   }
 *   perfbuf__free(pb);
 *
 * Conventions, as libbpf's: calls returning int return a negative errno on
 * failure; perfbuf__new returns NULL and sets errno (libbpf 1.x's
 * libbpf_get_error(pb) then gives -errno). Every failure also leaves perfbuf's
 * full message (what failed and what to do) in perfbuf_last_error(). No C++
 * exception leaves these functions.
 *
 * Differences from libbpf: page_cnt 0 means the default ring size (512 KiB per
 * CPU); by default each ring wakes the reader on every record only while its
 * traffic is light, and perfbuf__poll delivers every record at most
 * max_delay_ms (10 ms) after it was written (see struct perfbuf_opts); perfbuf__poll and the consume calls return the
 * number of records handled rather than of rings.
 *
 * The handle is `struct perfbuf` in C. In C++, `perfbuf` is the namespace of
 * the C++ API (<perfbuf/reader.h>), so there the struct is named perfbuf_c;
 * `perfbuf_t` names it in both languages.
 */
#ifndef PERFBUF_PERFBUF_H
#define PERFBUF_PERFBUF_H

#include <linux/types.h>
#include <stdbool.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
struct perfbuf_c;
typedef struct perfbuf_c perfbuf_t;
#else
struct perfbuf;
typedef struct perfbuf perfbuf_t;
#endif

/* The callbacks have exactly libbpf's perf_buffer_sample_fn / perf_buffer_lost_fn
 * signatures. data is valid until the callback returns; size includes up to 7
 * bytes of padding the kernel adds after what the program sent. Callbacks must
 * not throw (C++) or longjmp out. */
typedef void (*perfbuf_sample_fn)(void *ctx, int cpu, void *data, __u32 size);
typedef void (*perfbuf_lost_fn)(void *ctx, int cpu, __u64 cnt);
/* A sample with the kernel's timestamp (ns, on CLOCK_MONOTONIC: the clock of
 * bpf_ktime_get_ns() and clock_gettime(CLOCK_MONOTONIC)). */
typedef void (*perfbuf_sample_ts_fn)(void *ctx, int cpu, __u64 time_ns, void *data, __u32 size);

/* When the kernel wakes a waiting perfbuf__poll (struct perfbuf_opts.wakeup). */
enum perfbuf_wakeup {
	/* The default: on every record while a ring's traffic is light (records
	 * arrive within tens of microseconds), none while it is heavy (the reader
	 * drains the ring every 500 us instead). See perfbuf::Wakeup::adaptive()
	 * in <perfbuf/reader.h>. */
	PERFBUF_WAKEUP_ADAPTIVE = 0,
	/* On every record (what libbpf does): lowest latency, lowest throughput. */
	PERFBUF_WAKEUP_EVERY_RECORD = 1,
	/* After every wakeup_value records on a ring (>= 1). */
	PERFBUF_WAKEUP_EVERY_N = 2,
	/* After wakeup_value bytes were written to a ring since the last wakeup;
	 * 0: min(64 KiB, a quarter of the ring). */
	PERFBUF_WAKEUP_WATERMARK = 3,
};

/* Options for perfbuf__new; NULL or zeroed fields mean the defaults. Set sz to
 * sizeof(struct perfbuf_opts) (libbpf's LIBBPF_OPTS(perfbuf_opts, opts, ...)
 * does), so that a program built against this header keeps working with a
 * later library that has more fields. */
struct perfbuf_opts {
	size_t sz;
	enum perfbuf_wakeup wakeup;
	__u32 wakeup_value;
	/* perfbuf__poll drains every ring at least this often, so a record waits at
	 * most this long below the wakeup threshold. 0: 10 ms. */
	__u32 max_delay_ms;
	/* Before sleeping, perfbuf__poll watches the rings this long (costs a
	 * spinning core while traffic flows). 0: off; at most 1000000. */
	__u32 busy_poll_us;
	/* Timestamps: when set, the kernel stamps every record and this is called
	 * instead of sample_cb (which may then be NULL). */
	perfbuf_sample_ts_fn sample_ts_cb;
	/* The PERFBUF_COUNTS_MAP the program passes to the output helpers of
	 * <perfbuf/bpf.h>: outputs that failed without the kernel counting them
	 * (a full ring buffer, a CPU without a ring) then reach lost_cb too, and a
	 * ring buffer's program wakes the reader as `wakeup` says. 0: none. */
	int counts_fd;
};

/* Opens a ring of page_cnt pages (a power of two; 0: the default) on every
 * online CPU for the BPF_MAP_TYPE_PERF_EVENT_ARRAY map_fd and stores each at
 * key = CPU id. ctx is passed to the callbacks; lost_cb and opts may be NULL.
 * NULL with errno set on failure. A BPF_MAP_TYPE_RINGBUF map_fd is read too:
 * one ring for all CPUs (page_cnt does not apply; cpu is -1 in the callbacks). */
perfbuf_t *perfbuf__new(int map_fd, size_t page_cnt, perfbuf_sample_fn sample_cb,
			perfbuf_lost_fn lost_cb, void *ctx, const struct perfbuf_opts *opts);
/* Takes the rings out of the map and frees everything. NULL is ignored. */
void perfbuf__free(perfbuf_t *pb);

/* Waits up to timeout_ms (negative: no limit) for records, then handles what
 * is ready. Returns the number of records handled (0 on a timeout), or a
 * negative errno: -EINTR when a signal interrupted the wait. */
int perfbuf__poll(perfbuf_t *pb, int timeout_ms);
/* Handles everything in every ring now, without waiting. Records handled, or -errno. */
int perfbuf__consume(perfbuf_t *pb);
/* Handles everything in ring buf_idx (0 .. perfbuf__buffer_cnt() - 1). Records handled, or -errno. */
int perfbuf__consume_buffer(perfbuf_t *pb, size_t buf_idx);

/* Makes a perfbuf__poll waiting in another thread return now, with the records
 * it handled (maybe 0); if none is waiting, the next one returns at once. To
 * stop a polling thread: set your stop flag, then call this. Safe from any
 * thread, and from a signal handler. 0 or -errno. */
int perfbuf__wake(perfbuf_t *pb);

/* Stops the program's output into the rings, without tearing anything down,
 * until perfbuf__resume: outputs meanwhile fail and reach lost_cb (a perf
 * ring's counted by the kernel, a ring buffer's by its program through
 * opts.counts_fd; without counts_fd a ring buffer cannot be paused:
 * -EOPNOTSUPP). What the rings already hold is still read. 0 or -errno (then
 * nothing changed). */
int perfbuf__pause(perfbuf_t *pb);
int perfbuf__resume(perfbuf_t *pb);
/* Whether perfbuf__pause is in force; false for NULL. (Named apart from
 * <perfbuf/bpf.h>'s perfbuf__paused, the program's side.) */
bool perfbuf__is_paused(const perfbuf_t *pb);

/* The number of rings (one per CPU read). */
size_t perfbuf__buffer_cnt(const perfbuf_t *pb);
/* The perf event fd of ring buf_idx, or -EINVAL. */
int perfbuf__buffer_fd(const perfbuf_t *pb, size_t buf_idx);
/* For your own event loop: readable when a ring has woken the reader; then
 * call perfbuf__consume (and, with batched wakeups, also every max_delay_ms).
 * Put it in your own epoll/poll set; do not add fds to it (perfbuf__poll then
 * fails with -EINVAL rather than guess what they are). */
int perfbuf__epoll_fd(const perfbuf_t *pb);

/* Figures of one ring (as perfbuf::CpuStats in <perfbuf/reader.h>). */
struct perfbuf_ring_stats {
	size_t sz;            /* set to sizeof(struct perfbuf_ring_stats) */
	int cpu;              /* -1 for a ring buffer */
	__u64 records;        /* handed to sample_cb */
	__u64 bytes;
	__u64 lost;           /* dropped by the kernel on a full perf ring */
	__u64 attempts;       /* with opts.counts_fd: outputs the program tried */
	__u64 failed;         /* with opts.counts_fd: outputs that failed in the program */
	__u64 wakeups;        /* times the kernel woke the reader for this ring */
	__u64 drains;         /* times the ring was read */
	__u64 drain_ns;       /* time in those reads, callbacks included */
	__u64 fill_high_water; /* most bytes found waiting when a read began */
	__u64 reopens;        /* times the ring's CPU came back online and the
	                       * reader gave it new events */
	__u64 switches;       /* the default wakeup policy: times the ring moved
	                       * between a wakeup per record and being polled */
};
/* Fills *stats for ring buf_idx. Fields past stats->sz are left alone (an
 * older caller's smaller struct). 0 or -errno. */
int perfbuf__ring_stats(const perfbuf_t *pb, size_t buf_idx, struct perfbuf_ring_stats *stats);

/* The full message of the last perfbuf call that failed in this thread, e.g.
 * "perfbuf::Options: pages_per_cpu = 3 must be a power of two ..."; "" if none
 * has. Valid until the next failing call in this thread. */
const char *perfbuf_last_error(void);

#ifdef __cplusplus
}  /* extern "C" */
#endif

#endif /* PERFBUF_PERFBUF_H */
