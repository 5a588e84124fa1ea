/* The C API from C99, written as libbpf perf buffer code is (compiled with
 * -std=c99 -pedantic-errors -Werror: see tests/CMakeLists.txt). */
#include "c_api_user.h"

#include <bpf/libbpf.h>
#include <string.h>

#include "write_event.h"

static void count_sample(void *ctx, int cpu, void *data, __u32 size)
{
	struct c_user_counts *counts = ctx;
	struct write_event e;

	if (size < sizeof(e)) {
		counts->bad++;
		return;
	}
	memcpy(&e, data, sizeof(e));
	if (e.cookie != PERFBUF_WRITE_COOKIE) {
		counts->bad++;
		return;
	}
	counts->records++;
	counts->pid = e.tgid;
	if (cpu >= 0 && cpu < 64)
		counts->cpus |= 1UL << cpu;
}

static void count_lost(void *ctx, int cpu, __u64 cnt)
{
	struct c_user_counts *counts = ctx;

	(void)cpu;
	counts->lost += (long)cnt;
}

/* The callbacks have libbpf's exact types: with -Werror, these initializations
 * fail to compile if perfbuf's typedefs differ from libbpf's. */
static const perf_buffer_sample_fn as_libbpf_sample = count_sample;
static const perf_buffer_lost_fn as_libbpf_lost = count_lost;

perfbuf_t *c_user_new(int map_fd, size_t page_cnt, struct c_user_counts *counts, long *err)
{
	struct perfbuf *pb;

	pb = perfbuf__new(map_fd, page_cnt, as_libbpf_sample, as_libbpf_lost, counts, NULL);
	*err = libbpf_get_error(pb);
	return *err ? NULL : pb;
}

perfbuf_t *c_user_new_with_opts(int map_fd, enum perfbuf_wakeup wakeup, __u32 wakeup_value,
				__u32 max_delay_ms, struct c_user_counts *counts, long *err)
{
	LIBBPF_OPTS(perfbuf_opts, opts, .wakeup = wakeup, .wakeup_value = wakeup_value,
		    .max_delay_ms = max_delay_ms);
	struct perfbuf *pb;

	pb = perfbuf__new(map_fd, 8, count_sample, count_lost, counts, &opts);
	*err = libbpf_get_error(pb);
	return *err ? NULL : pb;
}

perfbuf_t *c_user_new_counted(int map_fd, int counts_fd, struct c_user_counts *counts, long *err)
{
	LIBBPF_OPTS(perfbuf_opts, opts, .counts_fd = counts_fd);
	struct perfbuf *pb;

	pb = perfbuf__new(map_fd, 0, count_sample, count_lost, counts, &opts);
	*err = libbpf_get_error(pb);
	return *err ? NULL : pb;
}
