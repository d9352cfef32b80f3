/*
 * IOCP backend: one I/O completion port per loop. Handles are associated with
 * the port once, for life; their overlapped operations complete into it and
 * the loop thread dequeues the completions in batches and calls each
 * operation's callback. Timers live in the common scheduler: the wait only
 * sleeps until the next deadline. A cross-thread wake-up is one packet posted
 * to the port (common/ posts one only when the loop may be waiting).
 *
 * Handles in FILE_SKIP_COMPLETION_PORT_ON_SUCCESS mode queue no packet for a
 * call that succeeds at once: such operations wait in an in-process list and
 * the next wait dispatches them exactly as if they had been dequeued, so the
 * result still reaches its handler once, from the loop, never inside the API
 * call that started it (W13), and costs no system call.
 */
#include "iocp_backend.h"

#include "../../common/alloc.h"
#include "../../common/atomics.h"
#include "../../common/clock.h"
#include "../../common/error.h"
#include "../../common/log.h"

#include <string.h>

/* The completion's lpOverlapped is cast back to the op. */
_Static_assert(offsetof(struct rs__iocp_op, overlapped) == 0,
               "the OVERLAPPED must be the first member of rs__iocp_op");

/* Completion keys: the port only ever carries I/O completions of associated
 * handles and the loop's own wake-up packets. */
enum completion_key {
    KEY_IO = 0,
    KEY_WAKE = 1,
};

/* Completions dequeued per GetQueuedCompletionStatusEx call; more wait for
 * the next iteration. */
enum { BATCH = 64 };

/* Waits in a row that only run inline completions before the port is polled
 * (without blocking) anyway: a stream of operations that keep succeeding at
 * once must not starve the completions of the others. */
enum { INLINE_STREAK = 16 };

/* How long a loop being destroyed waits for its orphans' completions:
 * cancellations complete promptly, so this only bounds a misbehaving driver;
 * generous, because a completion missed here is a callback lost (HO5), and
 * on a loaded machine (or under Wine, where each cancellation is a
 * wineserver request) the last ones can take seconds. */
#define ORPHAN_DRAIN_NS (30000ull * 1000000ull)

/* A wait that fails is retried after a pause of 10, 20, 40, 80, then 100 ms
 * while it keeps failing (never longer than the wait asked for). */
enum { WAIT_RETRY_MIN_MS = 10, WAIT_RETRY_MAX_MS = 100 };
/* While it keeps failing, every this many failures are logged again. */
enum { WAIT_FAILURE_LOG_EVERY = 100 };

struct iocp_loop {
    HANDLE port;
    uint32_t wait_failures; /* in a row (loop thread) */
    volatile long orphans;
    volatile long buffered_streams[2]; /* places taken: large, small (W5) */
    /* Operations that completed inline, oldest first (loop thread). */
    struct rs__iocp_op *inline_head;
    struct rs__iocp_op *inline_tail;
    int inline_streak;
    /* The loop's handle to the AFD driver, for readiness watches
     * (iocp_watch.c); NULL until the first watch. */
    HANDLE afd;
};

void rs__iocp_op_init(struct rs__iocp_op *op, rs__iocp_op_fn *fn, void *user_data)
{
    memset(&op->overlapped, 0, sizeof op->overlapped);
    op->on_completion = fn;
    op->user_data = user_data;
}

HANDLE rs__iocp_loop_port(rs_event_loop *loop)
{
    struct iocp_loop *il = loop->impl;
    return il->port;
}

HANDLE *rs__iocp_loop_afd(rs_event_loop *loop)
{
    struct iocp_loop *il = loop->impl;
    return &il->afd;
}

void rs__iocp_loop_orphans_add(rs_event_loop *loop, long delta)
{
    struct iocp_loop *il = loop->impl;
    rs__atomic_add(&il->orphans, delta);
}

int rs__iocp_post_completion(rs_event_loop *loop, struct rs__iocp_op *op)
{
    struct iocp_loop *il = loop->impl;
    if (!PostQueuedCompletionStatus(il->port, 0, KEY_IO, &op->overlapped)) {
        return rs__iocp_raise_win32(GetLastError());
    }
    return 0;
}

/* Places per loop, large and small; tests lower them (rs__iocp_read_places). */
static const long read_places[2] = {RS__IOCP_BUFFERED_STREAMS, RS__IOCP_SMALL_BUFFERED_STREAMS};

enum rs__iocp_read_tier rs__iocp_loop_take_read_buffer(rs_event_loop *loop)
{
    struct iocp_loop *il = loop->impl;
    for (int i = 0; i < 2; i++) {
        if (rs__atomic_add(&il->buffered_streams[i], 1) <=
            RS__TEST_VALUE(rs__iocp_read_places(i), read_places[i])) {
            return i == 0 ? RS__IOCP_READ_LARGE : RS__IOCP_READ_SMALL;
        }
        rs__atomic_add(&il->buffered_streams[i], -1);
    }
    return RS__IOCP_READ_ZERO_BYTE;
}

void rs__iocp_loop_return_read_buffer(rs_event_loop *loop, enum rs__iocp_read_tier tier)
{
    struct iocp_loop *il = loop->impl;
    if (tier != RS__IOCP_READ_ZERO_BYTE) {
        rs__atomic_add(&il->buffered_streams[tier == RS__IOCP_READ_LARGE ? 0 : 1], -1);
    }
}

bool rs__iocp_skip_on_success(HANDLE handle, bool is_socket)
{
    /* SetFileCompletionNotificationModes: on a socket the mode is only
     * compatible with providers that return IFS handles; with a non-IFS
     * provider installed, completions of skipped calls would be lost. */
    if (RS__TEST_HOOK(rs__iocp_skip_disallowed()) ||
        (is_socket && !rs__winsock_skip_on_success_allowed())) {
        return false;
    }
    /* FILE_SKIP_SET_EVENT_ON_HANDLE: nobody waits on the handle itself, so
     * the I/O manager need not signal it on every completion. */
    if (!SetFileCompletionNotificationModes(handle, FILE_SKIP_COMPLETION_PORT_ON_SUCCESS |
                                                        FILE_SKIP_SET_EVENT_ON_HANDLE)) {
        RS__LOG(RS_LOG_DEBUG, "SetFileCompletionNotificationModes failed: %lu",
                (unsigned long)GetLastError());
        return false;
    }
    return true;
}

void rs__iocp_complete_inline(rs_event_loop *loop, struct rs__iocp_op *op, DWORD bytes)
{
    struct iocp_loop *il = loop->impl;
    if (!rs__event_loop_is_on_thread(loop)) {
        /* The list is the loop thread's: from elsewhere, a packet of our own
         * (its status is 0, its byte count `bytes`). */
        if (!PostQueuedCompletionStatus(il->port, bytes, KEY_IO, &op->overlapped)) {
            RS__LOG(RS_LOG_ERROR, "completion lost: PostQueuedCompletionStatus failed: %lu",
                    (unsigned long)GetLastError());
        }
        return;
    }
    op->inline_bytes = bytes;
    op->inline_next = NULL;
    if (il->inline_tail) {
        il->inline_tail->inline_next = op;
    } else {
        il->inline_head = op;
    }
    il->inline_tail = op;
}

/* Dispatches the operations that completed inline before this call; those
 * that complete meanwhile (a handler starts new operations) wait for the next
 * wait. */
static void run_inline(rs_event_loop *loop)
{
    struct iocp_loop *il = loop->impl;
    struct rs__iocp_op *op = il->inline_head;
    il->inline_head = il->inline_tail = NULL;
    while (op) {
        /* The handler may free op. */
        struct rs__iocp_op *next = op->inline_next;
        op->inline_next = NULL;
        op->on_completion(loop, op, 0, op->inline_bytes);
        op = next;
    }
}

int rs__iocp_associate(rs_event_loop *loop, HANDLE handle)
{
    /* CreateIoCompletionPort(INVALID_HANDLE_VALUE, port, ...) is a documented
     * misuse (that handle value only creates new ports); refuse it here so
     * that its error is not taken for the one below. */
    if (!handle || handle == INVALID_HANDLE_VALUE) {
        return rs__raise(RS_ERROR_INVALID_ARGUMENT);
    }
    struct iocp_loop *il = loop->impl;
    if (CreateIoCompletionPort(handle, il->port, KEY_IO, 0)) {
        return 0;
    }
    DWORD err = GetLastError();
    /*
     * A file object has at most one completion port, for its whole life:
     * associating it again, with the same port or another, fails with
     * ERROR_INVALID_PARAMETER (Wine 8 does the same for pipes, sockets and
     * files; it also returns it for a handle opened without
     * FILE_FLAG_OVERLAPPED, which reseau never associates). The only way to
     * move a handle is NtSetInformationFile(FileReplaceCompletionInformation),
     * which Wine 8 does not implement (STATUS_NOT_IMPLEMENTED), so reseau
     * never moves one: each handle is associated once, with its final loop.
     */
    if (err == ERROR_INVALID_PARAMETER) {
        return rs__raise(RS_ERROR_EVENT_LOOP_ALREADY_ASSIGNED);
    }
    return rs__iocp_raise_win32(err);
}

int rs__backend_loop_init(rs_event_loop *loop)
{
    struct iocp_loop *il = rs__mem_calloc(1, sizeof *il);
    if (!il) {
        return -1;
    }
    /* INVALID_HANDLE_VALUE and no existing port create a port with no handle
     * yet; concurrency 1, since only the loop thread dequeues from it. */
    il->port = CreateIoCompletionPort(INVALID_HANDLE_VALUE, NULL, 0, 1);
    if (!il->port) {
        DWORD err = GetLastError();
        rs__mem_release(il);
        return rs__iocp_raise_win32(err);
    }
    loop->impl = il;
    return 0;
}

/*
 * GetQueuedCompletionStatusEx failed (not a timeout). Retrying at once would
 * spin the loop at 100% CPU for as long as the failure lasts, with the error
 * logged on every turn: the loop pauses instead (Sleep: the port it would
 * wait on is what fails), logs the first failure and then every
 * WAIT_FAILURE_LOG_EVERY-th, and its timers and tasks keep running between
 * the tries.
 */
static void wait_failed(struct iocp_loop *il, DWORD err, DWORD timeout)
{
    uint32_t n = il->wait_failures;
    if (il->wait_failures < UINT32_MAX) {
        il->wait_failures++;
    }
    if (n % WAIT_FAILURE_LOG_EVERY == 0) {
        RS__LOG(RS_LOG_ERROR,
                "GetQueuedCompletionStatusEx failed: %lu (%lu in a row); retrying after a pause",
                (unsigned long)err, (unsigned long)n + 1);
    }
    DWORD pause = (DWORD)WAIT_RETRY_MIN_MS << (n < 4 ? n : 4);
    if (pause > WAIT_RETRY_MAX_MS) {
        pause = WAIT_RETRY_MAX_MS;
    }
    Sleep(pause < timeout ? pause : timeout);
}

static void dispatch(rs_event_loop *loop, HANDLE port, DWORD timeout)
{
    struct iocp_loop *il = loop->impl;
    OVERLAPPED_ENTRY entries[BATCH];
    ULONG count = 0;
    DWORD injected =
        (DWORD)RS__TEST_HOOK(rs__iocp_fault_take(RS__IOCP_FAULT_WAIT, INVALID_SOCKET, NULL));
    /* Not alertable: the loop runs no APCs. */
    if (injected || !GetQueuedCompletionStatusEx(port, entries, BATCH, &count, timeout, FALSE)) {
        DWORD err = injected ? injected : GetLastError();
        /* WAIT_TIMEOUT: no packet arrived before the timeout. */
        if (err != WAIT_TIMEOUT) {
            wait_failed(il, err, timeout);
        }
        return;
    }
    if (il->wait_failures) {
        RS__LOG(RS_LOG_WARN, "GetQueuedCompletionStatusEx works again after %lu failures",
                (unsigned long)il->wait_failures);
        il->wait_failures = 0;
    }
    for (ULONG i = 0; i < count; i++) {
        const OVERLAPPED_ENTRY *e = &entries[i];
        if (e->lpCompletionKey == KEY_WAKE) {
            rs__metrics_bump(&loop->metrics.wakeups, 1);
            continue;
        }
        /* OVERLAPPED_ENTRY.Internal is the packet's NTSTATUS (the value the
         * kernel also stores in the OVERLAPPED's Internal member). */
        struct rs__iocp_op *op = (struct rs__iocp_op *)e->lpOverlapped;
        op->on_completion(loop, op, (uint32_t)e->Internal, e->dwNumberOfBytesTransferred);
    }
}

void rs__backend_loop_clean_up(rs_event_loop *loop)
{
    struct iocp_loop *il = loop->impl;
    /* The OVERLAPPED of a cancelled operation is written until its completion
     * is queued: its memory may only be freed after that, so wait for it
     * (bounded: a cancelled operation completes promptly). */
    uint64_t deadline = rs__clock_now_ns() + ORPHAN_DRAIN_NS;
    run_inline(loop);
    while ((rs__atomic_load(&il->orphans) > 0 || il->inline_head) &&
           rs__clock_now_ns() < deadline) {
        run_inline(loop);
        if (rs__atomic_load(&il->orphans) > 0) {
            dispatch(loop, il->port, 10);
        }
    }
    if (rs__atomic_load(&il->orphans) > 0) {
        RS__LOG(RS_LOG_WARN, "event loop destroyed with %ld cancelled operations outstanding",
                rs__atomic_load(&il->orphans));
    }
    /* Every poll of the AFD handle has completed (they were orphans). */
    if (il->afd) {
        CloseHandle(il->afd);
    }
    /* Packets still queued (a wake-up) are discarded with the port. */
    CloseHandle(il->port);
    rs__mem_release(il);
    loop->impl = NULL;
}

void rs__backend_loop_wake(rs_event_loop *loop)
{
    struct iocp_loop *il = loop->impl;
    /* The packet carries no OVERLAPPED; the wait recognises it by its key. */
    if (!PostQueuedCompletionStatus(il->port, 0, KEY_WAKE, NULL)) {
        RS__LOG(RS_LOG_ERROR, "event-loop wake-up: PostQueuedCompletionStatus failed: %lu",
                (unsigned long)GetLastError());
    }
}

static DWORD timeout_ms(int64_t timeout_ns)
{
    if (timeout_ns < 0) {
        return INFINITE;
    }
    /* Round up: a wait that ends before the deadline only costs a spin. */
    uint64_t ms = ((uint64_t)timeout_ns + 999999u) / 1000000u;
    return ms < INFINITE ? (DWORD)ms : INFINITE - 1;
}

void rs__backend_loop_wait(rs_event_loop *loop, int64_t timeout_ns)
{
    struct iocp_loop *il = loop->impl;
    if (il->inline_head) {
        /* Work is waiting: never sleep, and usually skip the port (asking it
         * is a system call that mostly finds nothing here). */
        if (il->inline_streak < INLINE_STREAK) {
            il->inline_streak++;
        } else {
            il->inline_streak = 0;
            dispatch(loop, il->port, 0);
        }
        run_inline(loop);
        return;
    }
    il->inline_streak = 0;
    dispatch(loop, il->port, timeout_ms(timeout_ns));
}
