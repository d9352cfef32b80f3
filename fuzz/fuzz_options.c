/*
 * libFuzzer target: rs_socket_new and rs_socket_set_options with arbitrary
 * option values (enums out of range, interface names without a NUL, any
 * timeout or keepalive figure). Invariants: no crash or sanitizer report;
 * either a socket or NULL with a code rs_socket_new documents; a created
 * socket reports back the options it was given, accepts or refuses new ones
 * with a documented code, and is destroyed without leaking.
 */
#include <reseau/reseau.h>

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "invariant broken: %s (%s:%d)\n", #cond, __FILE__, __LINE__);          \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

struct reader {
    const uint8_t *data;
    size_t size;
};

/* The next n bytes of the input (zeros once it runs out). */
static void take(struct reader *r, void *out, size_t n)
{
    size_t k = r->size < n ? r->size : n;
    memset(out, 0, n);
    memcpy(out, r->data, k);
    r->data += k;
    r->size -= k;
}

static int32_t take_i32(struct reader *r)
{
    int32_t v;
    take(r, &v, sizeof v);
    return v;
}

/* Options field by field. Enums get any int (a caller can pass any); a
 * bool is 0 or 1, the only values a C bool can hold. */
static rs_socket_options take_options(struct reader *r)
{
    rs_socket_options o;
    memset(&o, 0, sizeof o);
    o.type = (rs_socket_type)take_i32(r);
    o.domain = (rs_socket_domain)take_i32(r);
    take(r, &o.connect_timeout_ms, sizeof o.connect_timeout_ms);
    uint8_t flag;
    take(r, &flag, 1);
    o.keepalive = flag & 1;
    take(r, &o.keep_alive_idle_s, sizeof o.keep_alive_idle_s);
    take(r, &o.keep_alive_interval_s, sizeof o.keep_alive_interval_s);
    take(r, &o.keep_alive_probes, sizeof o.keep_alive_probes);
    o.tcp_nodelay = (rs_socket_tristate)take_i32(r);
    o.reuse = (rs_socket_reuse)take_i32(r);
    take(r, o.network_interface_name, sizeof o.network_interface_name);
    return o;
}

static bool documented_new_error(int code)
{
    return code == RS_ERROR_INVALID_ARGUMENT || code == RS_ERROR_INVALID_OPTIONS ||
           code == RS_ERROR_ADDRESS_FAMILY_NOT_SUPPORTED || code == RS_ERROR_TOO_MANY_HANDLES;
}

static bool documented_set_error(int code)
{
    return code == RS_ERROR_INVALID_ARGUMENT || code == RS_ERROR_INVALID_OPTIONS ||
           code == RS_ERROR_SOCKET_OPTION;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool initialised;
    if (!initialised) {
        CHECK(rs_library_init() == 0);
        initialised = true;
    }
    struct reader r = {data, size};
    rs_socket_options first = take_options(&r);
    rs_socket_options second = take_options(&r);

    int64_t live = rs_live_allocations();
    rs_socket *s = rs_socket_new(&first);
    if (!s) {
        CHECK(documented_new_error(rs_last_error()));
        CHECK(rs_live_allocations() == live);
        return 0;
    }
    rs_socket_options back;
    CHECK(rs_socket_get_options(s, &back) == 0);
    CHECK(memcmp(&back, &first, sizeof back) == 0);
    CHECK(rs_socket_is_open(s));

    /* A change of type or domain is refused; anything else follows the
     * rules of rs_socket_new, plus what the OS accepts. */
    if (rs_socket_set_options(s, &second) != 0) {
        CHECK(documented_set_error(rs_last_error()));
        CHECK(rs_socket_get_options(s, &back) == 0);
        CHECK(memcmp(&back, &first, sizeof back) == 0);
    } else {
        CHECK(second.type == first.type && second.domain == first.domain);
    }
    CHECK(rs_socket_destroy(s) == 0);
    CHECK(rs_live_allocations() == live);
    return 0;
}
