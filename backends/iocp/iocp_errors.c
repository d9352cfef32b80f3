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
 * value, and the WSA* values lie above 10000), so one table maps both. Each
 * row gives the code the libevent backend reports for the errno of the same
 * condition (backends/libevent/le_errors.c); the test suite checks each row. */
static const struct rs__iocp_error_row win32_table[] = {
    {ERROR_SUCCESS, RS_ERROR_SUCCESS},
    {WSAEWOULDBLOCK, RS_ERROR_WOULD_BLOCK},
    {ERROR_NOT_ENOUGH_MEMORY, RS_ERROR_OUT_OF_MEMORY}, /* = WSA_NOT_ENOUGH_MEMORY */
    {ERROR_OUTOFMEMORY, RS_ERROR_OUT_OF_MEMORY},
    {ERROR_INVALID_PARAMETER, RS_ERROR_INVALID_ARGUMENT}, /* = WSA_INVALID_PARAMETER */
    {WSAEINVAL, RS_ERROR_INVALID_ARGUMENT},
    {WSAEFAULT, RS_ERROR_INVALID_ARGUMENT},
    /* Not a socket, or not an open one: ENOTSOCK / EBADF. */
    {ERROR_INVALID_HANDLE, RS_ERROR_INVALID_ARGUMENT}, /* = WSA_INVALID_HANDLE */
    {WSAENOTSOCK, RS_ERROR_INVALID_ARGUMENT},
    {WSAEBADF, RS_ERROR_INVALID_ARGUMENT},
    {WSAEINTR, RS_ERROR_CANCELED},
    {ERROR_CONNECTION_REFUSED, RS_ERROR_CONNECTION_REFUSED},
    {WSAECONNREFUSED, RS_ERROR_CONNECTION_REFUSED},
    /* An ICMP port unreachable: Linux reports it on a connected UDP socket
     * as ECONNREFUSED. */
    {ERROR_PORT_UNREACHABLE, RS_ERROR_CONNECTION_REFUSED},
    /* ERROR_NETNAME_DELETED is what GetOverlappedResult reports for a TCP
     * connection reset while an operation was pending. */
    {ERROR_NETNAME_DELETED, RS_ERROR_CONNECTION_RESET},
    {WSAECONNRESET, RS_ERROR_CONNECTION_RESET},
    {ERROR_CONNECTION_ABORTED, RS_ERROR_CONNECTION_ABORTED},
    {WSAECONNABORTED, RS_ERROR_CONNECTION_ABORTED},
    {ERROR_REQUEST_ABORTED, RS_ERROR_CANCELED},
    {WSAENOTCONN, RS_ERROR_NOT_CONNECTED},
    {ERROR_CONNECTION_INVALID, RS_ERROR_NOT_CONNECTED},
    {WSAEDESTADDRREQ, RS_ERROR_NOT_CONNECTED},
    /* Sending after shutdown(SD_SEND): EPIPE on POSIX. A graceful
     * disconnect is the same end of the sending side. */
    {WSAESHUTDOWN, RS_ERROR_SOCKET_CLOSED},
    {WSAEDISCON, RS_ERROR_SOCKET_CLOSED},
    {ERROR_GRACEFUL_DISCONNECT, RS_ERROR_SOCKET_CLOSED},
    {ERROR_BROKEN_PIPE, RS_ERROR_BROKEN_PIPE},
    {ERROR_NO_DATA, RS_ERROR_BROKEN_PIPE},
    {ERROR_PIPE_NOT_CONNECTED, RS_ERROR_BROKEN_PIPE},
    {WAIT_TIMEOUT, RS_ERROR_TIMEOUT},
    {ERROR_SEM_TIMEOUT, RS_ERROR_TIMEOUT},
    {ERROR_TIMEOUT, RS_ERROR_TIMEOUT},
    {WSAETIMEDOUT, RS_ERROR_TIMEOUT},
    /* A keep-alive probe found the connection dead: ENETRESET, and
     * ETIMEDOUT from a POSIX read. */
    {WSAENETRESET, RS_ERROR_TIMEOUT},
    /* 995 comes from CancelIoEx and from closing the handle on Windows; Wine
     * completes a read pending on a closed socket with 676 instead. */
    {ERROR_OPERATION_ABORTED, RS_ERROR_CANCELED}, /* = WSA_OPERATION_ABORTED */
    {ERROR_HANDLES_CLOSED, RS_ERROR_CANCELED},
    {ERROR_CANCELLED, RS_ERROR_CANCELED},
    {WSAECANCELLED, RS_ERROR_CANCELED},
    {WSA_E_CANCELLED, RS_ERROR_CANCELED},
    {ERROR_ADDRESS_ALREADY_ASSOCIATED, RS_ERROR_ADDRESS_IN_USE},
    {WSAEADDRINUSE, RS_ERROR_ADDRESS_IN_USE},
    {WSAEADDRNOTAVAIL, RS_ERROR_ADDRESS_NOT_AVAILABLE},
    {ERROR_ADDRESS_NOT_ASSOCIATED, RS_ERROR_ADDRESS_NOT_AVAILABLE},
    {WSAEAFNOSUPPORT, RS_ERROR_ADDRESS_FAMILY_NOT_SUPPORTED},
    {WSAEPFNOSUPPORT, RS_ERROR_ADDRESS_FAMILY_NOT_SUPPORTED},
    {WSAEPROTONOSUPPORT, RS_ERROR_ADDRESS_FAMILY_NOT_SUPPORTED},
    {WSAEPROTOTYPE, RS_ERROR_ADDRESS_FAMILY_NOT_SUPPORTED},
    {WSAESOCKTNOSUPPORT, RS_ERROR_ADDRESS_FAMILY_NOT_SUPPORTED},
    {WSAENOPROTOOPT, RS_ERROR_SOCKET_OPTION},
    {WSAEOPNOTSUPP, RS_ERROR_PLATFORM_NOT_SUPPORTED},
    {ERROR_NOT_SUPPORTED, RS_ERROR_PLATFORM_NOT_SUPPORTED},
    {ERROR_ACCESS_DENIED, RS_ERROR_NO_PERMISSION},
    {ERROR_NETWORK_ACCESS_DENIED, RS_ERROR_NO_PERMISSION},
    {WSAEACCES, RS_ERROR_NO_PERMISSION},
    {ERROR_NETWORK_UNREACHABLE, RS_ERROR_NETWORK_UNREACHABLE},
    {ERROR_PROTOCOL_UNREACHABLE, RS_ERROR_NETWORK_UNREACHABLE},
    {WSAENETUNREACH, RS_ERROR_NETWORK_UNREACHABLE},
    {WSAENETDOWN, RS_ERROR_NETWORK_UNREACHABLE},
    {ERROR_HOST_UNREACHABLE, RS_ERROR_HOST_UNREACHABLE},
    {ERROR_HOST_DOWN, RS_ERROR_HOST_UNREACHABLE},
    {WSAEHOSTUNREACH, RS_ERROR_HOST_UNREACHABLE},
    {WSAEHOSTDOWN, RS_ERROR_HOST_UNREACHABLE},
    /* A datagram or pipe message longer than the buffer. */
    {ERROR_MORE_DATA, RS_ERROR_MESSAGE_TOO_LARGE},
    {WSAEMSGSIZE, RS_ERROR_MESSAGE_TOO_LARGE},
    {ERROR_TOO_MANY_OPEN_FILES, RS_ERROR_TOO_MANY_HANDLES},
    {WSAEMFILE, RS_ERROR_TOO_MANY_HANDLES},
    {WSAENOBUFS, RS_ERROR_NO_BUFFER_SPACE},
    {ERROR_NO_SYSTEM_RESOURCES, RS_ERROR_NO_BUFFER_SPACE},
    {ERROR_FILE_NOT_FOUND, RS_ERROR_FILE_INVALID_PATH},
    {ERROR_PATH_NOT_FOUND, RS_ERROR_FILE_INVALID_PATH},
    {ERROR_INVALID_NAME, RS_ERROR_FILE_INVALID_PATH},
    {ERROR_BAD_PATHNAME, RS_ERROR_FILE_INVALID_PATH},
    {WSAELOOP, RS_ERROR_FILE_INVALID_PATH},
    {ERROR_FILENAME_EXCED_RANGE, RS_ERROR_NAME_TOO_LONG},
    {WSAENAMETOOLONG, RS_ERROR_NAME_TOO_LONG},
    /* connect on a connected socket, or one already connecting. */
    {WSAEISCONN, RS_ERROR_INVALID_STATE},
    {WSAEALREADY, RS_ERROR_INVALID_STATE},
    {WSAEINPROGRESS, RS_ERROR_INVALID_STATE},
    {ERROR_CONNECTION_ACTIVE, RS_ERROR_INVALID_STATE},
    /* WSAStartup's results for "no usable Winsock 2.2". */
    {WSASYSNOTREADY, RS_ERROR_PLATFORM_NOT_SUPPORTED},
    {WSAVERNOTSUPPORTED, RS_ERROR_PLATFORM_NOT_SUPPORTED},
    {WSAEPROVIDERFAILEDINIT, RS_ERROR_PLATFORM_NOT_SUPPORTED},
    {WSANOTINITIALISED, RS_ERROR_LIBRARY_NOT_INITIALIZED},
};

/* The statuses that completions of socket (AFD) and named-pipe operations
 * carry; each maps like the Winsock or Win32 code the matching synchronous
 * call reports for it. */
static const struct rs__iocp_error_row ntstatus_table[] = {
    {STATUS_SUCCESS, RS_ERROR_SUCCESS},
    {STATUS_DEVICE_NOT_READY, RS_ERROR_WOULD_BLOCK}, /* WSAEWOULDBLOCK */
    {STATUS_CANT_WAIT, RS_ERROR_WOULD_BLOCK},
    {STATUS_NO_MEMORY, RS_ERROR_OUT_OF_MEMORY},
    {STATUS_INVALID_PARAMETER, RS_ERROR_INVALID_ARGUMENT},
    {STATUS_ACCESS_VIOLATION, RS_ERROR_INVALID_ARGUMENT},     /* WSAEFAULT */
    {STATUS_BUFFER_TOO_SMALL, RS_ERROR_INVALID_ARGUMENT},     /* WSAEFAULT */
    {STATUS_INVALID_HANDLE, RS_ERROR_INVALID_ARGUMENT},       /* WSAENOTSOCK */
    {STATUS_OBJECT_TYPE_MISMATCH, RS_ERROR_INVALID_ARGUMENT}, /* WSAENOTSOCK */
    {STATUS_CONNECTION_REFUSED, RS_ERROR_CONNECTION_REFUSED},
    {STATUS_PORT_UNREACHABLE, RS_ERROR_CONNECTION_REFUSED},
    {STATUS_CONNECTION_RESET, RS_ERROR_CONNECTION_RESET},
    {STATUS_CONNECTION_DISCONNECTED, RS_ERROR_CONNECTION_RESET},
    {STATUS_REMOTE_DISCONNECT, RS_ERROR_CONNECTION_RESET},
    {STATUS_NETWORK_NAME_DELETED, RS_ERROR_CONNECTION_RESET}, /* ERROR_NETNAME_DELETED */
    {STATUS_CONNECTION_ABORTED, RS_ERROR_CONNECTION_ABORTED},
    {STATUS_LOCAL_DISCONNECT, RS_ERROR_CONNECTION_ABORTED},
    {STATUS_INVALID_CONNECTION, RS_ERROR_NOT_CONNECTED},
    {STATUS_GRACEFUL_DISCONNECT, RS_ERROR_SOCKET_CLOSED}, /* WSAEDISCON */
    /* On a named pipe: the other end is gone. A socket reports
     * STATUS_PIPE_DISCONNECTED for a send after shutdown (WSAESHUTDOWN):
     * rs__iocp_error_from_socket_ntstatus. */
    {STATUS_PIPE_BROKEN, RS_ERROR_BROKEN_PIPE},
    {STATUS_PIPE_CLOSING, RS_ERROR_BROKEN_PIPE},
    {STATUS_PIPE_DISCONNECTED, RS_ERROR_BROKEN_PIPE},
    {STATUS_IO_TIMEOUT, RS_ERROR_TIMEOUT},
    {STATUS_LINK_TIMEOUT, RS_ERROR_TIMEOUT},
    /* STATUS_HANDLES_CLOSED is Wine's status for a read pending on a socket
     * that was closed (Windows reports STATUS_CANCELLED). */
    {STATUS_CANCELLED, RS_ERROR_CANCELED},
    {STATUS_HANDLES_CLOSED, RS_ERROR_CANCELED},
    {STATUS_REQUEST_ABORTED, RS_ERROR_CANCELED},
    {STATUS_ADDRESS_ALREADY_EXISTS, RS_ERROR_ADDRESS_IN_USE},
    {STATUS_ADDRESS_ALREADY_ASSOCIATED, RS_ERROR_ADDRESS_IN_USE},
    {STATUS_SHARING_VIOLATION, RS_ERROR_ADDRESS_IN_USE}, /* WSAEADDRINUSE */
    {STATUS_INVALID_ADDRESS_COMPONENT, RS_ERROR_ADDRESS_NOT_AVAILABLE},
    {STATUS_TOO_MANY_ADDRESSES, RS_ERROR_ADDRESS_NOT_AVAILABLE},
    {STATUS_CONNECTION_ACTIVE, RS_ERROR_INVALID_STATE},      /* WSAEISCONN */
    {STATUS_NOT_SUPPORTED, RS_ERROR_PLATFORM_NOT_SUPPORTED}, /* WSAEOPNOTSUPP */
    {STATUS_NOT_IMPLEMENTED, RS_ERROR_PLATFORM_NOT_SUPPORTED},
    {STATUS_INVALID_DEVICE_REQUEST, RS_ERROR_PLATFORM_NOT_SUPPORTED},
    {STATUS_ACCESS_DENIED, RS_ERROR_NO_PERMISSION},
    {STATUS_NETWORK_UNREACHABLE, RS_ERROR_NETWORK_UNREACHABLE},
    {STATUS_PROTOCOL_UNREACHABLE, RS_ERROR_NETWORK_UNREACHABLE},
    {STATUS_NETWORK_BUSY, RS_ERROR_NETWORK_UNREACHABLE},             /* WSAENETDOWN */
    {STATUS_INVALID_NETWORK_RESPONSE, RS_ERROR_NETWORK_UNREACHABLE}, /* WSAENETDOWN */
    {STATUS_HOST_UNREACHABLE, RS_ERROR_HOST_UNREACHABLE},
    {STATUS_HOST_DOWN, RS_ERROR_HOST_UNREACHABLE},
    /* A warning status: the buffer was filled and the rest of the datagram or
     * pipe message did not fit. */
    {STATUS_BUFFER_OVERFLOW, RS_ERROR_MESSAGE_TOO_LARGE},
    {STATUS_INVALID_BUFFER_SIZE, RS_ERROR_MESSAGE_TOO_LARGE}, /* WSAEMSGSIZE */
    {STATUS_TOO_MANY_OPENED_FILES, RS_ERROR_TOO_MANY_HANDLES},
    {STATUS_INSUFFICIENT_RESOURCES, RS_ERROR_NO_BUFFER_SPACE},
    {STATUS_OBJECT_NAME_NOT_FOUND, RS_ERROR_FILE_INVALID_PATH},
    {STATUS_OBJECT_PATH_NOT_FOUND, RS_ERROR_FILE_INVALID_PATH},
    {STATUS_OBJECT_NAME_INVALID, RS_ERROR_FILE_INVALID_PATH},
};

/* A socket (AFD) completion: STATUS_PIPE_DISCONNECTED is the send after
 * shutdown(SD_SEND) that a synchronous send reports as WSAESHUTDOWN, so it
 * ends like a send after shutdown(SHUT_WR) on POSIX (EPIPE). */
static const struct rs__iocp_error_row socket_ntstatus_table[] = {
    {STATUS_PIPE_DISCONNECTED, RS_ERROR_SOCKET_CLOSED},
};

/* FILE_FLAG_FIRST_PIPE_INSTANCE fails with ERROR_ACCESS_DENIED when the name
 * exists (ERROR_PIPE_BUSY when its instances are all taken): the name is
 * bound by someone else, EADDRINUSE for a Unix socket path. */
static const struct rs__iocp_error_row pipe_create_table[] = {
    {ERROR_ACCESS_DENIED, RS_ERROR_ADDRESS_IN_USE},
    {ERROR_PIPE_BUSY, RS_ERROR_ADDRESS_IN_USE},
};

/* No pipe of that name: nobody listens at the address. CreateFile cannot
 * tell a name never created from one whose server is gone, so a LOCAL
 * connect reports both as the libevent backend reports a missing path and a
 * path without a listener (ENOENT, ECONNREFUSED). */
static const struct rs__iocp_error_row pipe_open_table[] = {
    {ERROR_FILE_NOT_FOUND, RS_ERROR_CONNECTION_REFUSED},
    {ERROR_PATH_NOT_FOUND, RS_ERROR_CONNECTION_REFUSED},
};

#define TABLE(t)                                                                                   \
    {                                                                                              \
        t, sizeof t / sizeof t[0]                                                                  \
    }
static const struct {
    const struct rs__iocp_error_row *rows;
    size_t count;
} tables[] = {
    [RS__IOCP_ERRORS_WIN32] = TABLE(win32_table),
    [RS__IOCP_ERRORS_NTSTATUS] = TABLE(ntstatus_table),
    [RS__IOCP_ERRORS_SOCKET_NTSTATUS] = TABLE(socket_ntstatus_table),
    [RS__IOCP_ERRORS_PIPE_CREATE] = TABLE(pipe_create_table),
    [RS__IOCP_ERRORS_PIPE_OPEN] = TABLE(pipe_open_table),
};

const struct rs__iocp_error_row *rs__iocp_error_table(enum rs__iocp_error_table which,
                                                      size_t *count)
{
    *count = tables[which].count;
    return tables[which].rows;
}

static bool look_up(enum rs__iocp_error_table which, uint32_t os, int *code)
{
    for (size_t i = 0; i < tables[which].count; i++) {
        if (tables[which].rows[i].os == os) {
            *code = tables[which].rows[i].code;
            return true;
        }
    }
    return false;
}

int rs__iocp_error_from_win32(DWORD err)
{
    int code;
    if (look_up(RS__IOCP_ERRORS_WIN32, err, &code)) {
        return code;
    }
    RS__LOG(RS_LOG_WARN, "unmapped Win32/Winsock error %lu", (unsigned long)err);
    return RS_ERROR_SYS_CALL_FAILURE;
}

int rs__iocp_error_from_wsa(int err)
{
    return rs__iocp_error_from_win32((DWORD)err);
}

/* NTSTATUS_FROM_WIN32 (winerror.h): a Win32 code carried as an NTSTATUS,
 * error severity and FACILITY_NTWIN32 (7) above the code. */
#define NTSTATUS_WIN32_MASK 0xffff0000u
#define NTSTATUS_WIN32_TAG 0xc0070000u

int rs__iocp_error_from_ntstatus(uint32_t status)
{
    int code;
    if (look_up(RS__IOCP_ERRORS_NTSTATUS, status, &code)) {
        return code;
    }
    if ((status & NTSTATUS_WIN32_MASK) == NTSTATUS_WIN32_TAG) {
        return rs__iocp_error_from_win32(status & ~NTSTATUS_WIN32_MASK);
    }
    RS__LOG(RS_LOG_WARN, "unmapped NTSTATUS 0x%08lx", (unsigned long)status);
    return RS_ERROR_SYS_CALL_FAILURE;
}

int rs__iocp_error_from_socket_ntstatus(uint32_t status)
{
    int code;
    return look_up(RS__IOCP_ERRORS_SOCKET_NTSTATUS, status, &code)
               ? code
               : rs__iocp_error_from_ntstatus(status);
}

int rs__iocp_error_from_pipe_create(DWORD err)
{
    int code;
    return look_up(RS__IOCP_ERRORS_PIPE_CREATE, err, &code) ? code : rs__iocp_error_from_win32(err);
}

int rs__iocp_error_from_pipe_open(DWORD err)
{
    int code;
    return look_up(RS__IOCP_ERRORS_PIPE_OPEN, err, &code) ? code : rs__iocp_error_from_win32(err);
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
    return rs__raise(rs__iocp_error_from_win32(err));
}

int rs__iocp_raise_wsa(int err)
{
    return rs__raise(rs__iocp_error_from_wsa(err));
}
