/* The record the write tracer sends to user space; shared by the BPF program and C++. */
#ifndef PERFBUF_WRITE_EVENT_H
#define PERFBUF_WRITE_EVENT_H

#include <linux/types.h>

#define PERFBUF_WRITE_COOKIE 0x12345678ULL

struct write_event {
	__u32 tgid;   /* process id */
	__u32 tid;    /* thread id */
	__u64 cookie; /* always PERFBUF_WRITE_COOKIE: lets the reader check every record */
	__u64 time_ns; /* bpf_ktime_get_ns() at the call: CLOCK_MONOTONIC */
};

#endif
