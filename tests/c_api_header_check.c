/* <perfbuf/perfbuf.h> compiles as strict C99 and C11 (-pedantic-errors
 * -Werror; see tests/CMakeLists.txt), and struct perfbuf_opts starts with its
 * size, as forward compatibility needs. */
#include <perfbuf/perfbuf.h>

#if __STDC_VERSION__ >= 201112L
_Static_assert(offsetof(struct perfbuf_opts, sz) == 0, "sz must be the first field");
_Static_assert(sizeof(((struct perfbuf_opts *)0)->sz) == sizeof(size_t), "sz is a size_t");
#endif

int perfbuf_header_check(struct perfbuf *pb);
int perfbuf_header_check(struct perfbuf *pb)
{
	struct perfbuf_opts opts = {sizeof(struct perfbuf_opts), PERFBUF_WAKEUP_EVERY_N, 64, 20, 0, 0, 0};

	(void)opts;
	if (!perfbuf__is_paused(pb) && perfbuf__pause(pb) == 0)
		perfbuf__resume(pb);
	return perfbuf__poll(pb, 0);
}
