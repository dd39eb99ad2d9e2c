// What the latency floors (relay.c, fanout.c) share: the clock, failing, and sorting the delays measured.
#ifndef HERALD_LATENCY_FLOOR_H
#define HERALD_LATENCY_FLOOR_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

/// Nanoseconds on the monotonic clock, which every process on the machine shares.
static inline uint64_t now(void) {
    struct timespec time;
    clock_gettime(CLOCK_MONOTONIC, &time);
    return (uint64_t)time.tv_sec * 1000000000u + (uint64_t)time.tv_nsec;
}

static inline void fail(const char *what) {
    perror(what);
    exit(1);
}

static inline int compare_delays(const void *left, const void *right) {
    uint64_t a = *(const uint64_t *)left, b = *(const uint64_t *)right;
    return (a > b) - (a < b);
}

/// Sorts `count` delays in place, smallest first, for their percentiles.
static inline void sort_delays(uint64_t *delays, size_t count) {
    qsort(delays, count, sizeof(uint64_t), compare_delays);
}

#endif
