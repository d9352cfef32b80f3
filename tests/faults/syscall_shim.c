/*
 * System-call fault injection for the libevent backend: an LD_PRELOAD shim
 * that makes chosen socket calls fail as the kernel would, so the tests can
 * check what a user sees when accept runs out of descriptors, a send hits a
 * reset peer or a connect fails after EINPROGRESS.
 *
 * Rules: "CALL:ERRNO:COUNT:PORT[;...]", from the environment variable
 * RS_SYSCALL_FAULTS when the shim loads, or from rs_fault_shim_arm() (found
 * with dlsym) at any time. The next COUNT calls of CALL on a socket whose
 * port is PORT (0: any) fail with ERRNO:
 *   accept      accept/accept4 on the listener bound to PORT: -1 with ERRNO
 *   sendmsg     sendmsg on the socket whose local port is PORT: -1 with ERRNO
 *   send        send, likewise (datagrams)
 *   connect     connect to PORT: the real connect starts, the call returns
 *               -1/EINPROGRESS, and the socket's next getsockopt(SO_ERROR)
 *               reports ERRNO
 *   wait        epoll_wait (libevent's poller), PORT 0: -1 with ERRNO, at
 *               once, without waiting
 * The local port (not the peer's) selects sends, so the accepted side of a
 * faulty connection is not affected.
 *
 * Natively and without sanitizers only: ASan and TSan interpose the same
 * functions and expect to be first in the link order.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#if defined(__linux__)
#include <sys/epoll.h>
#define HAVE_EPOLL 1
#endif

enum fault_call { CALL_ACCEPT, CALL_SENDMSG, CALL_SEND, CALL_CONNECT, CALL_WAIT };

struct fault_rule {
    enum fault_call call;
    int err;
    long count;
    unsigned port;
};

#define MAX_RULES 16
#define MAX_FDS 65536

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct fault_rule rules[MAX_RULES];
static int rule_count;
static long injected;
/* Errors owed to getsockopt(SO_ERROR) after an injected connect, per fd. */
static int owed_so_error[MAX_FDS];

/* Exported for the tests (looked up with dlsym). */
int rs_fault_shim_arm(const char *spec);
long rs_fault_shim_injected(void);

static const struct {
    const char *name;
    int value;
} errnos[] = {
    {"EMFILE", EMFILE},
    {"ENFILE", ENFILE},
    {"EPIPE", EPIPE},
    {"ECONNRESET", ECONNRESET},
    {"EAGAIN", EAGAIN},
    {"ECONNREFUSED", ECONNREFUSED},
    {"ETIMEDOUT", ETIMEDOUT},
    {"ENETUNREACH", ENETUNREACH},
    {"EHOSTUNREACH", EHOSTUNREACH},
    {"ENOBUFS", ENOBUFS},
    {"ENOMEM", ENOMEM},
    {"ECONNABORTED", ECONNABORTED},
    {"EPROTO", EPROTO},
    {"EPERM", EPERM},
    {"ENETDOWN", ENETDOWN},
    {"EHOSTDOWN", EHOSTDOWN},
    {"ENOTCONN", ENOTCONN},
    {"EBADF", EBADF},
};

static const struct {
    const char *name;
    enum fault_call call;
} calls[] = {
    {"accept", CALL_ACCEPT},   {"sendmsg", CALL_SENDMSG}, {"send", CALL_SEND},
    {"connect", CALL_CONNECT}, {"wait", CALL_WAIT},
};

static int parse_rule(char *text, struct fault_rule *rule)
{
    char *fields[4];
    int n = 0;
    char *save = NULL;
    for (char *f = strtok_r(text, ":", &save); f && n < 4; f = strtok_r(NULL, ":", &save)) {
        fields[n++] = f;
    }
    if (n != 4) {
        return -1;
    }
    size_t i;
    for (i = 0; i < sizeof calls / sizeof calls[0] && strcmp(calls[i].name, fields[0]); i++) {
    }
    if (i == sizeof calls / sizeof calls[0]) {
        return -1;
    }
    rule->call = calls[i].call;
    for (i = 0; i < sizeof errnos / sizeof errnos[0] && strcmp(errnos[i].name, fields[1]); i++) {
    }
    if (i == sizeof errnos / sizeof errnos[0]) {
        return -1;
    }
    rule->err = errnos[i].value;
    rule->count = strtol(fields[2], NULL, 10);
    rule->port = (unsigned)strtoul(fields[3], NULL, 10);
    return rule->count > 0 && rule->port <= 65535 ? 0 : -1;
}

/* Replaces the rules; returns how many were read, or -1 (nothing changed)
 * if one is malformed. */
int rs_fault_shim_arm(const char *spec)
{
    struct fault_rule parsed[MAX_RULES];
    int n = 0;
    char *copy = strdup(spec ? spec : "");
    if (!copy) {
        return -1;
    }
    char *save = NULL;
    for (char *r = strtok_r(copy, ";", &save); r; r = strtok_r(NULL, ";", &save)) {
        if (n == MAX_RULES || parse_rule(r, &parsed[n]) != 0) {
            free(copy);
            return -1;
        }
        n++;
    }
    free(copy);
    pthread_mutex_lock(&lock);
    memcpy(rules, parsed, sizeof parsed[0] * (size_t)n);
    rule_count = n;
    pthread_mutex_unlock(&lock);
    return n;
}

long rs_fault_shim_injected(void)
{
    pthread_mutex_lock(&lock);
    long n = injected;
    pthread_mutex_unlock(&lock);
    return n;
}

__attribute__((constructor)) static void load_rules_from_environment(void)
{
    const char *spec = getenv("RS_SYSCALL_FAULTS");
    if (spec) {
        rs_fault_shim_arm(spec);
    }
}

static unsigned port_of(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET) {
        return ntohs(((const struct sockaddr_in *)(const void *)sa)->sin_port);
    }
    if (sa->sa_family == AF_INET6) {
        return ntohs(((const struct sockaddr_in6 *)(const void *)sa)->sin6_port);
    }
    return 0;
}

static unsigned local_port(int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    memset(&ss, 0, sizeof ss);
    if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0) {
        return 0;
    }
    return port_of((struct sockaddr *)&ss);
}

/* The errno to inject for this call on a socket at port, or 0. A rule
 * armed for port 0 matches every socket. */
static int take_fault(enum fault_call call, unsigned port)
{
    int err = 0;
    pthread_mutex_lock(&lock);
    for (int i = 0; i < rule_count; i++) {
        struct fault_rule *r = &rules[i];
        if (r->call == call && r->count > 0 && (r->port == 0 || r->port == port)) {
            r->count--;
            injected++;
            err = r->err;
            break;
        }
    }
    pthread_mutex_unlock(&lock);
    return err;
}

/* The next definitions of each call, resolved once; a data pointer is
 * copied into a function pointer with memcpy, the conversion ISO C allows.
 * The address parameters keep glibc's own types (transparent unions under
 * _GNU_SOURCE) so that the definitions match the declarations exactly. */
static int (*real_accept)(int, __SOCKADDR_ARG, socklen_t *);
static int (*real_accept4)(int, __SOCKADDR_ARG, socklen_t *, int);
static ssize_t (*real_sendmsg)(int, const struct msghdr *, int);
static ssize_t (*real_send)(int, const void *, size_t, int);
static int (*real_connect)(int, __CONST_SOCKADDR_ARG, socklen_t);
static int (*real_getsockopt)(int, int, int, void *, socklen_t *);
#if HAVE_EPOLL
static int (*real_epoll_wait)(int, struct epoll_event *, int, int);
#endif

#define RESOLVE(name)                                                                              \
    do {                                                                                           \
        if (!real_##name) {                                                                        \
            void *sym = dlsym(RTLD_NEXT, #name);                                                   \
            memcpy(&real_##name, &sym, sizeof sym);                                                \
        }                                                                                          \
    } while (0)

int accept(int fd, __SOCKADDR_ARG addr, socklen_t *len)
{
    RESOLVE(accept);
    int err = take_fault(CALL_ACCEPT, local_port(fd));
    if (err) {
        errno = err;
        return -1;
    }
    return real_accept(fd, addr, len);
}

int accept4(int fd, __SOCKADDR_ARG addr, socklen_t *len, int flags)
{
    RESOLVE(accept4);
    int err = take_fault(CALL_ACCEPT, local_port(fd));
    if (err) {
        errno = err;
        return -1;
    }
    return real_accept4(fd, addr, len, flags);
}

ssize_t sendmsg(int fd, const struct msghdr *msg, int flags)
{
    RESOLVE(sendmsg);
    int err = take_fault(CALL_SENDMSG, local_port(fd));
    if (err) {
        errno = err;
        return -1;
    }
    return real_sendmsg(fd, msg, flags);
}

ssize_t send(int fd, const void *buf, size_t len, int flags)
{
    RESOLVE(send);
    int err = take_fault(CALL_SEND, local_port(fd));
    if (err) {
        errno = err;
        return -1;
    }
    return real_send(fd, buf, len, flags);
}

int connect(int fd, __CONST_SOCKADDR_ARG addr, socklen_t len)
{
    RESOLVE(connect);
    const struct sockaddr *sa = addr.__sockaddr__;
    int err = fd >= 0 && fd < MAX_FDS && sa ? take_fault(CALL_CONNECT, port_of(sa)) : 0;
    int rc = real_connect(fd, addr, len);
    if (!err) {
        return rc;
    }
    if (rc == 0 || errno == EINPROGRESS) {
        /* Started for real: the error arrives the way a failed non-blocking
         * connect reports it, through SO_ERROR once the socket is writable. */
        pthread_mutex_lock(&lock);
        owed_so_error[fd] = err;
        pthread_mutex_unlock(&lock);
        errno = EINPROGRESS;
        return -1;
    }
    return rc;
}

int getsockopt(int fd, int level, int name, void *value, socklen_t *len)
{
    RESOLVE(getsockopt);
    int rc = real_getsockopt(fd, level, name, value, len);
    if (rc == 0 && level == SOL_SOCKET && name == SO_ERROR && fd >= 0 && fd < MAX_FDS &&
        *len >= sizeof(int)) {
        pthread_mutex_lock(&lock);
        int err = owed_so_error[fd];
        owed_so_error[fd] = 0;
        pthread_mutex_unlock(&lock);
        if (err) {
            *(int *)value = err;
        }
    }
    return rc;
}

#if HAVE_EPOLL
int epoll_wait(int epfd, struct epoll_event *events, int maxevents, int timeout)
{
    RESOLVE(epoll_wait);
    int err = take_fault(CALL_WAIT, 0);
    if (err) {
        errno = err;
        return -1;
    }
    return real_epoll_wait(epfd, events, maxevents, timeout);
}
#endif
