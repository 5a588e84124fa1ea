/*
 * The layout of a perfbuf output-counts map, shared by the BPF helpers of
 * <perfbuf/bpf.h> and the reader in user space. Plain C, no BPF helpers: user
 * space may include it too (e.g. to read the counts itself).
 *
 * The map is a BPF_MAP_TYPE_PERCPU_ARRAY of two struct perfbuf_counts:
 *   key PERFBUF_KEY_COUNTS   written by the program, each CPU its own copy
 *                            (no shared cache line; atomic adds, so that a
 *                            program nested in another on the same CPU, e.g.
 *                            in an NMI, loses no count);
 *   key PERFBUF_KEY_CONTROL  written by the reader (the same value on every
 *                            CPU), read by the program.
 */
#ifndef PERFBUF_BPF_COUNTS_H
#define PERFBUF_BPF_COUNTS_H

#ifndef __VMLINUX_H__ /* a CO-RE program's vmlinux.h has the types already */
#include <linux/types.h>
#endif

#define PERFBUF_KEY_COUNTS 0
#define PERFBUF_KEY_CONTROL 1

struct perfbuf_counts {
	/* PERFBUF_KEY_COUNTS: outputs this CPU tried. */
	__u64 attempts;
	/* PERFBUF_KEY_COUNTS: of those, outputs the kernel refused (ring full,
	 * no reader's ring on the CPU, ...). */
	__u64 failures;
	/* PERFBUF_KEY_COUNTS: of the failures, those the kernel counts itself:
	 * perf outputs into a full ring (-ENOSPC), which reach the reader as lost
	 * records. The reader reports failures - kernel_counted as failed, so no
	 * record is counted twice. Always 0 for a ring buffer. */
	__u64 kernel_counted;
	/* PERFBUF_KEY_CONTROL, ring buffers: the program wakes the reader when
	 * this many bytes wait unread; 0: the kernel's own rule (a wakeup for each
	 * record written while the reader is caught up). */
	__u64 wakeup_bytes;
	/* PERFBUF_KEY_CONTROL, ring buffers: non-zero while the reader is paused
	 * (Reader::pause): outputs then fail, and are counted as failures. */
	__u64 paused;
};

#endif /* PERFBUF_BPF_COUNTS_H */
