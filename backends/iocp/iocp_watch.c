/*
 * IOCP backend: readiness watches through the AFD driver (W24), the
 * mechanism of libuv's uv_poll and of wepoll. Winsock has no readiness
 * call that completes into a port (WSAPoll and select block a thread;
 * WSAEventSelect signals an event), but the driver under every Microsoft
 * TCP/UDP socket, AFD, does: IOCTL_AFD_POLL, issued with
 * NtDeviceIoControlFile on a handle to \Device\Afd associated with the
 * loop's port, completes into that port when one of the asked conditions
 * holds on the socket named in its input (at once if it already holds).
 *
 * Per loop: one AFD handle, opened at the first watch, closed when the loop
 * is destroyed. Per watch: one poll in flight at most, re-armed after each
 * completion (so a condition that still holds is reported again: level-
 * triggered, as <reseau/watch.h> says), cancelled with CancelIoEx on a
 * change of events that needs a new poll and on stop. A stopped watch's
 * memory belongs to its poll until the poll's completion is dequeued (an
 * orphan of the loop: the loop's destroy waits for it).
 *
 * Declared here by hand, because no SDK header has them: IOCTL_AFD_POLL,
 * the AFD_POLL_* bits and the two structures of the poll's buffer, the same
 * declarations libuv and wepoll make (docs/windows.md). Their layout is
 * pinned below. NtCreateFile, NtDeviceIoControlFile, IO_STATUS_BLOCK,
 * UNICODE_STRING and OBJECT_ATTRIBUTES come from <winternl.h> and ntdll.
 */
#define WIN32_NO_STATUS
#include "iocp_backend.h"
#undef WIN32_NO_STATUS
#include <ntstatus.h>
#include <winternl.h>

#include "../../common/alloc.h"
#include "../../common/atomics.h"
#include "../../common/error.h"
#include "../../common/log.h"

#include <string.h>

/* ---- the AFD interface (as libuv's and wepoll's declarations) ---- */

#define IOCTL_AFD_POLL 0x00012024

#define AFD_POLL_RECEIVE 0x0001
#define AFD_POLL_SEND 0x0004
#define AFD_POLL_DISCONNECT 0x0008
#define AFD_POLL_ABORT 0x0010
#define AFD_POLL_LOCAL_CLOSE 0x0020
#define AFD_POLL_ACCEPT 0x0080
#define AFD_POLL_CONNECT_FAIL 0x0100

struct afd_poll_handle_info {
    HANDLE handle;   /* the socket's base handle */
    ULONG events;    /* in: the conditions asked; out: those that hold */
    NTSTATUS status; /* out */
};

struct afd_poll_info {
    LARGE_INTEGER timeout; /* INT64_MAX: none */
    ULONG handle_count;    /* in: 1; out: 1 if the handle's events are set */
    ULONG exclusive;       /* FALSE: other polls of the socket are left alone */
    struct afd_poll_handle_info handles[1];
};

_Static_assert(offsetof(struct afd_poll_handle_info, events) == sizeof(HANDLE),
               "AFD_POLL_HANDLE_INFO: Events follows the handle");
_Static_assert(sizeof(struct afd_poll_handle_info) == sizeof(HANDLE) + 8,
               "AFD_POLL_HANDLE_INFO: a handle and two 32-bit fields");
_Static_assert(offsetof(struct afd_poll_info, handle_count) == 8 &&
                   offsetof(struct afd_poll_info, exclusive) == 12 &&
                   offsetof(struct afd_poll_info, handles) == 16,
               "AFD_POLL_INFO: Timeout, NumberOfHandles, Exclusive, Handles");
/* The OVERLAPPED's Internal and InternalHigh are the IO_STATUS_BLOCK the
 * kernel writes (OVERLAPPED's documentation: "Internal: the status code",
 * "InternalHigh: the number of bytes"), which is how Win32 passes it to the
 * Nt calls. */
_Static_assert(offsetof(OVERLAPPED, Internal) == offsetof(IO_STATUS_BLOCK, Status) &&
                   offsetof(OVERLAPPED, InternalHigh) == offsetof(IO_STATUS_BLOCK, Information),
               "OVERLAPPED begins with an IO_STATUS_BLOCK");

/* ---- the loop's AFD handle ---- */

/* Any name under \Device\Afd opens the driver; with no extended attributes
 * the handle is no socket, only a channel to the driver for polls. */
static const WCHAR afd_name[] = L"\\Device\\Afd\\Reseau";

static int open_afd(rs_event_loop *loop, HANDLE *out)
{
    UNICODE_STRING name = {(USHORT)(sizeof afd_name - sizeof(WCHAR)), (USHORT)sizeof afd_name,
                           (PWSTR)afd_name};
    OBJECT_ATTRIBUTES attributes;
    InitializeObjectAttributes(&attributes, &name, 0, NULL, NULL);
    IO_STATUS_BLOCK iosb;
    HANDLE afd = NULL;
    NTSTATUS status = NtCreateFile(&afd, SYNCHRONIZE, &attributes, &iosb, NULL, 0,
                                   FILE_SHARE_READ | FILE_SHARE_WRITE, FILE_OPEN, 0, NULL, 0);
    if (!NT_SUCCESS(status)) {
        RS__LOG(RS_LOG_ERROR, "watch: opening the AFD driver failed: 0x%08lx",
                (unsigned long)status);
        return rs__raise(RS_ERROR_PLATFORM_NOT_SUPPORTED);
    }
    if (rs__iocp_associate(loop, afd) != 0) {
        CloseHandle(afd);
        return -1;
    }
    *out = afd;
    return 0;
}

/* ---- watches ---- */

struct iocp_watch {
    struct rs__iocp_op op; /* first: the completion's lpOverlapped */
    struct afd_poll_info info;
    rs_event_loop *loop;
    struct rs_watch *watch; /* NULL once stopped */
    HANDLE afd;
    HANDLE base;      /* the socket's base provider handle */
    ULONG polled;     /* the AFD events of the poll in flight */
    bool pending;     /* a poll is in flight */
    bool dispatching; /* its completion's report is on the stack */
    bool stopped;
    bool orphan; /* stopped with its poll in flight: counted by the loop */
    bool ended;  /* an error was reported: never re-armed */
};

static ULONG afd_events(unsigned events)
{
    if (!events) {
        return 0;
    }
    /* A reset, a failed connect and the socket's local close end every
     * watch, whatever it asked. */
    ULONG afd = AFD_POLL_ABORT | AFD_POLL_CONNECT_FAIL | AFD_POLL_LOCAL_CLOSE;
    if (events & RS_WATCH_READABLE) {
        afd |= AFD_POLL_RECEIVE | AFD_POLL_ACCEPT | AFD_POLL_DISCONNECT;
    }
    if (events & RS_WATCH_WRITABLE) {
        afd |= AFD_POLL_SEND;
    }
    return afd;
}

/* What poll(2) would report for the AFD events: a reset and a failed
 * connect are an error condition, readable and writable. */
static unsigned watch_events(ULONG afd)
{
    unsigned events = 0;
    if (afd & (AFD_POLL_RECEIVE | AFD_POLL_ACCEPT)) {
        events |= RS_WATCH_READABLE;
    }
    if (afd & AFD_POLL_DISCONNECT) {
        events |= RS_WATCH_READABLE | RS_WATCH_HANG_UP;
    }
    if (afd & AFD_POLL_ABORT) {
        events |= RS_WATCH_READABLE | RS_WATCH_WRITABLE | RS_WATCH_HANG_UP;
    }
    if (afd & AFD_POLL_CONNECT_FAIL) {
        events |= RS_WATCH_READABLE | RS_WATCH_WRITABLE;
    }
    if (afd & AFD_POLL_SEND) {
        events |= RS_WATCH_WRITABLE;
    }
    return events;
}

static void on_poll(rs_event_loop *loop, struct rs__iocp_op *op, uint32_t status, size_t bytes);

/* Issues the poll for the watch's events (none: nothing). Raises. */
static int arm(struct iocp_watch *iw)
{
    ULONG want = afd_events(iw->watch->events);
    if (!want) {
        return 0;
    }
    iw->info.timeout.QuadPart = INT64_MAX;
    iw->info.handle_count = 1;
    iw->info.exclusive = FALSE;
    iw->info.handles[0].handle = iw->base;
    iw->info.handles[0].events = want;
    iw->info.handles[0].status = 0;
    rs__iocp_op_init(&iw->op, on_poll, iw);
    /* ApcContext is what the completion packet carries as lpOverlapped. */
    NTSTATUS status = NtDeviceIoControlFile(iw->afd, NULL, NULL, &iw->op.overlapped,
                                            (PIO_STATUS_BLOCK)&iw->op.overlapped, IOCTL_AFD_POLL,
                                            &iw->info, sizeof iw->info, &iw->info, sizeof iw->info);
    /* Pending, or done at once: either way a packet comes (the AFD handle is
     * not in skip-on-success mode). An error status queues none. */
    if (status == STATUS_PENDING || NT_SUCCESS(status)) {
        iw->pending = true;
        iw->polled = want;
        return 0;
    }
    return rs__raise(rs__iocp_error_from_ntstatus((uint32_t)status));
}

static void release(struct iocp_watch *iw)
{
    if (iw->orphan) {
        rs__iocp_loop_orphans_add(iw->loop, -1);
    }
    rs__mem_release(iw);
}

/* The watch ended: reported once, never re-armed. */
static void end(struct iocp_watch *iw, int error)
{
    iw->ended = true;
    iw->dispatching = true;
    rs__watch_report(iw->watch, error, 0);
    iw->dispatching = false;
    if (iw->stopped) {
        release(iw);
    }
}

static void on_poll(rs_event_loop *loop, struct rs__iocp_op *op, uint32_t status, size_t bytes)
{
    (void)loop;
    (void)bytes;
    struct iocp_watch *iw = op->user_data;
    iw->pending = false;
    if (iw->stopped) {
        release(iw);
        return;
    }
    if (status == (uint32_t)STATUS_CANCELLED) {
        /* Cancelled for a change of events (the only cancel of a watch not
         * stopped): the poll for the new ones. */
        if (arm(iw) != 0) {
            end(iw, rs__last_error());
        }
        return;
    }
    if (status != 0) {
        end(iw, rs__iocp_error_from_ntstatus(status));
        return;
    }
    ULONG afd = iw->info.handle_count ? iw->info.handles[0].events : 0;
    if (afd & AFD_POLL_LOCAL_CLOSE) {
        /* The socket was closed while watched: no poll of it can follow. */
        end(iw, RS_ERROR_SOCKET_CLOSED);
        return;
    }
    iw->dispatching = true;
    rs__watch_report(iw->watch, 0, watch_events(afd));
    iw->dispatching = false;
    if (iw->stopped) {
        release(iw);
        return;
    }
    if (arm(iw) != 0) {
        end(iw, rs__last_error());
    }
}

/* The socket's base provider handle, which AFD knows. A layered service
 * provider wraps sockets in handles of its own; SIO_BASE_HANDLE is documented
 * to return the base handle under every layer, and SIO_BSP_HANDLE_POLL the
 * handle WSAPoll would use, which some layers pass through when they
 * intercept SIO_BASE_HANDLE. */
static int base_handle(SOCKET s, HANDLE *base)
{
    if (RS__TEST_HOOK(rs__iocp_watch_base_hidden())) {
        return -1;
    }
    SOCKET b = INVALID_SOCKET;
    DWORD bytes = 0;
    if (WSAIoctl(s, SIO_BASE_HANDLE, NULL, 0, &b, sizeof b, &bytes, NULL, NULL) == 0 &&
        b != INVALID_SOCKET) {
        *base = (HANDLE)b;
        return 0;
    }
    if (WSAIoctl(s, SIO_BSP_HANDLE_POLL, NULL, 0, &b, sizeof b, &bytes, NULL, NULL) == 0 &&
        b != INVALID_SOCKET) {
        *base = (HANDLE)b;
        return 0;
    }
    return -1;
}

int rs__backend_watch_init(struct rs_watch *w)
{
    SOCKET s = (SOCKET)w->socket;
    if (rs__os_socket_check_open(w->socket) != 0) {
        return -1;
    }
    HANDLE base;
    if (base_handle(s, &base) != 0) {
        RS__LOG(RS_LOG_ERROR,
                "watch: a layered service provider hides the base handle of socket %llu "
                "(SIO_BASE_HANDLE and SIO_BSP_HANDLE_POLL refused): AFD cannot poll it",
                (unsigned long long)s);
        return rs__raise(RS_ERROR_PLATFORM_NOT_SUPPORTED);
    }
    HANDLE *afd = rs__iocp_loop_afd(w->loop);
    if (!*afd && open_afd(w->loop, afd) != 0) {
        return -1;
    }
    struct iocp_watch *iw = rs__mem_calloc(1, sizeof *iw);
    if (!iw) {
        return -1;
    }
    iw->loop = w->loop;
    iw->watch = w;
    iw->afd = *afd;
    iw->base = base;
    w->impl = iw;
    return 0;
}

int rs__backend_watch_update(struct rs_watch *w)
{
    struct iocp_watch *iw = w->impl;
    if (iw->dispatching) {
        return 0; /* the completion re-arms for the new events after the report */
    }
    if (!iw->pending) {
        return arm(iw);
    }
    /* The poll in flight asks for all that is watched now: its report is
     * filtered by the watched events (common/watch.c). Otherwise one poll per
     * handle: cancel, and the cancellation's completion re-arms. */
    if ((afd_events(w->events) & ~iw->polled) == 0) {
        return 0;
    }
    if (!CancelIoEx(iw->afd, &iw->op.overlapped) && GetLastError() != ERROR_NOT_FOUND) {
        return rs__iocp_raise_win32(GetLastError());
    }
    return 0;
}

void rs__backend_watch_stop(struct rs_watch *w)
{
    struct iocp_watch *iw = w->impl;
    w->impl = NULL;
    iw->stopped = true;
    iw->watch = NULL;
    if (iw->dispatching) {
        return; /* the completion handler releases it after the report */
    }
    if (iw->pending) {
        /* The poll's OVERLAPPED and buffer are written until its completion
         * is dequeued: the memory waits for it (ERROR_NOT_FOUND: it
         * completed already and its packet is queued). */
        iw->orphan = true;
        rs__iocp_loop_orphans_add(iw->loop, 1);
        CancelIoEx(iw->afd, &iw->op.overlapped);
        return;
    }
    release(iw);
}
