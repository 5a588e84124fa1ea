/* The record write_count.bpf.c sends per write(2); shared with the C code. */
#ifndef WRITE_COUNT_H
#define WRITE_COUNT_H

#define WRITE_COUNT_COOKIE 0x12345678ULL

struct write_record {
	__u64 pid;
	__u64 cookie; /* always WRITE_COUNT_COOKIE: lets user space check every record */
};

#endif
