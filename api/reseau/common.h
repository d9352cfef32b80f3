/** @file
 * reseau: library life cycle, errors, logging, allocator and backend identity.
 *
 * Error convention (every header): a function that returns int returns 0 on
 * success and -1 on failure; a function that returns a pointer returns NULL on
 * failure. The failure's code is then in rs_last_error(), which is
 * thread-local and is left unchanged by successful calls.
 */
#ifndef RESEAU_COMMON_H
#define RESEAU_COMMON_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** RS_API marks the public symbols: exported from the shared library
 * (dllexport / default visibility), imported by users of the Windows DLL
 * (who define RS_SHARED_LIBRARY, as reseau.pc does). */
#if defined(_WIN32) && defined(RS_SHARED_LIBRARY)
#if defined(RS_BUILDING_LIBRARY)
#define RS_API __declspec(dllexport)
#else
#define RS_API __declspec(dllimport)
#endif
#elif defined(__GNUC__)
#define RS_API __attribute__((visibility("default")))
#else
#define RS_API
#endif

/**
 * Every error reseau reports. The numbering is part of the ABI: new codes are
 * appended before RS_ERROR_COUNT, never inserted.
 */
typedef enum rs_error {
    RS_ERROR_SUCCESS = 0,
    RS_ERROR_UNKNOWN,
    RS_ERROR_OUT_OF_MEMORY,
    RS_ERROR_INVALID_ARGUMENT,
    RS_ERROR_INVALID_STATE,
    RS_ERROR_LIBRARY_NOT_INITIALIZED,
    RS_ERROR_PLATFORM_NOT_SUPPORTED,
    RS_ERROR_WRONG_THREAD,
    RS_ERROR_WOULD_DEADLOCK,
    RS_ERROR_EVENT_LOOP_SHUTDOWN,
    RS_ERROR_EVENT_LOOP_ALREADY_ASSIGNED,
    RS_ERROR_SYS_CALL_FAILURE,
    RS_ERROR_WOULD_BLOCK,
    RS_ERROR_TIMEOUT,
    RS_ERROR_CANCELED,
    RS_ERROR_CONNECTION_REFUSED,
    RS_ERROR_CONNECTION_RESET,
    RS_ERROR_CONNECTION_ABORTED,
    RS_ERROR_NOT_CONNECTED,
    RS_ERROR_SOCKET_CLOSED,
    RS_ERROR_BROKEN_PIPE,
    RS_ERROR_ADDRESS_IN_USE,
    RS_ERROR_ADDRESS_NOT_AVAILABLE,
    RS_ERROR_ADDRESS_FAMILY_NOT_SUPPORTED,
    RS_ERROR_INVALID_ADDRESS,
    RS_ERROR_INVALID_PORT,
    RS_ERROR_INVALID_OPTIONS,
    RS_ERROR_SOCKET_OPTION,
    RS_ERROR_NO_PERMISSION,
    RS_ERROR_NETWORK_UNREACHABLE,
    RS_ERROR_HOST_UNREACHABLE,
    RS_ERROR_MESSAGE_TOO_LARGE,
    RS_ERROR_TOO_MANY_HANDLES,
    RS_ERROR_NO_BUFFER_SPACE,
    RS_ERROR_FILE_INVALID_PATH,
    RS_ERROR_NAME_TOO_LONG,
    RS_ERROR_DNS_INVALID_NAME,
    RS_ERROR_DNS_QUERY_FAILED,
    RS_ERROR_DNS_NO_ADDRESS,
    RS_ERROR_NOT_A_SOCKET,
    RS_ERROR_COUNT
} rs_error;

/** Thread-local code of the last failure on this thread. Any thread. */
RS_API int rs_last_error(void);
/** Sets this thread's last error; returns -1 so callers can `return rs_raise(..)`. */
RS_API int rs_raise(int code);
/** "RS_ERROR_TIMEOUT" for RS_ERROR_TIMEOUT; "RS_ERROR_UNKNOWN" for codes out of range. */
RS_API const char *rs_error_name(int code);
/** One sentence describing the code; never NULL. */
RS_API const char *rs_error_str(int code);

/**
 * Library life cycle. Reference counted and thread-safe: every successful
 * rs_library_init() is paired with one rs_library_cleanup(); the last cleanup
 * releases process-wide resources (on Windows: WSACleanup).
 *
 * rs_library_init errors: RS_ERROR_PLATFORM_NOT_SUPPORTED (Winsock 2.2 not
 * available, or an extension function could not be loaded),
 * RS_ERROR_SYS_CALL_FAILURE. A failed init leaves the reference count unchanged.
 * rs_library_cleanup errors: RS_ERROR_LIBRARY_NOT_INITIALIZED (more cleanups
 * than successful inits), RS_ERROR_INVALID_STATE (the last cleanup while an
 * event loop or any other allocation of the library is still live: nothing
 * is released, the count stays 1, and the live loops and allocations are
 * logged at RS_LOG_ERROR).
 */
RS_API int rs_library_init(void);
/** Drops one successful init; the last one releases process-wide resources. */
RS_API int rs_library_cleanup(void);
/** Number of outstanding successful inits (0 when not initialized). Any thread. */
RS_API int rs_library_init_count(void);

/** Which backend this library was built with. */
typedef enum rs_backend {
    RS_BACKEND_DEFAULT = 0, /**< the one built in */
    RS_BACKEND_LIBEVENT,    /**< libevent 2.1 (POSIX) */
    RS_BACKEND_IOCP,        /**< I/O completion ports + Winsock (Windows) */
} rs_backend;

/** The backend this library was built with (never RS_BACKEND_DEFAULT). */
RS_API rs_backend rs_backend_id(void);
/** "libevent" or "iocp". */
RS_API const char *rs_backend_name(void);

/** Major version of the headers: incompatible API or ABI changes. */
#define RS_VERSION_MAJOR 0
/** Minor version of the headers: compatible additions. */
#define RS_VERSION_MINOR 1
/** Patch version of the headers: fixes only. */
#define RS_VERSION_PATCH 0
/** "major.minor.patch" of the library actually linked. */
RS_API const char *rs_version(void);

/**
 * Logging: off by default; the library never prints. The callback may be
 * called from any thread, concurrently; it must not call back into reseau.
 * Set it before rs_library_init or while no loop runs.
 */
typedef enum rs_log_level {
    RS_LOG_NONE = 0, /**< logging off */
    RS_LOG_ERROR,    /**< failures the caller may not see otherwise */
    RS_LOG_WARN,     /**< unexpected but handled (e.g. an unmapped OS error) */
    RS_LOG_INFO,     /**< life-cycle events */
    RS_LOG_DEBUG,    /**< per-operation detail */
    RS_LOG_TRACE,    /**< everything */
} rs_log_level;

/** Receives one formatted message (no trailing newline) at a level. */
typedef void(rs_log_fn)(rs_log_level level, const char *message, void *user_data);
/** fn NULL or level RS_LOG_NONE turns logging off. */
RS_API void rs_set_log(rs_log_fn *fn, rs_log_level level, void *user_data);

/**
 * Allocator hook. All memory the library allocates goes through it. It can be
 * replaced only while the library is not initialized (otherwise
 * RS_ERROR_INVALID_STATE); NULL restores malloc/realloc/free. The functions
 * must be thread-safe; mem_acquire(size) returns NULL on failure.
 */
typedef struct rs_allocator {
    /** Returns size bytes suitably aligned for any object, or NULL. */
    void *(*mem_acquire)(struct rs_allocator *allocator, size_t size);
    /** Frees a block mem_acquire returned (never NULL). */
    void (*mem_release)(struct rs_allocator *allocator, void *ptr);
    /** The allocator's own state. */
    void *impl;
} rs_allocator;

/* An operating-system socket, as rs_socket_adopt and rs_watch_start take it. */
#ifdef _WIN32
/** An operating-system socket: a Winsock SOCKET (UINT_PTR) on Windows. */
typedef uintptr_t rs_os_socket;
/** The value that is no socket (INVALID_SOCKET). */
#define RS_OS_SOCKET_INVALID (~(rs_os_socket)0)
#else
/** An operating-system socket: a file descriptor on POSIX. */
typedef int rs_os_socket;
/** The value that is no socket. */
#define RS_OS_SOCKET_INVALID (-1)
#endif

/** Installs allocator (NULL: malloc/free). Errors: RS_ERROR_INVALID_STATE
 * (library initialised, or blocks of the current allocator still live),
 * RS_ERROR_INVALID_ARGUMENT (a NULL function). */
RS_API int rs_set_allocator(rs_allocator *allocator);
/** Number of blocks the library currently holds (for leak checks). */
RS_API int64_t rs_live_allocations(void);

#ifdef __cplusplus
}
#endif

#endif
