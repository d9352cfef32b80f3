/*
 * An LD_PRELOAD probe for test_write_size: records the largest byte count
 * offered to one write(2) on a pipe and to one sendmsg(2) on a stream
 * socket, then makes the real call. memcheck checks every byte offered on
 * every call, so an unbounded count makes a large transfer quadratic under
 * valgrind; the test asserts the bound without needing valgrind.
 *
 * Natively and without sanitizers only (ASan and TSan interpose the same
 * functions and expect to be first in the link order).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static size_t max_pipe_write;
static size_t max_stream_sendmsg;

/* Exported for the test (looked up with dlsym). */
void rs_write_probe_reset(void);
size_t rs_write_probe_max_pipe_write(void);
size_t rs_write_probe_max_stream_sendmsg(void);

void rs_write_probe_reset(void)
{
    pthread_mutex_lock(&lock);
    max_pipe_write = 0;
    max_stream_sendmsg = 0;
    pthread_mutex_unlock(&lock);
}

size_t rs_write_probe_max_pipe_write(void)
{
    pthread_mutex_lock(&lock);
    size_t v = max_pipe_write;
    pthread_mutex_unlock(&lock);
    return v;
}

size_t rs_write_probe_max_stream_sendmsg(void)
{
    pthread_mutex_lock(&lock);
    size_t v = max_stream_sendmsg;
    pthread_mutex_unlock(&lock);
    return v;
}

static void note(size_t *max, size_t len)
{
    pthread_mutex_lock(&lock);
    if (len > *max) {
        *max = len;
    }
    pthread_mutex_unlock(&lock);
}

ssize_t write(int fd, const void *buf, size_t len)
{
    static ssize_t (*real_write)(int, const void *, size_t);
    if (!real_write) {
        *(void **)&real_write = dlsym(RTLD_NEXT, "write");
    }
    int saved = errno;
    struct stat st;
    if (fstat(fd, &st) == 0 && S_ISFIFO(st.st_mode)) {
        note(&max_pipe_write, len);
    }
    errno = saved;
    return real_write(fd, buf, len);
}

ssize_t sendmsg(int fd, const struct msghdr *msg, int flags)
{
    static ssize_t (*real_sendmsg)(int, const struct msghdr *, int);
    if (!real_sendmsg) {
        *(void **)&real_sendmsg = dlsym(RTLD_NEXT, "sendmsg");
    }
    int saved = errno;
    int type = 0;
    socklen_t type_len = sizeof type;
    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &type_len) == 0 && type == SOCK_STREAM) {
        size_t len = 0;
        for (size_t i = 0; i < (size_t)msg->msg_iovlen; i++) {
            len += msg->msg_iov[i].iov_len;
        }
        note(&max_stream_sendmsg, len);
    }
    errno = saved;
    return real_sendmsg(fd, msg, flags);
}
