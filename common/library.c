#include "library.h"

#include "alloc.h"
#include "atomics.h"
#include "backend.h"
#include "error.h"
#include "host_resolver_impl.h"
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
    long n = rs__atomic_add(&init_count, -1);
    if (n == 0) {
        rs__resolver_wait_idle();
        rs__backend_library_clean_up();
    }
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
