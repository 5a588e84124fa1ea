/* The record of cat_records.bpf.c: one of every kind of type perfbuf cat
 * decodes. Shared by the BPF program and the tests (C and C++). */
#ifndef PERFBUF_CAT_RECORD_H
#define PERFBUF_CAT_RECORD_H

#include <linux/types.h>

#ifdef __cplusplus
typedef bool cat_bool;
#else
typedef _Bool cat_bool;
#endif

enum cat_color { CAT_RED = 1, CAT_GREEN = 2, CAT_BLUE = 4 };
enum cat_delta { CAT_DOWN = -1, CAT_FLAT = 0, CAT_UP = 1 }; /* signed */

struct cat_point {
	__s16 x;
	__s16 y;
};

union cat_word {
	__u32 word;
	__u8 bytes[4];
};

typedef __u64 cat_seq_t;

struct cat_record {
	__u8 u8;
	__s8 s8;
	__u16 u16;
	__s16 s16;
	__u32 u32;
	__s32 s32;
	__u64 u64;
	__s64 s64;
	cat_bool flag;
	char comm[16];
	enum cat_color color;
	enum cat_delta delta;
	struct cat_point origin;
	struct cat_point path[2];
	union cat_word word;
	__u32 counts[3];
	unsigned int kind : 3;
	int level : 5;
	unsigned int big : 20;
	const void *where;
	struct { /* anonymous: its members are the record's */
		__u16 lo;
		__u16 hi;
	};
	cat_seq_t seq;
};

#endif
