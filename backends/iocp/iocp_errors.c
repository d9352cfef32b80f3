/*
 * The IOCP backend's one OS code -> RS_ERROR_* table: Win32 and Winsock error
 * codes, and the NTSTATUS values that completions of socket and named-pipe
 * operations carry. Each maps to the code the libevent backend reports for
 * the same situation (backends/libevent/le_errors.c), so that the shared test
 * suite can assert exact codes on both backends.
 */

/* <ntstatus.h> is the complete list of STATUS_* values; <winnt.h> defines a
 * few of them too unless WIN32_NO_STATUS is set while it is included. */
#define WIN32_NO_STATUS
#include "iocp_backend.h"
#undef WIN32_NO_STATUS
#include <ntstatus.h>
#include <winternl.h> /* NTSTATUS */

#include "../../common/log.h"

/* The Windows SDK's winerror.h has it; mingw-w64's does not. */
#ifndef ERROR_HANDLES_CLOSED
#define ERROR_HANDLES_CLOSED 676L
#endif

/* Winsock codes are Win32 codes (WSAGetLastError returns GetLastError's
 * value, and the WSA* values lie above 10000), so one switch maps both. */
int rs__iocp_error_from_win32(DWORD err)
{
    switch (err) {
    case ERROR_SUCCESS:
        return RS_ERROR_SUCCESS;
    case WSAEWOULDBLOCK:
        return RS_ERROR_WOULD_BLOCK;
    case ERROR_NOT_ENOUGH_MEMORY: /* = WSA_NOT_ENOUGH_MEMORY */
    case ERROR_OUTOFMEMORY:
        return RS_ERROR_OUT_OF_MEMORY;
    case ERROR_INVALID_PARAMETER: /* = WSA_INVALID_PARAMETER */
    case WSAEINVAL:
    case WSAEFAULT:
        return RS_ERROR_INVALID_ARGUMENT;
    case ERROR_CONNECTION_REFUSED:
    case WSAECONNREFUSED:
    /* An ICMP port unreachable: Linux reports it on a connected UDP socket as
     * ECONNREFUSED. */
    case ERROR_PORT_UNREACHABLE:
        return RS_ERROR_CONNECTION_REFUSED;
    /* ERROR_NETNAME_DELETED is what GetOverlappedResult reports for a TCP
     * connection reset while an operation was pending. */
    case ERROR_NETNAME_DELETED:
    case WSAECONNRESET:
        return RS_ERROR_CONNECTION_RESET;
    case ERROR_CONNECTION_ABORTED:
    case WSAECONNABORTED:
        return RS_ERROR_CONNECTION_ABORTED;
    case WSAENOTCONN:
        return RS_ERROR_NOT_CONNECTED;
    /* Sending after shutdown(SD_SEND): EPIPE on POSIX. */
    case WSAESHUTDOWN:
        return RS_ERROR_SOCKET_CLOSED;
    case ERROR_BROKEN_PIPE:
    case ERROR_NO_DATA:
    case ERROR_PIPE_NOT_CONNECTED:
        return RS_ERROR_BROKEN_PIPE;
    case WAIT_TIMEOUT:
    case ERROR_SEM_TIMEOUT:
    case ERROR_TIMEOUT:
    case WSAETIMEDOUT:
    /* A keep-alive probe found the connection dead: ETIMEDOUT on POSIX. */
    case WSAENETRESET:
        return RS_ERROR_TIMEOUT;
    /* 995 comes from CancelIoEx and from closing the handle on Windows; Wine
     * completes a read pending on a closed socket with 676 instead. */
    case ERROR_OPERATION_ABORTED: /* = WSA_OPERATION_ABORTED */
    case ERROR_HANDLES_CLOSED:
    case ERROR_CANCELLED:
    case WSAECANCELLED:
        return RS_ERROR_CANCELED;
    case ERROR_ADDRESS_ALREADY_ASSOCIATED:
    case WSAEADDRINUSE:
        return RS_ERROR_ADDRESS_IN_USE;
    case WSAEADDRNOTAVAIL:
        return RS_ERROR_ADDRESS_NOT_AVAILABLE;
    case WSAEAFNOSUPPORT:
    case WSAEPFNOSUPPORT:
        return RS_ERROR_ADDRESS_FAMILY_NOT_SUPPORTED;
    case ERROR_ACCESS_DENIED:
    case WSAEACCES:
        return RS_ERROR_NO_PERMISSION;
    case ERROR_NETWORK_UNREACHABLE:
    case WSAENETUNREACH:
    case WSAENETDOWN:
        return RS_ERROR_NETWORK_UNREACHABLE;
    case ERROR_HOST_UNREACHABLE:
    case WSAEHOSTUNREACH:
    case WSAEHOSTDOWN:
        return RS_ERROR_HOST_UNREACHABLE;
    /* A datagram or pipe message longer than the buffer. */
    case ERROR_MORE_DATA:
    case WSAEMSGSIZE:
        return RS_ERROR_MESSAGE_TOO_LARGE;
    case ERROR_TOO_MANY_OPEN_FILES:
    case WSAEMFILE:
        return RS_ERROR_TOO_MANY_HANDLES;
    case WSAENOBUFS:
        return RS_ERROR_NO_BUFFER_SPACE;
    case ERROR_FILE_NOT_FOUND:
    case ERROR_PATH_NOT_FOUND:
    case ERROR_INVALID_NAME:
        return RS_ERROR_FILE_INVALID_PATH;
    case ERROR_FILENAME_EXCED_RANGE:
    case WSAENAMETOOLONG:
        return RS_ERROR_NAME_TOO_LONG;
    /* WSAStartup's results for "no usable Winsock 2.2". */
    case WSASYSNOTREADY:
    case WSAVERNOTSUPPORTED:
        return RS_ERROR_PLATFORM_NOT_SUPPORTED;
    case WSANOTINITIALISED:
        return RS_ERROR_LIBRARY_NOT_INITIALIZED;
    default:
        RS__LOG(RS_LOG_WARN, "unmapped Win32/Winsock error %lu", (unsigned long)err);
        return RS_ERROR_SYS_CALL_FAILURE;
    }
}

int rs__iocp_error_from_wsa(int err)
{
    return rs__iocp_error_from_win32((DWORD)err);
}

/* The statuses that completions of socket (AFD) and named-pipe operations
 * carry; each maps like the Win32/Winsock code the matching synchronous call
 * would report. */
int rs__iocp_error_from_ntstatus(uint32_t status)
{
    switch (status) {
    case STATUS_SUCCESS:
        return RS_ERROR_SUCCESS;
    case STATUS_NO_MEMORY:
        return RS_ERROR_OUT_OF_MEMORY;
    case STATUS_INVALID_PARAMETER:
        return RS_ERROR_INVALID_ARGUMENT;
    case STATUS_CONNECTION_REFUSED:
    case STATUS_PORT_UNREACHABLE:
        return RS_ERROR_CONNECTION_REFUSED;
    case STATUS_CONNECTION_RESET:
    case STATUS_CONNECTION_DISCONNECTED:
    case STATUS_REMOTE_DISCONNECT:
        return RS_ERROR_CONNECTION_RESET;
    case STATUS_CONNECTION_ABORTED:
    case STATUS_LOCAL_DISCONNECT:
        return RS_ERROR_CONNECTION_ABORTED;
    case STATUS_INVALID_CONNECTION:
        return RS_ERROR_NOT_CONNECTED;
    case STATUS_PIPE_BROKEN:
    case STATUS_PIPE_CLOSING:
    case STATUS_PIPE_DISCONNECTED:
        return RS_ERROR_BROKEN_PIPE;
    case STATUS_IO_TIMEOUT:
        return RS_ERROR_TIMEOUT;
    /* STATUS_HANDLES_CLOSED is Wine's status for a read pending on a socket
     * that was closed (Windows reports STATUS_CANCELLED). */
    case STATUS_CANCELLED:
    case STATUS_HANDLES_CLOSED:
        return RS_ERROR_CANCELED;
    case STATUS_ADDRESS_ALREADY_EXISTS:
        return RS_ERROR_ADDRESS_IN_USE;
    case STATUS_INVALID_ADDRESS_COMPONENT:
        return RS_ERROR_ADDRESS_NOT_AVAILABLE;
    case STATUS_ACCESS_DENIED:
        return RS_ERROR_NO_PERMISSION;
    case STATUS_NETWORK_UNREACHABLE:
    case STATUS_PROTOCOL_UNREACHABLE:
        return RS_ERROR_NETWORK_UNREACHABLE;
    case STATUS_HOST_UNREACHABLE:
        return RS_ERROR_HOST_UNREACHABLE;
    /* A warning status: the buffer was filled and the rest of the datagram or
     * pipe message did not fit. */
    case STATUS_BUFFER_OVERFLOW:
        return RS_ERROR_MESSAGE_TOO_LARGE;
    case STATUS_TOO_MANY_OPENED_FILES:
        return RS_ERROR_TOO_MANY_HANDLES;
    case STATUS_INSUFFICIENT_RESOURCES:
        return RS_ERROR_NO_BUFFER_SPACE;
    case STATUS_OBJECT_NAME_NOT_FOUND:
    case STATUS_OBJECT_PATH_NOT_FOUND:
        return RS_ERROR_FILE_INVALID_PATH;
    default:
        RS__LOG(RS_LOG_WARN, "unmapped NTSTATUS 0x%08lx", (unsigned long)status);
        return RS_ERROR_SYS_CALL_FAILURE;
    }
}

int rs__iocp_error_from_pipe_create(DWORD err)
{
    /* FILE_FLAG_FIRST_PIPE_INSTANCE fails with ERROR_ACCESS_DENIED when the
     * name exists (ERROR_PIPE_BUSY when its instances are all taken): the
     * name is bound by someone else, EADDRINUSE for a Unix socket path. */
    if (err == ERROR_ACCESS_DENIED || err == ERROR_PIPE_BUSY) {
        return RS_ERROR_ADDRESS_IN_USE;
    }
    if (err == ERROR_BAD_PATHNAME) {
        return RS_ERROR_FILE_INVALID_PATH;
    }
    return rs__iocp_error_from_win32(err);
}

int rs__iocp_error_from_pipe_open(DWORD err)
{
    /* No pipe of that name: no listener at the path (a Unix socket connect
     * to a path without a listener is refused). */
    if (err == ERROR_FILE_NOT_FOUND || err == ERROR_PATH_NOT_FOUND) {
        return RS_ERROR_CONNECTION_REFUSED;
    }
    if (err == ERROR_BAD_PATHNAME) {
        return RS_ERROR_FILE_INVALID_PATH;
    }
    return rs__iocp_error_from_win32(err);
}

int rs__iocp_error_for_pipe_socket(int code)
{
    /* A write to a LOCAL socket whose peer is gone fails with EPIPE on POSIX
     * (RS_ERROR_SOCKET_CLOSED); the pipe reports it as a broken pipe. */
    return code == RS_ERROR_BROKEN_PIPE ? RS_ERROR_SOCKET_CLOSED : code;
}

int rs__iocp_error_for_datagram(int code)
{
    /* A UDP receive fails with WSAECONNRESET when an earlier datagram drew
     * an ICMP port unreachable; POSIX reports that as ECONNREFUSED. */
    return code == RS_ERROR_CONNECTION_RESET ? RS_ERROR_CONNECTION_REFUSED : code;
}

int rs__iocp_raise_win32(DWORD err)
{
    return rs_raise(rs__iocp_error_from_win32(err));
}

int rs__iocp_raise_wsa(int err)
{
    return rs_raise(rs__iocp_error_from_wsa(err));
}
