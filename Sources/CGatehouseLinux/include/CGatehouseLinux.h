// Linux system calls Swift's Glibc module does not export (accept4 needs _GNU_SOURCE) or that
// are awkward from Swift (struct epoll_event is packed on x86_64). The wrappers keep the C names
// after the CGatehouseLinux_ prefix and do no error handling of their own: errno is left as set.
#ifndef CGATEHOUSELINUX_H
#define CGATEHOUSELINUX_H

#include <stdint.h>
#include <sys/types.h>
#include <sys/socket.h>

int CGatehouseLinux_epoll_create1(int flags);
/// Adds, modifies or removes `fd` with `events`, carrying `data` as the event's u64.
int CGatehouseLinux_epoll_ctl(int epfd, int op, int fd, uint32_t events, uint64_t data);
/// Waits and copies up to `max` events into the parallel arrays `events` and `data`.
int CGatehouseLinux_epoll_wait(int epfd, uint32_t *events, uint64_t *data, int max, int timeout_ms);
int CGatehouseLinux_eventfd(unsigned int initval, int flags);
int CGatehouseLinux_accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags);
int CGatehouseLinux_fdatasync(int fd);
/// Names the calling thread (Linux keeps 15 bytes).
void CGatehouseLinux_set_thread_name(const char *name);

extern const int CGatehouseLinux_EPOLL_CTL_ADD;
extern const int CGatehouseLinux_EPOLL_CTL_MOD;
extern const int CGatehouseLinux_EPOLL_CTL_DEL;
extern const uint32_t CGatehouseLinux_EPOLLIN;
extern const uint32_t CGatehouseLinux_EPOLLOUT;
extern const uint32_t CGatehouseLinux_EPOLLERR;
extern const uint32_t CGatehouseLinux_EPOLLHUP;
extern const uint32_t CGatehouseLinux_EPOLLRDHUP;
extern const uint32_t CGatehouseLinux_EPOLLEXCLUSIVE;
extern const int CGatehouseLinux_EPOLL_CLOEXEC;
extern const int CGatehouseLinux_EFD_NONBLOCK;
extern const int CGatehouseLinux_EFD_CLOEXEC;
extern const int CGatehouseLinux_SOCK_NONBLOCK;
extern const int CGatehouseLinux_SOCK_CLOEXEC;

#endif
