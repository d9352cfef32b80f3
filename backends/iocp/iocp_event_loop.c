/*
 * IOCP backend: one I/O completion port per loop. Handles are associated with
 * the port once, for life; their overlapped operations complete into it and
 * the loop thread dequeues the completions in batches and calls each
 * operation's callback. Timers live in the common scheduler: the wait only
 * sleeps until the next deadline. A cross-thread wake-up is one packet posted
 * to the port (common/ posts at most one per loop iteration).
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

/* How long a loop being destroyed waits for its orphans' completions:
 * cancellations complete promptly, so this only bounds a misbehaving driver. */
#define ORPHAN_DRAIN_NS (2000ull * 1000000ull)

struct iocp_loop {
    HANDLE port;
    volatile long orphans;
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

int rs__iocp_associate(rs_event_loop *loop, HANDLE handle)
{
    /* CreateIoCompletionPort(INVALID_HANDLE_VALUE, port, ...) is a documented
     * misuse (that handle value only creates new ports); refuse it here so
     * that its error is not taken for the one below. */
    if (!handle || handle == INVALID_HANDLE_VALUE) {
        return rs_raise(RS_ERROR_INVALID_ARGUMENT);
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
        return rs_raise(RS_ERROR_EVENT_LOOP_ALREADY_ASSIGNED);
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

static void dispatch(rs_event_loop *loop, HANDLE port, DWORD timeout)
{
    OVERLAPPED_ENTRY entries[BATCH];
    ULONG count = 0;
    /* Not alertable: the loop runs no APCs. */
    if (!GetQueuedCompletionStatusEx(port, entries, BATCH, &count, timeout, FALSE)) {
        DWORD err = GetLastError();
        /* WAIT_TIMEOUT: no packet arrived before the timeout. */
        if (err != WAIT_TIMEOUT) {
            RS__LOG(RS_LOG_ERROR, "GetQueuedCompletionStatusEx failed: %lu", (unsigned long)err);
        }
        return;
    }
    for (ULONG i = 0; i < count; i++) {
        const OVERLAPPED_ENTRY *e = &entries[i];
        if (e->lpCompletionKey == KEY_WAKE) {
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
    while (rs__atomic_load(&il->orphans) > 0 && rs__clock_now_ns() < deadline) {
        dispatch(loop, il->port, 10);
    }
    if (rs__atomic_load(&il->orphans) > 0) {
        RS__LOG(RS_LOG_WARN, "event loop destroyed with %ld cancelled operations outstanding",
                rs__atomic_load(&il->orphans));
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
    dispatch(loop, il->port, timeout_ms(timeout_ns));
}
