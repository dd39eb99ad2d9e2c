// The floor of WebSocket fan-out latency on this machine: what a server that does nothing but write the same
// frame to every connection achieves, with clients that do nothing but read it — the shape of
// `herald bench ws` (CONNECTIONS TCP connections on loopback, RATE matching events per second, each written
// to every connection as a 300-byte WebSocket text frame carrying its send time).
//   SENDERS threads (default 2, as many as the broker's event loops) each own a slice of the server's ends:
//     at each event's time, each stamps the frame and writes it to every connection of its slice;
//   READERS threads (default 2) each wait in epoll on a slice of the clients' ends, read what arrives and
//     record each frame's delay.
// The clients are a child process, as `herald bench ws`'s are a process apart from the broker.
// Usage: fanout CONNECTIONS RATE SECONDS [SENDERS] [READERS]. Prints p50, p99, p99.9 and the maximum.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "floor.h"

enum { FRAME = 300, HEADER = 4, MAX_THREADS = 16 };
static int connections = 10000, rate = 10, seconds = 10, senders = 2, readers = 2;
static int *servers, *clients;
static uint64_t *delays;
static atomic_size_t recorded;
static size_t expected;

/// Writes each event to the connections `servers[first ..< first + count]`.
static void *send_events(void *argument) {
    int slice = (int)(intptr_t)argument;
    int first = connections * slice / senders, last = connections * (slice + 1) / senders;
    unsigned char frame[FRAME];
    memset(frame, 'x', sizeof frame);
    frame[0] = 0x81;  // FIN, text
    frame[1] = 126;   // a 16-bit length follows
    frame[2] = (FRAME - HEADER) >> 8;
    frame[3] = (FRAME - HEADER) & 0xFF;
    uint64_t start = now() + 100000000u, gap = 1000000000u / (uint64_t)rate;
    for (int index = 0; index < rate * seconds; index++) {
        uint64_t due = start + (uint64_t)index * gap;
        while (now() < due) nanosleep(&(struct timespec){0, 100000}, NULL);
        uint64_t sent = now();
        memcpy(frame + HEADER, &sent, sizeof sent);
        for (int connection = first; connection < last; connection++) {
            if (write(servers[connection], frame, FRAME) != FRAME) fail("write");
        }
    }
    return NULL;
}

/// Reads whole frames from the clients `clients[first ..< first + count]` and records their delays.
static void *read_events(void *argument) {
    int slice = (int)(intptr_t)argument;
    int first = connections * slice / readers, last = connections * (slice + 1) / readers;
    int poller = epoll_create1(0);
    if (poller < 0) fail("epoll_create1");
    // Bytes of a frame read so far, per connection (a read may end inside a frame).
    unsigned char (*partial)[FRAME] = calloc((size_t)(last - first), FRAME);
    int *have = calloc((size_t)(last - first), sizeof(int));
    if (!partial || !have) fail("calloc");
    for (int connection = first; connection < last; connection++) {
        struct epoll_event event = {.events = EPOLLIN, .data.u32 = (uint32_t)(connection - first)};
        if (epoll_ctl(poller, EPOLL_CTL_ADD, clients[connection], &event)) fail("epoll_ctl");
    }
    struct epoll_event ready[256];
    unsigned char buffer[16384];
    while (atomic_load(&recorded) < expected) {
        int count = epoll_wait(poller, ready, 256, 100);
        for (int item = 0; item < count; item++) {
            uint32_t local = ready[item].data.u32;
            ssize_t size = read(clients[first + (int)local], buffer, sizeof buffer);
            if (size <= 0) fail("read");
            uint64_t arrived = now();
            for (ssize_t offset = 0; offset < size;) {
                ssize_t take = FRAME - have[local] < size - offset ? FRAME - have[local] : size - offset;
                memcpy(partial[local] + have[local], buffer + offset, (size_t)take);
                have[local] += (int)take;
                offset += take;
                if (have[local] == FRAME) {
                    uint64_t sent;
                    memcpy(&sent, partial[local] + HEADER, sizeof sent);
                    size_t slot = atomic_fetch_add(&recorded, 1);
                    if (slot < expected) delays[slot] = arrived - sent;
                    have[local] = 0;
                }
            }
        }
    }
    return NULL;
}

int main(int argc, char **argv) {
    if (argc > 1) connections = atoi(argv[1]);
    if (argc > 2) rate = atoi(argv[2]);
    if (argc > 3) seconds = atoi(argv[3]);
    if (argc > 4) senders = atoi(argv[4]);
    if (argc > 5) readers = atoi(argv[5]);
    if (connections <= 0 || rate <= 0 || seconds <= 0 || senders <= 0 || senders > MAX_THREADS || readers <= 0
        || readers > MAX_THREADS) {
        fprintf(stderr, "usage: fanout CONNECTIONS RATE SECONDS [SENDERS] [READERS]\n");
        return 2;
    }
    struct rlimit limit;
    getrlimit(RLIMIT_NOFILE, &limit);
    limit.rlim_cur = limit.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &limit) || limit.rlim_cur < (rlim_t)(connections + 64)) {
        fprintf(stderr, "needs %d open files, the limit is %llu\n", connections + 64,
                (unsigned long long)limit.rlim_cur);
        return 1;
    }
    expected = (size_t)connections * (size_t)rate * (size_t)seconds;
    servers = malloc(sizeof(int) * (size_t)connections);
    clients = malloc(sizeof(int) * (size_t)connections);
    if (!servers || !clients) fail("malloc");

    int listener = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in address = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t length = sizeof address;
    if (listener < 0 || bind(listener, (struct sockaddr *)&address, length) || listen(listener, 4096)
        || getsockname(listener, (struct sockaddr *)&address, &length))
        fail("listen");
    // The child's connections are all accepted before the senders start: it says so by one byte on `ready`.
    int ready[2];
    if (pipe(ready)) fail("pipe");
    pthread_t threads[MAX_THREADS];
    pid_t child = fork();
    if (child < 0) fail("fork");
    if (child == 0) {
        close(listener);
        delays = malloc(sizeof(uint64_t) * expected);
        if (!delays) fail("malloc");
        for (int connection = 0; connection < connections; connection++) {
            clients[connection] = socket(AF_INET, SOCK_STREAM, 0);
            if (clients[connection] < 0 || connect(clients[connection], (struct sockaddr *)&address, length))
                fail("connect");
        }
        for (int index = 0; index < readers; index++)
            pthread_create(&threads[index], NULL, read_events, (void *)(intptr_t)index);
        if (write(ready[1], "r", 1) != 1) fail("write");
        for (int index = 0; index < readers; index++) pthread_join(threads[index], NULL);
        sort_delays(delays, expected);
        printf("%d connections, %d events/s, %d senders, %d readers: %zu deliveries, p50 %.2f ms, p99 %.2f ms, "
               "p99.9 %.2f ms, max %.2f ms\n",
               connections, rate, senders, readers, expected, (double)delays[expected / 2] / 1e6,
               (double)delays[expected * 99 / 100] / 1e6, (double)delays[expected * 999 / 1000] / 1e6,
               (double)delays[expected - 1] / 1e6);
        return 0;
    }
    int one = 1;
    for (int connection = 0; connection < connections; connection++) {
        servers[connection] = accept(listener, NULL, NULL);
        if (servers[connection] < 0) fail("accept");
        setsockopt(servers[connection], IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    char byte;
    if (read(ready[0], &byte, 1) != 1) fail("read");
    for (int index = 0; index < senders; index++)
        pthread_create(&threads[index], NULL, send_events, (void *)(intptr_t)index);
    for (int index = 0; index < senders; index++) pthread_join(threads[index], NULL);
    int status;
    if (waitpid(child, &status, 0) != child || !WIFEXITED(status)) fail("waitpid");
    return WEXITSTATUS(status);
}
