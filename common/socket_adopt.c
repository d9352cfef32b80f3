/*
 * rs_socket_adopt: an OS socket the application made becomes an rs_socket.
 * The checks of the call's own arguments are made here; the handle is
 * checked and registered by the backend, on the loop's thread, so that a
 * handle the loop cannot take (on Windows one associated with another
 * completion port) is refused before reseau owns it.
 */
#include "socket_impl.h"

#include "alloc.h"
#include "backend.h"
#include "error.h"
#include "event_loop_impl.h"
#include "library.h"
#include "os_socket.h"

struct adopt_call {
    rs_socket *socket;
    rs_os_socket handle;
    rs_socket_adopt_kind kind;
};

/* Returns 0 or the error code: a call run by the loop's thread raises there,
 * not on the waiting thread. */
static int adopt_fn(void *arg, enum rs__call_mode mode)
{
    struct adopt_call *c = arg;
    if (mode == RS__CALL_LOOP_GONE) {
        return RS_ERROR_EVENT_LOOP_SHUTDOWN;
    }
    bool dual_stack = false;
    if (rs__backend_socket_adopt(c->socket, c->handle, c->kind, &dual_stack) != 0) {
        return rs_last_error();
    }
    if (c->socket->options.domain == RS_SOCKET_IPV6) {
        c->socket->options.ipv6_dual_stack = dual_stack;
    }
    rs__socket_set_flag(c->socket, RS__SF_ATTACHED, true);
    return 0;
}

static long state_of(rs_socket_adopt_kind kind)
{
    switch (kind) {
    case RS_SOCKET_ADOPT_CONNECTED:
        return RS__SOCKET_CONNECTED;
    case RS_SOCKET_ADOPT_LISTENING:
        return RS__SOCKET_LISTENING;
    case RS_SOCKET_ADOPT_BOUND:
        return RS__SOCKET_BOUND;
    }
    return 0;
}

rs_socket *rs_socket_adopt(const rs_socket_options *options, rs_os_socket handle,
                           rs_socket_adopt_kind kind, rs_event_loop *loop)
{
    if (rs__library_check() != 0) {
        return NULL;
    }
    long state = state_of(kind);
    if (!options || !loop || !state || !rs__os_socket_in_range(handle)) {
        return rs__raise_null(RS_ERROR_INVALID_ARGUMENT);
    }
    if (rs__socket_validate_options(options) != 0) {
        return NULL;
    }
    if ((kind == RS_SOCKET_ADOPT_LISTENING && options->type != RS_SOCKET_STREAM) ||
        (kind == RS_SOCKET_ADOPT_BOUND && options->type != RS_SOCKET_DGRAM)) {
        return rs__raise_null(RS_ERROR_INVALID_OPTIONS);
    }
    rs_event_loop *current = rs__event_loop_current();
    if (current && current != loop) {
        return rs__raise_null(RS_ERROR_WRONG_THREAD);
    }
    rs_socket *s = rs__socket_alloc(options, state);
    if (!s) {
        return NULL;
    }
    if (kind == RS_SOCKET_ADOPT_LISTENING && rs__socket_init_listener(s) != 0) {
        rs__socket_free_unused(s);
        return NULL;
    }
    rs__socket_set_loop(s, loop, true);
    struct adopt_call c = {s, handle, kind};
    int err = rs_event_loop_is_on_thread(loop) ? adopt_fn(&c, RS__CALL_INLINE)
                                               : rs__event_loop_call_and_wait(loop, adopt_fn, &c);
    if (err != 0) {
        rs__socket_unset_loop(s);
        rs__socket_free_unused(s);
        return rs__raise_null(err);
    }
    s->remote_known = kind == RS_SOCKET_ADOPT_CONNECTED;
    return s;
}
