/* LD_PRELOAD shim for bench/run.py --slow-sync: every fsync/fdatasync returns SLOW_SYNC_US
 * microseconds late, as on a USB stick, an SD card or a busy disk. Unlike a ptrace-based
 * injector it costs nothing on the other system calls, so a multi-threaded receiver is not
 * slowed by the measurement itself. Build: cc -shared -fPIC -O2 -o slow_sync.so slow_sync.c -ldl */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>
#include <time.h>

static void late(void) {
    const char *s = getenv("SLOW_SYNC_US");
    long us = s ? atol(s) : 0;
    if (us > 0) {
        struct timespec ts = {us / 1000000, (us % 1000000) * 1000};
        while (nanosleep(&ts, &ts) != 0) {
        }
    }
}

/* Each wrapper calls the real function, then waits. */
#define LATE(name)                                                   \
    int name(int fd) {                                               \
        static int (*real)(int);                                     \
        if (!real)                                                   \
            real = (int (*)(int))dlsym(RTLD_NEXT, #name);            \
        int r = real(fd);                                            \
        late();                                                      \
        return r;                                                    \
    }

LATE(fsync)
LATE(fdatasync)
