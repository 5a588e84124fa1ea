/* The benchmark's record and limits; shared by the BPF producer and C++. */
#ifndef PERFBUF_BENCH_RECORD_H
#define PERFBUF_BENCH_RECORD_H

#include <linux/types.h>

#define BENCH_MAX_RECORD 8192 /* bytes; a power of two */
#define BENCH_MAX_BATCH 64    /* records per system call */

/* Every record starts with this; the rest (up to record_size) is filler. */
struct bench_record {
	__u64 time_ns; /* bpf_ktime_get_ns() when emitted: CLOCK_MONOTONIC */
	__u64 seq;     /* per-CPU sequence number */
};

/* What the program's counts map (<perfbuf/bpf.h>) says, summed over CPUs. */
struct bench_counters {
	__u64 attempts; /* records the program tried to emit */
	__u64 failures; /* of which the output helper failed (ring full, no reader) */
};

#endif
