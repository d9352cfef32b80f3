/*
 * IOCP backend, fault injection for tests: makes chosen Winsock calls of the
 * socket code fail as Windows would, so that the tests can check what a user
 * sees when an accept runs out of socket handles, a send meets a reset peer
 * or a full system, or a connect fails after it started. It is the
 * counterpart of the LD_PRELOAD shim the libevent backend's tests use
 * (tests/faults/syscall_shim.c), which cannot interpose on a DLL's imports.
 *
 * A rule says: the next `count` calls of `call` on a socket whose port is
 * `port` (0: any) fail with `wsa_error`. The port is the listener's for an
 * accept, the sending socket's own for a send and the remote one for a
 * connect, so the other end of a faulty connection is not affected. With no
 * rule armed the check is one atomic load. The loop's wait
 * (GetQueuedCompletionStatusEx) can fail too, for every loop at once, and
 * rs_pipe_new's CreateNamedPipe can meet a name collision. The settings
 * tests change (read places, skip-on-success, a forced Winsock version,
 * base handles hidden from watches) live here too.
 *
 * Compiled into the test build of the library only: the call sites are
 * RS__TEST_HOOK(...) (common/test_hooks.h), nothing in the shipped library.
 */
#include "iocp_backend.h"

#include "../../common/atomics.h"
#include "../../common/thread.h"

#include <ws2tcpip.h>

struct fault_rule {
    int wsa_error;
    long count;
    uint16_t port;
};

static rs__mutex lock = RS__MUTEX_INIT;
static struct fault_rule rules[RS__IOCP_FAULT_CALLS];
/* Rules with calls left: the fast path's one load. */
static volatile long armed;
static volatile long injected;

void rs__iocp_test_inject_fault(enum rs__iocp_fault_call call, int wsa_error, long count,
                                uint16_t port)
{
    rs__mutex_lock(&lock);
    long delta = (count > 0) - (rules[call].count > 0);
    rules[call].wsa_error = wsa_error;
    rules[call].count = count > 0 ? count : 0;
    rules[call].port = port;
    rs__atomic_add(&armed, delta);
    rs__mutex_unlock(&lock);
}

void rs__iocp_test_clear_faults(void)
{
    for (int call = 0; call < RS__IOCP_FAULT_CALLS; call++) {
        rs__iocp_test_inject_fault((enum rs__iocp_fault_call)call, 0, 0, 0);
    }
}

long rs__iocp_test_faults_injected(void)
{
    return rs__atomic_load(&injected);
}

static uint16_t port_of(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET) {
        return ntohs(((const struct sockaddr_in *)sa)->sin_port);
    }
    if (sa->sa_family == AF_INET6) {
        return ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
    }
    return 0;
}

int rs__iocp_fault_take(enum rs__iocp_fault_call call, SOCKET local, const void *remote)
{
    if (rs__atomic_load(&armed) == 0) {
        return 0;
    }
    uint16_t port = 0;
    if (call == RS__IOCP_FAULT_WAIT) {
        /* A loop's wait has no socket: only rules for any port match. */
    } else if (remote) {
        port = port_of(remote);
    } else {
        SOCKADDR_STORAGE ss;
        int len = (int)sizeof ss;
        if (getsockname(local, (struct sockaddr *)&ss, &len) == 0) {
            port = port_of((const struct sockaddr *)&ss);
        }
    }
    int err = 0;
    rs__mutex_lock(&lock);
    struct fault_rule *rule = &rules[call];
    if (rule->count > 0 && (rule->port == 0 || rule->port == port)) {
        err = rule->wsa_error;
        if (--rule->count == 0) {
            rs__atomic_add(&armed, -1);
        }
        rs__atomic_add(&injected, 1);
    }
    rs__mutex_unlock(&lock);
    return err;
}

/* ---- named-pipe name collisions ---- */

static volatile long injected_collisions;

void rs__iocp_pipe_test_inject_collisions(long count)
{
    rs__atomic_store(&injected_collisions, count);
}

long rs__iocp_pipe_test_pending_collisions(void)
{
    return rs__atomic_load(&injected_collisions);
}

bool rs__iocp_pipe_take_collision(void)
{
    long n;
    do {
        n = rs__atomic_load(&injected_collisions);
        if (n <= 0) {
            return false;
        }
    } while (!rs__atomic_cas(&injected_collisions, n, n - 1));
    return true;
}

/* ---- settings the tests change ---- */

static volatile long read_places[2] = {RS__IOCP_BUFFERED_STREAMS, RS__IOCP_SMALL_BUFFERED_STREAMS};
static volatile long skip_disallowed;
static volatile long forced_version;

void rs__iocp_test_set_read_places(long large, long small)
{
    rs__atomic_store(&read_places[0], large);
    rs__atomic_store(&read_places[1], small);
}

long rs__iocp_read_places(int i)
{
    return rs__atomic_load(&read_places[i]);
}

void rs__iocp_test_allow_skip_on_success(bool allowed)
{
    rs__atomic_store(&skip_disallowed, allowed ? 0 : 1);
}

bool rs__iocp_skip_disallowed(void)
{
    return rs__atomic_load(&skip_disallowed) != 0;
}

void rs__winsock_test_force_version(WORD version)
{
    rs__atomic_store(&forced_version, (long)version);
}

WORD rs__winsock_forced_version(void)
{
    return (WORD)rs__atomic_load(&forced_version);
}

static volatile long hide_base_handle;

void rs__iocp_watch_test_hide_base_handle(bool hide)
{
    rs__atomic_store(&hide_base_handle, hide ? 1 : 0);
}

bool rs__iocp_watch_base_hidden(void)
{
    return rs__atomic_load(&hide_base_handle) != 0;
}
