/*
 * write_count PID: counts the write(2) calls of process PID until it exits
 * (or Ctrl-C), checking the cookie of every record.
 *
 * This is libbpf perf buffer code: porting it to perfbuf took renaming
 * perf_buffer to perfbuf and including <perfbuf/perfbuf.h>.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <bpf/libbpf.h>
#include <perfbuf/perfbuf.h>

#include "write_count.h"
#include "write_count_bpf.skel.h"

static volatile sig_atomic_t exiting;
static __u64 cnt, bad_cookies;

static void sig_handler(int sig)
{
	(void)sig;
	exiting = 1;
}

static void print_bpf_output(void *ctx, int cpu, void *data, __u32 size)
{
	struct write_record r;

	(void)ctx;
	if (size < sizeof(r)) {
		fprintf(stderr, "cpu %d: short record of %u bytes\n", cpu, size);
		bad_cookies++;
		return;
	}
	memcpy(&r, data, sizeof(r));
	if (r.cookie != WRITE_COUNT_COOKIE) {
		fprintf(stderr, "BUG pid %llu cookie %llx size %u\n", (unsigned long long)r.pid,
			(unsigned long long)r.cookie, size);
		bad_cookies++;
		return;
	}
	cnt++;
}

int main(int argc, char **argv)
{
	struct write_count_bpf *skel;
	struct perfbuf *pb = NULL;
	char *end;
	long pid;
	int err;

	pid = argc == 2 ? strtol(argv[1], &end, 10) : 0;
	if (argc != 2 || *end != '\0' || pid <= 0) {
		fprintf(stderr, "usage: %s PID\n", argv[0]);
		return 2;
	}
	if (kill(pid, 0) != 0 && errno == ESRCH) {
		fprintf(stderr, "write_count: no process %ld\n", pid);
		return 2;
	}

	skel = write_count_bpf__open();
	if (!skel) {
		fprintf(stderr, "failed to open BPF skeleton: %s\n", strerror(errno));
		return 1;
	}
	skel->rodata->target_pid = pid;
	skel->rodata->write_nr = SYS_write;
	err = write_count_bpf__load(skel);
	if (err) {
		fprintf(stderr, "failed to load BPF program (run as root): %s\n", strerror(-err));
		goto cleanup;
	}
	err = write_count_bpf__attach(skel);
	if (err) {
		fprintf(stderr, "failed to attach BPF program: %s\n", strerror(-err));
		goto cleanup;
	}

	pb = perfbuf__new(bpf_map__fd(skel->maps.events), 8, print_bpf_output, NULL, NULL, NULL);
	err = libbpf_get_error(pb);
	if (err) {
		pb = NULL;
		fprintf(stderr, "failed to open perf buffer: %s\n", perfbuf_last_error());
		goto cleanup;
	}

	signal(SIGINT, sig_handler);
	signal(SIGTERM, sig_handler);
	printf("tracing write(2) of pid %ld\n", pid);
	fflush(stdout);

	while (!exiting) {
		err = perfbuf__poll(pb, 100);
		if (err < 0 && err != -EINTR) {
			fprintf(stderr, "error polling perf buffer: %s\n", strerror(-err));
			goto cleanup;
		}
		err = 0;
		if (kill(pid, 0) != 0 && errno == ESRCH)
			break; /* the process is gone */
	}
	/* What is still in the rings: records below the wakeup threshold. */
	err = perfbuf__consume(pb);
	if (err < 0) {
		fprintf(stderr, "error consuming perf buffer: %s\n", strerror(-err));
		goto cleanup;
	}
	err = 0;
	printf("pid %ld: %llu writes, %llu bad cookies\n", pid, (unsigned long long)cnt,
	       (unsigned long long)bad_cookies);

cleanup:
	perfbuf__free(pb);
	write_count_bpf__destroy(skel);
	return err != 0 || bad_cookies != 0;
}
