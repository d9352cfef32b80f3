/*
 * The udp workloads' window accounting (bench.h, bench_udp_arrived): a
 * window given up as lost after a stall whose datagrams then arrive after
 * all must leave the sender free to send the next window, and the run must
 * end once every datagram is accounted for.
 */
#include "bench.h"

#include <stdio.h>
#include <stdlib.h>

#define WINDOW 64u
#define DATAGRAMS 1000u

static void check(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "FAILED: %s\n", what);
        exit(1);
    }
}

/* The pump's test in every implementation. */
static uint64_t room(uint64_t sent, uint64_t received, uint64_t lost)
{
    uint64_t in_flight = sent - received - lost;
    return in_flight < WINDOW ? WINDOW - in_flight : 0;
}

int main(void)
{
    uint64_t sent = 0, received = 0, lost = 0;
    unsigned late_windows = 0;
    for (unsigned round = 0; received + lost < DATAGRAMS && round < 10 * DATAGRAMS; round++) {
        uint64_t n = room(sent, received, lost);
        if (sent + n > DATAGRAMS) {
            n = DATAGRAMS - sent;
        }
        sent += n;
        if (round % 3 == 1) {
            /* A stall period without an arrival: the window is given up
             * (the stall check's own arithmetic), then its datagrams come. */
            uint64_t late = sent - received - lost;
            lost = sent - received;
            for (uint64_t i = 0; i < late; i++) {
                bench_udp_arrived(sent, &received, &lost);
                check(received + lost <= sent, "received + lost stays within sent");
            }
            late_windows++;
        } else {
            while (received + lost < sent) {
                bench_udp_arrived(sent, &received, &lost);
            }
        }
        check(sent - received - lost <= WINDOW, "the count in flight never wraps");
    }
    check(received + lost == DATAGRAMS, "the run ends with every datagram accounted for");
    check(received == DATAGRAMS && lost == 0, "late datagrams are counted received, not lost");
    check(late_windows > 0, "late windows were exercised");

    /* A window that never arrives stays lost. */
    sent = 10, received = 4, lost = 0;
    lost = sent - received;
    check(room(sent, received, lost) == WINDOW, "a lost window frees the sender");
    bench_udp_arrived(sent, &received, &lost);
    check(received == 5 && lost == 5, "one late arrival takes back one loss");

    printf("udp accounting: ok\n");
    return 0;
}
