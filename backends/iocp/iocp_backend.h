/* Internal to the IOCP backend (and its white-box tests). */
#ifndef RS_IOCP_BACKEND_H
#define RS_IOCP_BACKEND_H

/* <winsock2.h> must come before <windows.h>, which would otherwise pull in
 * the old <winsock.h>. */
#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
#include <winsock2.h>
#include <windows.h>
#include <mswsock.h>

#include "../../common/backend.h"
#include "../../common/event_loop_impl.h"
#include "../../common/test_hooks.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- overlapped operations ---- */

struct rs__iocp_op;

/*
 * Called on the loop thread with the completion exactly as
 * GetQueuedCompletionStatusEx dequeued it: status is the NTSTATUS of the
 * OVERLAPPED_ENTRY's Internal field (0 = success; map it with
 * rs__iocp_error_from_ntstatus) and bytes its dwNumberOfBytesTransferred.
 */
typedef void(rs__iocp_op_fn)(rs_event_loop *loop, struct rs__iocp_op *op, uint32_t status,
                             size_t bytes);

/*
 * One overlapped operation. The OVERLAPPED is the first member, so the
 * lpOverlapped of a completion is the op itself. The op's memory must stay
 * valid until its completion has been dispatched: the kernel writes into the
 * OVERLAPPED until then, even after the handle is closed.
 */
struct rs__iocp_op {
    OVERLAPPED overlapped;
    rs__iocp_op_fn *on_completion;
    void *user_data;
    /* Completed inline, waiting in the loop's list (rs__iocp_complete_inline). */
    struct rs__iocp_op *inline_next;
    DWORD inline_bytes;
};

/* Zeroes the OVERLAPPED (required before every new operation) and sets the
 * callback. */
void rs__iocp_op_init(struct rs__iocp_op *op, rs__iocp_op_fn *fn, void *user_data);

/*
 * Associates an overlapped handle with the loop's completion port, for the
 * handle's whole life: completions of its overlapped operations are then
 * dispatched by that loop. Any thread. Errors:
 * RS_ERROR_EVENT_LOOP_ALREADY_ASSIGNED (the handle is already associated, with
 * this loop or another), RS_ERROR_INVALID_ARGUMENT (NULL or
 * INVALID_HANDLE_VALUE), or the mapped Win32 error.
 */
int rs__iocp_associate(rs_event_loop *loop, HANDLE handle);

/* Queues a completion for op on the loop's port, as if an associated
 * handle's operation had completed (the packet's status is 0 and its byte
 * count 0). Any thread. */
int rs__iocp_post_completion(rs_event_loop *loop, struct rs__iocp_op *op);

/*
 * Puts a handle associated with a port in FILE_SKIP_COMPLETION_PORT_ON_SUCCESS
 * | FILE_SKIP_SET_EVENT_ON_HANDLE mode: an overlapped call on it that succeeds
 * at once then queues no packet, and its result must be handled by the caller
 * (rs__iocp_complete_inline). Returns whether the mode is on; when it is not
 * (a socket while a non-IFS provider is installed, or the call failed),
 * every call that does not fail at once still queues its packet. is_socket:
 * the handle is a socket (pipes are not subject to the provider rule).
 */
bool rs__iocp_skip_on_success(HANDLE handle, bool is_socket);

/*
 * Hands the loop an operation whose overlapped call succeeded at once on a
 * handle in skip-on-success mode (no packet will come): the loop calls op's
 * on_completion with status 0 and `bytes` from its next wait, as for a
 * dequeued packet, and never inside the call that started the operation. On
 * the loop thread this costs no system call; from another thread (a pipe's
 * first read) a packet is posted instead.
 */
void rs__iocp_complete_inline(rs_event_loop *loop, struct rs__iocp_op *op, DWORD bytes);

/*
 * Real-buffer reads (W5): a TCP socket that reads into a buffer of its own
 * takes a place of its loop: one of RS__IOCP_BUFFERED_STREAMS large places
 * (RS__IOCP_STREAM_READ_BUF), else one of RS__IOCP_SMALL_BUFFERED_STREAMS
 * small ones (RS__IOCP_STREAM_SMALL_BUF); beyond both, sockets fall back to
 * zero-byte readiness reads, which pin no memory while idle. Any thread.
 */
#define RS__IOCP_BUFFERED_STREAMS 50
#define RS__IOCP_SMALL_BUFFERED_STREAMS 1024
enum rs__iocp_read_tier {
    RS__IOCP_READ_ZERO_BYTE = 0,
    RS__IOCP_READ_LARGE,
    RS__IOCP_READ_SMALL,
};
enum rs__iocp_read_tier rs__iocp_loop_take_read_buffer(rs_event_loop *loop);
void rs__iocp_loop_return_read_buffer(rs_event_loop *loop, enum rs__iocp_read_tier tier);
/* Tests (iocp_faults.c, test build only): the number of large and small
 * places per loop (for loops whose sockets take places from now on). */
void rs__iocp_test_set_read_places(long large, long small);
/* The places of tier i (0 large, 1 small) the tests set. */
long rs__iocp_read_places(int i);

/* The loop's completion port. */
HANDLE rs__iocp_loop_port(rs_event_loop *loop);

/* The loop's handle to the AFD driver (readiness watches, iocp_watch.c):
 * NULL until iocp_watch.c opens it; the loop closes it when destroyed,
 * after every orphan's completion. Loop thread. */
HANDLE *rs__iocp_loop_afd(rs_event_loop *loop);

/* For tests (iocp_faults.c, test build only): while on, watches fail as if
 * a layered service provider hid every socket's base handle
 * (SIO_BASE_HANDLE and SIO_BSP_HANDLE_POLL refused). Any thread. */
void rs__iocp_watch_test_hide_base_handle(bool hide);
/* True while the tests hide the base handles. */
bool rs__iocp_watch_base_hidden(void);

/* Counts operations whose owner is gone but whose completion is still to be
 * dequeued (orphans free themselves when it arrives). A loop being destroyed
 * keeps dequeuing, for a bounded time, until its count is zero. Any thread. */
void rs__iocp_loop_orphans_add(rs_event_loop *loop, long delta);

/* ---- Winsock (winsock_init.c) ---- */

/* Extension functions, loaded by rs__backend_library_init; valid while the
 * library is initialised. */
/* The extension functions of one address family: they belong to the
 * provider of the socket they were loaded from, and a provider may be
 * installed for one family only (a layered provider on IPv4, say), so each
 * family has its own set, loaded from a socket of that family. */
struct rs__winsock_ext {
    LPFN_ACCEPTEX accept_ex;
    LPFN_CONNECTEX connect_ex;
    LPFN_GETACCEPTEXSOCKADDRS get_accept_ex_sockaddrs;
    int family; /* AF_INET or AF_INET6: the socket they were loaded from */
};
extern struct rs__winsock_ext rs__winsock_ipv4;
extern struct rs__winsock_ext rs__winsock_ipv6;
/* The set for a socket of domain (IPv4 or IPv6). */
static inline const struct rs__winsock_ext *rs__winsock_ext_for(rs_socket_domain domain)
{
    return domain == RS_SOCKET_IPV6 ? &rs__winsock_ipv6 : &rs__winsock_ipv4;
}

/* Whether sockets may use FILE_SKIP_COMPLETION_PORT_ON_SUCCESS (every TCP and
 * UDP provider installed returns IFS handles); set by the library's init. */
bool rs__winsock_skip_on_success_allowed(void);
/* For tests (iocp_faults.c, test build only): false turns skip-on-success
 * off for handles associated from now on (sockets and pipes), so that every
 * completion comes as a packet; true restores the default. Any thread. */
void rs__iocp_test_allow_skip_on_success(bool allowed);
/* True while the tests turned skip-on-success off. */
bool rs__iocp_skip_disallowed(void);

/* For tests: successful WSAStartup calls and WSACleanup calls the library has
 * made in this process. Any thread. */
long rs__winsock_startup_count(void);
long rs__winsock_cleanup_count(void);
/* For tests (iocp_faults.c, test build only): makes the next inits treat
 * the negotiated Winsock version as `version` (0 turns this off), to run the
 * version-check failure path. Call it while the library is not initialised. */
void rs__winsock_test_force_version(WORD version);
/* The version the tests forced, or 0. */
WORD rs__winsock_forced_version(void);

/* ---- pipes (iocp_pipe.c) ---- */

/* Names rs_pipe_new tries (each with a fresh rs_pipe_unique_name) before it
 * fails with RS_ERROR_SYS_CALL_FAILURE. */
#define RS__IOCP_PIPE_NAME_TRIES 16

/* ---- named pipes' security (iocp_security.c) ---- */

/* Builds (library init) and frees (library clean-up) the security
 * descriptor of the named pipes reseau creates: a DACL with the process's
 * user, LocalSystem and Administrators only (W22). */
int rs__iocp_security_init(void);
void rs__iocp_security_clean_up(void);
/* The attributes to create every named pipe with (not inheritable). */
SECURITY_ATTRIBUTES *rs__iocp_pipe_security(void);
/* For tests (test build only): the read end's pipe handle. */
HANDLE rs__iocp_pipe_test_read_handle(const rs_pipe_read_end *read_end);

/* ---- fault injection for tests (iocp_faults.c, test build only) ----
 * Every call site is RS__TEST_HOOK(...) (common/test_hooks.h): the shipped
 * library compiles none of them. */

/* For tests: the next `count` CreateNamedPipe calls of rs_pipe_new fail as a
 * name collision (ERROR_ACCESS_DENIED), which Windows reports under
 * FILE_FLAG_FIRST_PIPE_INSTANCE when the name exists and Wine never does.
 * 0 turns it off. Any thread. */
void rs__iocp_pipe_test_inject_collisions(long count);
/* Injected collisions not yet consumed. */
long rs__iocp_pipe_test_pending_collisions(void);
/* For the pipe code, before CreateNamedPipe: true to fail it as a collision. */
bool rs__iocp_pipe_take_collision(void);

/* Winsock calls of the socket code a test can make fail. */
enum rs__iocp_fault_call {
    RS__IOCP_FAULT_ACCEPT,  /* creating a listener's next accept socket */
    RS__IOCP_FAULT_SEND,    /* WSASend, failing at once */
    RS__IOCP_FAULT_CONNECT, /* ConnectEx, completing with the error */
    /* AcceptEx, completing with the error (a Win32 code) without being
     * called: a pending connection that failed before its accept. */
    RS__IOCP_FAULT_ACCEPT_EX,
    /* GetQueuedCompletionStatusEx, failing with the error (a Win32 code). */
    RS__IOCP_FAULT_WAIT,
    RS__IOCP_FAULT_CALLS
};

/* For RS__IOCP_FAULT_CONNECT: ConnectEx is not called and the connect stays
 * pending, as a connect to a host that drops SYNs does, until the socket is
 * closed (its timeout, a destroy, its loop's end). Windows refuses a connect
 * to a full backlog where Linux and Wine drop it, so a test that needs a
 * pending connect uses this there. */
#define RS__IOCP_FAULT_STALL (-1)

/* Arms a rule: the next `count` calls of `call` on a socket whose port is
 * `port` (0: any; the listener's, the sender's own, the remote one for a
 * connect) fail with `wsa_error`. Replaces the call's rule; count 0 disarms
 * it. Any thread. */
void rs__iocp_test_inject_fault(enum rs__iocp_fault_call call, int wsa_error, long count,
                                uint16_t port);
/* Disarms every rule. */
void rs__iocp_test_clear_faults(void);
/* Faults injected since the process started. */
long rs__iocp_test_faults_injected(void);
/* For the socket code, before the real call: the Winsock error to fail it
 * with, or 0. remote (a sockaddr) gives the port of a connect; otherwise
 * the port is local's own. */
int rs__iocp_fault_take(enum rs__iocp_fault_call call, SOCKET local, const void *remote);

/* ---- errors (iocp_errors.c): the backend's one OS code -> RS_ERROR_* table ---- */

/* Win32 error codes (GetLastError). Winsock codes are Win32 codes too. */
int rs__iocp_error_from_win32(DWORD err);
/* Winsock error codes (WSAGetLastError, or WSAStartup's result). */
int rs__iocp_error_from_wsa(int err);
/* NTSTATUS values, as found in a completion's status; a Win32 code wrapped
 * in one (NTSTATUS_FROM_WIN32) maps as that Win32 code. */
int rs__iocp_error_from_ntstatus(uint32_t status);
/* As rs__iocp_error_from_ntstatus, for a TCP or UDP socket's completion
 * (STATUS_PIPE_DISCONNECTED is a send after shutdown there, not a pipe). */
int rs__iocp_error_from_socket_ntstatus(uint32_t status);
/* Named pipes used as LOCAL sockets: CreateNamedPipe's errors (a taken
 * name is RS_ERROR_ADDRESS_IN_USE), CreateFile's on a pipe name (no such
 * pipe is RS_ERROR_CONNECTION_REFUSED), and a mapped code as a socket
 * reports it (a broken pipe is RS_ERROR_SOCKET_CLOSED). */
int rs__iocp_error_from_pipe_create(DWORD err);
int rs__iocp_error_from_pipe_open(DWORD err);
int rs__iocp_error_for_pipe_socket(int code);
/* A mapped code as a UDP socket reports it (an ICMP port unreachable is
 * RS_ERROR_CONNECTION_REFUSED). */
int rs__iocp_error_for_datagram(int code);
/* Raise the mapped code and return -1. */
int rs__iocp_raise_win32(DWORD err);
int rs__iocp_raise_wsa(int err);

/* Every mapping above is a table of rows: an OS code and its RS_ERROR_*
 * code. A code without a row is logged (RS_LOG_WARN, with its number) and
 * gives RS_ERROR_SYS_CALL_FAILURE. */
struct rs__iocp_error_row {
    uint32_t os;
    int code;
};
enum rs__iocp_error_table {
    RS__IOCP_ERRORS_WIN32,           /* Win32 and Winsock codes */
    RS__IOCP_ERRORS_NTSTATUS,        /* completion statuses */
    RS__IOCP_ERRORS_SOCKET_NTSTATUS, /* a socket's statuses, before NTSTATUS */
    RS__IOCP_ERRORS_PIPE_CREATE,     /* CreateNamedPipe, before WIN32 */
    RS__IOCP_ERRORS_PIPE_OPEN,       /* CreateFile on a pipe name, before WIN32 */
};
/* The rows of a table, for the test suite, which checks every one. */
const struct rs__iocp_error_row *rs__iocp_error_table(enum rs__iocp_error_table which,
                                                      size_t *count);

#endif
