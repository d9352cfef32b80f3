#!/usr/bin/env python3
"""The Windows build of the examples, under Wine, talking to the native build.

usage: check-interop.py NATIVE_EXAMPLES_DIR WINDOWS_EXAMPLES_DIR

The IOCP echo server serves the native (libevent) echo client and the
reverse, over loopback TCP, and the same for the UDP echo; the Windows
watch_echo (a socket of its own driven through an AFD readiness watch)
against the native echo server, and the reverse. Run inside the Wine
environment of scripts/wine-env.sh. Every wait is bounded. Prints CMocka-style
result lines, which scripts/summary.py reads from a saved copy of this output.
"""
import os
import subprocess
import sys
import threading

from checklib import exit_status, run_step

NATIVE, WINDOWS = sys.argv[1], sys.argv[2]
TIMEOUT = 60


def native(name, *args):
    return [os.path.join(NATIVE, name), *args]


def windows(name, *args):
    return ["wine", os.path.join(WINDOWS, name + ".exe"), *args]


class Server:
    """A server in the background whose first line says "listening ... port N"."""

    def __init__(self, command):
        self.proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, text=True)
        line = [None]
        reader = threading.Thread(target=lambda: line.__setitem__(0, self.proc.stdout.readline()))
        reader.start()
        reader.join(TIMEOUT)
        if not line[0] or "listening" not in line[0]:
            self.stop()
            raise RuntimeError(f"{command[0]} did not start: {line[0]!r}")
        words = line[0].split()
        self.port = int(words[words.index("port") + 1])
        self.banner = line[0].strip()

    def stop(self):
        # A Windows program under Wine gets no console Ctrl-C here: end it.
        self.proc.kill()
        self.proc.wait(TIMEOUT)


def check(out, what, text):
    if out.returncode != 0 or text not in out.stdout:
        raise AssertionError(f"{what}: rc={out.returncode} out={out.stdout!r} err={out.stderr!r}")


def tcp(server_side, client_side):
    def step():
        server = Server(server_side("echo_server", "--port", "0"))
        try:
            message = "across the backends over TCP"
            out = subprocess.run(client_side("echo_client", "--port", str(server.port),
                                             "--message", message),
                                 capture_output=True, text=True, timeout=TIMEOUT)
            check(out, "echo_client", message)
        finally:
            server.stop()
    return step


def udp(server_side, client_side):
    def step():
        server = Server(server_side("udp_echo", "--server", "--port", "0"))
        try:
            out = subprocess.run(client_side("udp_echo", "--client", "--port", str(server.port),
                                             "--count", "50",
                                             "--message", "across the backends over UDP"),
                                 capture_output=True, text=True, timeout=TIMEOUT)
            check(out, "udp_echo --client", "all 50 echoes came back intact")
        finally:
            server.stop()
    return step


def watch(server_side, client_side):
    def step():
        server = Server(server_side("echo_server", "--port", "0"))
        try:
            out = subprocess.run(client_side("watch_echo", "--port", str(server.port),
                                             "--message", "watched", "--count", "20"),
                                 capture_output=True, text=True, timeout=TIMEOUT)
            check(out, "watch_echo", "20 round trips through the watch")
        finally:
            server.stop()
    return step


run_step("test_interop_iocp_tcp_server_libevent_client", tcp(windows, native))
run_step("test_interop_libevent_tcp_server_iocp_client", tcp(native, windows))
run_step("test_interop_iocp_udp_server_libevent_client", udp(windows, native))
run_step("test_interop_libevent_udp_server_iocp_client", udp(native, windows))
run_step("test_interop_libevent_tcp_server_iocp_watch_client", watch(native, windows))
run_step("test_interop_iocp_tcp_server_libevent_watch_client", watch(windows, native))
sys.exit(exit_status())
