#ifndef CHERALDSPAWN_H
#define CHERALDSPAWN_H

#include <sys/types.h>

/// What `herald_spawn` starts: an executable with its arguments and environment, in a directory, with its
/// standard streams on the given descriptors and its own resource limits.
typedef struct {
    /// The executable, an absolute path.
    const char *path;
    /// NULL-terminated, `argv[0]` included.
    char *const *argv;
    /// NULL-terminated `NAME=value` strings: the whole environment of the child.
    char *const *envp;
    /// The child's working directory.
    const char *directory;
    /// Descriptors that become the child's 0, 1 and 2.
    int stdin_fd;
    int stdout_fd;
    int stderr_fd;
    /// `RLIMIT_DATA` in bytes, 0 for none.
    long long memory_bytes;
    /// `RLIMIT_NOFILE`, 0 for none.
    long long open_files;
    /// Without `open_files`: the soft `RLIMIT_NOFILE` the child starts with (the broker's own, before it
    /// raised it), at most the hard limit; 0 to inherit the broker's.
    long long soft_open_files;
} herald_spawn_request;

/// Starts the child in a process group of its own, with SIGTERM as its parent-death signal (tied to the
/// calling thread, which must live as long as the child). Returns 0 and sets `*pid`, or an errno value
/// when the child could not be started (fork, limits or exec failed; the child is reaped).
int herald_spawn(const herald_spawn_request *request, pid_t *pid);

/// A descriptor that becomes readable when process `pid` exits (`pidfd_open`), or -1 with `errno` set.
int herald_pidfd_open(pid_t pid);

#endif
