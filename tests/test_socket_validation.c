/*
 * Socket validation scenarios SK5, SK22, SK23 and the validation part of SK33
 * (test-scenarios.md): interface names, ports and address literals, through
 * the public validation functions. Every expectation holds on both backends.
 */
#include "rs_test.h"

#include "../common/address.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- SK5: interface names ---- */

static void test_sk5_interface_name_validation(void **state)
{
    (void)state;
    assert_false(rs_is_network_interface_name_valid(NULL));
    assert_false(rs_is_network_interface_name_valid(""));
    assert_false(rs_is_network_interface_name_valid("no-such-if0"));
    /* 16 characters leave no room for the NUL within the limit. */
    assert_false(rs_is_network_interface_name_valid("abcdefghijklmnop"));
    assert_false(rs_is_network_interface_name_valid("abcdefghijklmnopqrstuvwxyz0123456789"));

    /* Large enough for any name the OS reports, so that a name the API cannot
     * carry fails the length check below instead of being cut short. */
    char loopback[512];
    if (!rs_test_loopback_interface(loopback, sizeof loopback)) {
        fail_msg("%s", "the OS reports no loopback interface");
    }
    print_message("[          ] loopback interface: \"%s\"\n", loopback);
    assert_true(strlen(loopback) < RS_NETWORK_INTERFACE_NAME_MAX);
    assert_true(rs_is_network_interface_name_valid(loopback));

    /* Near misses of a real name are not that interface, although Wine's
     * if_nametoindex reads "loopback_1x" or "loopback_1 " as "loopback_1". */
    static const char *const near_misses[][2] = {{"", " "}, {"", "x"}, {"x", ""}, {"", "\t"}};
    for (size_t i = 0; i < RS__ARRAY_LEN(near_misses); i++) {
        char name[sizeof loopback + 2];
        snprintf(name, sizeof name, "%s%s%s", near_misses[i][0], loopback, near_misses[i][1]);
        if (rs_is_network_interface_name_valid(name)) {
            fail_msg("\"%s\" accepted as an interface name", name);
        }
    }
}

/* ---- SK22: ports ---- */

static void test_sk22_port_validation_matrix(void **state)
{
    (void)state;
    static const uint32_t ports[] = {0, 1, 65535, 65536, UINT32_MAX};
    static const rs_socket_domain domains[] = {RS_SOCKET_IPV4, RS_SOCKET_IPV6, RS_SOCKET_LOCAL};
    for (size_t d = 0; d < RS__ARRAY_LEN(domains); d++) {
        for (size_t p = 0; p < RS__ARRAY_LEN(ports); p++) {
            rs_socket_domain domain = domains[d];
            uint32_t port = ports[p];
            bool ip = domain != RS_SOCKET_LOCAL;
            bool connect_ok = !ip || (port >= 1 && port <= 65535);
            bool bind_ok = !ip || port <= 65535;

            /* A success leaves the last error alone; a failure sets it. */
            rs_raise(RS_ERROR_TIMEOUT);
            int rc = rs_socket_validate_port_for_connect(port, domain);
            int code = rs_last_error();
            if (rc != (connect_ok ? 0 : -1) ||
                code != (connect_ok ? RS_ERROR_TIMEOUT : RS_ERROR_INVALID_PORT)) {
                fail_msg("connect, domain %d, port %lu: rc %d, %s", (int)domain,
                         (unsigned long)port, rc, rs_error_name(code));
            }
            rs_raise(RS_ERROR_TIMEOUT);
            rc = rs_socket_validate_port_for_bind(port, domain);
            code = rs_last_error();
            if (rc != (bind_ok ? 0 : -1) ||
                code != (bind_ok ? RS_ERROR_TIMEOUT : RS_ERROR_INVALID_PORT)) {
                fail_msg("bind, domain %d, port %lu: rc %d, %s", (int)domain, (unsigned long)port,
                         rc, rs_error_name(code));
            }
        }
    }
}

/* ---- SK23: address literals ---- */

struct ipv4_valid {
    const char *text;
    uint8_t bytes[4];
};

static const struct ipv4_valid ipv4_valid[] = {
    {"0.0.0.0", {0, 0, 0, 0}},
    {"255.255.255.255", {255, 255, 255, 255}},
    {"127.0.0.1", {127, 0, 0, 1}},
    {"1.2.3.4", {1, 2, 3, 4}},
    {"192.168.0.1", {192, 168, 0, 1}},
    {"10.0.0.255", {10, 0, 0, 255}},
    {"0.1.10.100", {0, 1, 10, 100}},
    {"100.64.0.0", {100, 64, 0, 0}},
    {"249.250.251.199", {249, 250, 251, 199}},
    {"8.8.8.8", {8, 8, 8, 8}},
};

struct invalid {
    const char *text;
    int code;
};

static const struct invalid ipv4_invalid[] = {
    {"", RS_ERROR_INVALID_ADDRESS},
    {"1", RS_ERROR_INVALID_ADDRESS},
    {"1.2", RS_ERROR_INVALID_ADDRESS},
    {"1.2.3", RS_ERROR_INVALID_ADDRESS},
    {"1.2.3.4.5", RS_ERROR_INVALID_ADDRESS},
    {"256.1.1.1", RS_ERROR_INVALID_ADDRESS},
    {"1.256.1.1", RS_ERROR_INVALID_ADDRESS},
    {"1.1.1.256", RS_ERROR_INVALID_ADDRESS},
    {"999.1.1.1", RS_ERROR_INVALID_ADDRESS},
    {"1000.1.1.1", RS_ERROR_INVALID_ADDRESS},
    /* Leading zeros: octal to some parsers, decimal to others. */
    {"01.2.3.4", RS_ERROR_INVALID_ADDRESS},
    {"1.02.3.4", RS_ERROR_INVALID_ADDRESS},
    {"1.2.3.00", RS_ERROR_INVALID_ADDRESS},
    {"0255.1.1.1", RS_ERROR_INVALID_ADDRESS},
    {" 1.2.3.4", RS_ERROR_INVALID_ADDRESS},
    {"1.2.3.4 ", RS_ERROR_INVALID_ADDRESS},
    {"1 .2.3.4", RS_ERROR_INVALID_ADDRESS},
    {"1.2.3.4\n", RS_ERROR_INVALID_ADDRESS},
    {"1..2.3", RS_ERROR_INVALID_ADDRESS},
    {".1.2.3", RS_ERROR_INVALID_ADDRESS},
    {".1.2.3.4", RS_ERROR_INVALID_ADDRESS},
    {"1.2.3.", RS_ERROR_INVALID_ADDRESS},
    {"1.2.3.4.", RS_ERROR_INVALID_ADDRESS},
    {"+1.2.3.4", RS_ERROR_INVALID_ADDRESS},
    {"-1.2.3.4", RS_ERROR_INVALID_ADDRESS},
    {"1.2.3.-4", RS_ERROR_INVALID_ADDRESS},
    {"0x1.2.3.4", RS_ERROR_INVALID_ADDRESS},
    {"0x7f.0.0.1", RS_ERROR_INVALID_ADDRESS},
    {"a.b.c.d", RS_ERROR_INVALID_ADDRESS},
    {"1.2.3.4x", RS_ERROR_INVALID_ADDRESS},
    {"1.2.3.4/24", RS_ERROR_INVALID_ADDRESS},
    {"1.2.3.4:80", RS_ERROR_INVALID_ADDRESS},
    {"1,2,3,4", RS_ERROR_INVALID_ADDRESS},
    /* Shorthand forms inet_aton accepts. */
    {"127.1", RS_ERROR_INVALID_ADDRESS},
    {"2130706433", RS_ERROR_INVALID_ADDRESS},
    {"::1", RS_ERROR_INVALID_ADDRESS},
    {"localhost", RS_ERROR_INVALID_ADDRESS},
};

struct ipv6_valid {
    const char *text;
    uint8_t bytes[16];
};

static const struct ipv6_valid ipv6_valid[] = {
    {"::", {0}},
    {"0:0:0:0:0:0:0:0", {0}},
    {"::1", {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}},
    {"1::", {0, 1}},
    {"1:2:3:4:5:6:7:8", {0, 1, 0, 2, 0, 3, 0, 4, 0, 5, 0, 6, 0, 7, 0, 8}},
    {"2001:db8::1", {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}},
    {"2001:DB8:0:0:8:800:200C:417A",
     {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 8, 8, 0, 0x20, 0x0c, 0x41, 0x7a}},
    {"FF01::101", {0xff, 0x01, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0x01}},
    {"fe80::1", {0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}},
    {"abcd:EF01::", {0xab, 0xcd, 0xef, 0x01}},
    {"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
     {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
      0xff}},
    {"0001:0002:0003:0004:0005:0006:0007:0008", {0, 1, 0, 2, 0, 3, 0, 4, 0, 5, 0, 6, 0, 7, 0, 8}},
    /* "::" for exactly one group, at the end, the start and the middle. */
    {"1:2:3:4:5:6:7::", {0, 1, 0, 2, 0, 3, 0, 4, 0, 5, 0, 6, 0, 7, 0, 0}},
    {"::2:3:4:5:6:7:8", {0, 0, 0, 2, 0, 3, 0, 4, 0, 5, 0, 6, 0, 7, 0, 8}},
    {"1:2:3::5:6:7:8", {0, 1, 0, 2, 0, 3, 0, 0, 0, 5, 0, 6, 0, 7, 0, 8}},
    {"1::8", {0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 8}},
    {"1:2::7:8", {0, 1, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7, 0, 8}},
    {"::ffff:1.2.3.4", {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 1, 2, 3, 4}},
    {"::ffff:0.0.0.0", {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 0, 0}},
    {"::ffff:255.255.255.255", {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}},
    {"::1.2.3.4", {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4}},
    {"1::1.2.3.4", {0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4}},
    {"1:2:3:4:5:6:1.2.3.4", {0, 1, 0, 2, 0, 3, 0, 4, 0, 5, 0, 6, 1, 2, 3, 4}},
    {"64:ff9b::192.0.2.33", {0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0, 192, 0, 2, 33}},
};

static const struct invalid ipv6_invalid[] = {
    {"", RS_ERROR_INVALID_ADDRESS},
    {":", RS_ERROR_INVALID_ADDRESS},
    {":::", RS_ERROR_INVALID_ADDRESS},
    {":::1", RS_ERROR_INVALID_ADDRESS},
    {"1:::2", RS_ERROR_INVALID_ADDRESS},
    {"1:2:3:4:5:6:7", RS_ERROR_INVALID_ADDRESS},
    {"1:2:3:4:5:6:7:8:9", RS_ERROR_INVALID_ADDRESS},
    {"1::2::3", RS_ERROR_INVALID_ADDRESS},
    {"::1::", RS_ERROR_INVALID_ADDRESS},
    /* "::" must stand for at least one group. */
    {"1:2:3:4::5:6:7:8", RS_ERROR_INVALID_ADDRESS},
    {"1:2:3:4:5:6:7:8::", RS_ERROR_INVALID_ADDRESS},
    {"::1:2:3:4:5:6:7:8", RS_ERROR_INVALID_ADDRESS},
    {"1:2:3:4:5:6::1.2.3.4", RS_ERROR_INVALID_ADDRESS},
    {"12345::", RS_ERROR_INVALID_ADDRESS},
    {"g::", RS_ERROR_INVALID_ADDRESS},
    {"::g", RS_ERROR_INVALID_ADDRESS},
    {"[::1]", RS_ERROR_INVALID_ADDRESS},
    {"fe80::1%1", RS_ERROR_INVALID_ADDRESS},
    {"fe80::1%eth0", RS_ERROR_INVALID_ADDRESS},
    {":1::", RS_ERROR_INVALID_ADDRESS},
    {"1::2:", RS_ERROR_INVALID_ADDRESS},
    {":1:2:3:4:5:6:7:8", RS_ERROR_INVALID_ADDRESS},
    {"1:2:3:4:5:6:7:8:", RS_ERROR_INVALID_ADDRESS},
    {" ::1", RS_ERROR_INVALID_ADDRESS},
    {"::1 ", RS_ERROR_INVALID_ADDRESS},
    {"1 ::", RS_ERROR_INVALID_ADDRESS},
    {"0x1::", RS_ERROR_INVALID_ADDRESS},
    {"-1::", RS_ERROR_INVALID_ADDRESS},
    {"::1/128", RS_ERROR_INVALID_ADDRESS},
    {"1.2.3.4", RS_ERROR_INVALID_ADDRESS},
    {"1.2.3.4::", RS_ERROR_INVALID_ADDRESS},
    /* The embedded dotted quad is as strict as a plain one, and comes last. */
    {"::ffff:1.2.3", RS_ERROR_INVALID_ADDRESS},
    {"::ffff:01.2.3.4", RS_ERROR_INVALID_ADDRESS},
    {"::ffff:256.1.1.1", RS_ERROR_INVALID_ADDRESS},
    {"::ffff:1.2.3.4.", RS_ERROR_INVALID_ADDRESS},
    {"::1.2.3.4:1", RS_ERROR_INVALID_ADDRESS},
    {"::1.2.3.4::", RS_ERROR_INVALID_ADDRESS},
    {"1:2:3:4:5:6:7:1.2.3.4", RS_ERROR_INVALID_ADDRESS},
    {"1:2:3:4:5:1.2.3.4", RS_ERROR_INVALID_ADDRESS},
    {"1:2:3:4:5:6:1.2.3.4.5", RS_ERROR_INVALID_ADDRESS},
};

static void print_bytes(char *buf, size_t size, const uint8_t *bytes, size_t n)
{
    buf[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        size_t used = strlen(buf);
        snprintf(buf + used, size - used, "%s%02x", i ? " " : "", bytes[i]);
    }
}

typedef int(parse_fn)(const char *text, uint8_t *out);

/* Parses text, which must succeed with exactly the expected n bytes, and
 * leave the last error alone. */
static void check_valid(parse_fn *parse, const char *family, const char *text,
                        const uint8_t *expected, size_t n)
{
    uint8_t out[16];
    memset(out, 0xa5, sizeof out);
    rs_raise(RS_ERROR_TIMEOUT);
    if (parse(text, out) != 0) {
        fail_msg("%s \"%s\" rejected with %s", family, text, rs_error_name(rs_last_error()));
    }
    assert_int_equal(rs_last_error(), RS_ERROR_TIMEOUT);
    if (memcmp(out, expected, n) != 0) {
        char got[64];
        char want[64];
        print_bytes(got, sizeof got, out, n);
        print_bytes(want, sizeof want, expected, n);
        fail_msg("%s \"%s\" parsed to %s, expected %s", family, text, got, want);
    }
}

/* Parses text, which must fail with exactly code and leave out untouched. */
static void check_invalid(parse_fn *parse, const char *family, const struct invalid *row)
{
    uint8_t out[16];
    memset(out, 0xa5, sizeof out);
    rs_raise(RS_ERROR_SUCCESS);
    int rc = parse(row->text, out);
    if (rc != -1 || rs_last_error() != row->code) {
        fail_msg("%s \"%s\": rc %d, %s, expected %s", family, row->text, rc,
                 rs_error_name(rs_last_error()), rs_error_name(row->code));
    }
    for (size_t i = 0; i < sizeof out; i++) {
        assert_int_equal(out[i], 0xa5);
    }
}

static int parse_ipv4(const char *text, uint8_t *out)
{
    return rs_parse_ipv4_address(text, out);
}

static int parse_ipv6(const char *text, uint8_t *out)
{
    return rs_parse_ipv6_address(text, out);
}

static void test_sk23_address_parsing_tables(void **state)
{
    (void)state;
    for (size_t i = 0; i < RS__ARRAY_LEN(ipv4_valid); i++) {
        check_valid(parse_ipv4, "IPv4", ipv4_valid[i].text, ipv4_valid[i].bytes, 4);
    }
    for (size_t i = 0; i < RS__ARRAY_LEN(ipv4_invalid); i++) {
        check_invalid(parse_ipv4, "IPv4", &ipv4_invalid[i]);
    }
    for (size_t i = 0; i < RS__ARRAY_LEN(ipv6_valid); i++) {
        check_valid(parse_ipv6, "IPv6", ipv6_valid[i].text, ipv6_valid[i].bytes, 16);
    }
    for (size_t i = 0; i < RS__ARRAY_LEN(ipv6_invalid); i++) {
        check_invalid(parse_ipv6, "IPv6", &ipv6_invalid[i]);
    }
}

/* ---- SK33 (validation part): NULLs, unknown values, unterminated names ---- */

static void test_sk33_validation_bad_input(void **state)
{
    (void)state;
    uint8_t out[16];
    memset(out, 0xa5, sizeof out);
    assert_fails_with(rs_parse_ipv4_address(NULL, out), RS_ERROR_INVALID_ARGUMENT);
    assert_fails_with(rs_parse_ipv4_address("1.2.3.4", NULL), RS_ERROR_INVALID_ARGUMENT);
    assert_fails_with(rs_parse_ipv6_address(NULL, out), RS_ERROR_INVALID_ARGUMENT);
    assert_fails_with(rs_parse_ipv6_address("::1", NULL), RS_ERROR_INVALID_ARGUMENT);
    for (size_t i = 0; i < sizeof out; i++) {
        assert_int_equal(out[i], 0xa5);
    }

    /* A domain outside the enum is an argument error, not a port error. */
    rs_socket_domain unknown = (rs_socket_domain)(RS_SOCKET_LOCAL + 1);
    assert_fails_with(rs_socket_validate_port_for_connect(80, unknown), RS_ERROR_INVALID_ARGUMENT);
    assert_fails_with(rs_socket_validate_port_for_bind(80, unknown), RS_ERROR_INVALID_ARGUMENT);
    unknown = (rs_socket_domain)1000;
    assert_fails_with(rs_socket_validate_port_for_connect(0, unknown), RS_ERROR_INVALID_ARGUMENT);
    assert_fails_with(rs_socket_validate_port_for_bind(0, unknown), RS_ERROR_INVALID_ARGUMENT);

    /* An interface name that fills its whole buffer has no NUL within the
     * limit: the check must not read past it. */
    char unterminated[RS_NETWORK_INTERFACE_NAME_MAX];
    memset(unterminated, 'a', sizeof unterminated);
    assert_false(rs_is_network_interface_name_valid(unterminated));
    /* The longest name that fits, but no such interface. */
    char longest[RS_NETWORK_INTERFACE_NAME_MAX];
    memset(longest, 'z', sizeof longest - 1);
    longest[sizeof longest - 1] = '\0';
    assert_false(rs_is_network_interface_name_valid(longest));

    /* Successful validation leaves the last error alone. */
    rs_raise(RS_ERROR_TIMEOUT);
    assert_int_equal(rs_socket_validate_port_for_connect(443, RS_SOCKET_IPV6), 0);
    assert_int_equal(rs_socket_validate_port_for_bind(0, RS_SOCKET_IPV4), 0);
    assert_int_equal(rs_parse_ipv4_address("1.2.3.4", out), 0);
    assert_int_equal(rs_parse_ipv6_address("::1", out), 0);
    assert_int_equal(rs_last_error(), RS_ERROR_TIMEOUT);
}

/* The internal formatter is the parser's inverse, for every byte value in
 * every position (and a sweep of whole addresses). */
static void test_sk23_ipv4_format_round_trip(void **state)
{
    (void)state;
    for (unsigned v = 0; v < 256; v++) {
        for (int pos = 0; pos < 4; pos++) {
            uint8_t in[4] = {10, 0, 0, 1};
            in[pos] = (uint8_t)v;
            char text[16];
            size_t n = rs__format_ipv4(in, text);
            assert_int_equal(n, strlen(text));
            uint8_t back[4];
            assert_int_equal(rs_parse_ipv4_address(text, back), 0);
            assert_memory_equal(in, back, 4);
        }
    }
    char text[16];
    const uint8_t widest[4] = {255, 255, 255, 255};
    assert_int_equal(rs__format_ipv4(widest, text), 15);
    assert_string_equal(text, "255.255.255.255");
    const uint8_t narrowest[4] = {0, 0, 0, 0};
    assert_int_equal(rs__format_ipv4(narrowest, text), 7);
    assert_string_equal(text, "0.0.0.0");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_sk5_interface_name_validation, rs_test_setup_library,
                                        rs_test_teardown_library),
        cmocka_unit_test_setup_teardown(test_sk22_port_validation_matrix, rs_test_setup_library,
                                        rs_test_teardown_library),
        cmocka_unit_test_setup_teardown(test_sk23_address_parsing_tables, rs_test_setup_library,
                                        rs_test_teardown_library),
        cmocka_unit_test(test_sk23_ipv4_format_round_trip),
        cmocka_unit_test_setup_teardown(test_sk33_validation_bad_input, rs_test_setup_library,
                                        rs_test_teardown_library),
    };
    return RS_TEST_MAIN("socket_validation", tests);
}
