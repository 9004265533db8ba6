// faultfs: an LD_PRELOAD library that makes the journal's disk fail on chosen calls, so the
// tests can run the real server against EIO and ENOSPC. Build:
//     cc -shared -fPIC -O1 -o libfaultfs.so scripts/faultfs.c -ldl
// It acts only on descriptors whose path (from /proc/self/fd) contains GH_FAULT_PATH; every
// other call passes through untouched. Settings, all from the environment:
//     GH_FAULT_PATH=journal.jsonl   which files (a substring of the path); required
//     GH_FAULT_ERRNO=EIO|ENOSPC     the error injected (default EIO)
//     GH_FAULT_WRITE=3,7-9,20-      which matching write calls fail (1-based, per kind; "N-" is
//     GH_FAULT_FDATASYNC=…          open-ended); likewise for fdatasync, fsync and ftruncate
//     GH_FAULT_FSYNC=…
//     GH_FAULT_FTRUNCATE=…
//     GH_FAULT_PARTIAL=1            a failing write first stores half its bytes (a short write);
//                                   the failure comes on the writer's next call
//     GH_FAULT_DELAY_US=N           sleep N µs in each matching fdatasync/fsync (a slow disk)
//     GH_FAULT_WRITE_US_PER_KIB=N   sleep N µs per KiB in each matching write (a disk with little
//                                   bandwidth: 100 is about 10 MB/s)
//     GH_FAULT_LOG=FILE             append one line per injected fault: "fdatasync 5 EIO"
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

enum kind { K_WRITE, K_FDATASYNC, K_FSYNC, K_FTRUNCATE, K_COUNT };
static const char *names[K_COUNT] = {"write", "fdatasync", "fsync", "ftruncate"};
static const char *vars[K_COUNT] = {"GH_FAULT_WRITE", "GH_FAULT_FDATASYNC", "GH_FAULT_FSYNC", "GH_FAULT_FTRUNCATE"};
static long counters[K_COUNT];
static int pendingWriteFailure;

static int matches(int fd) {
    const char *want = getenv("GH_FAULT_PATH");
    if (want == NULL || *want == 0) return 0;
    char link[64], path[4096];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, path, sizeof path - 1);
    if (n <= 0) return 0;
    path[n] = 0;
    return strstr(path, want) != NULL;
}

// Whether call number `n` is in a list like "3,7-9,20-".
static int listed(const char *spec, long n) {
    if (spec == NULL) return 0;
    const char *p = spec;
    while (*p) {
        char *end;
        long from = strtol(p, &end, 10);
        long to = from;
        if (end == p) return 0;
        p = end;
        if (*p == '-') {
            p++;
            to = strtol(p, &end, 10);
            if (end == p) to = -1;  // open-ended
            p = end;
        }
        if (n >= from && (to < 0 || n <= to)) return 1;
        if (*p == ',') p++;
    }
    return 0;
}

static int injectedErrno(void) {
    const char *e = getenv("GH_FAULT_ERRNO");
    return (e != NULL && strcmp(e, "ENOSPC") == 0) ? ENOSPC : EIO;
}

static void note(enum kind k, long n) {
    const char *log = getenv("GH_FAULT_LOG");
    if (log == NULL) return;
    static ssize_t (*realWrite)(int, const void *, size_t);
    if (realWrite == NULL) realWrite = dlsym(RTLD_NEXT, "write");
    int fd = open(log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) return;
    char line[128];
    int len = snprintf(line, sizeof line, "%s %ld %s\n", names[k], n, injectedErrno() == ENOSPC ? "ENOSPC" : "EIO");
    realWrite(fd, line, (size_t)len);
    close(fd);
}

// 1: fail this call (errno set); 0: pass it through.
static int shouldFail(enum kind k, int fd) {
    if (!matches(fd)) return 0;
    long n = __atomic_add_fetch(&counters[k], 1, __ATOMIC_SEQ_CST);
    if (k == K_FDATASYNC || k == K_FSYNC) {
        const char *delay = getenv("GH_FAULT_DELAY_US");
        if (delay != NULL) usleep((useconds_t)atol(delay));
    }
    if (!listed(getenv(vars[k]), n)) return 0;
    note(k, n);
    return 1;
}

ssize_t write(int fd, const void *buf, size_t count) {
    static ssize_t (*real)(int, const void *, size_t);
    if (real == NULL) real = dlsym(RTLD_NEXT, "write");
    if (pendingWriteFailure && matches(fd)) {
        pendingWriteFailure = 0;
        errno = injectedErrno();
        return -1;
    }
    const char *slow = getenv("GH_FAULT_WRITE_US_PER_KIB");
    if (slow != NULL && matches(fd)) usleep((useconds_t)((count * (size_t)atol(slow)) / 1024));
    if (shouldFail(K_WRITE, fd)) {
        const char *partial = getenv("GH_FAULT_PARTIAL");
        if (partial != NULL && strcmp(partial, "1") == 0 && count > 1) {
            pendingWriteFailure = 1;
            return real(fd, buf, count / 2);
        }
        errno = injectedErrno();
        return -1;
    }
    return real(fd, buf, count);
}

int fdatasync(int fd) {
    static int (*real)(int);
    if (real == NULL) real = dlsym(RTLD_NEXT, "fdatasync");
    if (shouldFail(K_FDATASYNC, fd)) {
        errno = injectedErrno();
        return -1;
    }
    return real(fd);
}

int fsync(int fd) {
    static int (*real)(int);
    if (real == NULL) real = dlsym(RTLD_NEXT, "fsync");
    if (shouldFail(K_FSYNC, fd)) {
        errno = injectedErrno();
        return -1;
    }
    return real(fd);
}

int ftruncate(int fd, off_t length) {
    static int (*real)(int, off_t);
    if (real == NULL) real = dlsym(RTLD_NEXT, "ftruncate");
    if (shouldFail(K_FTRUNCATE, fd)) {
        errno = injectedErrno();
        return -1;
    }
    return real(fd, length);
}

int ftruncate64(int fd, off_t length) { return ftruncate(fd, length); }
