/*
 * Fault control through the IOCP backend's hook (backends/iocp/iocp_faults.c):
 * a DLL's imports cannot be interposed as LD_PRELOAD does, so the socket
 * code asks the hook before each call a test may fail. POSIX names map to
 * what Windows reports in the same situation.
 */
#include "fault_control.h"

#include "../../backends/iocp/iocp_backend.h"
#include "../rs_test.h"

#include <string.h>

static const struct {
    const char *name;
    int wsa_error;
} errors[] = {
    /* Out of socket handles: WSASocket, which makes the accept socket
     * before AcceptEx, fails as accept(2) does with EMFILE. */
    {"EMFILE", WSAEMFILE},
    {"ENOBUFS", WSAENOBUFS},
    /* A send after the sending side was shut down. */
    {"EPIPE", WSAESHUTDOWN},
    {"ECONNRESET", WSAECONNRESET},
    /* On an overlapped socket: too many outstanding overlapped requests
     * (WSASend's documentation), the nearest thing to a full buffer. */
    {"EAGAIN", WSAEWOULDBLOCK},
    {"ECONNREFUSED", WSAECONNREFUSED},
    {"ETIMEDOUT", WSAETIMEDOUT},
    {"ENETUNREACH", WSAENETUNREACH},
    {"EHOSTUNREACH", WSAEHOSTUNREACH},
};

/* What a failed AcceptEx reports when its pending connection failed before
 * the accept (docs/windows.md W18): a client's reset is
 * ERROR_NETNAME_DELETED on Windows and WSAENOTCONN under Wine. */
static const struct {
    const char *name;
    int error;
} accept_ex_errors[] = {
    {"ECONNRESET", ERROR_NETNAME_DELETED},
    {"ECONNABORTED", WSAECONNABORTED},
    {"ENOTCONN", WSAENOTCONN},
    {"ENETDOWN", WSAENETDOWN},
    {"EHOSTUNREACH", WSAEHOSTUNREACH},
    {"ETIMEDOUT", WSAETIMEDOUT},
};

/* The loop's wait: GetQueuedCompletionStatusEx on a port that is not one
 * fails as epoll_wait on a descriptor that is not an epoll one. */
static const struct {
    const char *name;
    int error;
} wait_errors[] = {
    {"EBADF", ERROR_INVALID_HANDLE},
    {"ENOMEM", ERROR_NOT_ENOUGH_MEMORY},
};

#define LOOK_UP(table, err)                                                                        \
    do {                                                                                           \
        for (size_t i_ = 0; i_ < sizeof table / sizeof table[0]; i_++) {                           \
            if (strcmp(table[i_].name, (err)) == 0) {                                              \
                return table[i_].error;                                                            \
            }                                                                                      \
        }                                                                                          \
    } while (0)

/* The hook's call for call and err, and the error to inject (0: none). */
static int fault_of(const char *call, const char *err, enum rs__iocp_fault_call *hook)
{
    if (strcmp(call, "wait") == 0) {
        *hook = RS__IOCP_FAULT_WAIT;
        LOOK_UP(wait_errors, err);
        return 0;
    }
    if (strcmp(call, "accept") == 0) {
        *hook = RS__IOCP_FAULT_ACCEPT_EX;
        LOOK_UP(accept_ex_errors, err);
        *hook = RS__IOCP_FAULT_ACCEPT;
    } else if (strcmp(call, "connect") == 0) {
        *hook = RS__IOCP_FAULT_CONNECT;
    } else {
        assert_true(strcmp(call, "sendmsg") == 0 || strcmp(call, "send") == 0);
        *hook = RS__IOCP_FAULT_SEND;
    }
    for (size_t i = 0; i < sizeof errors / sizeof errors[0]; i++) {
        if (strcmp(errors[i].name, err) == 0) {
            return errors[i].wsa_error;
        }
    }
    return 0;
}

bool fault_control_available(const char **reason)
{
    (void)reason;
    return true;
}

bool fault_control_supports(const char *call, const char *err, const char **reason)
{
    if (strcmp(err, "ENFILE") == 0) {
        *reason = "Winsock has no system-wide descriptor-table error: running out of socket "
                  "handles is WSAEMFILE, which the EMFILE test covers";
        return false;
    }
    enum rs__iocp_fault_call hook;
    if (fault_of(call, err, &hook) == 0) {
        *reason = "Windows reports no such error for this call";
        return false;
    }
    return true;
}

void fault_control_arm(const char *call, const char *err, long count, uint32_t port)
{
    enum rs__iocp_fault_call hook;
    int error = fault_of(call, err, &hook);
    assert_int_not_equal(error, 0);
    rs__iocp_test_inject_fault(hook, error, count, (uint16_t)port);
}

void fault_control_disarm(void)
{
    rs__iocp_test_clear_faults();
}

long fault_control_injected(void)
{
    return rs__iocp_test_faults_injected();
}
