// Starting module processes (Sources/HeraldServer/Modules/ModuleProcess.swift). The child side of fork runs
// only async-signal-safe calls: the broker is multithreaded, so nothing else is safe between fork and exec.
#define _GNU_SOURCE
#include "CHeraldSpawn.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static void close_from(int first, int keep) {
    // close_range (Linux 5.9) when there; otherwise one close per possible descriptor.
    if (keep >= first) {
        if (keep > first && syscall(SYS_close_range, first, keep - 1, 0) != 0) {
            for (int fd = first; fd < keep; fd++) close(fd);
        }
        first = keep + 1;
    }
    if (syscall(SYS_close_range, first, ~0U, 0) != 0) {
        // Up to the soft limit, which `herald serve` raised (possibly to a million): no descriptor above it
        // can be open.
        long max = sysconf(_SC_OPEN_MAX);
        if (max < 0) max = 1 << 20;
        for (long fd = first; fd < max; fd++) close((int)fd);
    }
}

static void fail(int report, int error) {
    ssize_t written = write(report, &error, sizeof error);
    (void)written;
    _exit(127);
}

int herald_spawn(const herald_spawn_request *request, pid_t *pid) {
    int report[2];
    if (pipe2(report, O_CLOEXEC) != 0) return errno;
    pid_t parent = getpid();
    pid_t child = fork();
    if (child < 0) {
        int error = errno;
        close(report[0]);
        close(report[1]);
        return error;
    }
    if (child == 0) {
        close(report[0]);
        if (setpgid(0, 0) != 0) fail(report[1], errno);
        if (prctl(PR_SET_PDEATHSIG, SIGTERM) != 0) fail(report[1], errno);
        // The parent died between fork and prctl: nobody would send the signal.
        if (getppid() != parent) _exit(127);
        // The broker ignores SIGPIPE, SIGTERM and SIGINT (its signal handling runs on dispatch sources), and
        // ignored signals stay ignored across exec: the module gets the defaults back.
        struct sigaction standard = {0};
        standard.sa_handler = SIG_DFL;
        sigemptyset(&standard.sa_mask);
        for (int signal = 1; signal < NSIG; signal++) sigaction(signal, &standard, NULL);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        if (dup2(request->stdin_fd, 0) < 0 || dup2(request->stdout_fd, 1) < 0 || dup2(request->stderr_fd, 2) < 0) {
            fail(report[1], errno);
        }
        close_from(3, report[1]);
        if (request->memory_bytes > 0) {
            struct rlimit limit = {(rlim_t)request->memory_bytes, (rlim_t)request->memory_bytes};
            if (setrlimit(RLIMIT_DATA, &limit) != 0) fail(report[1], errno);
        }
        if (request->open_files > 0) {
            struct rlimit limit = {(rlim_t)request->open_files, (rlim_t)request->open_files};
            if (setrlimit(RLIMIT_NOFILE, &limit) != 0) fail(report[1], errno);
        } else if (request->soft_open_files > 0) {
            struct rlimit limit;
            if (getrlimit(RLIMIT_NOFILE, &limit) != 0) fail(report[1], errno);
            if ((rlim_t)request->soft_open_files < limit.rlim_max) limit.rlim_cur = (rlim_t)request->soft_open_files;
            if (setrlimit(RLIMIT_NOFILE, &limit) != 0) fail(report[1], errno);
        }
        if (chdir(request->directory) != 0) fail(report[1], errno);
        execve(request->path, request->argv, request->envp);
        fail(report[1], errno);
    }
    close(report[1]);
    int error = 0;
    ssize_t got;
    do {
        got = read(report[0], &error, sizeof error);
    } while (got < 0 && errno == EINTR);
    close(report[0]);
    if (got == (ssize_t)sizeof error) {
        int status;
        while (waitpid(child, &status, 0) < 0 && errno == EINTR) {}
        return error == 0 ? EIO : error;
    }
    *pid = child;
    return 0;
}

int herald_pidfd_open(pid_t pid) { return (int)syscall(SYS_pidfd_open, pid, 0); }
