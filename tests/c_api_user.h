/* Helpers written in C99 (c_api_user.c) that use the C API the way libbpf
 * perf buffer code uses libbpf's; the C API tests call them. */
#ifndef PERFBUF_TESTS_C_API_USER_H
#define PERFBUF_TESTS_C_API_USER_H

#include <perfbuf/perfbuf.h>

#ifdef __cplusplus
extern "C" {
#endif

/* What the callbacks saw. */
struct c_user_counts {
	long records;     /* write_event records with the right cookie */
	long bad;         /* records too short or with a wrong cookie */
	long lost;        /* records the kernel dropped */
	unsigned long cpus; /* bit n: a record came from CPU n (n < 64) */
	unsigned pid;     /* tgid of the last good record */
};

/* perfbuf__new(map_fd, page_cnt, <counting callbacks>, NULL, counts, NULL),
 * checked with libbpf_get_error(); *err gets its result (0 or -errno). */
perfbuf_t *c_user_new(int map_fd, size_t page_cnt, struct c_user_counts *counts, long *err);

/* The same with options set through LIBBPF_OPTS(perfbuf_opts, ...). */
perfbuf_t *c_user_new_with_opts(int map_fd, enum perfbuf_wakeup wakeup, __u32 wakeup_value,
				__u32 max_delay_ms, struct c_user_counts *counts, long *err);
/* With the program's output counts map (<perfbuf/bpf.h>): failed outputs reach lost_cb. */
perfbuf_t *c_user_new_counted(int map_fd, int counts_fd, struct c_user_counts *counts, long *err);

#ifdef __cplusplus
}
#endif

#endif
