/*
 * Fault control through the LD_PRELOAD shim (tests/faults/syscall_shim.c),
 * found with dlsym when meson preloaded it.
 */
#define _GNU_SOURCE /* RTLD_DEFAULT */
#include "fault_control.h"

#include "../rs_test.h"

#ifndef _WIN32
#include <dlfcn.h>
#endif
#include <stdio.h>
#include <string.h>

typedef int(shim_arm_fn)(const char *spec);
typedef long(shim_injected_fn)(void);

static shim_arm_fn *shim_arm;
static shim_injected_fn *shim_injected;

/* A data pointer is copied into a function pointer with memcpy, the
 * conversion ISO C allows. */
bool fault_control_available(const char **reason)
{
#ifdef _WIN32
    *reason = "the system-call shim is an LD_PRELOAD library (native Linux builds only); the "
              "libevent backend on Windows has no fault hook of its own";
    return false;
#else
    void *arm = dlsym(RTLD_DEFAULT, "rs_fault_shim_arm");
    void *count = dlsym(RTLD_DEFAULT, "rs_fault_shim_injected");
    if (!arm || !count) {
        *reason = "the system-call shim is not preloaded (LD_PRELOAD, native builds without "
                  "sanitizers only)";
        return false;
    }
    memcpy(&shim_arm, &arm, sizeof arm);
    memcpy(&shim_injected, &count, sizeof count);
    return true;
#endif
}

bool fault_control_supports(const char *call, const char *err, const char **reason)
{
    (void)call;
    (void)err;
    (void)reason;
    return true;
}

void fault_control_arm(const char *call, const char *err, long count, uint32_t port)
{
    char spec[128];
    snprintf(spec, sizeof spec, "%s:%s:%ld:%u", call, err, count, (unsigned)port);
    assert_int_equal(shim_arm(spec), 1);
}

void fault_control_disarm(void)
{
    assert_int_equal(shim_arm(""), 0);
}

long fault_control_injected(void)
{
    return shim_injected();
}
