/*
 * Internal to the IOCP backend's sockets: iocp_socket.c (creation, options,
 * close, the operation bookkeeping shared by every kind), iocp_socket_tcp.c,
 * iocp_socket_udp.c and iocp_socket_local.c (named pipes).
 *
 * Completion notification (W13): handles are put in
 * FILE_SKIP_COMPLETION_PORT_ON_SUCCESS mode when the platform allows it
 * (rs__iocp_skip_on_success: always for pipes, for sockets only while every
 * TCP/UDP provider returns IFS handles). Each overlapped call then ends in
 * exactly one of three ways, and each is delivered once, through the same
 * handler (op_completed), from the loop and never inside the API call that
 * started it:
 *   - ERROR_IO_PENDING: the packet is dequeued later;
 *   - success at once: in skip mode no packet comes (the mode's documented
 *     contract), so rs__iocp_sock_op_succeeded hands the operation to the
 *     loop's in-process list (rs__iocp_complete_inline), which dispatches it
 *     from the next wait, as a packet would be; without skip mode the packet
 *     comes and the inline result is ignored;
 *   - failure at once: no packet comes in either mode; a packet of our own
 *     stands in for it (rs__iocp_sock_op_complete).
 * Skipping the packet saves a dequeue per operation that succeeds at once
 * (most sends, and reads of data already there), a wineserver request each
 * under Wine (docs/performance.md).
 *
 * Orphaned operations (W8): an operation's memory belongs to the operation
 * until its completion is dequeued. Closing a socket cancels its operations
 * (closesocket / CancelIoEx) and detaches them (op->socket = NULL); each then
 * frees itself when its cancelled completion arrives. A loop being destroyed
 * drains the completions of its orphans before it closes its port.
 */
#ifndef RS_IOCP_SOCKET_H
#define RS_IOCP_SOCKET_H

#include "iocp_backend.h"

#include "../../common/backend.h"

#include <ws2tcpip.h>

/* AcceptEx needs room for each address plus 16 bytes (its documentation):
 * GetAcceptExSockaddrs must be given the same lengths. */
#define RS__IOCP_ACCEPT_ADDR_LEN ((DWORD)(sizeof(SOCKADDR_STORAGE) + 16))
/* The socket-owned buffer a datagram, a pipe read or a buffered TCP read
 * lands in: one whole UDP datagram of any size the protocol allows. */
#define RS__IOCP_READ_BUF (64u * 1024u)
/* The buffer a buffered TCP read lands in (W5): twice the 64 KiB a reader
 * typically asks for, so that one receive takes what arrived while the
 * last was being read (with 64 KiB a receive often catches a chunk half
 * sent and needs a second one; docs/performance.md has the counts). 128 KiB
 * keeps a loop's buffered sockets under 6.25 MiB (RS__IOCP_BUFFERED_STREAMS
 * of them). */
#define RS__IOCP_STREAM_READ_BUF (128u * 1024u)
/* The largest part of a write one overlapped send carries: WSASend and
 * WriteFile take 32-bit lengths and a completion reports a 32-bit byte
 * count, so a longer write is sent as several sends, posted together (the
 * stack keeps them in order), as pipes do. */
#define RS__IOCP_SEND_CHUNK ((size_t)1 << 30)
/* The most buffers of a vectored write one overlapped WSASend carries.
 * Winsock documents no bound on dwBufferCount; this one keeps the WSABUF
 * array (built on the stack: WSASend captures it before returning, its
 * documentation says) at 16 KiB, and takes a whole datagram. A stream write
 * of more buffers goes in several sends, posted together, in order. */
#define RS__IOCP_SEND_BUFS ((size_t)RS_SOCKET_WRITE_VEC_DGRAM_MAX)
/* The buffer of a socket beyond its loop's RS__IOCP_BUFFERED_STREAMS
 * large places (W5): one page, enough for request/response traffic; a
 * receive that fills it is followed by a direct recv into the reader's
 * buffer (iocp_socket_tcp.c), so bulk transfers do not go 4 KiB per
 * receive. RS__IOCP_SMALL_BUFFERED_STREAMS of them are 4 MiB per loop. */
#define RS__IOCP_STREAM_SMALL_BUF (4u * 1024u)

/* A UDP receive's sender: WSARecvFrom's lpFrom and lpFromlen, which the
 * system writes when the receive completes. They sit after the datagram in
 * the read operation's buffer (RS__IOCP_UDP_READ_CAP), so that they live as
 * long as the operation, which may outlive its socket (W8). */
struct rs__iocp_udp_from {
    SOCKADDR_STORAGE addr;
    INT len;
};
#define RS__IOCP_UDP_READ_CAP (RS__IOCP_READ_BUF + sizeof(struct rs__iocp_udp_from))

enum rs__iocp_kind {
    RS__IOCP_TCP,
    RS__IOCP_UDP,
    RS__IOCP_PIPE,
};

struct rs__iocp_sock_op;

/* Runs on the loop thread for the completion of a live (not orphaned)
 * operation, which is already off the socket's list; the handler owns op. */
typedef void(rs__iocp_sock_op_fn)(rs_socket *socket, struct rs__iocp_sock_op *op, int error,
                                  size_t bytes);

struct rs__iocp_sock_op {
    struct rs__iocp_op base; /* first: the OVERLAPPED is the op */
    rs__iocp_sock_op_fn *handler;
    rs_socket *socket;   /* NULL once orphaned by close */
    rs_event_loop *loop; /* the port the completion arrives on */
    struct rs__iocp_sock_op *prev;
    struct rs__iocp_sock_op *next;
    /* A result we posted ourselves (the packet carries no status). */
    bool posted;
    int posted_error;
    /* A connect the fault hook keeps pending: no system call is in flight,
     * so closing completes it with a packet of our own. */
    bool stalled;

    /* A write: its request, the part of it this send carries (a write
     * longer than RS__IOCP_SEND_CHUNK is sent as several), and its place in
     * the socket's queue of writes in submission order (iocp_socket.c). */
    struct rs__socket_write *req;
    size_t chunk_off;
    size_t chunk_len;
    /* In a vectored write, the buffer this part starts in and the offset
     * in that buffer. */
    size_t buf_index;
    size_t buf_off;
    bool last_chunk;
    bool finished; /* the completion came: error and bytes hold its result */
    size_t bytes;
    struct rs__iocp_sock_op *next_write;
    SOCKET accepted; /* AcceptEx: the socket it fills */
    /* Named-pipe accept: the instance, the event ConnectNamedPipe signals
     * and the thread-pool wait that turns it into a packet. */
    HANDLE pipe;
    HANDLE event;
    HANDLE wait;
    volatile long wait_fired;

    /* A completed read held for rs_socket_read: bytes in buf from off. */
    size_t len;
    size_t off;
    int error;
    size_t cap;
    unsigned char buf[];
};

/* What the handle and its one read operation are doing: the bits of
 * rs__iocp_socket.flags. The socket's life cycle itself is common/'s
 * (rs__socket_state); these are the backend's own, all read and written on
 * the loop thread (or, before the socket has a loop, by its one thread). */
enum rs__iocp_flag {
    /* The handle's set-up: each is set once and never cleared. */
    RS__IOCP_F_BOUND = 1u << 0,        /* TCP: bound (by the user, or for ConnectEx) */
    RS__IOCP_F_ASSOCIATED = 1u << 1,   /* with socket->loop's completion port */
    RS__IOCP_F_SKIP_DECIDED = 1u << 2, /* rs__iocp_socket_skip_mode ran */
    RS__IOCP_F_SKIP = 1u << 3,         /* the handle is in skip-on-success mode */
    /* FIONBIO set (zero-byte mode reads with recv, rs_socket_try_write). */
    RS__IOCP_F_NONBLOCKING = 1u << 4,
    /* The read operation (read_op): posted (READ_IN_FLIGHT), then completed
     * and holding data or, UDP/LOCAL, an error (READ_READY) until read. */
    RS__IOCP_F_READ_IN_FLIGHT = 1u << 5,
    RS__IOCP_F_READ_READY = 1u << 6,
    /* TCP: a read took the result of read_op while it was still in flight
     * (its completion had come but was not dequeued yet); the dispatch of
     * that completion then only ends the operation. */
    RS__IOCP_F_READ_CLAIMED = 1u << 7,
    RS__IOCP_F_EOF = 1u << 8,       /* the peer ended the stream: no read is posted again */
    RS__IOCP_F_WANT_READ = 1u << 9, /* TCP: subscribed, or read: keep a read posted */
    /* TCP: the readable callback of a read completion runs; a read in that
     * callback drained the socket (the read is posted again after it). */
    RS__IOCP_F_IN_READ_CALLBACK = 1u << 10,
    RS__IOCP_F_REPOST = 1u << 11,
    /* The retry task is scheduled (retry_task). */
    RS__IOCP_F_RETRY_ARMED = 1u << 12,
    /* LOCAL client: the connect found every instance busy and waits to retry. */
    RS__IOCP_F_PIPE_BUSY = 1u << 13,
};

struct rs__iocp_socket {
    enum rs__iocp_kind kind;
    SOCKET sock;                       /* TCP / UDP */
    HANDLE pipe;                       /* LOCAL: a connected client or accepted instance */
    unsigned flags;                    /* enum rs__iocp_flag */
    struct rs__iocp_sock_op *ops_head; /* in flight, oldest first */
    struct rs__iocp_sock_op *ops_tail;
    /* Every write not yet handed to common/, in submission order, in flight,
     * held or finished (rs__iocp_write_finished). */
    struct rs__iocp_sock_op *writes_head;
    struct rs__iocp_sock_op *writes_tail;

    /* Readability: the one read operation (for TCP a buffered read or a
     * zero-byte readiness read, see iocp_socket_tcp.c; a whole datagram or
     * pipe chunk for UDP and LOCAL), in flight or completed and held until
     * read. */
    struct rs__iocp_sock_op *read_op;
    int read_error;
    rs_event_loop *buffered_loop;      /* TCP: reads are buffered, holding a place of this loop */
    enum rs__iocp_read_tier read_tier; /* TCP: which place */

    /* Client. */
    SOCKADDR_STORAGE remote;
    int remote_len;
    /* LOCAL: retries a connect that found every instance busy; TCP and UDP:
     * retries held sends (iocp_socket_tcp.c). */
    rs_task retry_task;
    struct rs__iocp_sock_op *held_head; /* sends WSASend held back, oldest first */
    struct rs__iocp_sock_op *held_tail;
    uint64_t send_backoff_ns;

    /* Listener. */
    int backlog;
    int accepts_posted;
    rs_socket *ready_head; /* accepted, not delivered yet (accepting was stopped) */
    rs_socket *ready_tail;
    rs_socket *ready_next; /* link while this socket waits in a listener's list */
    rs_task accept_task;
    int accept_error; /* for the accept task to report */
    /* LOCAL: the pipe name (UTF-16) a listener serves or a client retries;
     * a listener's instances that wait for start_accept (linked by next). */
    wchar_t *pipe_name;
    struct rs__iocp_sock_op *idle_instances;
};

static inline bool rs__iocp_is(const struct rs__iocp_socket *im, enum rs__iocp_flag flag)
{
    return (im->flags & (unsigned)flag) != 0;
}
/* Whether any of the flags in mask (enum rs__iocp_flag values or-ed) is set. */
static inline bool rs__iocp_any(const struct rs__iocp_socket *im, unsigned mask)
{
    return (im->flags & mask) != 0;
}
static inline void rs__iocp_set(struct rs__iocp_socket *im, enum rs__iocp_flag flag, bool on)
{
    im->flags = on ? im->flags | (unsigned)flag : im->flags & ~(unsigned)flag;
}

/* ---- iocp_socket.c ---- */

/* A new operation with cap bytes of buffer, or NULL (raised). */
struct rs__iocp_sock_op *rs__iocp_sock_op_new(size_t cap);
/* Frees an operation that is not in flight (closing what it still holds). */
void rs__iocp_sock_op_free(struct rs__iocp_sock_op *op);
/* Puts op in flight for socket (loop thread): prepares its OVERLAPPED and
 * links it into the socket's list. */
void rs__iocp_sock_op_start(rs_socket *socket, struct rs__iocp_sock_op *op,
                            rs__iocp_sock_op_fn *handler);
/* Starts the socket's read operation (allocated when the socket was
 * attached, then reused) with handler; the caller posts it. */
struct rs__iocp_sock_op *rs__iocp_read_start(rs_socket *socket, rs__iocp_sock_op_fn *handler);
/* Copies up to len bytes of the data the completed read holds into buffer;
 * true when that used it up (READ_READY is then cleared and the caller posts
 * the next read). */
bool rs__iocp_take_held(struct rs__iocp_socket *im, void *buffer, size_t len, size_t *amount_read);
/* The write operations for req, one per RS__IOCP_SEND_CHUNK of a stream
 * write (one for a datagram), and in a vectored stream write one per
 * max_bufs of its buffers too (1 for WriteFile, which has no gather), queued at the end of the
 * socket's writes in submission order and linked by next_write: returns the first, or NULL (raised,
 * nothing queued) if out of memory. Loop thread. */
struct rs__iocp_sock_op *rs__iocp_write_ops_new(rs_socket *socket, struct rs__socket_write *req,
                                                size_t max_bufs);
/* Records the result of write op (which is off the list of operations in
 * flight, or orphaned) and hands every write at the head of the queue whose
 * parts have all finished to common/, in submission order (W19): completions
 * are dequeued in any order (cancellations, packets of our own, inline
 * results), writes are reported in the order they were issued. im is the
 * socket's state, kept alive by the reference each queued write holds. */
void rs__iocp_write_finished(struct rs__iocp_socket *im, struct rs__iocp_sock_op *op, int error,
                             size_t bytes);
/* Takes op off the socket's list of operations in flight. */
void rs__iocp_sock_op_unlink(struct rs__iocp_socket *im, struct rs__iocp_sock_op *op);
/* The overlapped call that started op returned success at once: in skip
 * mode no packet will come, so the loop is handed the result; otherwise the
 * packet comes as for a pending call. */
void rs__iocp_sock_op_succeeded(struct rs__iocp_sock_op *op);
/* Completes op with error (0: success) through a packet of our own: for a
 * call that failed at once (no packet will come), or one whose completion
 * is learnt another way (a named-pipe connect). */
void rs__iocp_sock_op_complete(struct rs__iocp_sock_op *op, int error);

/* Runs the socket's retry (a busy pipe's connect, held sends) from its
 * retry task after delay_ns; holds a reference until then. Loop thread. */
void rs__iocp_arm_retry(rs_socket *socket, uint64_t delay_ns);
/* Associates the socket's handle with its loop (once). */
int rs__iocp_socket_associate(rs_socket *socket, HANDLE handle);
/* Puts the associated handle in skip-on-success mode if allowed (once; no
 * operation may be in flight the first time). */
void rs__iocp_socket_skip_mode(rs_socket *socket);
/* rs__endpoint_from_sockaddr (common/address.h) for a socket address whose
 * length the caller does not carry (GetAcceptExSockaddrs' results, a
 * SOCKADDR_STORAGE): the family decides how much is read. */
/* getsockname into ss (zeroed first), *len its length; raises the mapped
 * error. */
int rs__iocp_getsockname(SOCKET sock, SOCKADDR_STORAGE *ss, int *len);
/* getsockname of sock as the socket's local address (rs__socket_set_local). */
int rs__iocp_set_local_from_socket(rs_socket *socket, SOCKET sock);
/* A new impl of kind with no handle yet, or NULL (raised). */
struct rs__iocp_socket *rs__iocp_socket_impl_new(enum rs__iocp_kind kind);
/* Prepares the impl's tasks once socket->impl is set. */
void rs__iocp_socket_init_tasks(rs_socket *socket);
/* A new overlapped TCP or UDP socket, or INVALID_SOCKET (raised). */
SOCKET rs__iocp_socket_open(rs_socket_domain domain, rs_socket_type type);
/* Wraps im, which holds an accepted connection's handle, into an accepted
 * socket of listener; on failure closes the handle, frees im and returns
 * NULL (raised). */
rs_socket *rs__iocp_socket_new_accepted(rs_socket *listener, struct rs__iocp_socket *im);
/* Reads sock's local address into ep. */

/* Whether the listener accepts (and is open). */
bool rs__iocp_accepting(const rs_socket *listener);
/* Reports an accept error to common/ (rs__socket_accepted), having stopped
 * accepting first when the error ends it. Returns rs__socket_accepted's. */
bool rs__iocp_accept_failed(rs_socket *listener, int error);
/* Reports a failed connect to common/ after closing the OS socket. */
void rs__iocp_connect_failed(rs_socket *socket, int error);
/* Queues an accepted socket, or delivers it now if nothing waits before it.
 * Returns false once the listener no longer accepts. */
bool rs__iocp_deliver_accepted(rs_socket *listener, rs_socket *accepted);
/* Delivers the connections that queued up while accepting was stopped, then
 * posts accepts again (a task; schedule it with the helper). */
void rs__iocp_accept_task(rs_task *task, void *arg, rs_task_status status);
void rs__iocp_schedule_accept_task(rs_socket *listener);

/* ---- iocp_socket_tcp.c ---- */
int rs__iocp_tcp_attach(rs_socket *socket);
/* Allocates the socket's read operation: buffered while its loop has a
 * place (large or small, rs__iocp_loop_take_read_buffer), zero-byte
 * readiness otherwise. */
int rs__iocp_tcp_new_read_op(rs_socket *socket);
int rs__iocp_tcp_start_accept(rs_socket *socket);
int rs__iocp_tcp_read(rs_socket *socket, void *buffer, size_t len, size_t *amount_read);
/* Posts the read (buffered or zero-byte) if reading is wanted and none is in
 * flight, held or over. */
void rs__iocp_tcp_post_read(rs_socket *socket);
/* One overlapped WSASend per write (TCP and UDP). */
int rs__iocp_wsa_write(rs_socket *socket, struct rs__socket_write *req);
/* One non-overlapped, non-blocking send (TCP and UDP): rs_socket_try_write. */
int rs__iocp_wsa_try_write(rs_socket *socket, const void *data, size_t len, size_t *written);
/* Retries held sends (the retry task's work for TCP and UDP sockets). */
void rs__iocp_send_retry(rs_socket *socket);
/* Ends the held sends with RS_ERROR_SOCKET_CLOSED (close, shutdown of the
 * sending side); each is reported after the writes issued before it. */
void rs__iocp_fail_held_sends(rs_socket *socket);
/* The completion handler of a write (any kind). */
void rs__iocp_write_completed(rs_socket *socket, struct rs__iocp_sock_op *op, int error,
                              size_t bytes);

/* ---- iocp_socket_udp.c ---- */
int rs__iocp_udp_connect(rs_socket *socket);
int rs__iocp_udp_attach(rs_socket *socket);
int rs__iocp_udp_read(rs_socket *socket, void *buffer, size_t len, size_t *amount_read);

/* ---- iocp_socket_local.c ---- */
int rs__iocp_pipe_bind(rs_socket *socket, const rs_socket_endpoint *local);
int rs__iocp_pipe_listen(rs_socket *socket, int backlog);
int rs__iocp_pipe_connect(rs_socket *socket, const rs_socket_endpoint *remote);
int rs__iocp_pipe_attach(rs_socket *socket);
int rs__iocp_pipe_start_accept(rs_socket *socket);
int rs__iocp_pipe_read(rs_socket *socket, void *buffer, size_t len, size_t *amount_read);
int rs__iocp_pipe_write(rs_socket *socket, struct rs__socket_write *req);
/* Closes the pipe handles and the listener's instances (loop thread). */
void rs__iocp_pipe_close(rs_socket *socket);
/* Tries the busy pipe again (the retry task's work for LOCAL clients). */
void rs__iocp_pipe_retry(rs_socket *socket);

#endif
