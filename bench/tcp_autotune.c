/* LD_PRELOAD shim for the shaped benchmark's relay (`--shaped-relay tcp-autotuned` or
 * `tls-autotuned`, bench/shaped_link.py): a TCP socket's SO_RCVBUF and SO_SNDBUF requests are
 * accepted and ignored, so the kernel keeps autotuning its buffers. coturn sizes every TCP and
 * TLS client socket to a fixed 64 KiB, which caps TURN over TCP at about one such window per
 * round trip on a long path; under this shim the same coturn shows what the client side
 * carries when the server's buffers are not the limit.
 * Build: cc -shared -fPIC -O2 -o tcp_autotune.so tcp_autotune.c -ldl */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <sys/socket.h>

int setsockopt(int fd, int level, int name, const void *value, socklen_t len) {
    static int (*real)(int, int, int, const void *, socklen_t);
    if (!real)
        real = (int (*)(int, int, int, const void *, socklen_t))dlsym(RTLD_NEXT, "setsockopt");
    if (level == SOL_SOCKET && (name == SO_RCVBUF || name == SO_SNDBUF)) {
        int type = 0;
        socklen_t tl = sizeof type;
        if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tl) == 0 && type == SOCK_STREAM)
            return 0;
    }
    return real(fd, level, name, value, len);
}
