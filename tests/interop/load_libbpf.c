/* Load a flow dissector object with libbpf and test-run it on frames.
 *
 * Usage: load_libbpf OBJECT.o [PROGRAM]
 *
 * Reads one frame per line from stdin: the frame's bytes in hex (from the
 * Ethernet header), optionally followed by a space and the input flags
 * (BPF_FLOW_DISSECTOR_F_*, decimal). For each frame it prints
 *
 *     RETVAL KEYS
 *
 * with RETVAL the program's return value in decimal and KEYS the 56 bytes of
 * struct bpf_flow_keys after the run, in hex. libbpf's warnings and notices
 * (its messages start with "libbpf: ") go to stderr, its debug messages only
 * with LOAD_LIBBPF_DEBUG=1 in the environment: a clean object loads with
 * nothing on stderr. Exit status 0 when every frame ran,
 * 1 on a usage or input error, 2 when libbpf or the kernel refused.
 *
 * Build: gcc -O2 -Wall -o load_libbpf load_libbpf.c -lbpf
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>

#define MAX_FRAME 4096 /* BPF_PROG_TEST_RUN refuses a larger flow dissector frame */

static int debug;

static int print_libbpf(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	if (level == LIBBPF_DEBUG && !debug)
		return 0;
	return vfprintf(stderr, fmt, ap);
}

static int hex_digit(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Parse "HEX [FLAGS]" into frame/flags; returns the frame length or -1. */
static long parse_line(const char *line, unsigned char *frame, __u32 *flags)
{
	long len = 0;
	const char *p = line;
	char *end;

	while (hex_digit(p[0]) >= 0) {
		if (hex_digit(p[1]) < 0 || len == MAX_FRAME)
			return -1;
		frame[len++] = (unsigned char)(hex_digit(p[0]) << 4 | hex_digit(p[1]));
		p += 2;
	}
	*flags = 0;
	if (*p == ' ') {
		unsigned long value = strtoul(p + 1, &end, 10);

		if (end == p + 1 || value > 0xffffffffUL)
			return -1;
		*flags = (__u32)value;
		p = end;
	}
	if (*p != '\n' && *p != '\0')
		return -1;
	return len;
}

int main(int argc, char **argv)
{
	static unsigned char frame[MAX_FRAME];
	static char line[2 * MAX_FRAME + 32];
	struct bpf_object *obj;
	struct bpf_program *prog;
	unsigned long lineno = 0;
	int err, fd, status = 0;

	if (argc < 2 || argc > 3) {
		fprintf(stderr, "usage: %s OBJECT.o [PROGRAM] < frames\n", argv[0]);
		return 1;
	}
	debug = getenv("LOAD_LIBBPF_DEBUG") && strcmp(getenv("LOAD_LIBBPF_DEBUG"), "1") == 0;
	libbpf_set_print(print_libbpf);

	obj = bpf_object__open_file(argv[1], NULL);
	if (!obj) {
		fprintf(stderr, "%s: cannot open: %s\n", argv[1], strerror(errno));
		return 2;
	}
	if (argc == 3)
		prog = bpf_object__find_program_by_name(obj, argv[2]);
	else
		prog = bpf_object__next_program(obj, NULL);
	if (!prog) {
		fprintf(stderr, "%s: no program %s\n", argv[1], argc == 3 ? argv[2] : "at all");
		bpf_object__close(obj);
		return 2;
	}
	if (bpf_program__type(prog) != BPF_PROG_TYPE_FLOW_DISSECTOR) {
		fprintf(stderr, "%s: program %s is not a flow dissector (section %s)\n",
			argv[1], bpf_program__name(prog), bpf_program__section_name(prog));
		bpf_object__close(obj);
		return 2;
	}
	err = bpf_object__load(obj);
	if (err) {
		fprintf(stderr, "%s: load failed: %s\n", argv[1], strerror(-err));
		bpf_object__close(obj);
		return 2;
	}
	fd = bpf_program__fd(prog);

	while (fgets(line, sizeof(line), stdin)) {
		struct bpf_flow_keys keys, ctx;
		__u32 flags;
		long len;
		size_t i;

		lineno++;
		len = parse_line(line, frame, &flags);
		if (len < 0) {
			fprintf(stderr, "stdin:%lu: expected a frame in hex (at most %d bytes), "
				"then optionally a space and decimal flags\n", lineno, MAX_FRAME);
			status = 1;
			break;
		}
		/* Only `flags` may be non-zero in ctx_in (net/bpf/test_run.c,
		 * bpf_prog_test_run_flow_dissector); data_out receives the keys. */
		memset(&ctx, 0, sizeof(ctx));
		ctx.flags = flags;
		memset(&keys, 0, sizeof(keys));
		LIBBPF_OPTS(bpf_test_run_opts, run,
			.data_in = frame,
			.data_size_in = (__u32)len,
			.data_out = &keys,
			.data_size_out = sizeof(keys),
			.ctx_in = &ctx,
			.ctx_size_in = sizeof(ctx),
		);
		err = bpf_prog_test_run_opts(fd, &run);
		if (err) {
			fprintf(stderr, "stdin:%lu: BPF_PROG_TEST_RUN failed: %s\n", lineno, strerror(errno));
			status = 2;
			break;
		}
		printf("%u ", run.retval);
		for (i = 0; i < sizeof(keys); i++)
			printf("%02x", ((unsigned char *)&keys)[i]);
		putchar('\n');
	}
	bpf_object__close(obj);
	return status;
}
