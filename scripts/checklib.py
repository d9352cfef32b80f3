"""What the check scripts share: steps printed as CMocka prints tests (the
lines scripts/summary.py counts), and how to interrupt a server on every OS.

    from checklib import Skip, run_step, exit_status
    run_step("test_x", fn)   # fn raises Skip("why") where it cannot run
    sys.exit(exit_status())
"""
import os
import signal
import subprocess

# Native Windows has no SIGINT to send: the examples take a console
# Ctrl-Break as Ctrl-C, and it reaches only a process in a group of its own.
ON_WINDOWS = os.name == "nt"
INTERRUPT = signal.CTRL_BREAK_EVENT if ON_WINDOWS else signal.SIGINT
NEW_GROUP = subprocess.CREATE_NEW_PROCESS_GROUP if ON_WINDOWS else 0

_failed = False


class Skip(Exception):
    """The step cannot run here; the message says why."""


def run_step(name, fn):
    """Runs fn as the test `name`: passed, skipped (Skip) or failed (any
    other exception, which is that step's failure only)."""
    global _failed
    print(f"[ RUN      ] {name}", flush=True)
    try:
        fn()
        print(f"[       OK ] {name}", flush=True)
    except Skip as e:
        print(f"[  SKIP    ] reason: {e}", flush=True)
        print(f"[  SKIPPED ] {name}", flush=True)
    except Exception as e:  # any failure of the step is the test's failure
        print(f"{name}: {e!r}", flush=True)
        print(f"[  FAILED  ] {name}", flush=True)
        _failed = True


def exit_status():
    """1 if any step failed, else 0."""
    return 1 if _failed else 0
