// SPDX-License-Identifier: GPL-2.0
/*
 * The benchmark's producer: on every call of the trigger system call by the
 * benchmark process, emit `batch` records of `record_size` bytes into either
 * the perf event array (one ring per CPU) or the BPF ring buffer, through
 * <perfbuf/bpf.h>'s helpers: attempts and failures are counted per CPU (so
 * producers on two CPUs never share a line), and a perfbuf reader sets when a
 * ring buffer output wakes it.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <perfbuf/bpf.h>
#include "bench_record.h"

char LICENSE[] SEC("license") = "GPL";

const volatile __u32 producer_tgid = 0;
const volatile __u64 trigger_syscall_nr = 0;
const volatile __u32 record_size = sizeof(struct bench_record);
const volatile __u32 batch = 1;
const volatile __u32 use_ringbuf = 0;

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u8[BENCH_MAX_RECORD]);
} scratch SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
} events SEC(".maps");

/* Size set by user space before load. */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096);
} ringbuf SEC(".maps");

PERFBUF_COUNTS_MAP(events_counts);
PERFBUF_COUNTS_MAP(ringbuf_counts);

SEC("raw_tracepoint/sys_enter")
int produce(struct bpf_raw_tracepoint_args *ctx)
{
	if (ctx->args[1] != trigger_syscall_nr)
		return 0;
	if ((bpf_get_current_pid_tgid() >> 32) != producer_tgid)
		return 0;

	__u32 zero = 0;
	struct bench_record *rec = bpf_map_lookup_elem(&scratch, &zero);
	if (!rec)
		return 0;

	__u32 size = record_size;
	if (size < sizeof(*rec))
		size = sizeof(*rec);
	if (size > BENCH_MAX_RECORD)
		size = BENCH_MAX_RECORD;

	for (__u32 i = 0; i < BENCH_MAX_BATCH && i < batch; i++) {
		rec->time_ns = bpf_ktime_get_ns();
		rec->seq++;
		if (use_ringbuf)
			perfbuf_ringbuf_output(&ringbuf, &ringbuf_counts, rec, size);
		else
			perfbuf_perf_output(ctx, &events, &events_counts, rec, size);
	}
	return 0;
}
