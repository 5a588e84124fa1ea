// SPDX-License-Identifier: GPL-2.0
/*
 * One record per write(2) call, sent through a PERF_EVENT_ARRAY to the CPU's
 * own ring or through a RINGBUF, every output counted (<perfbuf/bpf.h>). Three entry points share one body so user space can attach
 * whichever hook the running kernel offers: a kprobe on the syscall function,
 * the syscalls/sys_enter_write tracepoint (needs tracefs), or the raw
 * sys_enter tracepoint filtered by syscall number (needs neither).
 */
#include <linux/bpf.h>
#include <stdbool.h>
#include <bpf/bpf_helpers.h>
#include <perfbuf/bpf.h>
#include "write_event.h"

char LICENSE[] SEC("license") = "GPL";

/* Set by user space before load. */
const volatile __u32 target_tgid = 0;      /* 0: every process */
const volatile __u32 ignore_tgid = 0;      /* the tracer itself, so its output cannot feed back; 0: none */
const volatile __u64 write_syscall_nr = 1; /* SYS_write of the running arch */
const volatile bool use_ringbuf = false;   /* send to ring_events instead of events */

struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
} events SEC(".maps");

/* The same records through a BPF ring buffer; user space sizes it before load. */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} ring_events SEC(".maps");

/* Outputs tried and failed, per CPU, for each map (see <perfbuf/bpf.h>). */
PERFBUF_COUNTS_MAP(events_counts);
PERFBUF_COUNTS_MAP(ring_events_counts);

static __always_inline int emit(void *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tgid = id >> 32;

	if ((target_tgid && tgid != target_tgid) || (ignore_tgid && tgid == ignore_tgid))
		return 0;

	struct write_event e = {
		.tgid = tgid,
		.tid = (__u32)id,
		.cookie = PERFBUF_WRITE_COOKIE,
		.time_ns = bpf_ktime_get_ns(),
	};
	if (use_ringbuf)
		perfbuf_ringbuf_output(&ring_events, &ring_events_counts, &e, sizeof(e));
	else
		perfbuf_perf_output(ctx, &events, &events_counts, &e, sizeof(e));
	return 0;
}

SEC("kprobe")
int write_kprobe(void *ctx)
{
	return emit(ctx);
}

SEC("tracepoint/syscalls/sys_enter_write")
int write_tracepoint(void *ctx)
{
	return emit(ctx);
}

/* args[0] is the pt_regs pointer, args[1] the syscall number. */
SEC("raw_tracepoint/sys_enter")
int write_raw_tracepoint(struct bpf_raw_tracepoint_args *ctx)
{
	if (ctx->args[1] != write_syscall_nr)
		return 0;
	return emit(ctx);
}
