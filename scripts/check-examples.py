#!/usr/bin/env python3
"""Runs every example program for real, over loopback.

usage: check-examples.py EXAMPLES_DIR

- udp_echo: client against the udp_echo server, against a Python UDP echo
  server, and a client that gets no answer; the server answering several
  Python clients, each from its own port;
- pipe_relay: a small stream between two loops, and odd chunk sizes;
- resolve_connect: against echo_server, and against a port nobody listens on;
- watch_echo: another library's socket driven through a readiness watch,
  against echo_server and against a Python echo server; a refused connect;
- chat_server: many Python clients (every broadcast reaches every other
  client, in the same order for all; joins and leaves announced), a slow
  reader that gets disconnected, and a clean stop on SIGINT;
- every example: --help exits 0, a bad flag exits 2 with a message.
Every wait is bounded; ports come from 0. Prints CMocka-style result lines
for scripts/summary.py.
"""
import os
import socket
import subprocess
import sys
import threading
import time

from checklib import INTERRUPT, NEW_GROUP, exit_status, run_step

EXAMPLES = sys.argv[1]
TIMEOUT = 20
CHAT_CLIENTS = 200


def exe(name):
    return os.path.join(EXAMPLES, name)


def run(*args, timeout=TIMEOUT):
    return subprocess.run([exe(args[0]), *args[1:]], capture_output=True, text=True,
                          timeout=timeout)


def expect(cond, what, out=None):
    if not cond:
        detail = f": rc={out.returncode} out={out.stdout!r} err={out.stderr!r}" if out else ""
        raise AssertionError(what + detail)


class Background:
    """An example in the background that prints a line with "port N" first."""

    def __init__(self, *args):
        self.proc = subprocess.Popen([exe(args[0]), *args[1:]], stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True,
                                     creationflags=NEW_GROUP)
        line = [None]
        reader = threading.Thread(target=lambda: line.__setitem__(0, self.proc.stdout.readline()))
        reader.start()
        reader.join(TIMEOUT)
        if not line[0] or "listening" not in line[0]:
            self.stop()
            raise RuntimeError(f"{args[0]} did not start: {line[0]!r}")
        words = line[0].split()
        self.port = int(words[words.index("port") + 1])
        # Keep reading so that a chatty server never blocks on a full pipe.
        self.output = []
        self.drain = threading.Thread(target=self._drain, daemon=True)
        self.drain.start()

    def _drain(self):
        for out in self.proc.stdout:
            self.output.append(out)

    def wait_output(self, text):
        deadline = time.monotonic() + TIMEOUT
        while not any(text in x for x in self.output):
            if time.monotonic() > deadline:
                raise AssertionError(f"the server never printed {text!r}")
            time.sleep(0.01)

    def stop(self):
        """SIGINT (Ctrl-Break on Windows), as Ctrl-C would; the server must exit 0 in time."""
        if self.proc.poll() is None:
            self.proc.send_signal(INTERRUPT)
        try:
            rc = self.proc.wait(TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise RuntimeError("the server did not stop on SIGINT")
        if rc != 0:
            raise RuntimeError(f"the server exited with {rc}")


# ---- udp_echo ----

def udp_client_against_udp_server():
    server = Background("udp_echo", "--server", "--port", "0")
    try:
        out = run("udp_echo", "--client", "--port", str(server.port), "--count", "500",
                  "--message", "datagram from reseau")
        expect(out.returncode == 0 and "all 500 echoes came back intact" in out.stdout,
               "udp_echo client against udp_echo server", out)
    finally:
        server.stop()


def udp_server_answers_python_clients():
    """Standard UDP clients, several at once, each from its own port: the
    server answers every datagram to its sender, with nothing configured."""
    server = Background("udp_echo", "--server", "--port", "0")
    clients = []
    try:
        for _ in range(5):
            c = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            c.bind(("127.0.0.1", 0))
            c.settimeout(TIMEOUT)
            clients.append(c)
        answered = 0
        for i in range(40):
            for k, c in enumerate(clients):
                d = f"client {k} datagram {i}".encode()
                c.sendto(d, ("127.0.0.1", server.port))
                e, peer = c.recvfrom(65536)
                expect(e == d and peer[1] == server.port,
                       f"client {k} got {e!r} from port {peer[1]} for {d!r}")
                answered += 1
        expect(answered == 200, f"{answered} of 200 datagrams answered")
    finally:
        for c in clients:
            c.close()
        server.stop()


def udp_client_against_python_server():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        s.settimeout(0.2)
        stop = threading.Event()
        echoed = [0]

        def serve():
            while not stop.is_set():
                try:
                    data, peer = s.recvfrom(65536)
                except socket.timeout:
                    continue
                s.sendto(data, peer)
                echoed[0] += 1

        t = threading.Thread(target=serve, daemon=True)
        t.start()
        try:
            out = run("udp_echo", "--client", "--port", str(s.getsockname()[1]), "--count",
                      "200")
        finally:
            stop.set()
            t.join(TIMEOUT)
        expect(out.returncode == 0 and "all 200 echoes" in out.stdout,
               "udp_echo client against a Python UDP echo server", out)
        expect(echoed[0] == 200, f"the Python server echoed {echoed[0]} datagrams, not 200")


def udp_client_detects_wrong_echoes():
    """A server that answers with altered bytes makes the client fail."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        s.settimeout(TIMEOUT)

        def serve():
            try:
                data, peer = s.recvfrom(65536)
                s.sendto(data.upper(), peer)
            except OSError:
                pass

        t = threading.Thread(target=serve, daemon=True)
        t.start()
        out = run("udp_echo", "--client", "--port", str(s.getsockname()[1]), "--count", "1")
        t.join(TIMEOUT)
        expect(out.returncode == 1 and "not one of the datagrams sent" in out.stderr,
               "udp_echo client accepted a wrong echo", out)


def udp_client_times_out():
    """A server that never answers: the client gives up after --timeout-ms."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        start = time.monotonic()
        out = run("udp_echo", "--client", "--port", str(s.getsockname()[1]), "--count", "5",
                  "--timeout-ms", "300")
        took = time.monotonic() - start
        expect(out.returncode == 1 and "timed out: 0 of 5" in out.stderr,
               "udp_echo client without answers", out)
        expect(took < 10, f"the client took {took:.1f} s to give up")


# ---- pipe_relay ----

def pipe_relay_small():
    out = run("pipe_relay", "--bytes", "1048576")
    expect(out.returncode == 0 and "1048576 bytes checked" in out.stdout and "MiB/s" in out.stdout,
           "pipe_relay --bytes 1048576", out)


def pipe_relay_odd_chunks():
    out = run("pipe_relay", "--bytes", "100003", "--chunk", "4093")
    expect(out.returncode == 0 and "100003 bytes checked" in out.stdout,
           "pipe_relay with odd chunk sizes", out)


# ---- resolve_connect ----

def resolve_connect_echo():
    server = Background("echo_server", "--port", "0")
    try:
        out = run("resolve_connect", "--host", "localhost", "--port", str(server.port),
                  "--message", "resolved and connected")
        expect(out.returncode == 0 and "echo: resolved and connected" in out.stdout and
               "connected" in out.stdout and "trying " in out.stdout,
               "resolve_connect against echo_server", out)
    finally:
        server.stop()


def resolve_connect_reports_failures():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, not listening: connects are refused
        out = run("resolve_connect", "--host", "127.0.0.1", "--port", str(port))
    expect(out.returncode == 1 and "RS_ERROR_CONNECTION_REFUSED" in out.stdout and
           "none of the 1 address(es)" in out.stderr,
           "resolve_connect against a closed port", out)


# ---- watch_echo ----

def watch_echo_against_echo_server():
    server = Background("echo_server", "--port", "0")
    try:
        out = run("watch_echo", "--port", str(server.port), "--message", "watched", "--count",
                  "200")
        expect(out.returncode == 0 and out.stdout.count("echo: watched\n") == 200 and
               "200 round trips through the watch" in out.stdout,
               "watch_echo against echo_server", out)
    finally:
        server.stop()


def watch_echo_against_python_server():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        s.settimeout(TIMEOUT)

        def serve():
            conn, _ = s.accept()
            with conn:
                conn.settimeout(TIMEOUT)
                while True:
                    data = conn.recv(4096)
                    if not data:
                        return
                    conn.sendall(data)

        t = threading.Thread(target=serve, daemon=True)
        t.start()
        out = run("watch_echo", "--port", str(s.getsockname()[1]), "--message", "from python",
                  "--count", "20")
        t.join(TIMEOUT)
    expect(out.returncode == 0 and out.stdout.count("echo: from python\n") == 20,
           "watch_echo against a Python echo server", out)


def watch_echo_refused():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, not listening: connects are refused
        out = run("watch_echo", "--port", str(port))
    expect(out.returncode == 1 and "connect failed" in out.stderr,
           "watch_echo against a closed port", out)


# ---- chat_server ----

class ChatClient:
    """A line reader on a background thread; lines are kept in order."""

    def __init__(self, port, name, rcvbuf=None, read=True):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(TIMEOUT)
        self.sock.connect(("127.0.0.1", port))
        # The reader blocks without a timeout: a client may rightly hear
        # nothing for a while. Every wait on its lines is bounded instead.
        self.sock.settimeout(None)
        self.name = name
        self.lines = []
        self.closed = False
        self.cond = threading.Condition()
        self.go = threading.Event()
        if read:
            self.go.set()
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()
        if name is not None:
            self.send(name)

    def _read(self):
        self.go.wait()
        buf = b""
        try:
            while True:
                data = self.sock.recv(65536)
                if not data:
                    break
                buf += data
                *done, buf = buf.split(b"\n")
                with self.cond:
                    self.lines.extend(d.decode() for d in done)
                    self.cond.notify_all()
        except OSError:
            pass
        with self.cond:
            self.closed = True
            self.cond.notify_all()

    def send(self, line):
        self.sock.sendall(line.encode() + b"\n")

    def wait_for(self, pred, what):
        with self.cond:
            if not self.cond.wait_for(lambda: pred(self.lines) or self.closed, TIMEOUT) or \
                    not pred(self.lines):
                raise AssertionError(f"{self.name}: {what}; last lines {self.lines[-3:]!r}")

    def close(self):
        # shutdown first: a close alone would leave the connection open while
        # the reader thread is blocked in recv on it.
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()


def chat_many_clients():
    server = Background("chat_server", "--port", "0")
    clients = []
    try:
        # Joined one at a time: each waits for its greeting, so every client
        # sees exactly the later joins, in order.
        for i in range(CHAT_CLIENTS):
            c = ChatClient(server.port, f"u{i}")
            c.wait_for(lambda ls: any(x.startswith("* hello u") for x in ls), "no greeting")
            clients.append(c)
        expect(clients[-1].lines[0] == f"* hello u{CHAT_CLIENTS - 1}, {CHAT_CLIENTS} online",
               f"greeting {clients[-1].lines[0]!r}")
        for i, c in enumerate(clients):
            want = [f"* u{j} joined" for j in range(i + 1, CHAT_CLIENTS)]
            c.wait_for(lambda ls, n=len(want) + 1: len(ls) >= n, "missing joins")
            expect(c.lines[1:] == want, f"u{i} saw joins {c.lines[1:4]!r}...")
        base = [len(c.lines) for c in clients]

        # Every client talks at once, from its own thread.
        per_client = 5

        def talk(c):
            for k in range(per_client):
                c.send(f"line {k} of {c.name}")

        talkers = [threading.Thread(target=talk, args=(c,)) for c in clients]
        for t in talkers:
            t.start()
        for t in talkers:
            t.join(TIMEOUT)
        expected = (CHAT_CLIENTS - 1) * per_client
        for i, c in enumerate(clients):
            c.wait_for(lambda ls, n=base[i] + expected: len(ls) >= n,
                       f"fewer than {expected} broadcasts")
        got = [c.lines[base[i]:] for i, c in enumerate(clients)]
        for i, lines in enumerate(got):
            expect(len(lines) == expected, f"u{i} got {len(lines)} lines, not {expected}")
            seen = {f"u{j}: line {k} of u{j}" for j in range(CHAT_CLIENTS) if j != i
                    for k in range(per_client)}
            expect(set(lines) == seen, f"u{i} did not get every line exactly once")
            by_sender = {}
            for x in lines:
                by_sender.setdefault(x.split(":", 1)[0], []).append(x)
            for sender, mine in by_sender.items():
                expect(mine == sorted(mine), f"u{i} got {sender}'s lines out of order")
        # One loop broadcasts everything, so all clients see one order.
        order = {line: n for n, line in enumerate(got[0])}
        for i, lines in enumerate(got[1:], 1):
            common = [x for x in lines if x in order]
            expect(common == sorted(common, key=order.get),
                   f"u{i} saw the broadcasts in another order than u0")
        base = [len(c.lines) for c in clients]

        # Leaves, one at a time, seen by everyone still there.
        leaving = CHAT_CLIENTS // 2
        for i in range(leaving):
            clients[i].close()
            clients[-1].wait_for(lambda ls, n=base[-1] + i + 1: len(ls) >= n, "no leave notice")
        want = [f"* u{i} left" for i in range(leaving)]
        for i in range(leaving, CHAT_CLIENTS):
            c = clients[i]
            c.wait_for(lambda ls, n=base[i] + leaving: len(ls) >= n, "missing leaves")
            expect(c.lines[base[i]:] == want, f"u{i} saw leaves {c.lines[base[i]:][:3]!r}...")
    finally:
        for c in clients:
            c.close()
        server.stop()


def chat_slow_client_disconnected():
    # A sender is throttled to its readers' pace; a reader that stays behind
    # for --evict-after seconds is disconnected.
    server = Background("chat_server", "--port", "0", "--max-queue", "16384", "--evict-after", "2")
    slow = fast = None
    try:
        # The slow client greets, then reads nothing until it is thrown out.
        slow = ChatClient(server.port, "slow", rcvbuf=4096, read=False)
        fast = ChatClient(server.port, "fast")
        fast.wait_for(lambda ls: "* hello fast, 2 online" in ls, "no greeting")
        line = "x" * 1000
        # fast floods from a thread of its own: its sends block while the
        # server throttles it, and the notice must be seen meanwhile, so
        # that slow starts reading within the eviction's grace period.
        stop = threading.Event()
        sent = [0]

        def flood():
            while not stop.is_set():
                try:
                    fast.send(line)
                except OSError:
                    return
                sent[0] += 1

        flooder = threading.Thread(target=flood, daemon=True)
        flooder.start()
        try:
            fast.wait_for(lambda ls: "* slow was disconnected (too slow)" in ls,
                          "slow never disconnected")
        finally:
            stop.set()
        # Now it reads: what it was sent, then the notice, then the end.
        slow.go.set()
        slow.thread.join(TIMEOUT)
        expect(slow.closed, "the slow client's connection was not closed")
        expect(slow.lines and slow.lines[-1] == "* you read too slowly and are disconnected",
               f"slow client's last line {slow.lines[-1:]!r}")
        # Before the notice: its greeting, fast's arrival and some of the
        # chat, whole lines in order. Possibly none of the chat: a flood
        # read in one go can overflow the queue while the line in flight is
        # still "* fast joined", and eviction keeps only that one.
        before = slow.lines[:-1]
        expect(before[:2] == ["* hello slow, 1 online", "* fast joined"],
               f"slow client's first lines {before[:2]!r}")
        expect(all(x == "fast: " + line for x in before[2:]),
               f"slow got something else than fast's lines: {before[2:4]!r}")
        # The server still serves. Once it has read all of fast's flood
        # (it logs fast leaving after the last line), two newcomers chat.
        flooder.join(TIMEOUT)
        expect(not flooder.is_alive(), f"fast's flood still blocked after {sent[0]} lines")
        fast.close()
        server.wait_output("chat_server: fast left (0 online)")
        late = ChatClient(server.port, "late")
        late.wait_for(lambda ls: "* hello late, 1 online" in ls, "no greeting for late")
        later = ChatClient(server.port, "later")
        late.wait_for(lambda ls: "* later joined" in ls, "late did not see later join")
        later.send("still here")
        late.wait_for(lambda ls: "later: still here" in ls, "late did not get later's line")
        later.close()
        late.close()
    finally:
        for c in (slow, fast):
            if c:
                c.close()
        server.stop()
    expect(any("reads too slowly" in x for x in server.output), "the server did not log it")


def chat_stops_with_clients_connected():
    server = Background("chat_server", "--port", "0")
    clients = [ChatClient(server.port, f"c{i}") for i in range(10)]
    try:
        clients[-1].wait_for(lambda ls: any(x.startswith("* hello") for x in ls), "no greeting")
        server.stop()  # raises unless it exits 0 in time
        for c in clients:
            c.thread.join(TIMEOUT)
            expect(c.closed, f"{c.name} was not disconnected at shutdown")
    finally:
        for c in clients:
            c.close()


# ---- command lines ----

ALL = ["echo_server", "echo_client", "timers", "udp_echo", "pipe_relay", "resolve_connect",
       "chat_server", "watch_echo", "tcp_proxy"]
BAD = {
    "echo_server": [["--bogus"], ["--port", "70000"], ["--port"]],
    "echo_client": [["--bogus"], ["--port", "0"], ["--port", "x"]],
    "timers": [["--bogus"], ["--tasks", "0"], ["--loops", "x"], ["--main-thread", "--loops", "2"]],
    "udp_echo": [["--bogus"], [], ["--client"], ["--server", "--port", "70000"],
                 ["--server", "--client"], ["--client", "--port", "1", "--count", "0"]],
    "pipe_relay": [["--bogus"], ["--bytes", "0"], ["--bytes", "-5"], ["--chunk"]],
    "resolve_connect": [["--bogus"], [], ["--port", "99999"], ["--host", "bad name!",
                                                              "--port", "1"]],
    "chat_server": [["--bogus"], ["--port", "-1"], ["--max-queue", "10"],
                    ["--evict-after", "0"], ["--host"]],
    "watch_echo": [["--bogus"], [], ["--port", "0"], ["--port", "1", "--count", "0"],
                   ["--message"]],
    "tcp_proxy": [["--bogus"], [], ["--upstream-port", "0"], ["--upstream-port", "70000"],
                  ["--upstream-port", "1", "--max-queue", "10"], ["--upstream-port"]],
}


def help_and_bad_flags(name):
    def step():
        out = run(name, "--help")
        expect(out.returncode == 0 and out.stdout.startswith("usage: " + name), "--help", out)
        for args in BAD[name]:
            out = run(name, *args)
            expect(out.returncode == 2 and out.stderr.startswith(name + ": "),
                   f"{name} {' '.join(args)} should exit 2 with a message", out)
    return step


run_step("test_ex_udp_echo_client_and_server", udp_client_against_udp_server)
run_step("test_ex_udp_echo_client_against_python_server", udp_client_against_python_server)
run_step("test_ex_udp_echo_server_answers_python_clients", udp_server_answers_python_clients)
run_step("test_ex_udp_echo_client_detects_wrong_echo", udp_client_detects_wrong_echoes)
run_step("test_ex_udp_echo_client_bounded_wait", udp_client_times_out)
run_step("test_ex_pipe_relay_small", pipe_relay_small)
run_step("test_ex_pipe_relay_odd_chunks", pipe_relay_odd_chunks)
run_step("test_ex_resolve_connect_echo", resolve_connect_echo)
run_step("test_ex_resolve_connect_reports_failures", resolve_connect_reports_failures)
run_step("test_ex_watch_echo_against_echo_server", watch_echo_against_echo_server)
run_step("test_ex_watch_echo_against_python_server", watch_echo_against_python_server)
run_step("test_ex_watch_echo_refused", watch_echo_refused)
run_step("test_ex_chat_many_clients", chat_many_clients)
run_step("test_ex_chat_slow_client_disconnected", chat_slow_client_disconnected)
run_step("test_ex_chat_stops_with_clients_connected", chat_stops_with_clients_connected)
for example in ALL:
    run_step(f"test_ex_{example}_help_and_bad_flags", help_and_bad_flags(example))
sys.exit(exit_status())
