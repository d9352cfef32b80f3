/*
 * libevent backend, socket I/O: the readiness callback of the socket's one
 * edge-triggered registration, the accept loop, reads and the write queue.
 *
 * Edge-triggered readiness means every path that stops early must leave
 * itself a way back: the write queue sends until EAGAIN and resumes on the
 * next EV_WRITE edge, and readable callbacks are repeated by common/ after a
 * read that filled the buffer. Listeners are the exception: level-triggered,
 * one accept per callback (accept_one).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* accept4, MSG_TRUNC */
#endif
#include "le_socket.h"
#include "le_sys.h"

#include "../../common/address.h"
#include "../../common/alloc.h"
#include "../../common/error.h"
#include "../../common/log.h"

#include <errno.h>
#include <limits.h>
#include <string.h>

#ifndef MSG_NOSIGNAL
#define MSG_NOSIGNAL 0 /* SO_NOSIGPIPE is set on the descriptor instead */
#endif

#if defined(__linux__) || defined(__FreeBSD__) || defined(__NetBSD__) || defined(__OpenBSD__)
#define HAVE_ACCEPT4 1
#else
#define HAVE_ACCEPT4 0
#endif

/* sendmmsg(2): Linux and FreeBSD (12 and later) have it. */
#if defined(__linux__) || defined(__FreeBSD__)
#define HAVE_SENDMMSG 1
#else
#define HAVE_SENDMMSG 0
#endif
/* Datagrams one sendmmsg(2) carries. */
#define DGRAM_BATCH 64

/* How many buffers (queued writes, or buffers of a vectored write) one
 * sendmsg gathers: well under IOV_MAX (1024 on Linux); a vectored write of
 * more buffers goes in several calls, in order. */
#define WRITE_BATCH 64

/*
 * The most bytes one sendmsg(2) is offered. The kernel takes at most about
 * the socket's send buffer per call (Linux grows it up to tcp_wmem's 4 MiB
 * maximum by default; a Unix socket's is about 200 KiB), so offering more
 * buys nothing, while memcheck (valgrind) checks every byte offered on every
 * call: a 64 MiB write offered whole to each of its calls made the cost grow
 * with the square of the size. Gathered writes of ordinary sizes (64 x
 * 64 KiB) stay under the cap and keep their single call.
 */
#define WRITE_MAX_BYTES (4u << 20)

/* ---- connect ---- */

static void finish_connect(rs_socket *s)
{
    struct le_socket *le = s->impl;
    int err = rs__backend_socket_get_error(s);
    if (err == 0) {
        struct sockaddr_storage ss;
        socklen_t len = sizeof ss;
        if (!le->peer_known && s->options.domain != RS_SOCKET_LOCAL &&
            getpeername(le->fd, (struct sockaddr *)&ss, &len) != 0) {
            err = rs__le_error_from_errno(errno);
        } else if (s->options.domain == RS_SOCKET_LOCAL) {
            /* A Unix socket's name (a path, or none) is read now: it is no
             * IP address that rs__backend_socket_resolve_local could return. */
            err = rs__le_set_local_from_fd(s, le->fd) != 0 ? rs__last_error() : 0;
        } else {
            /* Read from the OS when first asked for (rs__backend_socket_resolve_local). */
            rs__socket_set_local_lazy(s);
            if (!le->peer_known) {
                rs__socket_set_remote(s, (const struct sockaddr *)&ss, (size_t)len);
            }
        }
    }
    if (err != 0) {
        rs__le_close_os(s);
    }
    rs__socket_connect_done(s, err);
}

/* ---- accept ---- */

/* The options are applied to the descriptor before the socket exists, so
 * that a refusal needs no socket to be taken apart. */
static rs_socket *wrap_accepted(rs_socket *listener, int fd, const struct sockaddr_storage *ss,
                                socklen_t len)
{
    /* The accepted socket inherits the listener's interface binding, and
     * Linux refuses to bind an already bound socket again without
     * CAP_NET_RAW: apply the other options only. */
    rs_socket_options options = listener->options;
    options.network_interface_name[0] = '\0';
    rs_socket *s = NULL;
    if (rs__le_prepare_fd(fd, HAVE_ACCEPT4 || RS_LE_SOCKETS_COME_READY) != 0 ||
        rs__le_apply_options(fd, &options) != 0 || !(s = rs__socket_new_accepted(listener, NULL))) {
        close(fd);
        return NULL;
    }
    struct le_socket *le = rs__socket_impl_room(s);
    le->fd = fd;
    le->writable = true;
    s->impl = le;
    /* The local address is common/'s (the listener's, or read when first
     * asked for); a Unix socket's peer is the listener's path (common/). */
    if (s->options.domain != RS_SOCKET_LOCAL) {
        rs__socket_set_remote(s, (const struct sockaddr *)ss, (size_t)len);
    }
    return s;
}

/* A connection accepted after accepting stopped: closed unreported. */
static void discard_accepted(rs_socket *s)
{
    /* The record goes with the socket (its room): the descriptor first. */
    int fd = ((struct le_socket *)s->impl)->fd;
    rs__socket_discard_accepted(s);
    close(fd);
}

/* accept(2) failures that concern the pending connection, not the
 * listener: ECONNABORTED (the client gave up before the accept), EPERM
 * (a firewall refused it), and the network errors Linux passes on from the
 * new connection, which accept(2)'s manual says to treat like EAGAIN by
 * retrying. */
static bool fails_connection_only(int err)
{
    switch (err) {
    case ECONNABORTED:
    case ECONNRESET:
    case EPROTO:
    case EPERM:
    case ENETDOWN:
    case ENETUNREACH:
    case ENOPROTOOPT:
    case EHOSTDOWN:
    case EHOSTUNREACH:
    case EOPNOTSUPP:
    case ETIMEDOUT:
#ifdef ENONET
    case ENONET:
#endif
        return true;
    default:
        return false;
    }
}

/* Out of descriptors or kernel memory: the connection stays queued, and
 * since the listener is level-triggered, every poll would report it again
 * at once (a busy loop until a descriptor frees up). */
static bool fails_for_shortage(int err)
{
    return err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM;
}

/* Connections skipped in one readiness callback before the others get their
 * turn; the next poll reports the listener again if more are queued. */
#define MAX_SKIPPED_PER_CALLBACK 16

/*
 * Accepts one connection per readiness callback. The listener's event is
 * level-triggered (unlike the other sockets'), so connections still queued
 * are reported again by the next poll, after the other ready descriptors
 * had their turn; a listener that drained its backlog to EAGAIN would spend
 * one failing accept4(2) on every connection that arrives alone (nginx's
 * default, multi_accept off, for the same reason). A burst costs one loop
 * iteration per connection instead.
 */
static void accept_one(rs_socket *listener)
{
    struct le_socket *le = listener->impl;
    for (int skipped = 0; skipped < MAX_SKIPPED_PER_CALLBACK;) {
        struct sockaddr_storage ss;
        socklen_t len = sizeof ss;
#if HAVE_ACCEPT4
        int fd = accept4(le->fd, (struct sockaddr *)&ss, &len, SOCK_CLOEXEC | SOCK_NONBLOCK);
#else
        int fd = accept(le->fd, (struct sockaddr *)&ss, &len);
#endif
        if (fd < 0) {
            int err = errno;
            if (err == EAGAIN || err == EWOULDBLOCK) {
                return;
            }
            if (err == EINTR) {
                continue;
            }
            if (fails_connection_only(err)) {
                RS__LOG(RS_LOG_DEBUG, "pending connection lost before its accept: %s",
                        strerror(err));
                skipped++;
                continue;
            }
            int code = rs__le_error_from_errno(err);
            if (fails_for_shortage(err)) {
                /* Off the poll until the retry (common/ re-adds it through
                 * rs__backend_socket_start_accept). */
                rs__backend_socket_stop_accept(listener);
                rs__socket_accept_back_off(listener);
            } else if (rs__accept_error_kind(code) == RS__ACCEPT_ERROR_LISTENER) {
                rs__backend_socket_stop_accept(listener); /* accepting ends */
            }
            if (rs__socket_accepting(listener)) {
                rs__socket_accepted(listener, code, NULL);
            }
            return;
        }
        rs__socket_accept_shortage_over(listener);
        rs_socket *s = wrap_accepted(listener, fd, &ss, len);
        if (!s) {
            RS__LOG(RS_LOG_WARN, "accepted connection dropped: %s",
                    rs__error_name(rs__last_error()));
            return;
        }
        if (rs__socket_accepting(listener)) {
            rs__socket_accepted(listener, 0, s);
        } else {
            discard_accepted(s);
        }
        return;
    }
}

int rs__backend_socket_start_accept(rs_socket *socket)
{
    struct le_socket *le = socket->impl;
    /* Connections that queued up while accepting was stopped are reported
     * by the next poll (level-triggered), never inside start_accept. */
    if (!le->event) {
        struct event *ev = (struct event *)le->event_storage;
        if (event_add(ev, NULL) != 0) {
            return rs__raise(RS_ERROR_SYS_CALL_FAILURE);
        }
        le->event = ev;
    }
    return 0;
}

void rs__backend_socket_stop_accept(rs_socket *socket)
{
    struct le_socket *le = socket->impl;
    if (le->event) {
        event_del(le->event);
        le->event = NULL;
    }
}

/* ---- one-shot events (without edge triggering, le_socket.h) ---- */

#if !RS_LE_EDGE_TRIGGERED
int rs__le_socket_want_write(struct le_socket *le)
{
    if (!le->write_armed && le->event) {
        if (event_add(rs__le_socket_write_event(le), NULL) != 0) {
            return rs__raise(RS_ERROR_SYS_CALL_FAILURE);
        }
        le->write_armed = true;
    }
    return 0;
}

void rs__le_socket_want_read(struct le_socket *le)
{
    /* Cannot fail for an event already assigned on a select-based base
     * (event_add only grows the descriptor sets, which libevent allocates
     * up front for each added socket); if it did, reads from a task still
     * find the data. */
    if (!le->read_armed && le->event && event_add(le->event, NULL) == 0) {
        le->read_armed = true;
    }
}
#endif

/* The kernel has no room: wait for the write event. */
static void want_write(rs_socket *s)
{
#if RS_LE_EDGE_TRIGGERED
    (void)s; /* the edge comes by itself */
#else
    if (rs__le_socket_want_write(s->impl) != 0) {
        rs__le_socket_fail_writes(s, rs__last_error());
    }
#endif
}

/* A read drained the socket: the next arrival is a new sign of data. */
static void drained(rs_socket *s)
{
#if RS_LE_EDGE_TRIGGERED
    (void)s; /* the edge comes by itself */
#else
    rs__le_socket_want_read(s->impl);
#endif
}

/* ---- write queue ---- */

static struct rs__socket_write *pop_write(struct le_socket *le)
{
    struct rs__socket_write *req = le->write_head;
    le->write_head = req->next;
    if (!le->write_head) {
        le->write_tail = NULL;
    }
    req->next = NULL;
    return req;
}

void rs__le_socket_fail_writes(rs_socket *socket, int error_code)
{
    struct le_socket *le = socket->impl;
    while (le->write_head) {
        rs__socket_write_done(pop_write(le), error_code);
    }
}

/* Adds the unsent bytes of req to iov (from *count, at most WRITE_BATCH
 * entries and *room bytes). */
static void gather(const struct rs__socket_write *req, struct iovec *iov, size_t *count,
                   size_t *room)
{
    if (!req->bufs) {
        size_t len = req->len - req->written;
        if (len > *room) {
            len = *room;
        }
        iov[*count].iov_base = (void *)(req->data + req->written);
        iov[*count].iov_len = len;
        (*count)++;
        *room -= len;
        return;
    }
    size_t off = req->buf_off;
    for (size_t i = req->buf_index; i < req->nbufs && *count<WRITE_BATCH && * room> 0; i++) {
        size_t len = req->bufs[i].len - off;
        if (len > *room) {
            len = *room;
        }
        iov[*count].iov_base = (void *)((const unsigned char *)req->bufs[i].base + off);
        iov[*count].iov_len = len;
        (*count)++;
        *room -= len;
        off = 0;
    }
}

/* One sendmsg(2) of the queued stream bytes, gathering up to WRITE_BATCH
 * buffers and WRITE_MAX_BYTES; a lone single-buffer write (request/response
 * traffic) skips the gathering loop. */
static ssize_t send_queued(struct le_socket *le)
{
    struct rs__socket_write *head = le->write_head;
    struct iovec iov[WRITE_BATCH];
    size_t room = WRITE_MAX_BYTES;
    size_t count = 0;
    gather(head, iov, &count, &room);
    for (struct rs__socket_write *req = head->next; req && count < WRITE_BATCH && room > 0;
         req = req->next) {
        gather(req, iov, &count, &room);
    }
    struct msghdr msg = {.msg_iov = iov, .msg_iovlen = count};
    return rs__le_sendmsg(le->fd, &msg, MSG_NOSIGNAL);
}

/* Sends queued stream bytes until the queue is empty or the kernel is full. */
static void flush_stream(rs_socket *s)
{
    struct le_socket *le = s->impl;
    while (le->write_head && le->writable) {
        ssize_t n = send_queued(le);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                le->writable = false; /* resume on the next EV_WRITE edge */
                want_write(s);
                return;
            }
            rs__le_socket_fail_writes(s, rs__le_error_from_errno(errno));
            return;
        }
        size_t left = (size_t)n;
        while (left > 0) {
            struct rs__socket_write *req = le->write_head;
            size_t take = req->len - req->written;
            if (take > left) {
                take = left;
            }
            rs__socket_write_advance(req, take);
            left -= take;
            if (req->written == req->len) {
                rs__socket_write_done(pop_write(le), 0);
            }
        }
    }
}

#if defined(IOV_MAX) && IOV_MAX < RS_SOCKET_WRITE_VEC_DGRAM_MAX
#error "a datagram of RS_SOCKET_WRITE_VEC_DGRAM_MAX buffers needs IOV_MAX of them"
#endif

/* One datagram gathered from the buffers of a vectored write (common/
 * bounds their count by RS_SOCKET_WRITE_VEC_DGRAM_MAX). Its own function:
 * the array is too big for the frame of every datagram send. */
static ssize_t send_dgram_vec(int fd, const struct rs__socket_write *req)
{
    struct iovec iov[RS_SOCKET_WRITE_VEC_DGRAM_MAX];
    for (size_t i = 0; i < req->nbufs; i++) {
        iov[i].iov_base = (void *)req->bufs[i].base;
        iov[i].iov_len = req->bufs[i].len;
    }
    struct msghdr msg = {.msg_iov = iov, .msg_iovlen = req->nbufs};
    return rs__le_sendmsg(fd, &msg, MSG_NOSIGNAL);
}

#if HAVE_SENDMMSG
/* Sends the plain datagrams at the head of the queue (up to DGRAM_BATCH, up
 * to the first vectored one) with one sendmmsg(2). Returns how many were
 * sent, each completed; 0 when the first is vectored (the caller sends it
 * alone); -1 with errno when the first was not sent (sendmmsg reports an
 * error of a later datagram on the next call, which then starts with it). */
static int send_dgram_batch(rs_socket *s)
{
    struct le_socket *le = s->impl;
    struct mmsghdr msgs[DGRAM_BATCH];
    struct iovec iov[DGRAM_BATCH];
    unsigned count = 0;
    for (struct rs__socket_write *req = le->write_head; req && !req->bufs && count < DGRAM_BATCH;
         req = req->next) {
        iov[count].iov_base = (void *)req->data;
        iov[count].iov_len = req->len;
        memset(&msgs[count], 0, sizeof msgs[count]);
        msgs[count].msg_hdr.msg_iov = &iov[count];
        msgs[count].msg_hdr.msg_iovlen = 1;
        if (req->to_len) {
            msgs[count].msg_hdr.msg_name = (void *)req->to.u.bytes;
            msgs[count].msg_hdr.msg_namelen = req->to_len;
        }
        count++;
    }
    if (count == 0) {
        return 0;
    }
    int n = sendmmsg(le->fd, msgs, count, MSG_NOSIGNAL);
    for (int i = 0; i < n; i++) {
        struct rs__socket_write *req = pop_write(le);
        req->written = msgs[i].msg_len;
        rs__socket_write_done(req, 0);
    }
    return n;
}
#endif

/* One datagram per write; an error belongs to that datagram only. */
static void flush_dgram(rs_socket *s)
{
    struct le_socket *le = s->impl;
    while (le->write_head && le->writable) {
#if HAVE_SENDMMSG
        int sent = send_dgram_batch(s);
        if (sent > 0) {
            continue;
        }
        if (sent < 0) {
            if (errno == EINTR) {
                continue;
            }
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                le->writable = false;
                return;
            }
            rs__socket_write_done(pop_write(le), rs__le_error_from_errno(errno));
            continue;
        }
#endif
        struct rs__socket_write *req = le->write_head;
        /* A write_to names its destination; the others go to the peer. */
        ssize_t n = req->bufs ? send_dgram_vec(le->fd, req)
                    : req->to_len
                        ? sendto(le->fd, req->data, req->len, MSG_NOSIGNAL,
                                 (const struct sockaddr *)req->to.u.bytes, (socklen_t)req->to_len)
                        : rs__le_send(le->fd, req->data, req->len, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                le->writable = false;
                want_write(s);
                return;
            }
            rs__socket_write_done(pop_write(le), rs__le_error_from_errno(errno));
            continue;
        }
        req->written = (size_t)n;
        rs__socket_write_done(pop_write(le), 0);
    }
}

static void flush(rs_socket *s)
{
    if (s->options.type == RS_SOCKET_STREAM) {
        flush_stream(s);
    } else {
        flush_dgram(s);
    }
}

static void flush_held(struct rs__deferred *d)
{
    struct le_socket *le = (struct le_socket *)((char *)d - offsetof(struct le_socket, flush));
    rs_socket *s = le->owner;
    le->flush_queued = false;
    if (le->fd >= 0) {
        flush(s);
    }
    rs__socket_release(s);
}

void rs__le_socket_flush_held(rs_socket *socket)
{
    struct le_socket *le = socket->impl;
    if (le->flush_queued && le->fd >= 0) {
        flush(socket);
    }
}

/*
 * A single-buffer stream write that finds the queue empty and the kernel
 * with room (request/response traffic: a write from a readable callback or
 * a task) is offered to the kernel straight away with one sendmsg(2) (the
 * queue's call, of one buffer), without joining the queue: when the kernel
 * takes it whole, or refuses it with an error, its completion is reported
 * now (delivered on the next iteration as any other). Returns false when
 * the write must be queued: the kernel took part of it (or none, EAGAIN /
 * EINTR), and the queue sends the rest.
 */
static bool send_lone(rs_socket *socket, struct rs__socket_write *req)
{
    struct le_socket *le = socket->impl;
    struct iovec iov = {(void *)req->data, req->len < WRITE_MAX_BYTES ? req->len : WRITE_MAX_BYTES};
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
    ssize_t n = rs__le_sendmsg(le->fd, &msg, MSG_NOSIGNAL);
    if ((size_t)n == req->len) {
        req->written = req->len;
        rs__socket_write_done(req, 0);
        return true;
    }
    if (n >= 0) {
        rs__socket_write_advance(req, (size_t)n);
        return false;
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
        le->writable = false; /* resume on the next EV_WRITE edge */
        want_write(socket);   /* without edge triggering, ask for it */
        return false;
    }
    if (errno == EINTR) {
        return false;
    }
    rs__socket_write_done(req, rs__le_error_from_errno(errno));
    return true;
}

/*
 * A write is sent at once if the kernel has room, except a stream write
 * issued while the loop runs deferred completions: that is a write callback
 * writing again, and its siblings of the same round (a writer with several
 * writes in flight) usually follow. They are held for one deferred flush,
 * queued behind them, which gathers them into one sendmsg(2): a stream
 * writer with four 64 KiB writes in flight then makes one system call per
 * round instead of four, and the kernel pushes one 256 KiB segment train
 * (docs/sockets.md, "Gathered writes"). Writes from readable callbacks and
 * tasks (request/response traffic) are not delayed.
 *
 * Where sendmmsg(2) exists, every datagram write is held so: the datagrams
 * a callback writes (a server answering what it read) leave together, in
 * one system call per DGRAM_BATCH, at the start of the next iteration,
 * before the loop polls again.
 */
int rs__backend_socket_write(rs_socket *socket, struct rs__socket_write *req)
{
    struct le_socket *le = socket->impl;
    bool idle = !le->write_head;
    if (idle && le->writable && !req->bufs && socket->options.type == RS_SOCKET_STREAM &&
        !socket->loop->in_deferred && send_lone(socket, req)) {
        return 0;
    }
    if (le->write_tail) {
        le->write_tail->next = req;
    } else {
        le->write_head = req;
    }
    le->write_tail = req;
    if (!idle || !le->writable) {
        return 0; /* behind a held flush or waiting for EV_WRITE */
    }
    bool hold =
        socket->options.type == RS_SOCKET_STREAM ? socket->loop->in_deferred : HAVE_SENDMMSG != 0;
    if (hold) {
        if (!le->flush_queued) {
            le->flush_queued = true;
            le->owner = socket;
            le->flush.fn = flush_held;
            rs__socket_acquire(socket);
            rs__event_loop_defer(socket->loop, &le->flush);
        }
        return 0;
    }
    flush(socket);
    return 0;
}

/* ---- immediate write ---- */

/* One send(2) on the non-blocking descriptor: the kernel takes what fits
 * (a datagram whole or not at all). A stream is offered at most
 * WRITE_MAX_BYTES, as the queue's sends are. le->writable is left alone:
 * the queue is empty, and a write queued after an EAGAIN here meets the
 * same EAGAIN itself and waits for the next EV_WRITE edge. */
int rs__backend_socket_try_write(rs_socket *socket, const void *data, size_t len, size_t *written)
{
    struct le_socket *le = socket->impl;
    if (le->fd < 0) {
        return rs__raise(RS_ERROR_INVALID_STATE);
    }
    if (socket->options.type == RS_SOCKET_STREAM && len > WRITE_MAX_BYTES) {
        len = WRITE_MAX_BYTES;
    }
    ssize_t n;
    do {
        n = rs__le_send(le->fd, data, len, MSG_NOSIGNAL);
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
        return rs__le_raise_errno(errno);
    }
    *written = (size_t)n;
    return 0;
}

/* ---- read ---- */

int rs__backend_socket_subscribe(rs_socket *socket)
{
#if RS_LE_EDGE_TRIGGERED
    /* A short read counted as draining, but a reset (or, where EV_CLOSED
     * is missing, an end of stream) that came in the same edge as those
     * bytes is still to be read, and no edge is left to tell of it. A
     * reader that unsubscribed after such a read (a proxy pausing one side)
     * would never hear of it: one look, only when a subscription starts
     * after a short read. poll(2), not a peeking recv(2), which would
     * consume the pending error (Linux hands out and clears sk_err once)
     * and leave the next read an end of stream instead of the reset.
     * Without edge triggering the re-armed read event reports it by itself. */
    if (rs__socket_flag(socket, RS__SF_DRAIN_UNPROVEN) &&
        !rs__socket_flag(socket, RS__SF_READABLE_PENDING)) {
        struct le_socket *le = socket->impl;
        struct pollfd p = {.fd = le->fd, .events = POLLIN};
        int n;
        do {
            n = poll(&p, 1, 0);
        } while (n < 0 && errno == EINTR);
        if (n != 0) { /* readable, ended, failed; or poll itself failed: let a read tell */
            rs__socket_set_flag(socket, RS__SF_READABLE_PENDING, true);
        }
        rs__socket_set_flag(socket, RS__SF_DRAIN_UNPROVEN, false);
    }
#else
    (void)socket;
#endif
    return 0;
}

/* The registration stays: an edge that comes while unsubscribed marks the
 * socket readable in common/, which reports it at the next subscription,
 * and the data stays in the kernel until read. */
void rs__backend_socket_unsubscribe(rs_socket *socket)
{
    (void)socket;
}

/* A datagram read: MSG_TRUNC where Linux has it, so that a truncated
 * datagram reports its full length (the rest is discarded either way). */
static int read_dgram(rs_socket *socket, void *buffer, size_t len, size_t *amount_read)
{
    struct le_socket *le = socket->impl;
    int flags = 0;
#ifdef __linux__
    flags = MSG_TRUNC;
#endif
    ssize_t n;
    do {
        n = rs__le_recv(le->fd, buffer, len, flags);
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            drained(socket);
        }
        return rs__le_raise_errno(errno);
    }
    *amount_read = (size_t)n > len ? len : (size_t)n;
    return 0;
}

int rs__backend_socket_read(rs_socket *socket, void *buffer, size_t len, size_t *amount_read)
{
    if (socket->options.type == RS_SOCKET_DGRAM) {
        return read_dgram(socket, buffer, len, amount_read);
    }
    struct le_socket *le = socket->impl;
    ssize_t n;
    do {
        n = rs__le_recv(le->fd, buffer, len, 0);
    } while (n < 0 && errno == EINTR);
    if (n > 0) {
        if ((size_t)n < len) {
            drained(socket);
        }
        *amount_read = (size_t)n;
        return 0;
    }
    if (n == 0) {
        return rs__raise(RS_ERROR_SOCKET_CLOSED);
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
        drained(socket);
    }
    return rs__le_raise_errno(errno);
}

int rs__backend_socket_read_from(rs_socket *socket, void *buffer, size_t len, size_t *amount_read,
                                 rs_socket_endpoint *from)
{
    struct le_socket *le = socket->impl;
    int flags = 0;
#ifdef __linux__
    flags = MSG_TRUNC; /* as rs__backend_socket_read */
#endif
    struct sockaddr_storage ss;
    socklen_t ss_len;
    ssize_t n;
    do {
        ss_len = sizeof ss;
        n = recvfrom(le->fd, buffer, len, flags, (struct sockaddr *)&ss, &ss_len);
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            drained(socket);
        }
        return rs__le_raise_errno(errno);
    }
    *amount_read = (size_t)n > len ? len : (size_t)n;
    rs__endpoint_from_sockaddr((const struct sockaddr *)&ss, ss_len, from);
    return 0;
}

/* ---- readiness ---- */

void rs__le_socket_on_event(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    rs_socket *s = arg;
    struct le_socket *le = s->impl;
    rs__socket_acquire(s);
    enum rs__socket_state state = rs__socket_state(s);
#if !RS_LE_EDGE_TRIGGERED
    /* A one-shot event is no longer pending once it fired (a listener's
     * persistent read event keeps its flag unused). */
    if (what & EV_READ) {
        le->read_armed = false;
    }
    if (what & EV_WRITE) {
        le->write_armed = false;
    }
#endif
    if (state == RS__SOCKET_CONNECTING) {
        finish_connect(s);
        if (rs__socket_state(s) != RS__SOCKET_CONNECTED) {
            goto out;
        }
    }
    if (state == RS__SOCKET_LISTENING) {
        if ((what & EV_READ) && rs__socket_accepting(s)) {
            accept_one(s);
        }
        goto out;
    }
    if ((what & EV_WRITE) && le->fd >= 0) {
        le->writable = true;
        if (le->write_head) {
            flush(s);
        }
    }
    if (what & EV_CLOSED) {
        rs__socket_set_flag(s, RS__SF_END_MAY_WAIT, true);
    }
    if ((what & (EV_READ | EV_CLOSED)) && rs__socket_state(s) != RS__SOCKET_CLOSED) {
        rs__socket_readable(s);
    }
out:
    rs__socket_release(s);
}
