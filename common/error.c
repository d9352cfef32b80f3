#include "error.h"

#include "compat.h"

static RS__THREAD_LOCAL int last_error;

struct error_text {
    const char *name;
    const char *sentence;
};

#define E(code, text) [code] = {#code, text}
static const struct error_text texts[RS_ERROR_COUNT] = {
    E(RS_ERROR_SUCCESS, "Success."),
    E(RS_ERROR_UNKNOWN, "An unknown error occurred."),
    E(RS_ERROR_OUT_OF_MEMORY, "Out of memory."),
    E(RS_ERROR_INVALID_ARGUMENT, "An argument was NULL, out of range or not a live object."),
    E(RS_ERROR_INVALID_STATE, "The object is not in a state that allows this operation."),
    E(RS_ERROR_LIBRARY_NOT_INITIALIZED, "rs_library_init() has not been called."),
    E(RS_ERROR_PLATFORM_NOT_SUPPORTED, "This platform or backend does not support the operation."),
    E(RS_ERROR_WRONG_THREAD, "The operation must be called on the object's event-loop thread."),
    E(RS_ERROR_WOULD_DEADLOCK, "The call would wait for the calling thread itself."),
    E(RS_ERROR_EVENT_LOOP_SHUTDOWN, "The event loop shut down before the operation completed."),
    E(RS_ERROR_EVENT_LOOP_ALREADY_ASSIGNED, "The object is already assigned to an event loop."),
    E(RS_ERROR_SYS_CALL_FAILURE, "A system call failed unexpectedly."),
    E(RS_ERROR_WOULD_BLOCK, "The operation would block: no data is available now."),
    E(RS_ERROR_TIMEOUT, "The operation timed out."),
    E(RS_ERROR_CANCELED, "The operation was cancelled."),
    E(RS_ERROR_CONNECTION_REFUSED, "The peer refused the connection."),
    E(RS_ERROR_CONNECTION_RESET, "The peer reset the connection."),
    E(RS_ERROR_CONNECTION_ABORTED, "The connection was aborted."),
    E(RS_ERROR_NOT_CONNECTED, "The socket is not connected."),
    E(RS_ERROR_SOCKET_CLOSED, "The socket is closed, or the peer closed its end."),
    E(RS_ERROR_BROKEN_PIPE, "The other end of the pipe is closed."),
    E(RS_ERROR_ADDRESS_IN_USE, "The address is already in use."),
    E(RS_ERROR_ADDRESS_NOT_AVAILABLE, "The address is not available on this host."),
    E(RS_ERROR_ADDRESS_FAMILY_NOT_SUPPORTED, "The address family is not supported."),
    E(RS_ERROR_INVALID_ADDRESS, "The address is malformed."),
    E(RS_ERROR_INVALID_PORT, "The port is out of range for this operation."),
    E(RS_ERROR_INVALID_OPTIONS, "The socket options are invalid or inconsistent."),
    E(RS_ERROR_SOCKET_OPTION, "The operating system refused a requested socket option."),
    E(RS_ERROR_NO_PERMISSION, "Permission denied."),
    E(RS_ERROR_NETWORK_UNREACHABLE, "The network is unreachable."),
    E(RS_ERROR_HOST_UNREACHABLE, "The host is unreachable."),
    E(RS_ERROR_MESSAGE_TOO_LARGE,
      "The datagram is larger than the buffer or the transport allows."),
    E(RS_ERROR_TOO_MANY_HANDLES, "The process or system is out of file descriptors or handles."),
    E(RS_ERROR_NO_BUFFER_SPACE, "The system is out of buffer space."),
    E(RS_ERROR_FILE_INVALID_PATH, "The path is empty, too long or does not exist."),
    E(RS_ERROR_NAME_TOO_LONG, "The name is longer than the system allows."),
    E(RS_ERROR_DNS_INVALID_NAME,
      "The host name is empty, too long or contains invalid characters."),
    E(RS_ERROR_DNS_QUERY_FAILED, "The host name lookup failed."),
    E(RS_ERROR_DNS_NO_ADDRESS, "The host name has no address of the requested family."),
    E(RS_ERROR_NOT_A_SOCKET, "The handle is open but is not a socket."),
};
#undef E

int rs__last_error(void)
{
    return last_error;
}

int rs__raise(int code)
{
    last_error = code;
    return -1;
}

const char *rs__error_name(int code)
{
    if (code < 0 || code >= RS_ERROR_COUNT) {
        return "RS_ERROR_UNKNOWN";
    }
    return texts[code].name;
}

int rs_last_error(void)
{
    return rs__last_error();
}

int rs_raise(int code)
{
    return rs__raise(code);
}

const char *rs_error_name(int code)
{
    return rs__error_name(code);
}

const char *rs_error_str(int code)
{
    if (code < 0 || code >= RS_ERROR_COUNT) {
        return texts[RS_ERROR_UNKNOWN].sentence;
    }
    return texts[code].sentence;
}
