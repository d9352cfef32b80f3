/*
 * pipe_relay: a pipe between two event loops. Loop A writes a generated
 * stream into the pipe; loop B, which owns the read end, checks every byte
 * (content and order) and reports the throughput.
 *
 *   pipe_relay [--bytes N] [--chunk N] [--timeout-ms N] [--help]
 *
 * The writer keeps a few writes in flight and refills each one from its
 * completion; the reader drains the pipe on each readable event, as the
 * edge-triggered rule asks. Closing the write end after the last byte is
 * what tells the reader the stream is complete (RS_ERROR_BROKEN_PIPE).
 */
#include <reseau/reseau.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Writes in flight at once: the pipe always has something queued while a
 * completion is being handled. */
#define IN_FLIGHT 4

/* The byte at offset i of the stream. 251 is prime, so a byte dropped,
 * repeated or moved by any power-of-two chunk size changes what is seen. */
static unsigned char stream_byte(uint64_t i)
{
    return (unsigned char)(i % 251 + (i >> 20));
}

/* One write in flight; the buffer stays valid until its completion. */
struct slot {
    unsigned char *bytes;
    size_t len;
};

/* Writer state belongs to loop A, reader state to loop B. */
static struct {
    rs_event_loop *loop_a;
    rs_event_loop *loop_b;
    uint64_t total;
    size_t chunk;
    uint64_t start_ns;

    /* loop A */
    rs_pipe_write_end *write_end;
    struct slot slots[IN_FLIGHT];
    uint64_t written; /* bytes handed to the pipe so far */
    int in_flight;
    int write_error;

    /* loop B */
    rs_pipe_read_end *read_end;
    unsigned char *read_buf;
    uint64_t read;
    uint64_t elapsed_ns;
    rs_task deadline;
    bool reader_done;
    int read_error;
} relay;

/* ---- loop A: the writer ---- */

static void on_write_end_gone(void *user_data)
{
    (void)user_data;
    rs_event_loop_stop(relay.loop_a);
}

static void on_written(rs_pipe_write_end *write_end, int error_code, size_t bytes, void *user_data);

static void write_slot(struct slot *s)
{
    uint64_t left = relay.total - relay.written;
    s->len = left < relay.chunk ? (size_t)left : relay.chunk;
    for (size_t i = 0; i < s->len; i++) {
        s->bytes[i] = stream_byte(relay.written + i);
    }
    if (rs_pipe_write(relay.write_end, s->bytes, s->len, on_written, s) != 0) {
        relay.write_error = rs_last_error();
        return;
    }
    relay.written += s->len;
    relay.in_flight++;
}

static void on_written(rs_pipe_write_end *write_end, int error_code, size_t bytes, void *user_data)
{
    (void)write_end;
    struct slot *s = user_data;
    relay.in_flight--;
    if (error_code == 0 && bytes != s->len) {
        error_code = RS_ERROR_UNKNOWN;
    }
    if (error_code != 0 && relay.write_error == 0) {
        relay.write_error = error_code;
    }
    if (relay.write_error == 0 && relay.written < relay.total) {
        write_slot(s);
    }
    /* Closed only once nothing is in flight, so every byte written reaches
     * the reader before it sees the end. */
    if (relay.in_flight == 0) {
        rs_pipe_clean_up_write_end(relay.write_end, on_write_end_gone, NULL);
    }
}

static void start_writing(rs_task *task, void *arg, rs_task_status status)
{
    (void)task;
    (void)arg;
    if (status != RS_TASK_STATUS_RUN) {
        return;
    }
    for (int i = 0; i < IN_FLIGHT && relay.write_error == 0 && relay.written < relay.total; i++) {
        write_slot(&relay.slots[i]);
    }
    if (relay.in_flight == 0) {
        rs_pipe_clean_up_write_end(relay.write_end, on_write_end_gone, NULL);
    }
}

/* ---- loop B: the reader ---- */

static void on_read_end_gone(void *user_data)
{
    (void)user_data;
    rs_event_loop_stop(relay.loop_b);
}

/* Ends reading: cleaning up the read end also makes the writer's pending
 * writes fail with RS_ERROR_BROKEN_PIPE, so loop A stops too. */
static void reader_finish(int error_code)
{
    if (relay.reader_done) {
        return;
    }
    relay.reader_done = true;
    relay.read_error = error_code;
    relay.elapsed_ns = rs_event_loop_now(relay.loop_b) - relay.start_ns;
    rs_event_loop_cancel_task(relay.loop_b, &relay.deadline);
    rs_pipe_clean_up_read_end(relay.read_end, on_read_end_gone, NULL);
}

static void on_readable(rs_pipe_read_end *read_end, int error_code, void *user_data)
{
    (void)user_data;
    while (!relay.reader_done) {
        size_t n = 0;
        if (error_code != 0 || rs_pipe_read(read_end, relay.read_buf, relay.chunk, &n) != 0) {
            int err = error_code ? error_code : rs_last_error();
            if (err == RS_ERROR_WOULD_BLOCK) {
                return; /* drained: called again when more arrives */
            }
            if (err != RS_ERROR_BROKEN_PIPE) {
                fprintf(stderr, "pipe_relay: read failed: %s\n", rs_error_str(err));
                reader_finish(err);
            } else if (relay.read != relay.total) {
                fprintf(stderr, "pipe_relay: the stream ended after %llu of %llu bytes\n",
                        (unsigned long long)relay.read, (unsigned long long)relay.total);
                reader_finish(RS_ERROR_BROKEN_PIPE);
            } else {
                reader_finish(0);
            }
            return;
        }
        for (size_t i = 0; i < n; i++) {
            if (relay.read_buf[i] != stream_byte(relay.read + i)) {
                fprintf(stderr, "pipe_relay: wrong byte at offset %llu\n",
                        (unsigned long long)(relay.read + i));
                reader_finish(RS_ERROR_UNKNOWN);
                return;
            }
        }
        relay.read += n;
    }
}

static void start_reading(rs_task *task, void *arg, rs_task_status status)
{
    (void)task;
    (void)arg;
    if (status != RS_TASK_STATUS_RUN) {
        return;
    }
    if (rs_pipe_subscribe_to_readable_events(relay.read_end, on_readable, NULL) != 0) {
        fprintf(stderr, "pipe_relay: subscribe failed: %s\n", rs_error_str(rs_last_error()));
        reader_finish(rs_last_error());
    }
}

static void on_deadline(rs_task *task, void *arg, rs_task_status status)
{
    (void)task;
    (void)arg;
    if (status == RS_TASK_STATUS_RUN && !relay.reader_done) {
        fprintf(stderr, "pipe_relay: timed out after %llu of %llu bytes\n",
                (unsigned long long)relay.read, (unsigned long long)relay.total);
        reader_finish(RS_ERROR_TIMEOUT);
    }
}

/* ---- main ---- */

static int usage(FILE *out, int code)
{
    fprintf(out, "usage: pipe_relay [--bytes N] [--chunk N] [--timeout-ms N]\n"
                 "  --bytes N       bytes to relay, 1..1099511627776 (default 16777216)\n"
                 "  --chunk N       bytes per write and per read, 1..16777216 (default 65536)\n"
                 "  --timeout-ms N  give up after this long (default 60000)\n"
                 "  --help          this text\n");
    return code;
}

static bool parse_number(const char *flag, const char *text, unsigned long long min,
                         unsigned long long max, unsigned long long *out)
{
    char *end = NULL;
    unsigned long long value = strtoull(text, &end, 10);
    if (!*text || *text == '-' || *end || value < min || value > max) {
        fprintf(stderr, "pipe_relay: %s must be a number %llu..%llu, not '%s'\n", flag, min, max,
                text);
        return false;
    }
    *out = value;
    return true;
}

int main(int argc, char **argv)
{
    unsigned long long total = 16u << 20;
    unsigned long long chunk = 65536;
    unsigned long long timeout_ms = 60000;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        bool takes_value =
            !strcmp(arg, "--bytes") || !strcmp(arg, "--chunk") || !strcmp(arg, "--timeout-ms");
        if (!strcmp(arg, "--help")) {
            return usage(stdout, 0);
        } else if (!takes_value || i + 1 >= argc) {
            fprintf(stderr, "pipe_relay: %s '%s'\n",
                    takes_value ? "missing value after" : "unknown argument", arg);
            return usage(stderr, 2);
        }
        const char *value = argv[++i];
        bool ok = !strcmp(arg, "--bytes")   ? parse_number(arg, value, 1, 1ull << 40, &total)
                  : !strcmp(arg, "--chunk") ? parse_number(arg, value, 1, 16u << 20, &chunk)
                                            : parse_number(arg, value, 1, 3600000, &timeout_ms);
        if (!ok) {
            return 2;
        }
    }
    relay.total = total;
    relay.chunk = (size_t)chunk;

    if (rs_library_init() != 0) {
        fprintf(stderr, "pipe_relay: init failed: %s\n", rs_error_str(rs_last_error()));
        return 1;
    }
    int rc = 1;
    bool allocated = (relay.read_buf = malloc(relay.chunk)) != NULL;
    for (int i = 0; i < IN_FLIGHT; i++) {
        allocated = allocated && (relay.slots[i].bytes = malloc(relay.chunk)) != NULL;
    }
    if (!allocated) {
        fprintf(stderr, "pipe_relay: out of memory\n");
        goto out;
    }
    relay.loop_a = rs_event_loop_new(NULL);
    relay.loop_b = rs_event_loop_new(NULL);
    if (!relay.loop_a || !relay.loop_b || rs_event_loop_run(relay.loop_a) != 0 ||
        rs_event_loop_run(relay.loop_b) != 0 ||
        rs_pipe_new(relay.loop_b, &relay.read_end, relay.loop_a, &relay.write_end) != 0) {
        fprintf(stderr, "pipe_relay: %s\n", rs_error_str(rs_last_error()));
        goto out;
    }
    printf("pipe_relay: %llu bytes from loop A to loop B in %zu-byte chunks (%s backend)\n", total,
           relay.chunk, rs_backend_name());
    fflush(stdout);

    /* Each end is used on its own loop's thread, so the work starts there.
     * The loops stop themselves once their end is cleaned up. */
    rs_task reader;
    rs_task writer;
    rs_task_init(&reader, start_reading, NULL, "start reading");
    rs_task_init(&writer, start_writing, NULL, "start writing");
    rs_task_init(&relay.deadline, on_deadline, NULL, "relay deadline");
    relay.start_ns = rs_event_loop_now(relay.loop_b);
    rs_event_loop_schedule_at(relay.loop_b, &relay.deadline,
                              relay.start_ns + (uint64_t)timeout_ms * 1000000u);
    rs_event_loop_schedule_now(relay.loop_b, &reader);
    rs_event_loop_schedule_now(relay.loop_a, &writer);
    rs_event_loop_wait_for_stop(relay.loop_a);
    rs_event_loop_wait_for_stop(relay.loop_b);

    if (relay.read_error == 0 && relay.write_error == 0) {
        double seconds = (double)relay.elapsed_ns / 1e9;
        printf("pipe_relay: %llu bytes checked in %.3f s: %.1f MiB/s\n",
               (unsigned long long)relay.read, seconds,
               seconds > 0 ? (double)relay.read / (1024.0 * 1024.0) / seconds : 0.0);
        rc = 0;
    } else if (relay.write_error != 0 && relay.read_error == 0) {
        fprintf(stderr, "pipe_relay: write failed: %s\n", rs_error_str(relay.write_error));
    }
out:
    if (relay.loop_a) {
        rs_event_loop_destroy(relay.loop_a);
    }
    if (relay.loop_b) {
        rs_event_loop_destroy(relay.loop_b);
    }
    free(relay.read_buf);
    for (int i = 0; i < IN_FLIGHT; i++) {
        free(relay.slots[i].bytes);
    }
    rs_library_cleanup();
    return rc;
}
