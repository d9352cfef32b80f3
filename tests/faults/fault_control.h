/*
 * System-call fault injection as the fault tests see it, whatever the
 * backend: the LD_PRELOAD shim on libevent (fault_control_shim.c), the IOCP
 * backend's own hook on Windows (fault_control_iocp.c). Calls and errors are
 * named as on POSIX; each side maps them to its own.
 */
#ifndef RS_TEST_FAULT_CONTROL_H
#define RS_TEST_FAULT_CONTROL_H

#include <stdbool.h>
#include <stdint.h>

/* Whether faults can be injected in this process; if not, *reason says why. */
bool fault_control_available(const char **reason);
/* Whether this side can inject err (a POSIX errno name) into call; if not,
 * *reason says why. */
bool fault_control_supports(const char *call, const char *err, const char **reason);
/* The next `count` calls of call ("accept": the listener on port; "sendmsg":
 * a stream send from the socket bound to port; "connect": a connect to
 * port, which starts and then fails; "wait": the poller's wait of every
 * loop, port 0) fail with err. An accept error of the pending connection
 * (ECONNABORTED, ECONNRESET, ...) fails AcceptEx on IOCP, one of the
 * listener's resources (EMFILE, ENOBUFS) the socket made for it. */
void fault_control_arm(const char *call, const char *err, long count, uint32_t port);
void fault_control_disarm(void);
/* Faults injected so far. */
long fault_control_injected(void);

#endif
