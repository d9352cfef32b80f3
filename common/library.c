#include "library.h"

#include "alloc.h"
#include "atomics.h"
#include "backend.h"
#include "error.h"
#include "event_loop_impl.h"
#include "host_resolver_impl.h"
#include "log.h"
#include "thread.h"

#include <reseau/common.h>

/* Statically initialised: init may race from many threads from the very first
 * call, so no lazily set flag guards it. */
static rs__mutex init_lock = RS__MUTEX_INIT;
static volatile long init_count;

int rs_library_init(void)
{
    rs__mutex_lock(&init_lock);
    if (rs__atomic_load(&init_count) == 0 && rs__backend_library_init() != 0) {
        rs__mutex_unlock(&init_lock);
        return -1;
    }
    long n = rs__atomic_add(&init_count, 1);
    rs__alloc_lock_hook((int)n);
    rs__mutex_unlock(&init_lock);
    return 0;
}

int rs_library_cleanup(void)
{
    rs__mutex_lock(&init_lock);
    if (rs__atomic_load(&init_count) == 0) {
        rs__mutex_unlock(&init_lock);
        return rs_raise(RS_ERROR_LIBRARY_NOT_INITIALIZED);
    }
    if (rs__atomic_load(&init_count) == 1) {
        /* The last cleanup releases what every object of the library relies
         * on (Winsock): it refuses while one is left, and says what, rather
         * than leaving the application sockets that no longer work and
         * memory nobody reports. Lookups still running for a destroyed loop
         * finish on their own: wait for them first. */
        int loops = rs__event_loop_live_count();
        if (loops == 0) {
            rs__resolver_wait_idle();
        }
        int64_t blocks = rs_live_allocations();
        if (loops != 0 || blocks != 0) {
            RS__LOG(RS_LOG_ERROR,
                    "library cleanup refused: %d event loops and %lld allocations are still live",
                    loops, (long long)blocks);
            rs__mutex_unlock(&init_lock);
            return rs_raise(RS_ERROR_INVALID_STATE);
        }
        rs__backend_library_clean_up();
    }
    long n = rs__atomic_add(&init_count, -1);
    rs__alloc_lock_hook((int)n);
    rs__mutex_unlock(&init_lock);
    return 0;
}

int rs_library_init_count(void)
{
    return (int)rs__atomic_load(&init_count);
}

int rs__library_check(void)
{
    return rs__atomic_load(&init_count) > 0 ? 0 : rs_raise(RS_ERROR_LIBRARY_NOT_INITIALIZED);
}

rs_backend rs_backend_id(void)
{
    return rs__backend_id();
}

const char *rs_backend_name(void)
{
    return rs__backend_name();
}

#define RS__STR2(x) #x
#define RS__STR(x) RS__STR2(x)

const char *rs_version(void)
{
    return RS__STR(RS_VERSION_MAJOR) "." RS__STR(RS_VERSION_MINOR) "." RS__STR(RS_VERSION_PATCH);
}
