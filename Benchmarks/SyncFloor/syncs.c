/* What a round of `fdatasync`s costs on this machine's disk (docs/storage.md, "Writing"): each round
 * writes 4 KiB to each of eight preallocated files (as the log's writer writes into its segments' zeros),
 * then makes them durable one of four ways: in turn, from N persistent threads at once, with one `syncfs`,
 * or (for comparison) only the first file, as one write-ahead file would.
 * Usage: syncs DIRECTORY serial|threads N|syncfs|one ROUNDS */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define FILES 8
#define PREALLOCATED (64 << 20)

static int files[FILES];
static int threads;
static pthread_barrier_t start, done;

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static void *helper(void *argument) {
    long first = (long)argument;
    for (;;) {
        pthread_barrier_wait(&start);
        for (long i = first; i < FILES; i += threads) fdatasync(files[i]);
        pthread_barrier_wait(&done);
    }
    return NULL;
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: syncs DIRECTORY serial|threads N|syncfs|one ROUNDS\n");
        return 2;
    }
    const char *mode = argv[2];
    threads = strcmp(mode, "threads") == 0 ? atoi(argv[3]) : 0;
    int rounds = atoi(argv[argc - 1]);
    char *zeros = calloc(1, PREALLOCATED), block[4096];
    memset(block, 'x', sizeof block);
    for (int i = 0; i < FILES; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/file-%d", argv[1], i);
        files[i] = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
        if (files[i] < 0 || pwrite(files[i], zeros, PREALLOCATED, 0) != PREALLOCATED || fsync(files[i]) != 0) {
            perror(path);
            return 1;
        }
    }
    if (threads > 0) {
        pthread_barrier_init(&start, NULL, threads + 1);
        pthread_barrier_init(&done, NULL, threads + 1);
        for (long k = 0; k < threads; k++) {
            pthread_t thread;
            pthread_create(&thread, NULL, helper, (void *)k);
        }
    }
    double started = now();
    for (int round = 0; round < rounds; round++) {
        off_t position = (off_t)round * sizeof block % PREALLOCATED;
        for (int i = 0; i < FILES; i++) {
            if (pwrite(files[i], block, sizeof block, position) != sizeof block) return 1;
        }
        if (threads > 0) {
            pthread_barrier_wait(&start);
            pthread_barrier_wait(&done);
        } else if (strcmp(mode, "serial") == 0) {
            for (int i = 0; i < FILES; i++) fdatasync(files[i]);
        } else if (strcmp(mode, "syncfs") == 0) {
            syncfs(files[0]);
        } else {
            fdatasync(files[0]);
        }
    }
    printf("%-10s %s %6.1f µs per round of %d files\n", mode, threads > 0 ? argv[3] : " ",
           (now() - started) / rounds * 1e6, FILES);
    fflush(stdout);
    _exit(0);
}
