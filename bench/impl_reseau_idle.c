/*
 * The idle workload on reseau (idle.h): n accepted connections, each on the
 * loop and subscribed for readable events, no traffic.
 */
#include "idle.h"
#include "impl_reseau.h"

#include <stdlib.h>
#include <string.h>

struct idle {
    struct rsb_run run;
    rs_socket **accepted;
    long n, count;
};

static void idle_readable(rs_socket *s, int error_code, void *arg)
{
    (void)s;
    (void)error_code;
    (void)arg;
}

static void idle_accepted(rs_socket *l, int error_code, rs_socket *s, void *arg)
{
    (void)l;
    struct idle *id = arg;
    if (error_code) {
        rsb_run_error(&id->run, "accept", error_code);
        return;
    }
    if (id->count == id->n) {
        rs_socket_destroy(s);
        return;
    }
    id->accepted[id->count++] = s;
    if (rs_socket_assign_to_event_loop(s, id->run.loop) != 0 ||
        rs_socket_subscribe_to_readable_events(s, idle_readable, id) != 0) {
        rsb_run_error(&id->run, "accepted socket", rs_last_error());
        return;
    }
    if (id->count == id->n) {
        rsb_run_finish(&id->run, (uint64_t)id->n);
    }
}

void rsb_idle(const struct bench_params *p, struct bench_result *r)
{
    long n = p->idle_connections;
    if (!bench_idle_fd_limit(n, r)) {
        return;
    }
    struct idle *id = calloc(1, sizeof *id);
    rs_socket **accepted = calloc((size_t)n, sizeof *accepted);
    if (!id || !accepted) {
        bench_fail(r, "out of memory");
        free(id);
        free(accepted);
        return;
    }
    id->accepted = accepted;
    id->n = n;
    rs_socket *listener = NULL;
    if (!rsb_run_begin(&id->run, p, r)) {
        goto out;
    }
    rs_socket_options o;
    memset(&o, 0, sizeof o);
    o.type = RS_SOCKET_STREAM;
    o.domain = RS_SOCKET_IPV4;
    rs_socket_endpoint ep, bound;
    memset(&ep, 0, sizeof ep);
    strcpy(ep.address, "127.0.0.1");
    listener = rs_socket_new(&o);
    if (!listener || rs_socket_bind(listener, &ep) != 0 ||
        rs_socket_get_bound_address(listener, &bound) != 0 ||
        rs_socket_listen(listener, 4096) != 0) {
        bench_fail(r, "listener: %s", rs_error_name(rs_last_error()));
        goto out;
    }
    struct bench_mem before, after;
    bench_mem_start(&before);
    if (rs_socket_start_accept(listener, id->run.loop, idle_accepted, id) != 0) {
        bench_fail(r, "listener: %s", rs_error_name(rs_last_error()));
        goto out;
    }
    if (bench_idle_clients_start((uint16_t)bound.port, n, r) != 0) {
        goto out;
    }
    rsb_run_wait(&id->run);
    /* Accepting stops first, so that nothing more is allocated meanwhile. */
    rs_socket_stop_accept(listener);
    bench_mem_stop(&after);
    if (r->status == BENCH_OK) {
        bench_idle_result(r, n, &before, &after);
    }
out:
    if (listener) {
        rs_socket_destroy(listener);
    }
    for (long i = 0; i < id->count; i++) {
        rs_socket_destroy(accepted[i]);
    }
    bench_idle_clients_stop();
    rsb_run_end(&id->run);
    free(accepted);
    free(id);
}
