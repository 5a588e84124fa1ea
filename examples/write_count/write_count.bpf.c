// SPDX-License-Identifier: GPL-2.0
/*
 * One record per write(2) of one process. The raw sys_enter tracepoint,
 * filtered on the syscall number, needs neither kprobes nor tracefs.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "write_count.h"

char LICENSE[] SEC("license") = "GPL";

/* Set by user space before load. */
const volatile __u32 target_pid = 0;
const volatile __u64 write_nr = 0;

struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
} events SEC(".maps");

/* args[0] is the pt_regs pointer, args[1] the syscall number. */
SEC("raw_tracepoint/sys_enter")
int count_write(struct bpf_raw_tracepoint_args *ctx)
{
	struct write_record r;
	__u32 pid = bpf_get_current_pid_tgid() >> 32;

	if (ctx->args[1] != write_nr || pid != target_pid)
		return 0;
	r.pid = pid;
	r.cookie = WRITE_COUNT_COOKIE;
	bpf_perf_event_output(ctx, &events, BPF_F_CURRENT_CPU, &r, sizeof(r));
	return 0;
}
