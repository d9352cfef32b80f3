#!/usr/bin/env python3
"""Hostile clients against reseau's example servers, from outside.

usage: torture.py [--wine] EXAMPLES_DIR [CHECK ...]

Starts echo_server, chat_server, udp_echo and tcp_proxy from EXAMPLES_DIR (with --wine:
the .exe files under Wine, in the environment of scripts/wine-env.sh) and
runs clients written here with the standard library only, independent of the
C code: reset storms before and after accept, half-close with large
payloads (checksummed), clients that never read (the server's memory must
stay bounded: its RSS from /proc), slow readers, descriptor exhaustion (a
native server under a low RLIMIT_NOFILE), 1,000 concurrent connections,
abrupt closes in the middle of a transfer, a chat sender that bursts and a
chat reader that stalls, UDP echoes, and tcp_proxy in front of an upstream
written here: half-close both ways, a client or an upstream that never
reads (the proxy's RSS and its reported peak write queue stay bounded) and
a slow reader. Each check prints what it saw and
fails on any lost or extra byte. Loopback only, every wait bounded, every
process it starts is stopped. Exit status 0 when every check passed; the last
line reads "torture: N passed, N failed". Names given after EXAMPLES_DIR run
only those checks.
"""
import hashlib
import os
import random
import resource
import selectors
import signal
import socket
import struct
import subprocess
import sys
import threading
import time

TIMEOUT = 60  # bound of any single wait
MB = 1 << 20
# The most a server may grow while a client misbehaves. The examples bound
# their queues at about 1 MiB per connection; an unbounded server grows by
# what the client sends (hundreds of MB).
RSS_BOUND = 48 * MB

args = [a for a in sys.argv[1:] if a != "--wine"]
WINE = "--wine" in sys.argv[1:]
if not args:
    sys.exit(__doc__)
EXAMPLES = args[0]
ONLY = set(args[1:])
passed = failed = 0


def log(msg):
    print(f"  {msg}", flush=True)


def command(name, *argv):
    if WINE:
        return ["wine", os.path.join(EXAMPLES, name + ".exe"), *argv]
    return [os.path.join(EXAMPLES, name), *argv]


class Server:
    """An example in the background whose first line says "listening ... port N"."""

    def __init__(self, name, *argv, nofile=None):
        limit = None
        if nofile:
            limit = lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))  # noqa: E731
        self.name = name
        self.proc = subprocess.Popen(command(name, *argv), stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     text=True, preexec_fn=limit)
        first = [None]
        reader = threading.Thread(target=lambda: first.__setitem__(0, self.proc.stdout.readline()))
        reader.start()
        reader.join(TIMEOUT)
        if not first[0] or "listening" not in first[0]:
            self.stop()
            raise RuntimeError(f"{name} did not start: {first[0]!r}")
        words = first[0].split()
        self.port = int(words[words.index("port") + 1])
        self.output = []
        threading.Thread(target=self._drain, daemon=True).start()
        self.pid = self._find_pid()

    def _drain(self):
        for line in self.proc.stdout:
            self.output.append(line)

    def _find_pid(self):
        """The process that runs the program: under Wine the loader execs
        into it (same pid) or starts it as a child; look by name."""
        if not WINE:
            return self.proc.pid
        exe = self.name + ".exe"
        for pid in [self.proc.pid] + [int(p) for p in os.listdir("/proc") if p.isdigit()]:
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    if exe.encode() in f.read():
                        return pid
            except OSError:
                pass
        return self.proc.pid

    def alive(self):
        return self.proc.poll() is None

    def rss(self):
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        raise RuntimeError("no VmRSS")

    def cpu_seconds(self):
        with open(f"/proc/{self.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()  # Wine programs get no console Ctrl-C here
                self.proc.wait(TIMEOUT)


def expect(cond, what):
    if not cond:
        raise AssertionError(what)


def connect(port, rcvbuf=None):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.settimeout(TIMEOUT)
    s.connect(("127.0.0.1", port))
    return s


def reset(s):
    """Closes with an RST (SO_LINGER on, timeout 0)."""
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()


def payload(total, seed):
    """total bytes in 1 MiB chunks of seeded random bytes."""
    rng = random.Random(seed)
    blocks = [rng.randbytes(MB) for _ in range(4)]
    sent = 0
    i = 0
    while sent < total:
        b = blocks[i % 4][: min(MB, total - sent)]
        yield b
        sent += len(b)
        i += 1


class Reader(threading.Thread):
    """Reads a connection to its end, hashing; pace: (bytes, seconds) per read."""

    def __init__(self, s, pace=None, pace_for=0.0):
        super().__init__(daemon=True)
        self.s, self.pace, self.pace_for = s, pace, pace_for
        self.count, self.hash, self.eof, self.error = 0, hashlib.sha256(), False, None
        self.start()

    def run(self):
        started = time.monotonic()
        try:
            while True:
                slow = self.pace and time.monotonic() - started < self.pace_for
                b = self.s.recv(self.pace[0] if slow else 1 << 16)
                if not b:
                    self.eof = True
                    return
                self.count += len(b)
                self.hash.update(b)
                if slow:
                    time.sleep(self.pace[1])  # the slow reader's pace is the scenario
        except OSError as e:
            self.error = e


def echo_round_trip(port, size=100_000):
    """A fresh client gets exactly its bytes back, then end of stream."""
    s = connect(port)
    data = random.Random(size).randbytes(size)
    r = Reader(s)
    s.sendall(data)
    s.shutdown(socket.SHUT_WR)
    r.join(TIMEOUT)
    s.close()
    expect(r.eof and r.count == size and r.hash.digest() == hashlib.sha256(data).digest(),
           f"echo round trip: {r.count} of {size} bytes, eof={r.eof}, error={r.error}")


def half_close(port, total, read_while_sending):
    s = connect(port)
    sent = hashlib.sha256()
    r = Reader(s) if read_while_sending else None
    n = 0
    for b in payload(total, total):
        s.sendall(b)
        sent.update(b)
        n += len(b)
    s.shutdown(socket.SHUT_WR)
    if not r:
        r = Reader(s)
    r.join(TIMEOUT * 3)
    s.close()
    log(f"sent {n} bytes then shutdown(write); got back {r.count} bytes, "
        f"end of stream {r.eof}, error {r.error}")
    expect(r.eof and not r.error, "no clean end of stream")
    expect(r.count == n, f"{n - r.count} bytes lost" if r.count < n else "extra bytes")
    expect(r.hash.digest() == sent.digest(), "checksum differs")


# ---- echo_server ----

def echo_half_close_50mb(server):
    # A bounded server (and TCP) cannot take 50 MB from a client that reads
    # nothing: this client reads while it sends, but never waits for echoes.
    half_close(server.port, 50 * MB, read_while_sending=True)


def echo_half_close_unread(server):
    # 3 MB sent without reading, then shutdown(write), then read: the
    # loopback buffers and the server's bounded queue take it all, and the
    # server must echo what it still has queued after the half-close.
    half_close(server.port, 3 * MB, read_while_sending=False)


def never_read_bounded(server):
    before = server.rss()
    s = connect(server.port, rcvbuf=65536)
    s.setblocking(False)
    chunk = b"n" * (256 << 10)
    sent = 0
    last = time.monotonic()
    deadline = last + TIMEOUT
    # Send until the server has stopped taking bytes for 2 s (or 400 MB).
    while time.monotonic() - last < 2 and sent < 400 * MB and time.monotonic() < deadline:
        try:
            sent += s.send(chunk)
            last = time.monotonic()
        except BlockingIOError:
            time.sleep(0.01)
    grown = server.rss() - before
    log(f"client sent {sent} bytes and read none; server RSS grew {grown >> 10} KiB")
    expect(sent < 400 * MB, "the server took 400 MB from a client that reads nothing")
    expect(grown < RSS_BOUND, f"server RSS grew {grown >> 20} MiB")
    echo_round_trip(server.port)  # others are still served
    reset(s)


def slow_reader(server):
    before = server.rss()
    s = connect(server.port)
    total = 8 * MB
    r = Reader(s, pace=(1024, 0.01), pace_for=3.0)
    sent = hashlib.sha256()
    peak = 0
    for b in payload(total, 7):
        s.sendall(b)
        sent.update(b)
        peak = max(peak, server.rss() - before)
    s.shutdown(socket.SHUT_WR)
    r.join(TIMEOUT * 2)
    s.close()
    log(f"sent {total} bytes to a reader of 1 KiB per 10 ms for 3 s; got {r.count}, "
        f"end {r.eof}; server RSS peak growth {peak >> 10} KiB")
    expect(r.eof and r.count == total and r.hash.digest() == sent.digest(),
           "lost, extra or changed bytes")
    expect(peak < RSS_BOUND, "server memory grew without bound")


def reset_storm_after_accept(server):
    for i in range(200):
        s = connect(server.port)
        s.sendall(b"r" * 4096)
        if i % 2:
            s.recv(1)  # the server has accepted and echoed
        reset(s)
    log("200 connections reset after sending (half after their first echo)")
    expect(server.alive(), "the server died")
    echo_round_trip(server.port)


def reset_storm_before_accept(server):
    socks = []
    for _ in range(300):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        try:
            s.connect(("127.0.0.1", server.port))
        except BlockingIOError:
            pass
        socks.append(s)
    for s in socks:
        reset(s)
    log("300 connections reset right after connecting, most before the accept")
    expect(server.alive(), "the server died")
    echo_round_trip(server.port)


def abrupt_close_mid_write(server):
    for i in range(40):
        s = connect(server.port)
        s.settimeout(TIMEOUT)
        s.sendall(random.Random(i).randbytes(512 << 10))
        got = 0
        while got < (64 << 10):
            got += len(s.recv(65536))
        (reset if i % 2 else socket.socket.close)(s)
    log("40 clients closed (half with a reset) in the middle of 512 KiB echoes")
    expect(server.alive(), "the server died")
    echo_round_trip(server.port)


def concurrent_1000(server):
    n = 1000
    sel = selectors.DefaultSelector()
    state = {}
    for i in range(n):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        s.connect_ex(("127.0.0.1", server.port))
        data = struct.pack("!I", i) * 1024
        state[s] = [data, 0, bytearray()]
        sel.register(s, selectors.EVENT_READ | selectors.EVENT_WRITE)
    done = 0
    deadline = time.monotonic() + TIMEOUT * 3
    try:
        while done < n and time.monotonic() < deadline:
            for key, ev in sel.select(1):
                s = key.fileobj
                data, off, got = state[s]
                if ev & selectors.EVENT_WRITE and off < len(data):
                    try:
                        state[s][1] += s.send(data[off:])
                    except (BlockingIOError, InterruptedError):
                        pass
                    if state[s][1] == len(data):
                        sel.modify(s, selectors.EVENT_READ)
                if ev & selectors.EVENT_READ:
                    try:
                        b = s.recv(65536)
                    except (BlockingIOError, InterruptedError):
                        continue
                    expect(b, "a connection ended before its echo")
                    got += b
                    expect(len(got) <= len(data), "extra bytes")
                    if len(got) == len(data):
                        expect(bytes(got) == data, "changed bytes")
                        sel.unregister(s)
                        done += 1
    finally:
        for s in state:
            s.close()
        sel.close()
    log(f"{done} of {n} concurrent connections got their 4 KiB back intact")
    expect(done == n, "connections left unserved")


def descriptor_exhaustion(server):
    if WINE:
        print("[  SKIP    ] reason: RLIMIT_NOFILE does not bound a Windows program's handles",
              flush=True)
        return "skip"
    held = []
    for _ in range(100):  # more than the server's 64 descriptors
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.settimeout(TIMEOUT)
        s.connect(("127.0.0.1", server.port))
        held.append(s)
    time.sleep(0.5)  # let the server reach its limit before measuring
    cpu0 = server.cpu_seconds()
    time.sleep(2)
    spent = server.cpu_seconds() - cpu0
    log(f"100 connections held against a limit of 64 descriptors: "
        f"server CPU {spent:.2f} s over 2 s")
    for s in held:
        s.close()
    expect(server.alive(), "the server died")
    echo_round_trip(server.port)  # served again once the others left
    log("a new client is served once the 100 have left")
    expect(spent < 0.2, "the server spins while out of descriptors")


# ---- chat_server ----

class ChatClient(threading.Thread):
    def __init__(self, port, name, read=True):
        super().__init__(daemon=True)
        self.s = connect(port, rcvbuf=None if read else 4096)
        self.lines, self.closed, self.read = [], False, read
        self.cond = threading.Condition()
        self.s.sendall(name.encode() + b"\n")
        if read:
            self.start()

    def run(self):
        buf = b""
        try:
            while True:
                b = self.s.recv(65536)
                if not b:
                    break
                buf += b
                *full, buf = buf.split(b"\n")
                with self.cond:
                    self.lines.extend(x.decode() for x in full)
                    self.cond.notify_all()
        except OSError:
            pass
        with self.cond:
            self.closed = True
            self.cond.notify_all()

    def wait_for(self, pred, what, timeout=TIMEOUT):
        with self.cond:
            if not self.cond.wait_for(lambda: pred(self.lines), timeout):
                raise AssertionError(f"timed out waiting for {what}")


def chat_burst(server):
    before = server.rss()
    a = ChatClient(server.port, "a")
    b = ChatClient(server.port, "b")
    sender = ChatClient(server.port, "burst")
    b.wait_for(lambda ls: "* burst joined" in ls, "burst joining")
    count = 2048
    lines = [f"{i:06d} " + "y" * 1000 for i in range(count)]
    sender.s.sendall("".join(x + "\n" for x in lines).encode())  # 2 MB at once
    want = ["burst: " + x for x in lines]
    for c in (a, b):
        c.wait_for(lambda ls: len([x for x in ls if x.startswith("burst: ")]) >= count,
                   "every line of the burst")
        got = [x for x in c.lines if x.startswith("burst: ")]
        expect(got == want, "lines lost, changed or reordered")
        expect(not any("disconnected" in x for x in c.lines), "a reader was evicted")
    grown = server.rss() - before
    log(f"a 2 MB burst of {count} lines reached both readers intact, nobody evicted; "
        f"server RSS grew {grown >> 10} KiB")
    for c in (a, b, sender):
        c.s.close()
    expect(grown < RSS_BOUND, "server memory grew without bound")


def chat_stalled_reader(server):
    stalled = ChatClient(server.port, "stalled", read=False)
    a = ChatClient(server.port, "a")
    sender = ChatClient(server.port, "talker")
    a.wait_for(lambda ls: "* talker joined" in ls, "talker joining")
    # 8 MB: more than the stalled reader's socket buffers take (Linux grows
    # a send buffer up to 4 MiB), so lines wait for it in the server.
    count = 8192
    started = time.monotonic()
    done = threading.Event()

    def talk():
        sender.s.sendall("".join(f"{i:06d} {'z' * 1000}\n" for i in range(count)).encode())
        done.set()

    t = threading.Thread(target=talk, daemon=True)
    t.start()
    a.wait_for(lambda ls: "* stalled was disconnected (too slow)" in ls, "the eviction")
    evicted = time.monotonic() - started
    a.wait_for(lambda ls: len([x for x in ls if x.startswith("talker: ")]) >= count,
               "every line after the eviction")
    got = [x for x in a.lines if x.startswith("talker: ")]
    expect(got == [f"talker: {i:06d} {'z' * 1000}" for i in range(count)], "lines lost")
    log(f"a reader that never reads was evicted after {evicted:.1f} s (--evict-after 2); "
        f"the other reader got all {count} lines")
    expect(evicted >= 1.5, "evicted before its time")
    t.join(TIMEOUT)
    for c in (stalled, a, sender):
        c.s.close()


# ---- udp_echo ----

def udp_echo(_):
    client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    client.bind(("127.0.0.1", 0))
    client.settimeout(5)
    server = Server("udp_echo", "--server", "--port", "0")
    try:
        client.connect(("127.0.0.1", server.port))
        rng = random.Random(3)
        n, got = 500, 0
        for i in range(n):
            d = struct.pack("!I", i) + rng.randbytes(rng.randrange(0, 1400))
            client.send(d)
            e = client.recv(65536)
            expect(e == d, f"datagram {i}: {len(e)} bytes back for {len(d)}, or changed")
            got += 1
        client.setblocking(False)
        try:
            extra = client.recv(65536)
        except BlockingIOError:
            extra = None
        expect(extra is None, "an extra datagram")
        log(f"{got} datagrams of 4..1403 bytes came back once each, intact")
    finally:
        server.stop()
        client.close()


# ---- tcp_proxy ----

PROXY_QUEUE = 256 << 10  # --max-queue of the proxy checks
PROXY_READ = 64 << 10  # tcp_proxy's read size: the most one write adds above the bound


class Upstream:
    """The server behind tcp_proxy, written here: accepts one connection and
    runs one behaviour on it (echo, flood, send, sink) in a thread."""

    def __init__(self, behaviour, *args):
        self.ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.ls.bind(("127.0.0.1", 0))
        self.ls.listen(8)
        self.ls.settimeout(TIMEOUT)
        self.port = self.ls.getsockname()[1]
        self.conn = None
        self.sent = 0
        self.last = time.monotonic()
        self.error = None
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(behaviour, args), daemon=True)
        self.thread.start()

    def _run(self, behaviour, args):
        try:
            c, _ = self.ls.accept()
            self.conn = c
            c.settimeout(TIMEOUT)
            getattr(self, behaviour)(c, *args)
        except OSError as e:
            self.error = e

    def echo(self, c):
        """Echoes to end of stream, then ends its own."""
        while True:
            b = c.recv(1 << 16)
            if not b:
                break
            c.sendall(b)
        c.shutdown(socket.SHUT_WR)

    def flood(self, c):
        """Sends until stopped, as fast as the proxy takes it."""
        c.setblocking(False)
        chunk = b"u" * (256 << 10)
        while not self.stop.is_set():
            try:
                self.sent += c.send(chunk)
                self.last = time.monotonic()
            except BlockingIOError:
                time.sleep(0.01)

    def send(self, c, total):
        """Sends total checksummed bytes, ends its stream, reads to the end."""
        for b in payload(total, 11):
            c.sendall(b)
        c.shutdown(socket.SHUT_WR)
        while c.recv(1 << 16):
            pass

    def sink(self, c):
        """Never reads."""
        self.stop.wait(TIMEOUT * 2)

    def close(self):
        self.stop.set()
        self.thread.join(TIMEOUT)
        for s in (self.conn, self.ls):
            if s:
                s.close()


def start_proxy(upstream):
    return Server("tcp_proxy", "--port", "0", "--upstream-port", str(upstream.port),
                  "--max-queue", str(PROXY_QUEUE))


def proxy_peak(proxy, pair=1):
    """The peak write queue tcp_proxy reports when the pair closes."""
    prefix = f"pair {pair} closed"
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        for line in list(proxy.output):
            if line.startswith(prefix):
                words = line.split()
                return int(words[words.index("peak") + 2]), line.strip()
        time.sleep(0.01)
    raise AssertionError(f"tcp_proxy never reported {prefix!r}")


def expect_peak_bounded(proxy):
    peak, line = proxy_peak(proxy)
    log(line)
    expect(peak <= PROXY_QUEUE + PROXY_READ,
           f"peak queue {peak} over the bound {PROXY_QUEUE} + one read")


def proxy_half_close(_):
    """20 MB through the proxy to an echoing upstream and back, then
    shutdown(write): every byte returns, then end of stream both ways."""
    up = Upstream("echo")
    proxy = start_proxy(up)
    try:
        half_close(proxy.port, 20 * MB, read_while_sending=True)
        expect(up.error is None, f"upstream: {up.error}")
        peak, line = proxy_peak(proxy)
        log(line)
        expect("both ends finished" in line, "the pair did not end by half-closes")
        expect(peak <= PROXY_QUEUE + PROXY_READ, f"peak queue {peak} over the bound")
    finally:
        proxy.stop()
        up.close()


def proxy_never_read(client_reads):
    """One side floods, the other never reads: the proxy stops reading the
    flooding side once its queue is full, and its memory stays bounded."""
    up = Upstream("sink" if client_reads else "flood")
    proxy = start_proxy(up)
    try:
        before = proxy.rss()
        s = connect(proxy.port, rcvbuf=65536)
        if client_reads:
            # The client floods, the upstream never reads.
            s.setblocking(False)
            chunk = b"c" * (256 << 10)
            sent, last = 0, time.monotonic()
            deadline = last + TIMEOUT
            while time.monotonic() - last < 2 and sent < 400 * MB and time.monotonic() < deadline:
                try:
                    sent += s.send(chunk)
                    last = time.monotonic()
                except BlockingIOError:
                    time.sleep(0.01)
        else:
            deadline = time.monotonic() + TIMEOUT
            while time.monotonic() - up.last < 2 and up.sent < 400 * MB and \
                    time.monotonic() < deadline:
                time.sleep(0.05)
            sent = up.sent
        grown = proxy.rss() - before
        log(f"{'client' if client_reads else 'upstream'} sent {sent} bytes that nobody read; "
            f"proxy RSS grew {grown >> 10} KiB")
        expect(sent < 400 * MB, "the proxy took 400 MB that nobody read")
        expect(grown < RSS_BOUND, f"proxy RSS grew {grown >> 20} MiB")
        if client_reads:
            # The proxy does not read the flooding client while paused, so
            # the reset it sees is the upstream's, on the side it reads.
            up.stop.set()
            reset(up.conn)
        reset(s)
        expect_peak_bounded(proxy)
    finally:
        proxy.stop()
        up.close()


def proxy_client_never_reads(_):
    proxy_never_read(client_reads=False)


def proxy_upstream_never_reads(_):
    proxy_never_read(client_reads=True)


def proxy_slow_reader(_):
    """8 MB from the upstream to a client that reads 1 KiB per 10 ms for 3 s:
    every byte arrives, in order, and the proxy's queue stays bounded."""
    total = 8 * MB
    up = Upstream("send", total)
    proxy = start_proxy(up)
    try:
        s = connect(proxy.port)
        r = Reader(s, pace=(1024, 0.01), pace_for=3.0)
        s.shutdown(socket.SHUT_WR)
        r.join(TIMEOUT * 2)
        s.close()
        want = hashlib.sha256()
        for b in payload(total, 11):
            want.update(b)
        log(f"got {r.count} of {total} bytes, end of stream {r.eof}")
        expect(r.eof and r.count == total and r.hash.digest() == want.digest(),
               "lost, extra or changed bytes")
        expect_peak_bounded(proxy)
    finally:
        proxy.stop()
        up.close()


CHECKS = [
    ("echo_half_close_50mb", "echo_server", [], echo_half_close_50mb),
    ("echo_half_close_unread", "echo_server", [], echo_half_close_unread),
    ("echo_never_read_bounded", "echo_server", [], never_read_bounded),
    ("echo_slow_reader", "echo_server", [], slow_reader),
    ("echo_reset_storm_after_accept", "echo_server", [], reset_storm_after_accept),
    ("echo_reset_storm_before_accept", "echo_server", [], reset_storm_before_accept),
    ("echo_abrupt_close_mid_write", "echo_server", [], abrupt_close_mid_write),
    ("echo_1000_concurrent", "echo_server", [], concurrent_1000),
    ("echo_descriptor_exhaustion", "echo_server", ["nofile=64"], descriptor_exhaustion),
    ("chat_burst", "chat_server", ["--evict-after", "5"], chat_burst),
    ("chat_stalled_reader", "chat_server", ["--evict-after", "2"], chat_stalled_reader),
    ("udp_echo", None, [], udp_echo),
    ("proxy_half_close", None, [], proxy_half_close),
    ("proxy_client_never_reads", None, [], proxy_client_never_reads),
    ("proxy_upstream_never_reads", None, [], proxy_upstream_never_reads),
    ("proxy_slow_reader", None, [], proxy_slow_reader),
]


def main():
    global passed, failed
    # 1,000 connections need more descriptors than the usual soft limit of
    # 1,024 once the server's own are counted; servers inherit this.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 4096 if hard == resource.RLIM_INFINITY else min(hard, 4096)
    if soft != resource.RLIM_INFINITY and soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    print(f"torture: {'IOCP under Wine' if WINE else 'native'} examples in {EXAMPLES}",
          flush=True)
    for name, program, argv, fn in CHECKS:
        if ONLY and name not in ONLY:
            continue
        # CMocka's line format, which scripts/summary.py counts check by check.
        test = f"test_torture_{name}"
        print(f"[ RUN      ] {test}", flush=True)
        server = None
        t0 = time.monotonic()
        try:
            if program:
                nofile = None
                if argv and argv[0].startswith("nofile="):
                    nofile = None if WINE else int(argv[0].split("=")[1])
                    argv = []
                server = Server(program, "--port", "0", *argv, nofile=nofile)
            result = fn(server)
            if server:
                expect(server.alive(), f"{program} exited")
            log(f"{time.monotonic() - t0:.1f} s")
            print(f"[ {'SKIPPED' if result == 'skip' else '     OK'} ] {test}", flush=True)
            if result != "skip":
                passed += 1
        except Exception as e:  # any failure of a check is that check's failure
            log(f"{type(e).__name__}: {e}")
            print(f"[  FAILED  ] {test}", flush=True)
            failed += 1
        finally:
            if server:
                server.stop()
    print(f"torture: {passed} passed, {failed} failed", flush=True)
    return 1 if failed or not passed else 0


if __name__ == "__main__":
    sys.exit(main())
