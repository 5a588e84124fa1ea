// SPDX-License-Identifier: GPL-2.0
/* Sends the record user space put in `cat_template` (with seq set) to a perf
 * event array or a ring buffer, when user space runs the program with
 * BPF_PROG_TEST_RUN: args[0] = 0 for the perf event array, 1 for the ring
 * buffer; args[1] = the seq. It is never attached, so it sees nothing else
 * on the machine. The tests of `perfbuf cat` read what it sends. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "cat_record.h"

char LICENSE[] SEC("license") = "GPL";

struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
} cat_perf SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 64 * 1024);
} cat_ring SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct cat_record);
} cat_template SEC(".maps");

SEC("raw_tp/sys_enter")
int emit(struct bpf_raw_tracepoint_args *ctx)
{
	__u32 key = 0;
	struct cat_record *rec = bpf_map_lookup_elem(&cat_template, &key);

	if (!rec)
		return 0;
	rec->seq = ctx->args[1];
	if (ctx->args[0] == 0)
		bpf_perf_event_output(ctx, &cat_perf, BPF_F_CURRENT_CPU, rec, sizeof(*rec));
	else
		bpf_ringbuf_output(&cat_ring, rec, sizeof(*rec), 0);
	return 0;
}
