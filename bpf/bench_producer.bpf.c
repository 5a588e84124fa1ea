// SPDX-License-Identifier: GPL-2.0
/*
 * The benchmark's producer: on every call of the trigger system call by the
 * benchmark process, emit `batch` records of `record_size` bytes into either
 * the perf event array (one ring per CPU) or the BPF ring buffer. Attempts and
 * failures are counted per CPU, so producers on two CPUs never share a line.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
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
	__type(value, struct bench_counters);
} counters SEC(".maps");

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

SEC("raw_tracepoint/sys_enter")
int produce(struct bpf_raw_tracepoint_args *ctx)
{
	if (ctx->args[1] != trigger_syscall_nr)
		return 0;
	if ((bpf_get_current_pid_tgid() >> 32) != producer_tgid)
		return 0;

	__u32 zero = 0;
	struct bench_counters *c = bpf_map_lookup_elem(&counters, &zero);
	struct bench_record *rec = bpf_map_lookup_elem(&scratch, &zero);
	if (!c || !rec)
		return 0;

	__u32 size = record_size;
	if (size < sizeof(*rec))
		size = sizeof(*rec);
	if (size > BENCH_MAX_RECORD)
		size = BENCH_MAX_RECORD;

	for (__u32 i = 0; i < BENCH_MAX_BATCH && i < batch; i++) {
		long err;

		rec->time_ns = bpf_ktime_get_ns();
		rec->seq++;
		c->attempts++;
		if (use_ringbuf)
			err = bpf_ringbuf_output(&ringbuf, rec, size, 0);
		else
			err = bpf_perf_event_output(ctx, &events, BPF_F_CURRENT_CPU, rec, size);
		if (err)
			c->failures++;
	}
	return 0;
}
