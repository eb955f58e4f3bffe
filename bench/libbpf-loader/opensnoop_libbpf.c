/*
 * opensnoop_libbpf — the reference loader of scripts/bench-loader.sh: does with libbpf what
 * `ebpf-run opensnoop` does with aya, on the same object file, so the two can be timed against each other.
 *
 * Opens bpf/opensnoop.bpf.o (any path given), optionally sets its `filter_pid` (.rodata), loads it with
 * CO-RE against the running kernel's BTF, attaches every program, and prints each `events` ring buffer
 * record on stdout in ebpf-run's text format, tokens aligned in columns as ebpf-run does:
 *
 *     opensnoop pid=812  tid=812  uid=0 ret=3  flags=524288 comm=cat     path=/etc/hostname
 *
 * Status goes to stderr: "N programs attached" once attached, and on SIGINT/SIGTERM, after a last drain,
 * "opensnoop events: N records printed, M lost", M being the probe's per-CPU `__ebpf_pack_lost_events`
 * counter (records bpf_ringbuf_reserve() could not place) summed over the possible CPUs.
 *
 * Usage: opensnoop_libbpf [-p PID] OBJECT.bpf.o
 * Build: gcc -O2 -static -s -o opensnoop_libbpf opensnoop_libbpf.c -lbpf -lelf -lz
 *        (Debian 12: gcc libc6-dev libbpf-dev, which brings libelf-dev and zlib1g-dev)
 */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/btf.h>
#include <bpf/libbpf.h>

#define PROG "opensnoop_libbpf"
#define COMM_LEN 16
#define PATH_LEN 256
#define STDOUT_BUFFER (64 * 1024) /* as ebpf-run's BufWriter */
#define POLL_MS 100               /* as ebpf-run: a stop request is noticed within 100 ms */
#define COLUMNS 8                 /* tokens of a line: the probe name and 7 fields */
#define MAX_COLUMN 24             /* as ebpf-run: a longer token pushes the rest of its line instead */

/* The probe's record (probes/opensnoop.bpf.c): 292 bytes, no padding. */
struct event {
	__u32 uid;
	__u32 pid;
	char comm[COMM_LEN];
	__s32 fd;
	__s32 err;
	__s32 flags;
	char path[PATH_LEN];
};

struct consumer {
	const char *probe; /* printed first on every line, like ebpf-run's probe name */
	unsigned long long printed;
	int widths[COLUMNS]; /* column widths so far */
};

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static int libbpf_print(enum libbpf_print_level level, const char *fmt, va_list args)
{
	return level == LIBBPF_WARN ? vfprintf(stderr, fmt, args) : 0;
}

/*
 * A char array as ebpf-run prints it (bpfobj/src/decode.rs, write_string): up to the first NUL; bare when
 * it is a non-empty run of printable non-space ASCII without `"`, `=` or `\`, else quoted with C escapes.
 * `out` holds 4 * max + 3 bytes.
 */
static const char *quote(char *out, const char *s, size_t max)
{
	size_t len = strnlen(s, max);
	int plain = len > 0;
	char *o = out;

	for (size_t i = 0; plain && i < len; i++) {
		unsigned char c = s[i];
		plain = c > ' ' && c <= '~' && c != '"' && c != '=' && c != '\\';
	}
	if (plain) {
		memcpy(out, s, len);
		out[len] = '\0';
		return out;
	}
	*o++ = '"';
	for (size_t i = 0; i < len; i++) {
		unsigned char c = s[i];
		if (c == '"' || c == '\\')
			o += sprintf(o, "\\%c", c);
		else if (c == '\n')
			o += sprintf(o, "\\n");
		else if (c == '\t')
			o += sprintf(o, "\\t");
		else if (c >= ' ' && c <= '~')
			*o++ = c;
		else
			o += sprintf(o, "\\x%02x", c);
	}
	strcpy(o, "\"");
	return out;
}

/*
 * Prints token `i` of a line as ebpf-run aligns them (loader/src/events.rs, Columns): padded to the
 * widest token `i` seen so far, at most MAX_COLUMN, and one space; the last token ends the line instead.
 */
static void column(struct consumer *c, int i, const char *fmt, ...)
{
	char token[16 + 4 * PATH_LEN];
	va_list args;

	va_start(args, fmt);
	int len = vsnprintf(token, sizeof(token), fmt, args);
	va_end(args);
	fputs(token, stdout);
	if (i == COLUMNS - 1) {
		putchar('\n');
		return;
	}
	if (c->widths[i] < (len < MAX_COLUMN ? len : MAX_COLUMN))
		c->widths[i] = len < MAX_COLUMN ? len : MAX_COLUMN;
	printf("%*s", (c->widths[i] > len ? c->widths[i] - len : 0) + 1, "");
}

static int handle_event(void *ctx, void *data, size_t size)
{
	struct consumer *c = ctx;
	const struct event *e = data;
	char comm[4 * COMM_LEN + 3], path[4 * PATH_LEN + 3];

	if (size < sizeof(*e)) {
		fprintf(stderr, PROG ": record of %zu bytes, expected %zu: not an opensnoop object\n", size,
			sizeof(*e));
		return -EINVAL;
	}
	column(c, 0, "%s", c->probe);
	column(c, 1, "uid=%u", e->uid);
	column(c, 2, "pid=%u", e->pid);
	column(c, 3, "comm=%s", quote(comm, e->comm, sizeof(e->comm)));
	column(c, 4, "fd=%d", e->fd);
	column(c, 5, "err=%d", e->err);
	column(c, 6, "flags=%d", e->flags);
	column(c, 7, "path=%s", quote(path, e->path, sizeof(e->path)));
	c->printed++;
	return 0;
}

/* Sets the .rodata global `name` (a 4-byte integer) before load, through the object's BTF. */
static int set_rodata_u32(struct bpf_object *obj, const char *name, __u32 value)
{
	struct bpf_map *rodata = bpf_object__find_map_by_name(obj, ".rodata");
	const struct btf *btf = bpf_object__btf(obj);
	if (!rodata || !btf) {
		fprintf(stderr, PROG ": the object has no .rodata map or no BTF: cannot set %s\n", name);
		return -1;
	}
	__s32 sec_id = btf__find_by_name_kind(btf, ".rodata", BTF_KIND_DATASEC);
	const struct btf_type *sec = sec_id > 0 ? btf__type_by_id(btf, sec_id) : NULL;
	const struct btf_var_secinfo *var = sec ? btf_var_secinfos(sec) : NULL;
	for (int i = 0; sec && i < btf_vlen(sec); i++, var++) {
		const struct btf_type *t = btf__type_by_id(btf, var->type);
		if (strcmp(btf__name_by_offset(btf, t->name_off), name) != 0)
			continue;
		size_t size;
		const void *initial = bpf_map__initial_value(rodata, &size);
		if (var->size != sizeof(value) || var->offset + sizeof(value) > size) {
			fprintf(stderr, PROG ": %s is %u bytes at offset %u of .rodata (%zu bytes), expected 4\n",
				name, var->size, var->offset, size);
			return -1;
		}
		char *data = malloc(size);
		if (!data) {
			fprintf(stderr, PROG ": out of memory\n");
			return -1;
		}
		memcpy(data, initial, size);
		memcpy(data + var->offset, &value, sizeof(value));
		int err = bpf_map__set_initial_value(rodata, data, size);
		free(data);
		if (err) {
			fprintf(stderr, PROG ": cannot set %s: %s\n", name, strerror(-err));
			return -1;
		}
		return 0;
	}
	fprintf(stderr, PROG ": the object has no .rodata variable %s\n", name);
	return -1;
}

/* Refuses an object whose `struct event` is not the opensnoop record this loader prints. */
static int check_record_type(struct bpf_object *obj, const char *path)
{
	const struct btf *btf = bpf_object__btf(obj);
	__s32 id = btf ? btf__find_by_name_kind(btf, "event", BTF_KIND_STRUCT) : -1;
	const struct btf_type *t = id > 0 ? btf__type_by_id(btf, id) : NULL;

	if (!t || t->size != sizeof(struct event)) {
		fprintf(stderr, PROG ": %s is not an opensnoop object: no %zu-byte struct event in its BTF\n", path,
			sizeof(struct event));
		return -1;
	}
	return 0;
}

/* The probe's lost-record counter summed over the possible CPUs; -1 when it cannot be read. */
static long long lost_records(struct bpf_object *obj)
{
	struct bpf_map *map = bpf_object__find_map_by_name(obj, "__ebpf_pack_lost_events");
	int ncpus = libbpf_num_possible_cpus();
	if (!map || bpf_map__type(map) != BPF_MAP_TYPE_PERCPU_ARRAY || bpf_map__value_size(map) != sizeof(__u64) ||
	    ncpus <= 0) {
		fprintf(stderr, PROG ": no per-CPU __u64 map __ebpf_pack_lost_events to read\n");
		return -1;
	}
	__u64 *values = calloc(ncpus, sizeof(*values));
	__u32 key = 0;
	if (!values) {
		fprintf(stderr, PROG ": out of memory\n");
		return -1;
	}
	long long sum = -1;
	int err = bpf_map__lookup_elem(map, &key, sizeof(key), values, ncpus * sizeof(*values), 0);
	if (err) {
		fprintf(stderr, PROG ": cannot read __ebpf_pack_lost_events: %s\n", strerror(-err));
	} else {
		sum = 0;
		for (int i = 0; i < ncpus; i++)
			sum += values[i];
	}
	free(values);
	return sum;
}

static void usage(void)
{
	fprintf(stderr, "usage: " PROG " [-p PID] OBJECT.bpf.o\n"
			"  -p PID  trace only process PID (sets the object's filter_pid)\n");
	exit(1);
}

int main(int argc, char **argv)
{
	unsigned long filter_pid = 0;
	int opt;

	while ((opt = getopt(argc, argv, "p:")) != -1) {
		char *end;
		switch (opt) {
		case 'p':
			errno = 0;
			filter_pid = strtoul(optarg, &end, 10);
			if (errno || *end || end == optarg || filter_pid == 0 || filter_pid > UINT32_MAX) {
				fprintf(stderr, PROG ": -p: not a process id: %s\n", optarg);
				exit(1);
			}
			break;
		default:
			usage();
		}
	}
	if (optind != argc - 1)
		usage();
	const char *path = argv[optind];

	/* The probe name, as ebpf-run prints it: the file name up to its first dot. */
	const char *file = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
	char *probe = strndup(file, strcspn(file, "."));
	if (!probe) {
		fprintf(stderr, PROG ": out of memory\n");
		return 1;
	}

	libbpf_set_print(libbpf_print);
	struct sigaction sa = { .sa_handler = on_signal }; /* no SA_RESTART: a signal ends the poll */
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGINT, &sa, NULL) || sigaction(SIGTERM, &sa, NULL)) {
		perror(PROG ": sigaction");
		return 1;
	}
	static char outbuf[STDOUT_BUFFER];
	setvbuf(stdout, outbuf, _IOFBF, sizeof(outbuf));

	int status = 1, err, programs = 0;
	struct bpf_link **links = NULL;
	struct ring_buffer *rb = NULL;
	struct consumer consumer = { .probe = probe };

	struct bpf_object *obj = bpf_object__open_file(path, NULL);
	if (!obj) {
		fprintf(stderr, PROG ": cannot open %s: %s\n", path, strerror(errno));
		goto out;
	}
	if (check_record_type(obj, path))
		goto out;
	if (filter_pid && set_rodata_u32(obj, "filter_pid", filter_pid))
		goto out;
	err = bpf_object__load(obj);
	if (err) {
		fprintf(stderr, PROG ": cannot load %s: %s\n", path, strerror(-err));
		goto out;
	}

	struct bpf_program *prog;
	bpf_object__for_each_program(prog, obj)
		programs++;
	links = calloc(programs, sizeof(*links));
	if (!links) {
		fprintf(stderr, PROG ": out of memory\n");
		goto out;
	}
	int attached = 0;
	bpf_object__for_each_program(prog, obj) {
		links[attached] = bpf_program__attach(prog);
		if (!links[attached]) {
			fprintf(stderr, PROG ": cannot attach %s (%s): %s\n", bpf_program__name(prog),
				bpf_program__section_name(prog), strerror(errno));
			goto out;
		}
		attached++;
	}

	struct bpf_map *events = bpf_object__find_map_by_name(obj, "events");
	if (!events) {
		fprintf(stderr, PROG ": %s has no ring buffer map `events`\n", path);
		goto out;
	}
	rb = ring_buffer__new(bpf_map__fd(events), handle_event, &consumer, NULL);
	if (!rb) {
		fprintf(stderr, PROG ": cannot open ring buffer `events`: %s\n", strerror(errno));
		goto out;
	}
	fprintf(stderr, PROG ": %d program%s attached (%s); stop with Ctrl-C\n", programs,
		programs == 1 ? "" : "s", probe);

	/* libbpf 1.1 returns from ring_buffer__poll only once it has caught up with the producers. */
	while (!stop) {
		err = ring_buffer__poll(rb, POLL_MS);
		if (err == -EINTR)
			continue;
		if (err < 0) {
			fprintf(stderr, PROG ": ring buffer: %s\n", strerror(-err));
			goto out;
		}
		if (err > 0 && fflush(stdout)) { /* events show up as they come, as with ebpf-run */
			fprintf(stderr, PROG ": warning: output stopped: %s\n", strerror(errno));
			break;
		}
	}
	err = ring_buffer__consume(rb);
	if (err < 0) {
		fprintf(stderr, PROG ": ring buffer: %s\n", strerror(-err));
		goto out;
	}
	fflush(stdout);

	long long lost = lost_records(obj);
	if (lost < 0)
		goto out;
	fprintf(stderr, PROG ": %s events: %llu records printed, %lld lost\n", probe, consumer.printed, lost);
	status = 0;
out:
	ring_buffer__free(rb);
	for (int i = 0; links && i < programs; i++)
		bpf_link__destroy(links[i]);
	free(links);
	bpf_object__close(obj);
	free(probe);
	return status;
}
