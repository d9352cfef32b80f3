/*
 * Fault hooks of the common code, compiled into the test build of the
 * library only (common/test_hooks.h).
 */
#include "socket_impl.h"

#include "atomics.h"
#include "backend.h"

static volatile long option_faults;

void rs__socket_inject_option_faults(long count)
{
    rs__atomic_store(&option_faults, count);
}

bool rs__socket_take_option_fault(void)
{
    for (;;) {
        long n = rs__atomic_load(&option_faults);
        if (n <= 0) {
            return false;
        }
        if (rs__atomic_cas(&option_faults, n, n - 1)) {
            return true;
        }
    }
}
