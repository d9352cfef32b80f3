/*
 * resolve_connect: resolves a host name, then connects over TCP to each of
 * its addresses in turn until one accepts, sends a message and prints the
 * echo. Says what it tried and why each address failed.
 *
 *   resolve_connect [--host NAME] --port N [--message TEXT] [--timeout-ms N] [--help]
 *
 * Try it against the echo server:  echo_server --port 9000  and
 * resolve_connect --host localhost --port 9000 --message hi
 */
#include <reseau/reseau.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Loop-thread state; the main thread waits for the loop to stop. */
static struct {
    rs_event_loop *loop;
    const char *host;
    uint32_t port;
    uint32_t timeout_ms;
    const char *message;
    char *line; /* message and a newline; written once */
    size_t line_len;

    rs_host_address *addresses; /* a copy: the callback's array is short-lived */
    size_t count;
    size_t next; /* next address to try */
    rs_socket *socket;
    char *echo;
    size_t echoed;
    rs_task deadline;
    bool done;
    int rc;
} rc_state;

static void finish(int rc)
{
    if (rc_state.done) {
        return;
    }
    rc_state.done = true;
    rc_state.rc = rc;
    rs_event_loop_cancel_task(rc_state.loop, &rc_state.deadline);
    if (rc_state.socket) {
        rs_socket_close(rc_state.socket);
    }
    rs_event_loop_stop(rc_state.loop);
}

static void try_next(void);

/* A failed address: say why, then move on to the next one. */
static void address_failed(const char *what, int error_code)
{
    const rs_host_address *a = &rc_state.addresses[rc_state.next - 1];
    printf("  %s: %s failed: %s (%s)\n", a->address, what, rs_error_str(error_code),
           rs_error_name(error_code));
    fflush(stdout);
    if (rc_state.socket) {
        rs_socket_destroy(rc_state.socket);
        rc_state.socket = NULL;
    }
    try_next();
}

static void on_written(rs_socket *socket, int error_code, size_t bytes, void *user_data)
{
    (void)bytes;
    (void)user_data;
    /* socket is NULL once the program closed it: nothing to report then. */
    if (error_code != 0 && socket && !rc_state.done) {
        fprintf(stderr, "resolve_connect: send failed: %s\n", rs_error_str(error_code));
        finish(1);
    }
}

static void on_readable(rs_socket *socket, int error_code, void *user_data)
{
    (void)user_data;
    while (!rc_state.done) {
        size_t n = 0;
        size_t want = rc_state.line_len - rc_state.echoed;
        if (error_code != 0 ||
            rs_socket_read(socket, rc_state.echo + rc_state.echoed, want, &n) != 0) {
            int err = error_code ? error_code : rs_last_error();
            if (err == RS_ERROR_WOULD_BLOCK) {
                return;
            }
            fprintf(stderr, "resolve_connect: the server %s after %zu of %zu bytes\n",
                    err == RS_ERROR_SOCKET_CLOSED ? "closed the connection" : rs_error_str(err),
                    rc_state.echoed, rc_state.line_len);
            finish(1);
            return;
        }
        rc_state.echoed += n;
        if (rc_state.echoed == rc_state.line_len) {
            bool same = memcmp(rc_state.echo, rc_state.line, rc_state.line_len) == 0;
            printf("echo: %.*s\n", (int)rc_state.line_len - 1, rc_state.echo);
            if (!same) {
                fprintf(stderr, "resolve_connect: the echo differs from the message\n");
            }
            finish(same ? 0 : 1);
            return;
        }
    }
}

static void on_connected(rs_socket *socket, int error_code, void *user_data)
{
    (void)user_data;
    if (error_code != 0) {
        address_failed("connect", error_code);
        return;
    }
    printf("  %s: connected\n", rc_state.addresses[rc_state.next - 1].address);
    fflush(stdout);
    if (rs_socket_subscribe_to_readable_events(socket, on_readable, NULL) != 0 ||
        rs_socket_write(socket, rc_state.line, rc_state.line_len, on_written, NULL) != 0) {
        address_failed("send", rs_last_error());
    }
}

static void try_next(void)
{
    if (rc_state.next == rc_state.count) {
        fprintf(stderr,
                "resolve_connect: none of the %zu address(es) of %s accepted a connection\n",
                rc_state.count, rc_state.host);
        finish(1);
        return;
    }
    const rs_host_address *a = &rc_state.addresses[rc_state.next++];
    rs_socket_options options = {
        .type = RS_SOCKET_STREAM,
        .domain = a->family == RS_ADDRESS_IPV6 ? RS_SOCKET_IPV6 : RS_SOCKET_IPV4,
        .connect_timeout_ms = rc_state.timeout_ms,
    };
    rs_socket_endpoint remote;
    memset(&remote, 0, sizeof remote);
    strcpy(remote.address, a->address); /* RS_HOST_ADDRESS_MAX < RS_ADDRESS_MAX_LEN */
    remote.port = rc_state.port;
    printf("trying %s port %u (%s)\n", a->address, rc_state.port,
           a->family == RS_ADDRESS_IPV6 ? "IPv6" : "IPv4");
    fflush(stdout);
    rc_state.socket = rs_socket_new(&options);
    if (!rc_state.socket) {
        address_failed("socket", rs_last_error());
        return;
    }
    if (rs_socket_connect(rc_state.socket, &remote, rc_state.loop, on_connected, NULL) != 0) {
        address_failed("connect", rs_last_error());
    }
}

static void on_resolved(const char *host, int error_code, const rs_host_address *addresses,
                        size_t count, void *user_data)
{
    (void)user_data;
    if (rc_state.done) {
        return;
    }
    if (error_code != 0) {
        fprintf(stderr, "resolve_connect: resolving %s failed: %s (%s)\n", host,
                rs_error_str(error_code), rs_error_name(error_code));
        finish(1);
        return;
    }
    rc_state.addresses = malloc(count * sizeof *addresses);
    if (!rc_state.addresses) {
        finish(1);
        return;
    }
    memcpy(rc_state.addresses, addresses, count * sizeof *addresses);
    rc_state.count = count;
    printf("%s has %zu address(es):", host, count);
    for (size_t i = 0; i < count; i++) {
        printf(" %s", addresses[i].address);
    }
    printf("\n");
    fflush(stdout);
    try_next();
}

static void on_deadline(rs_task *task, void *arg, rs_task_status status)
{
    (void)task;
    (void)arg;
    if (status == RS_TASK_STATUS_RUN && !rc_state.done) {
        fprintf(stderr, "resolve_connect: no echo within the time allowed\n");
        finish(1);
    }
}

static int usage(FILE *out, int code)
{
    fprintf(out, "usage: resolve_connect [--host NAME] --port N [--message TEXT] [--timeout-ms N]\n"
                 "  --host NAME      host name or address to resolve (default localhost)\n"
                 "  --port N         port to connect to, 1..65535\n"
                 "  --message TEXT   text to send; a newline is added (default \"hello\")\n"
                 "  --timeout-ms N   per connect attempt, 1..600000 (default 3000); the whole\n"
                 "                   run is bounded by a few times that\n"
                 "  --help           this text\n");
    return code;
}

int main(int argc, char **argv)
{
    long port = 0;
    long timeout_ms = 3000;
    rc_state.host = "localhost";
    rc_state.message = "hello";
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        bool takes_value = !strcmp(arg, "--host") || !strcmp(arg, "--port") ||
                           !strcmp(arg, "--message") || !strcmp(arg, "--timeout-ms");
        if (!strcmp(arg, "--help")) {
            return usage(stdout, 0);
        } else if (!takes_value || i + 1 >= argc) {
            fprintf(stderr, "resolve_connect: %s '%s'\n",
                    takes_value ? "missing value after" : "unknown argument", arg);
            return usage(stderr, 2);
        }
        const char *value = argv[++i];
        if (!strcmp(arg, "--host")) {
            rc_state.host = value;
        } else if (!strcmp(arg, "--message")) {
            rc_state.message = value;
        } else {
            bool is_port = !strcmp(arg, "--port");
            long max = is_port ? 65535 : 600000;
            char *end = NULL;
            long n = strtol(value, &end, 10);
            if (!*value || *end || n < 1 || n > max) {
                fprintf(stderr, "resolve_connect: %s must be a number 1..%ld, not '%s'\n", arg, max,
                        value);
                return 2;
            }
            *(is_port ? &port : &timeout_ms) = n;
        }
    }
    if (!port) {
        fprintf(stderr, "resolve_connect: --port is required\n");
        return usage(stderr, 2);
    }
    /* Checked here so that a bad name is a usage error, not a lookup failure. */
    if (!rs_host_name_is_valid(rc_state.host)) {
        fprintf(stderr, "resolve_connect: '%s' is not a valid host name\n", rc_state.host);
        return 2;
    }
    rc_state.port = (uint32_t)port;
    rc_state.timeout_ms = (uint32_t)timeout_ms;
    rc_state.rc = 1;

    if (rs_library_init() != 0) {
        fprintf(stderr, "resolve_connect: init failed: %s\n", rs_error_str(rs_last_error()));
        return 1;
    }
    rc_state.line_len = strlen(rc_state.message) + 1;
    rc_state.line = malloc(rc_state.line_len);
    rc_state.echo = malloc(rc_state.line_len);
    rc_state.loop = rs_event_loop_new(NULL);
    rs_task_init(&rc_state.deadline, on_deadline, NULL, "overall deadline");
    if (!rc_state.line || !rc_state.echo || !rc_state.loop) {
        fprintf(stderr, "resolve_connect: %s\n", rs_error_str(rs_last_error()));
        goto out;
    }
    memcpy(rc_state.line, rc_state.message, rc_state.line_len - 1);
    rc_state.line[rc_state.line_len - 1] = '\n';
    /* Room for a slow lookup, every connect attempt timing out on a
     * dual-stack name, and the echo. */
    uint64_t budget_ns = (uint64_t)timeout_ms * 4u * 1000000u + 10000000000u;
    if (rs_event_loop_run(rc_state.loop) != 0 ||
        rs_event_loop_schedule_at(rc_state.loop, &rc_state.deadline,
                                  rs_event_loop_now(rc_state.loop) + budget_ns) != 0 ||
        rs_resolve(rc_state.loop, rc_state.host, on_resolved, NULL) != 0) {
        fprintf(stderr, "resolve_connect: %s: %s\n", rc_state.host, rs_error_str(rs_last_error()));
        goto out;
    }
    rs_event_loop_wait_for_stop(rc_state.loop);
out:
    if (rc_state.socket) {
        rs_socket_destroy(rc_state.socket);
    }
    if (rc_state.loop) {
        rs_event_loop_destroy(rc_state.loop);
    }
    free(rc_state.addresses);
    free(rc_state.line);
    free(rc_state.echo);
    rs_library_cleanup();
    return rc_state.rc;
}
