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

static int wsa_error_of(const char *err)
{
    for (size_t i = 0; i < sizeof errors / sizeof errors[0]; i++) {
        if (strcmp(errors[i].name, err) == 0) {
            return errors[i].wsa_error;
        }
    }
    return 0;
}

static enum rs__iocp_fault_call call_of(const char *call)
{
    if (strcmp(call, "accept") == 0) {
        return RS__IOCP_FAULT_ACCEPT;
    }
    if (strcmp(call, "connect") == 0) {
        return RS__IOCP_FAULT_CONNECT;
    }
    assert_true(strcmp(call, "sendmsg") == 0 || strcmp(call, "send") == 0);
    return RS__IOCP_FAULT_SEND;
}

bool fault_control_available(const char **reason)
{
    (void)reason;
    return true;
}

bool fault_control_supports(const char *call, const char *err, const char **reason)
{
    (void)call;
    if (strcmp(err, "ENFILE") == 0) {
        *reason = "Winsock has no system-wide descriptor-table error: running out of socket "
                  "handles is WSAEMFILE, which the EMFILE test covers";
        return false;
    }
    return wsa_error_of(err) != 0;
}

void fault_control_arm(const char *call, const char *err, long count, uint32_t port)
{
    int wsa_error = wsa_error_of(err);
    assert_int_not_equal(wsa_error, 0);
    rs__iocp_test_inject_fault(call_of(call), wsa_error, count, (uint16_t)port);
}

void fault_control_disarm(void)
{
    rs__iocp_test_clear_faults();
}

long fault_control_injected(void)
{
    return rs__iocp_test_faults_injected();
}
