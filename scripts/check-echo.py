#!/usr/bin/env python3
"""Interoperability of the echo examples with programs that are not reseau.

usage: check-echo.py EXAMPLES_DIR

- echo_server (IPv4, IPv6, Unix socket) serves Python's socket module and nc;
- echo_client talks to a plain Python echo server.
Every wait is bounded. Prints CMocka-style result lines for the summary.
A step the platform cannot run (no AF_UNIX on Windows, where --local is a
named pipe; no nc with -N) is reported skipped with the reason.
"""
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading

from checklib import INTERRUPT, NEW_GROUP, ON_WINDOWS, Skip, exit_status, run_step

EXAMPLES = sys.argv[1]
TIMEOUT = 20
WINDOWS = ON_WINDOWS


class Server:
    """echo_server in the background; its first line names the port."""

    def __init__(self, *args):
        self.proc = subprocess.Popen([os.path.join(EXAMPLES, "echo_server"), *args],
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True, creationflags=NEW_GROUP)
        line = [None]
        reader = threading.Thread(target=lambda: line.__setitem__(0, self.proc.stdout.readline()))
        reader.start()
        reader.join(TIMEOUT)
        if not line[0] or "listening" not in line[0]:
            self.stop()
            raise RuntimeError(f"echo_server did not start: {line[0]!r}")
        self.banner = line[0]
        words = line[0].split()
        self.port = int(words[words.index("port") + 1]) if "port" in words else 0

    def stop(self):
        self.proc.send_signal(INTERRUPT)
        try:
            self.proc.wait(TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise RuntimeError("echo_server did not stop on an interrupt")


def echo_through(sock, payload):
    sock.settimeout(TIMEOUT)
    sock.sendall(payload)
    got = b""
    while len(got) < len(payload):
        chunk = sock.recv(65536)
        if not chunk:
            break
        got += chunk
    if got != payload:
        raise AssertionError(f"echoed {len(got)} of {len(payload)} bytes, or different bytes")


def python_client(family, host, *server_args):
    def step():
        server = Server(*server_args)
        try:
            payload = bytes(range(256)) * 4096  # 1 MiB, every byte value
            with socket.socket(family, socket.SOCK_STREAM) as s:
                s.settimeout(TIMEOUT)
                s.connect((host, server.port))
                echo_through(s, payload)
        finally:
            server.stop()
    return step


def unix_client():
    if WINDOWS or not hasattr(socket, "AF_UNIX"):
        raise Skip("no AF_UNIX sockets here (echo_server --local is a named pipe on Windows)")
    path = os.path.join(tempfile.mkdtemp(), "echo.sock")
    server = Server("--local", path)
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(TIMEOUT)
            s.connect(path)
            echo_through(s, b"over a unix socket\n" * 1000)
    finally:
        server.stop()


def nc_client():
    nc = shutil.which("nc")
    usage = nc and subprocess.run([nc, "-h"], capture_output=True, text=True, timeout=TIMEOUT)
    if not usage or "-N" not in usage.stdout + usage.stderr:
        raise Skip("no nc with -N (close the connection at the end of input) installed")
    server = Server()
    try:
        out = subprocess.run(["nc", "-N", "127.0.0.1", str(server.port)],
                             input=b"hello from nc\n", capture_output=True, timeout=TIMEOUT)
        if out.stdout != b"hello from nc\n":
            raise AssertionError(f"nc got {out.stdout!r}")
    finally:
        server.stop()


def client_against_python_server():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        listener.settimeout(TIMEOUT)

        def serve():
            conn, _ = listener.accept()
            with conn:
                conn.settimeout(TIMEOUT)
                while True:
                    data = conn.recv(65536)
                    if not data:
                        return
                    conn.sendall(data)

        t = threading.Thread(target=serve, daemon=True)
        t.start()
        out = subprocess.run([os.path.join(EXAMPLES, "echo_client"), "--port",
                              str(listener.getsockname()[1]), "--message", "ping from reseau"],
                             capture_output=True, text=True, timeout=TIMEOUT)
        if out.returncode != 0 or "ping from reseau" not in out.stdout:
            raise AssertionError(f"echo_client: rc={out.returncode} out={out.stdout!r} "
                                 f"err={out.stderr!r}")


run_step("test_sk_echo_server_serves_python_ipv4", python_client(socket.AF_INET, "127.0.0.1"))
run_step("test_sk_echo_server_serves_python_ipv6",
         python_client(socket.AF_INET6, "::1", "--ipv6"))
run_step("test_sk_echo_server_serves_unix_socket", unix_client)
run_step("test_sk_echo_server_serves_nc", nc_client)
run_step("test_sk_echo_client_talks_to_python_server", client_against_python_server)
sys.exit(exit_status())
