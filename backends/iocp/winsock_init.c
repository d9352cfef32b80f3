/*
 * Backend identity and the process-wide Winsock set-up: WSAStartup 2.2 with
 * its version check, the extension functions, and WSACleanup. common/library.c
 * calls init and clean-up under its lock on the 0 -> 1 and 1 -> 0 transitions
 * of the library's reference count, so every successful WSAStartup made here
 * is paired with exactly one WSACleanup.
 */
#include "iocp_backend.h"

#include "../../common/alloc.h"
#include "../../common/atomics.h"
#include "../../common/error.h"
#include "../../common/log.h"

#include <string.h>

struct rs__winsock_ext rs__winsock_ipv4;
struct rs__winsock_ext rs__winsock_ipv6;

static volatile long startup_count;
static bool skip_on_success_allowed;
static volatile long cleanup_count;

rs_backend rs__backend_id(void)
{
    return RS_BACKEND_IOCP;
}

const char *rs__backend_name(void)
{
    return "iocp";
}

long rs__winsock_startup_count(void)
{
    return rs__atomic_load(&startup_count);
}

long rs__winsock_cleanup_count(void)
{
    return rs__atomic_load(&cleanup_count);
}

bool rs__winsock_skip_on_success_allowed(void)
{
    return skip_on_success_allowed;
}

/*
 * SetFileCompletionNotificationModes' contract: on a socket,
 * FILE_SKIP_COMPLETION_PORT_ON_SUCCESS is only compatible with layered
 * providers that return IFS handles; to detect a non-IFS one, examine
 * dwServiceFlags1 of every entry WSAEnumProtocols returns for XP1_IFS_HANDLES
 * (with a non-IFS provider, completions of skipped calls never arrive,
 * Microsoft KB 2568167). Only the TCP and UDP entries of IPv4 and IPv6 serve
 * reseau's sockets, so only they are checked. Any failure: not allowed.
 */
static bool all_providers_ifs(void)
{
    INT protocols[] = {IPPROTO_TCP, IPPROTO_UDP, 0};
    DWORD size = 0;
    if (WSAEnumProtocolsW(protocols, NULL, &size) != SOCKET_ERROR ||
        WSAGetLastError() != WSAENOBUFS || size == 0) {
        return false;
    }
    WSAPROTOCOL_INFOW *info = rs__mem_acquire(size);
    if (!info) {
        return false;
    }
    int n = WSAEnumProtocolsW(protocols, info, &size);
    bool ifs = n > 0;
    for (int i = 0; i < n; i++) {
        if ((info[i].iAddressFamily == AF_INET || info[i].iAddressFamily == AF_INET6) &&
            !(info[i].dwServiceFlags1 & XP1_IFS_HANDLES)) {
            RS__LOG(RS_LOG_INFO,
                    "non-IFS Winsock provider installed: every completion comes as a packet");
            ifs = false;
            break;
        }
    }
    rs__mem_release(info);
    return ifs;
}

static void cleanup(void)
{
    /* Each successful WSAStartup must be matched by one WSACleanup. */
    WSACleanup();
    rs__atomic_add(&cleanup_count, 1);
    memset(&rs__winsock_ipv4, 0, sizeof rs__winsock_ipv4);
    memset(&rs__winsock_ipv6, 0, sizeof rs__winsock_ipv6);
}

static int load_ext(SOCKET s, GUID guid, void *fn, size_t fn_size, const char *name)
{
    DWORD bytes = 0;
    /* SIO_GET_EXTENSION_FUNCTION_POINTER: the function is the provider's own
     * and is only reachable through this ioctl on a socket of that provider;
     * the pointer stays valid for every socket of the same provider. */
    if (WSAIoctl(s, SIO_GET_EXTENSION_FUNCTION_POINTER, &guid, sizeof guid, fn, (DWORD)fn_size,
                 &bytes, NULL, NULL) != 0) {
        RS__LOG(RS_LOG_ERROR, "WSAIoctl(SIO_GET_EXTENSION_FUNCTION_POINTER, %s) failed: %d", name,
                WSAGetLastError());
        return rs__raise(RS_ERROR_PLATFORM_NOT_SUPPORTED);
    }
    return 0;
}

/*
 * Loads the set of one family from an overlapped TCP socket of that family:
 * the pointers SIO_GET_EXTENSION_FUNCTION_POINTER returns are the provider's
 * of that socket (its documentation), and a provider may serve one family
 * only. A host without IPv6 (socket() fails with WSAEAFNOSUPPORT) keeps the
 * IPv6 set empty: no IPv6 socket can be created there either.
 */
static int load_extensions(int family, struct rs__winsock_ext *out)
{
    /* WSA_FLAG_NO_HANDLE_INHERIT: no child process started meanwhile may
     * inherit this socket. */
    SOCKET s = WSASocketW(family, SOCK_STREAM, IPPROTO_TCP, NULL, 0,
                          WSA_FLAG_OVERLAPPED | WSA_FLAG_NO_HANDLE_INHERIT);
    if (s == INVALID_SOCKET) {
        int err = WSAGetLastError();
        if (family == AF_INET6 && err == WSAEAFNOSUPPORT) {
            RS__LOG(RS_LOG_INFO, "no IPv6 on this host: no IPv6 extension functions");
            return 0;
        }
        RS__LOG(RS_LOG_ERROR, "WSASocketW(%d) for the extension functions failed: %d", family, err);
        return rs__raise(RS_ERROR_SYS_CALL_FAILURE);
    }
    struct rs__winsock_ext ext = {0};
    ext.family = family;
    int rc = load_ext(s, (GUID)WSAID_ACCEPTEX, &ext.accept_ex, sizeof ext.accept_ex, "AcceptEx");
    if (rc == 0) {
        rc =
            load_ext(s, (GUID)WSAID_CONNECTEX, &ext.connect_ex, sizeof ext.connect_ex, "ConnectEx");
    }
    if (rc == 0) {
        rc = load_ext(s, (GUID)WSAID_GETACCEPTEXSOCKADDRS, &ext.get_accept_ex_sockaddrs,
                      sizeof ext.get_accept_ex_sockaddrs, "GetAcceptExSockaddrs");
    }
    if (rc == 0 && (!ext.accept_ex || !ext.connect_ex || !ext.get_accept_ex_sockaddrs)) {
        RS__LOG(RS_LOG_ERROR, "WSAIoctl(SIO_GET_EXTENSION_FUNCTION_POINTER) returned NULL");
        rc = rs__raise(RS_ERROR_PLATFORM_NOT_SUPPORTED);
    }
    closesocket(s);
    if (rc == 0) {
        *out = ext;
    }
    return rc;
}

int rs__backend_library_init(void)
{
    WSADATA wsa;
    /* WSAStartup returns its error code (WSAGetLastError is not set) and
     * must not be paired with WSACleanup when it fails. */
    int err = WSAStartup(MAKEWORD(2, 2), &wsa);
    if (err != 0) {
        RS__LOG(RS_LOG_ERROR, "WSAStartup(2.2) failed: %d", err);
        return rs__raise(err == WSASYSNOTREADY || err == WSAVERNOTSUPPORTED
                             ? RS_ERROR_PLATFORM_NOT_SUPPORTED
                             : RS_ERROR_SYS_CALL_FAILURE);
    }
    rs__atomic_add(&startup_count, 1);
    /* WSAStartup also succeeds when the DLL offers only a version below the
     * one requested, reporting it in wVersion: the caller must check it. */
    WORD forced = RS__TEST_HOOK(rs__winsock_forced_version());
    WORD version = forced ? forced : wsa.wVersion;
    if (version != MAKEWORD(2, 2)) {
        RS__LOG(RS_LOG_ERROR, "Winsock negotiated version %u.%u, reseau needs 2.2",
                (unsigned)LOBYTE(version), (unsigned)HIBYTE(version));
        cleanup();
        return rs__raise(RS_ERROR_PLATFORM_NOT_SUPPORTED);
    }
    if (load_extensions(AF_INET, &rs__winsock_ipv4) != 0 ||
        load_extensions(AF_INET6, &rs__winsock_ipv6) != 0) {
        cleanup();
        return -1;
    }
    if (rs__iocp_security_init() != 0) {
        cleanup();
        return -1;
    }
    skip_on_success_allowed = all_providers_ifs();
    return 0;
}

void rs__backend_library_clean_up(void)
{
    rs__iocp_security_clean_up();
    cleanup();
}
