// The floor of publish -> deliver latency on this machine: what a relay that does nothing but forward bytes
// achieves, with the same hand-offs between threads as `herald bench pubsub --latency`. A publisher thread
// writes 300-byte messages, each carrying its send time, at RATE per second to a Unix socket; a relay
// forwards them to a second socket; a subscriber thread reads them and records each one's delay.
//   hops 1: one relay thread reads and writes (a broker whose publisher and subscriber share an event loop);
//   hops 2: one relay thread reads and hands the bytes through a pipe to another that writes (a broker whose
//           publisher and subscriber are on different event loops, as Herald's usually are).
// Usage: relay HOPS RATE EVENTS. Prints p50, p99, p99.9 and the maximum, in microseconds.
#define _GNU_SOURCE
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "floor.h"

enum { MESSAGE = 300 };
static int hops = 2, rate = 10000, events = 50000;
static int publishers[2], subscribers[2], handoff[2];

static void write_all(int descriptor, const char *bytes, ssize_t count) {
    for (ssize_t offset = 0; offset < count;) {
        ssize_t written = write(descriptor, bytes + offset, (size_t)(count - offset));
        if (written <= 0) fail("write");
        offset += written;
    }
}

static void *publish(void *unused) {
    (void)unused;
    char message[MESSAGE];
    memset(message, 'x', sizeof message);
    uint64_t start = now(), gap = 1000000000u / (uint64_t)rate;
    for (int index = 0; index < events; index++) {
        uint64_t due = start + (uint64_t)index * gap;
        while (now() < due) nanosleep(&(struct timespec){0, 20000}, NULL);
        uint64_t sent = now();
        memcpy(message, &sent, sizeof sent);
        write_all(publishers[0], message, MESSAGE);
    }
    return NULL;
}

/// Reads from `from` and writes everything to `to`, until `from` ends.
static void forward(int from, int to) {
    static __thread char buffer[65536];
    for (;;) {
        ssize_t count = read(from, buffer, sizeof buffer);
        if (count <= 0) return;
        write_all(to, buffer, count);
    }
}

static void *relay_in(void *unused) {
    (void)unused;
    forward(publishers[1], hops == 1 ? subscribers[0] : handoff[1]);
    return NULL;
}

static void *relay_out(void *unused) {
    (void)unused;
    forward(handoff[0], subscribers[0]);
    return NULL;
}

int main(int argc, char **argv) {
    if (argc > 1) hops = atoi(argv[1]);
    if (argc > 2) rate = atoi(argv[2]);
    if (argc > 3) events = atoi(argv[3]);
    if ((hops != 1 && hops != 2) || rate <= 0 || events <= 0) {
        fprintf(stderr, "usage: relay HOPS(1|2) RATE EVENTS\n");
        return 2;
    }
    uint64_t *delays = malloc(sizeof(uint64_t) * (size_t)events);
    if (!delays) fail("malloc");
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, publishers) || socketpair(AF_UNIX, SOCK_STREAM, 0, subscribers))
        fail("socketpair");
    if (pipe(handoff)) fail("pipe");
    pthread_t in, out, publisher;
    pthread_create(&in, NULL, relay_in, NULL);
    if (hops == 2) pthread_create(&out, NULL, relay_out, NULL);
    pthread_create(&publisher, NULL, publish, NULL);
    char message[MESSAGE];
    for (int index = 0; index < events; index++) {
        for (ssize_t offset = 0; offset < MESSAGE;) {
            ssize_t count = read(subscribers[1], message + offset, (size_t)(MESSAGE - offset));
            if (count <= 0) fail("read");
            offset += count;
        }
        uint64_t sent;
        memcpy(&sent, message, sizeof sent);
        delays[index] = now() - sent;
    }
    sort_delays(delays, (size_t)events);
    printf("hops %d, %d events/s: p50 %.1f us, p99 %.1f us, p99.9 %.1f us, max %.1f us\n", hops, rate,
           (double)delays[events / 2] / 1e3, (double)delays[(size_t)events * 99 / 100] / 1e3,
           (double)delays[(size_t)events * 999 / 1000] / 1e3, (double)delays[events - 1] / 1e3);
    return 0;
}
