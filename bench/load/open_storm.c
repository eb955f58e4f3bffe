/*
 * open_storm — the synthetic load of scripts/bench-loader.sh: THREADS threads of one process open and
 * close a file (default /etc/hostname) in a tight loop for SECONDS seconds, each open one opensnoop
 * event. All threads share one process id, so `--set filter_pid=PID` (one pid) sees all of them.
 *
 * With -w it first waits for one byte on stdin, so that a harness can start a tracer filtered on this
 * process's pid before the first open; with -n each thread stops after OPENS opens even before SECONDS
 * have passed (a run short enough for the ring buffer to hold every event). At the end it prints on stdout:
 *
 *     open_storm: OPENS opens in SECONDS s (THREADS threads)
 *
 * Usage: open_storm [-w] [-t THREADS] [-n OPENS] SECONDS [FILE]
 * Build: gcc -O2 -static -pthread open_storm.c -o open_storm
 */
#define _GNU_SOURCE /* pthread_clockjoin_np */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_THREADS 64

static const char *file = "/etc/hostname";
static unsigned long long max_opens; /* per thread; 0: no limit */
static atomic_bool stop;

struct worker {
	pthread_t thread;
	unsigned long long opens;
};

static void *storm(void *arg)
{
	struct worker *w = arg;

	while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
		int fd = open(file, O_RDONLY);
		if (fd < 0) {
			fprintf(stderr, "open_storm: cannot open %s: %s\n", file, strerror(errno));
			exit(1);
		}
		close(fd);
		if (++w->opens == max_opens)
			break;
	}
	return NULL;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void usage(void)
{
	fprintf(stderr, "usage: open_storm [-w] [-t THREADS] [-n OPENS] SECONDS [FILE]\n"
			"  -w          wait for one byte on stdin before starting\n"
			"  -t THREADS  opening threads (default 1, at most %d)\n"
			"  -n OPENS    stop each thread after OPENS opens\n",
		MAX_THREADS);
	exit(1);
}

int main(int argc, char **argv)
{
	struct worker workers[MAX_THREADS] = { 0 };
	int threads = 1, wait_stdin = 0, opt;
	char *end;

	while ((opt = getopt(argc, argv, "wt:n:")) != -1) {
		switch (opt) {
		case 'w':
			wait_stdin = 1;
			break;
		case 't':
			threads = (int)strtol(optarg, &end, 10);
			if (*end || threads < 1 || threads > MAX_THREADS)
				usage();
			break;
		case 'n':
			max_opens = strtoull(optarg, &end, 10);
			if (*end || end == optarg || max_opens == 0)
				usage();
			break;
		default:
			usage();
		}
	}
	if (optind >= argc || optind + 2 < argc)
		usage();
	double seconds = strtod(argv[optind], &end);
	if (*end || !(seconds > 0))
		usage();
	if (optind + 1 < argc)
		file = argv[optind + 1];

	char go;
	if (wait_stdin && read(STDIN_FILENO, &go, 1) != 1) {
		fprintf(stderr, "open_storm: stdin closed before the start byte\n");
		return 1;
	}

	double start = now();
	double until = start + seconds;
	struct timespec deadline = { (time_t)until, (long)((until - (time_t)until) * 1e9) };
	for (int i = 0; i < threads; i++) {
		int err = pthread_create(&workers[i].thread, NULL, storm, &workers[i]);
		if (err) {
			fprintf(stderr, "open_storm: cannot start a thread: %s\n", strerror(err));
			return 1;
		}
	}
	/* Threads that reach -n OPENS end early; at the deadline the others are told to stop. */
	unsigned long long opens = 0;
	for (int i = 0; i < threads; i++) {
		if (pthread_clockjoin_np(workers[i].thread, NULL, CLOCK_MONOTONIC, &deadline) == ETIMEDOUT) {
			atomic_store(&stop, 1);
			pthread_join(workers[i].thread, NULL);
		}
		opens += workers[i].opens;
	}
	printf("open_storm: %llu opens in %.3f s (%d thread%s)\n", opens, now() - start, threads,
	       threads == 1 ? "" : "s");
	return 0;
}
