#define _GNU_SOURCE
#include "CGatehouseLinux.h"
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include <pthread.h>

int CGatehouseLinux_epoll_create1(int flags) { return epoll_create1(flags); }

int CGatehouseLinux_epoll_ctl(int epfd, int op, int fd, uint32_t events, uint64_t data) {
    struct epoll_event ev;
    ev.events = events;
    ev.data.u64 = data;
    return epoll_ctl(epfd, op, fd, &ev);
}

int CGatehouseLinux_epoll_wait(int epfd, uint32_t *events, uint64_t *data, int max, int timeout_ms) {
    struct epoll_event evs[256];
    if (max > 256) max = 256;
    int n = epoll_wait(epfd, evs, max, timeout_ms);
    for (int i = 0; i < n; i++) {
        events[i] = evs[i].events;
        data[i] = evs[i].data.u64;
    }
    return n;
}

int CGatehouseLinux_eventfd(unsigned int initval, int flags) { return eventfd(initval, flags); }

int CGatehouseLinux_accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags) {
    return accept4(fd, addr, len, flags);
}

int CGatehouseLinux_fdatasync(int fd) { return fdatasync(fd); }

void CGatehouseLinux_set_thread_name(const char *name) { pthread_setname_np(pthread_self(), name); }

const int CGatehouseLinux_EPOLL_CTL_ADD = EPOLL_CTL_ADD;
const int CGatehouseLinux_EPOLL_CTL_MOD = EPOLL_CTL_MOD;
const int CGatehouseLinux_EPOLL_CTL_DEL = EPOLL_CTL_DEL;
const uint32_t CGatehouseLinux_EPOLLIN = EPOLLIN;
const uint32_t CGatehouseLinux_EPOLLOUT = EPOLLOUT;
const uint32_t CGatehouseLinux_EPOLLERR = EPOLLERR;
const uint32_t CGatehouseLinux_EPOLLHUP = EPOLLHUP;
const uint32_t CGatehouseLinux_EPOLLRDHUP = EPOLLRDHUP;
const uint32_t CGatehouseLinux_EPOLLEXCLUSIVE = EPOLLEXCLUSIVE;
const int CGatehouseLinux_EPOLL_CLOEXEC = EPOLL_CLOEXEC;
const int CGatehouseLinux_EFD_NONBLOCK = EFD_NONBLOCK;
const int CGatehouseLinux_EFD_CLOEXEC = EFD_CLOEXEC;
const int CGatehouseLinux_SOCK_NONBLOCK = SOCK_NONBLOCK;
const int CGatehouseLinux_SOCK_CLOEXEC = SOCK_CLOEXEC;
