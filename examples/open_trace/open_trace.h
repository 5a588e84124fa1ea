/* The record open_trace.bpf.c sends per openat(2); shared with the C++ code. */
#ifndef OPEN_TRACE_H
#define OPEN_TRACE_H

#define OPEN_TRACE_PATH_MAX 256

struct open_event {
	__u32 pid;
	char comm[16];                   /* the thread's name, NUL-terminated */
	char path[OPEN_TRACE_PATH_MAX];  /* openat's path, NUL-terminated, maybe cut */
};

#endif
