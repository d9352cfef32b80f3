/*
 * Ctrl-C / SIGINT / SIGTERM for the example servers: block_interrupts()
 * before the first loop starts, wait_for_interrupt() on the main thread
 * until one arrives, then shut down in order.
 */
#ifndef RESEAU_EXAMPLES_INTERRUPTS_H
#define RESEAU_EXAMPLES_INTERRUPTS_H

#ifdef _WIN32
#include <windows.h>
#else
#include <pthread.h>
#include <signal.h>
#endif

#ifdef _WIN32
static HANDLE interrupted;

static BOOL WINAPI on_console_event(DWORD type)
{
    (void)type;
    SetEvent(interrupted);
    return TRUE;
}

static void block_interrupts(void)
{
    interrupted = CreateEventA(NULL, TRUE, FALSE, NULL);
    SetConsoleCtrlHandler(on_console_event, TRUE);
}

static void wait_for_interrupt(void)
{
    WaitForSingleObject(interrupted, INFINITE);
}
#else
static sigset_t interrupts;

/* Blocked before the loop thread starts, so that it inherits the mask and
 * only sigwait sees the signals. */
static void block_interrupts(void)
{
    sigemptyset(&interrupts);
    sigaddset(&interrupts, SIGINT);
    sigaddset(&interrupts, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &interrupts, NULL);
}

static void wait_for_interrupt(void)
{
    int sig = 0;
    sigwait(&interrupts, &sig);
}
#endif

#endif
