/*
 * Fault hooks for the test suite. Only the test build of the library
 * (reseau_test in meson.build, which the tests link) defines RS_TEST_HOOKS
 * and compiles the hooks' definitions (common/test_hooks.c and the IOCP
 * backend's iocp_faults.c). In the shipped library RS__TEST_HOOK(call) is
 * the constant 0 and RS__TEST_VALUE(call, value) is value: the call is not
 * compiled, the branch it guards is dead code, and no hook symbol is linked
 * (scripts/check-no-hooks.py checks the built libraries with nm).
 */
#ifndef RS_TEST_HOOKS_H
#define RS_TEST_HOOKS_H

#ifdef RS_TEST_HOOKS
#define RS__TEST_HOOK(call) (call)
#define RS__TEST_VALUE(call, value) ((void)(value), (call))
#else
#define RS__TEST_HOOK(call) 0
/* A setting tests can change: value itself in the shipped library. */
#define RS__TEST_VALUE(call, value) (value)
#endif

#endif
