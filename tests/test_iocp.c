/*
 * IOCP-specific event-loop scenarios EL3 and EL13: white-box, through the
 * backend's handle-association API. Reported as skipped on libevent.
 */
#include "rs_test.h"

#if RS_TEST_IOCP
#include "../backends/iocp/iocp_backend.h"

#include <stdio.h>

struct el3 {
    struct rs__iocp_op op;
    rs_event_loop *expected_loop;
    rs_event_loop *loop;
    struct rs__iocp_op *seen_op;
    uint32_t status;
    size_t bytes;
    bool on_thread;
    volatile long calls;
    struct rs_test_latch done;
};

static void el3_on_completion(rs_event_loop *loop, struct rs__iocp_op *op, uint32_t status,
                              size_t bytes)
{
    struct el3 *t = op->user_data;
    t->loop = loop;
    t->seen_op = op;
    t->status = status;
    t->bytes = bytes;
    t->on_thread = rs_event_loop_is_on_thread(loop);
    t->calls++;
    rs_test_latch_signal(&t->done);
}

/* An overlapped pipe pair: server end (read side) and client end (write side). */
static void open_pipe_pair(HANDLE *server, HANDLE *client)
{
    char name[128];
    snprintf(name, sizeof name, "\\\\.\\pipe\\reseau-test-el-%lu-%p", GetCurrentProcessId(),
             (void *)server);
    *server = CreateNamedPipeA(
        name, PIPE_ACCESS_INBOUND | FILE_FLAG_OVERLAPPED | FILE_FLAG_FIRST_PIPE_INSTANCE,
        PIPE_TYPE_BYTE | PIPE_READMODE_BYTE | PIPE_REJECT_REMOTE_CLIENTS, 1, 4096, 4096, 0, NULL);
    assert_true(*server != INVALID_HANDLE_VALUE);
    *client = CreateFileA(name, GENERIC_WRITE, 0, NULL, OPEN_EXISTING, FILE_FLAG_OVERLAPPED, NULL);
    assert_true(*client != INVALID_HANDLE_VALUE);
}

static void test_el3_completion_event_arguments(void **state)
{
    rs_event_loop *loop = *state;
    HANDLE server, client;
    open_pipe_pair(&server, &client);
    assert_int_equal(rs__iocp_associate(loop, client), 0);

    struct el3 t = {.expected_loop = loop};
    rs_test_latch_init(&t.done, 1);
    rs__iocp_op_init(&t.op, el3_on_completion, &t);
    static const char payload[] = "completion events";
    BOOL ok = WriteFile(client, payload, sizeof payload, NULL, &t.op.overlapped);
    assert_true(ok || GetLastError() == ERROR_IO_PENDING);
    rs_test_latch_await(&t.done, "the write's completion");

    assert_int_equal(t.calls, 1);
    assert_ptr_equal(t.loop, loop);
    assert_ptr_equal(t.seen_op, &t.op);
    assert_int_equal(t.status, 0);
    assert_int_equal(t.bytes, sizeof payload);
    assert_true(t.on_thread);

    char buf[64];
    DWORD got = 0;
    OVERLAPPED rd = {0};
    rd.hEvent = CreateEventA(NULL, TRUE, FALSE, NULL);
    ok = ReadFile(server, buf, sizeof buf, NULL, &rd);
    assert_true(ok || GetLastError() == ERROR_IO_PENDING);
    assert_true(GetOverlappedResult(server, &rd, &got, TRUE));
    assert_int_equal(got, sizeof payload);
    assert_memory_equal(buf, payload, sizeof payload);
    CloseHandle(rd.hEvent);
    CloseHandle(client);
    CloseHandle(server);
    rs_test_latch_clean_up(&t.done);
}

static void test_el13_handle_associated_once(void **state)
{
    rs_event_loop *loop = *state;
    rs_event_loop *other = rs_event_loop_new(NULL);
    assert_non_null(other);
    HANDLE server, client;
    open_pipe_pair(&server, &client);
    assert_non_null(rs__iocp_loop_port(loop));
    assert_true(rs__iocp_loop_port(loop) != rs__iocp_loop_port(other));

    assert_int_equal(rs__iocp_associate(loop, client), 0);
    assert_fails_with(rs__iocp_associate(loop, client), RS_ERROR_EVENT_LOOP_ALREADY_ASSIGNED);
    assert_fails_with(rs__iocp_associate(other, client), RS_ERROR_EVENT_LOOP_ALREADY_ASSIGNED);
    /* A different handle still associates. */
    assert_int_equal(rs__iocp_associate(other, server), 0);
    CloseHandle(client);
    CloseHandle(server);
    assert_int_equal(rs_event_loop_destroy(other), 0);
}
#else
static void test_el3_completion_event_arguments(void **state)
{
    (void)state;
    RS_TEST_SKIP("completion ports are an IOCP mechanism; libevent reports readiness, pinned by "
                 "the SK and PI scenarios");
}

static void test_el13_handle_associated_once(void **state)
{
    (void)state;
    RS_TEST_SKIP("completion-port association is an IOCP mechanism; libevent registers one "
                 "event per descriptor instead");
}
#endif

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_el3_completion_event_arguments, rs_test_setup_loop,
                                        rs_test_teardown_loop),
        cmocka_unit_test_setup_teardown(test_el13_handle_associated_once, rs_test_setup_loop,
                                        rs_test_teardown_loop),
    };
    return RS_TEST_MAIN("iocp", tests);
}
