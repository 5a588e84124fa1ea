// SPDX-License-Identifier: GPL-2.0
/*
 * One record per openat(2), with the path read from the caller's memory. On
 * the raw sys_enter tracepoint (no kprobes or tracefs needed), args[0] is the
 * caller's struct pt_regs, read with CO-RE from vmlinux.h's layout. Records go
 * through a BPF ring buffer, built in place; <perfbuf/bpf.h> counts the ones
 * that find it full, so the reader can report them.
 */
#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <perfbuf/bpf.h>
#include "open_trace.h"

char LICENSE[] SEC("license") = "GPL";

/* Set by user space before load. */
const volatile __u32 target_pid = 0; /* 0: every process */
const volatile __u64 openat_nr = 0;

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 20);
} events SEC(".maps");

PERFBUF_COUNTS_MAP(events_counts);

SEC("raw_tracepoint/sys_enter")
int trace_openat(struct bpf_raw_tracepoint_args *ctx)
{
	struct pt_regs *regs = (struct pt_regs *)ctx->args[0];
	struct open_event *e;
	__u32 pid = bpf_get_current_pid_tgid() >> 32;

	if (ctx->args[1] != openat_nr || (target_pid && pid != target_pid))
		return 0;
	e = perfbuf_ringbuf_reserve(&events, &events_counts, sizeof(*e));
	if (!e)
		return 0; /* counted: the reader reports it as lost */
	e->pid = pid;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	/* openat(dirfd, path, flags, mode): the path is the second argument. */
	if (bpf_probe_read_user_str(e->path, sizeof(e->path),
				    (const void *)PT_REGS_PARM2_CORE(regs)) < 0)
		e->path[0] = '\0';
	perfbuf_ringbuf_submit(&events, &events_counts, e, sizeof(*e));
	return 0;
}
