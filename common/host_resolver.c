/*
 * Host resolution: one detached worker thread per request runs getaddrinfo
 * (the same call in ws2_32 and in libc, so this file serves both backends)
 * and hands the result to the request's loop through a task.
 *
 * Lifetime: a request holds two references, the worker's and the delivery's.
 * The delivery is the task on the loop (run: result; cancelled by the loop's
 * destruction: RS_ERROR_EVENT_LOOP_SHUTDOWN), or, if the loop is destroyed
 * while the worker still runs, rs__resolver_forget_loop calling back at once
 * on the destroying thread. The last cleanup of the library waits for the
 * workers, so no lookup outlives Winsock.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* EAI_NODATA, EAI_ADDRFAMILY */
#endif
#include "host_resolver_impl.h"

#include "alloc.h"
#include "atomics.h"
#include "error.h"
#include "library.h"
#include "log.h"
#include "thread.h"

#include <reseau/host_resolver.h>

#include <string.h>

#ifdef _WIN32
#include <winsock2.h>
#include <ws2tcpip.h>
#else
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#endif

#define MAX_ADDRESSES 64

struct request {
    rs_task deliver;
    rs_event_loop *loop;
    rs_resolve_fn *on_result;
    void *user_data;
    volatile long refs;
    int error;
    size_t count;
    bool loop_destroyed; /* under pending_lock */
    struct request *next;
    struct request *prev;
    struct request *shutdown_next;
    char host[RS_HOST_NAME_MAX + 1];
    rs_host_address addresses[MAX_ADDRESSES];
};

/* Requests whose worker has not finished, and their count for cleanup. */
static rs__mutex pending_lock = RS__MUTEX_INIT;
static rs__condvar *idle_cond;
static struct request *pending_head;
static long pending_count;

static void request_release(struct request *req)
{
    if (rs__atomic_add(&req->refs, -1) == 0) {
        rs__mem_release(req);
    }
}

static bool is_label_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_';
}

static bool is_ipv6_literal_char(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') || c == ':' ||
           c == '.';
}

bool rs_host_name_is_valid(const char *host)
{
    if (!host) {
        return false;
    }
    size_t len = strnlen(host, RS_HOST_NAME_MAX + 1);
    if (len == 0 || len > RS_HOST_NAME_MAX) {
        return false;
    }
    if (strchr(host, ':')) {
        for (size_t i = 0; i < len; i++) {
            if (!is_ipv6_literal_char(host[i])) {
                return false;
            }
        }
        return true;
    }
    size_t label = 0;
    for (size_t i = 0; i < len; i++) {
        if (host[i] == '.') {
            if (label == 0) {
                return false; /* empty label: "a..b", ".a" */
            }
            label = 0;
        } else if (is_label_char(host[i])) {
            if (++label > 63) {
                return false;
            }
        } else {
            return false;
        }
    }
    return true; /* a trailing dot (fully qualified) is allowed */
}

static int map_gai_error(int err)
{
    switch (err) {
#ifdef EAI_NODATA
    case EAI_NODATA:
#endif
#if defined(EAI_ADDRFAMILY) && (!defined(EAI_NODATA) || EAI_ADDRFAMILY != EAI_NODATA)
    case EAI_ADDRFAMILY:
#endif
        return RS_ERROR_DNS_NO_ADDRESS;
    case EAI_MEMORY:
        return RS_ERROR_OUT_OF_MEMORY;
    default:
        return RS_ERROR_DNS_QUERY_FAILED;
    }
}

static void resolve_now(struct request *req)
{
    struct addrinfo hints;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM; /* one entry per address, not one per socket type */
    struct addrinfo *list = NULL;
    int rc = getaddrinfo(req->host, NULL, &hints, &list);
    if (rc != 0) {
        RS__LOG(RS_LOG_DEBUG, "getaddrinfo(%s) failed: %d", req->host, rc);
        req->error = map_gai_error(rc);
        return;
    }
    for (struct addrinfo *ai = list; ai && req->count < MAX_ADDRESSES; ai = ai->ai_next) {
        rs_host_address a;
        memset(&a, 0, sizeof a);
        const void *src;
        if (ai->ai_family == AF_INET) {
            a.family = RS_ADDRESS_IPV4;
            src = &((const struct sockaddr_in *)(const void *)ai->ai_addr)->sin_addr;
        } else if (ai->ai_family == AF_INET6) {
            a.family = RS_ADDRESS_IPV6;
            src = &((const struct sockaddr_in6 *)(const void *)ai->ai_addr)->sin6_addr;
        } else {
            continue;
        }
        if (!inet_ntop(ai->ai_family, src, a.address, sizeof a.address)) {
            continue;
        }
        bool duplicate = false;
        for (size_t i = 0; i < req->count && !duplicate; i++) {
            duplicate = req->addresses[i].family == a.family &&
                        strcmp(req->addresses[i].address, a.address) == 0;
        }
        if (!duplicate) {
            req->addresses[req->count++] = a;
        }
    }
    freeaddrinfo(list);
    req->error = req->count ? 0 : RS_ERROR_DNS_NO_ADDRESS;
}

static void deliver_task(rs_task *task, void *arg, rs_task_status status)
{
    (void)task;
    struct request *req = arg;
    if (status == RS_TASK_STATUS_RUN && req->error == 0) {
        req->on_result(req->host, 0, req->addresses, req->count, req->user_data);
    } else {
        int err = status == RS_TASK_STATUS_RUN ? req->error : RS_ERROR_EVENT_LOOP_SHUTDOWN;
        req->on_result(req->host, err, NULL, 0, req->user_data);
    }
    request_release(req);
}

static void unlink_pending(struct request *req)
{
    if (req->prev) {
        req->prev->next = req->next;
    } else {
        pending_head = req->next;
    }
    if (req->next) {
        req->next->prev = req->prev;
    }
    req->next = req->prev = NULL;
    if (--pending_count == 0 && idle_cond) {
        rs__condvar_broadcast(idle_cond);
    }
}

static void worker_main(void *arg)
{
    struct request *req = arg;
    resolve_now(req);
    rs__mutex_lock(&pending_lock);
    if (!req->loop_destroyed) {
        /* The loop is live: its destroy would have marked us under this lock
         * before freeing it. */
        rs_event_loop_schedule_now(req->loop, &req->deliver);
    }
    /* Both under the lock: the last library cleanup, woken by the unlink,
     * runs only after the worker's reference is gone. */
    unlink_pending(req);
    request_release(req);
    rs__mutex_unlock(&pending_lock);
}

int rs_resolve(rs_event_loop *loop, const char *host, rs_resolve_fn *on_result, void *user_data)
{
    if (rs__library_check() != 0) {
        return -1;
    }
    if (!loop || !host || !on_result) {
        return rs_raise(RS_ERROR_INVALID_ARGUMENT);
    }
    if (!rs_host_name_is_valid(host)) {
        return rs_raise(RS_ERROR_DNS_INVALID_NAME);
    }
    struct request *req = rs__mem_calloc(1, sizeof *req);
    if (!req) {
        return -1;
    }
    req->loop = loop;
    req->on_result = on_result;
    req->user_data = user_data;
    req->refs = 2;
    strcpy(req->host, host);
    rs_task_init(&req->deliver, deliver_task, req, "resolve deliver");

    rs__mutex_lock(&pending_lock);
    req->next = pending_head;
    if (pending_head) {
        pending_head->prev = req;
    }
    pending_head = req;
    pending_count++;
    rs__mutex_unlock(&pending_lock);

    if (rs__thread_start_detached(worker_main, req, "rs-resolver") != 0) {
        rs__mutex_lock(&pending_lock);
        unlink_pending(req);
        rs__mutex_unlock(&pending_lock);
        rs__mem_release(req);
        return -1;
    }
    return 0;
}

void rs__resolver_forget_loop(rs_event_loop *loop)
{
    struct request *owed = NULL;
    rs__mutex_lock(&pending_lock);
    for (struct request *req = pending_head; req; req = req->next) {
        if (req->loop == loop && !req->loop_destroyed) {
            req->loop_destroyed = true;
            req->shutdown_next = owed;
            owed = req;
        }
    }
    rs__mutex_unlock(&pending_lock);
    /* The delivery references of these requests are ours now. */
    while (owed) {
        struct request *next = owed->shutdown_next;
        owed->on_result(owed->host, RS_ERROR_EVENT_LOOP_SHUTDOWN, NULL, 0, owed->user_data);
        request_release(owed);
        owed = next;
    }
}

void rs__resolver_wait_idle(void)
{
    rs__condvar cond;
    rs__condvar_init(&cond);
    rs__mutex_lock(&pending_lock);
    idle_cond = &cond;
    while (pending_count > 0) {
        rs__condvar_wait(&cond, &pending_lock);
    }
    idle_cond = NULL;
    rs__mutex_unlock(&pending_lock);
    rs__condvar_clean_up(&cond);
}
