/*
 * <perfbuf/bpf.h>: for the BPF programs whose output perfbuf reads.
 *
 * The kernel counts the records a full perf ring drops, but nothing when
 * bpf_ringbuf_output() fails, nor when bpf_perf_event_output() finds no
 * reader on its CPU: those records are lost without a trace. The helpers here
 * count every output and every such failure, per CPU, in a small map of the
 * program's; given that map, perfbuf's reader reports the failures to the lost
 * handler and in its stats (perfbuf::Reader::count_outputs, or
 * perfbuf_opts.counts_fd in C). For a ring buffer the reader also sets,
 * through the same map, how much data waits before the program wakes it, so
 * ring buffers get batched wakeups like perf rings.
 *
 *   #include <linux/bpf.h>          // or "vmlinux.h"
 *   #include <bpf/bpf_helpers.h>
 *   #include <perfbuf/bpf.h>
 *
 *   PERFBUF_COUNTS_MAP(events_counts);      // one per output map
 *   ...
 *   perfbuf_perf_output(ctx, &events, &events_counts, &e, sizeof(e));
 *   perfbuf_ringbuf_output(&ring, &ring_counts, &e, sizeof(e));
 *
 *   // or, to build a record in place:
 *   struct event *e = perfbuf_ringbuf_reserve(&ring, &ring_counts, sizeof(*e));
 *   if (e) { ...; perfbuf_ringbuf_submit(&ring, &ring_counts, e, sizeof(*e)); }
 *
 * perfbuf_add_bpf_skeleton() puts this header on the program's include path.
 * The helpers return what the kernel's helper returned.
 */
#ifndef PERFBUF_BPF_H
#define PERFBUF_BPF_H

#include <perfbuf/bpf_counts.h>

#ifndef __BPF_HELPERS__
#error "include <bpf/bpf_helpers.h> before <perfbuf/bpf.h>"
#endif

/* The kernel's errno for a perf output into a full ring (it counts those). */
#define PERFBUF_ENOSPC 28

/* Declares the counts map `name` for one output map. */
#define PERFBUF_COUNTS_MAP(name)                                   \
	struct {                                                   \
		__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);           \
		__uint(max_entries, 2);                            \
		__type(key, __u32);                                \
		__type(value, struct perfbuf_counts);              \
	} name SEC(".maps")

static __always_inline struct perfbuf_counts *perfbuf__slot(void *counts_map, __u32 key)
{
	return (struct perfbuf_counts *)bpf_map_lookup_elem(counts_map, &key);
}

/* bpf_perf_event_output(ctx, map, BPF_F_CURRENT_CPU, data, size), counted. */
static __always_inline long perfbuf_perf_output(void *ctx, void *map, void *counts_map,
						void *data, __u64 size)
{
	struct perfbuf_counts *c = perfbuf__slot(counts_map, PERFBUF_KEY_COUNTS);
	long err;

	if (c) /* before the output: the reader never sees more records than attempts */
		__sync_fetch_and_add(&c->attempts, 1);
	err = bpf_perf_event_output(ctx, map, BPF_F_CURRENT_CPU, data, size);
	if (c && err) {
		__sync_fetch_and_add(&c->failures, 1);
		if (err == -PERFBUF_ENOSPC)
			__sync_fetch_and_add(&c->kernel_counted, 1);
	}
	return err;
}

/* The flags that wake the reader once wakeup_bytes are waiting (see struct
 * perfbuf_counts): one wakeup when the unread bytes cross the threshold, none
 * below it. `size`: the record being committed, which the unread bytes already
 * include when it was reserved. */
static __always_inline __u64 perfbuf__ringbuf_flags(void *map, void *counts_map, __u64 size,
						    int reserved)
{
	struct perfbuf_counts *ctl = perfbuf__slot(counts_map, PERFBUF_KEY_CONTROL);
	__u64 threshold, unread, len = (size + 8 + 7) & ~7ULL; /* with its header */

	if (!ctl || !ctl->wakeup_bytes)
		return 0;
	threshold = ctl->wakeup_bytes;
	unread = bpf_ringbuf_query(map, BPF_RB_AVAIL_DATA);
	if (reserved)
		unread = unread > len ? unread - len : 0;
	if (unread < threshold && unread + len >= threshold)
		return BPF_RB_FORCE_WAKEUP;
	return BPF_RB_NO_WAKEUP;
}

/* Whether the reader paused a ring buffer's output (Reader::pause). */
static __always_inline int perfbuf__paused(void *counts_map)
{
	struct perfbuf_counts *ctl = perfbuf__slot(counts_map, PERFBUF_KEY_CONTROL);

	return ctl && ctl->paused;
}

/* The error of an output refused while the reader is paused. */
#define PERFBUF_EPAUSED 16 /* EBUSY */

/* bpf_ringbuf_output(map, data, size, flags), counted, with the reader's wakeups. */
static __always_inline long perfbuf_ringbuf_output(void *map, void *counts_map, void *data,
						   __u64 size)
{
	struct perfbuf_counts *c = perfbuf__slot(counts_map, PERFBUF_KEY_COUNTS);
	long err;

	if (c)
		__sync_fetch_and_add(&c->attempts, 1);
	if (perfbuf__paused(counts_map))
		err = -PERFBUF_EPAUSED;
	else
		err = bpf_ringbuf_output(map, data, size,
					 perfbuf__ringbuf_flags(map, counts_map, size, 0));
	if (c && err)
		__sync_fetch_and_add(&c->failures, 1);
	return err;
}

/* bpf_ringbuf_reserve(map, size, 0), counted: NULL (also while the reader is
 * paused) counts as a failure. */
static __always_inline void *perfbuf_ringbuf_reserve(void *map, void *counts_map, __u64 size)
{
	struct perfbuf_counts *c = perfbuf__slot(counts_map, PERFBUF_KEY_COUNTS);
	void *rec;

	if (c)
		__sync_fetch_and_add(&c->attempts, 1);
	rec = perfbuf__paused(counts_map) ? (void *)0 : bpf_ringbuf_reserve(map, size, 0);
	if (c && !rec)
		__sync_fetch_and_add(&c->failures, 1);
	return rec;
}

/* bpf_ringbuf_submit(rec, flags) with the reader's wakeups; size as reserved. */
static __always_inline void perfbuf_ringbuf_submit(void *map, void *counts_map, void *rec,
						   __u64 size)
{
	bpf_ringbuf_submit(rec, perfbuf__ringbuf_flags(map, counts_map, size, 1));
}

#endif /* PERFBUF_BPF_H */
