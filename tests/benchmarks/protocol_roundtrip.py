"""Protocol cost: raw pyzmq DEALER/ROUTER round trip vs an abduce measure -> result round trip.

Both over TCP on loopback, side by side in one run, with signing on and with
CURVE on: median and p99 latency of sequential round trips, throughput with
--window requests in flight, and the ratio abduce / raw. The abduce round trip
uses the simulated driver (a numpy formula, microseconds) in an agent process
of its own, as on a microscope's PC, so what is measured is the protocol:
codec, signing, validation, the agent's worker hand-off and the link's I/O
thread.

    python tests/benchmarks/protocol_roundtrip.py [--count 2000] [--window 16]

Goal (issue 3): abduce <= 2x raw median, >= 5,000 measurements/s. It also
prints the floor for any Python implementation of this protocol: a bare peer
that only decodes a signed ``measure`` and encodes a ``result``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import zmq
import zmq.auth

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from abduce.controller.drive.link import InstrumentLink  # noqa: E402
from abduce.instruments.keys import new_key  # noqa: E402
from abduce.instruments.protocol.codec import Codec, Keyring  # noqa: E402
from abduce.instruments.protocol.models import Measure  # noqa: E402


def stats(samples: list[float]) -> tuple[float, float]:
    s = sorted(samples)
    return 1e6 * statistics.median(s), 1e6 * s[int(0.99 * (len(s) - 1))]


ECHO = """
import sys, zmq
ctx = zmq.Context()
d = ctx.socket(zmq.DEALER)
if len(sys.argv) > 2:
    d.curve_serverkey, d.curve_publickey, d.curve_secretkey = (a.encode() for a in sys.argv[2:5])
d.connect(sys.argv[1])
d.send(b"hi")
while True:
    m = d.recv_multipart()
    if m == [b"quit"]:
        break
    d.send_multipart(m)
"""


FLOOR = """
import sys, zmq
from abduce.instruments.keys import load_key
from abduce.instruments.protocol.codec import Codec, Keyring
from abduce.instruments.protocol.models import Measure, Result
key_id, secret = load_key(sys.argv[2])
codec = Codec(Keyring({key_id: secret}), key_id)
ctx = zmq.Context()
d = ctx.socket(zmq.DEALER)
d.connect(sys.argv[1])
d.send(b"hi")
while True:
    frames = d.recv_multipart()
    if frames == [b"quit"]:
        break
    m = codec.decode(frames)
    d.send_multipart(codec.encode(Result(request_id=m.content.request_id, status="ok", points=m.content.points,
                                         values={"y": [0.5]}), parent=m.header))
"""


def floor(count: int, keydir: Path) -> tuple[float, float]:
    """The least a Python peer using abduce's codec can do: decode a measure, encode a result, no agent."""
    import subprocess

    key = keydir / "lab.key"
    if not key.exists():
        new_key(key, "lab")
    from abduce.instruments.keys import load_key

    key_id, secret = load_key(key)
    codec = Codec(Keyring({key_id: secret}), key_id)
    ctx = zmq.Context()
    router = ctx.socket(zmq.ROUTER)
    router.bind("tcp://127.0.0.1:0")  # a free port
    endpoint = router.last_endpoint.decode()
    peer = subprocess.Popen([sys.executable, "-c", FLOOR, endpoint, str(key)])
    ident = router.recv_multipart()[0]
    lat = []
    for i in range(count):
        t0 = time.perf_counter()
        router.send_multipart(codec.encode(Measure(request_id=f"f{i}", points=[[0.5]]), identities=[ident]))
        codec.decode(router.recv_multipart())
        lat.append(time.perf_counter() - t0)
    router.send_multipart([ident, b"quit"])
    peer.wait(10)
    router.close(0)
    ctx.term()
    return stats(lat)


def raw(count: int, window: int, curve) -> tuple[float, float, float]:
    """A DEALER echo in its own process (as the agent is), a ROUTER here: the floor for any protocol."""
    import subprocess

    ctx = zmq.Context()
    router = ctx.socket(zmq.ROUTER)
    args = []
    if curve:
        (sp, ss), (cp, cs) = curve
        router.curve_server, router.curve_publickey, router.curve_secretkey = True, sp, ss
        args = [sp.decode(), cp.decode(), cs.decode()]
    router.bind("tcp://127.0.0.1:0")  # a free port
    endpoint = router.last_endpoint.decode()
    echo = subprocess.Popen([sys.executable, "-c", ECHO, endpoint, *args])
    payload = os.urandom(200)
    dealer_id = router.recv_multipart()[0]  # the echo speaks first so the router learns its identity
    lat = []
    for _ in range(count):
        t0 = time.perf_counter()
        router.send_multipart([dealer_id, payload])
        router.recv_multipart()
        lat.append(time.perf_counter() - t0)
    t0 = time.perf_counter()
    sent = received = 0
    while received < count:
        while sent < count and sent - received < window:
            router.send_multipart([dealer_id, payload])
            sent += 1
        router.recv_multipart()
        received += 1
    rate = count / (time.perf_counter() - t0)
    router.send_multipart([dealer_id, b"quit"])
    echo.wait(10)
    router.close(0)
    ctx.term()
    return (*stats(lat), rate)


def abduce(count: int, window: int, curve, keydir: Path) -> tuple[float, float, float]:
    """The agent runs in its own process (`abduce instrument serve`), as on a microscope PC."""
    import subprocess

    key = keydir / "lab.key"
    if not key.exists():
        new_key(key, "lab")
    from abduce.instruments.keys import load_key

    key_id, secret = load_key(key)
    ring = Keyring({key_id: secret})
    kwargs, extra = {}, []
    if curve:
        kwargs = {"curve": zmq.auth.load_certificate(str(keydir / "s.key.curve.key_secret")), "curve_clients": None}
        extra = [
            "--curve-secret",
            str(keydir / "c.key.curve.key_secret"),
            "--curve-server",
            str(keydir / "s.key.curve.key"),
        ]
    link = InstrumentLink("tcp://127.0.0.1:0", Codec(ring, key_id), **kwargs).start()
    endpoint = link.endpoint  # the free pair of ports it bound
    agent = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "abduce.controller.cli",
            "instrument",
            "serve",
            "--driver",
            "simulated:transition-1d",
            "--grid",
            "0",
            "--connect",
            endpoint,
            "--key",
            str(key),
            "--id",
            "bench",
            *extra,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        link.wait_for_agent(60)
        lat = []
        for i in range(count):
            t0 = time.perf_counter()
            link.measure(Measure(request_id=f"s{i}", points=[[0.5]]), "bench", 10)
            lat.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        with ThreadPoolExecutor(window) as pool:
            list(
                pool.map(lambda i: link.measure(Measure(request_id=f"p{i}", points=[[0.5]]), "bench", 30), range(count))
            )
        rate = count / (time.perf_counter() - t0)
    finally:
        agent.terminate()
        agent.wait(10)
        link.close()
    return (*stats(lat), rate)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--count", type=int, default=2000)
    ap.add_argument("--window", type=int, default=16)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        new_key(Path(d) / "s.key", "s", curve=True)
        new_key(Path(d) / "c.key", "c", curve=True)
        curve = (
            zmq.auth.load_certificate(f"{d}/s.key.curve.key_secret"),
            zmq.auth.load_certificate(f"{d}/c.key.curve.key_secret"),
        )
        print(f"TCP loopback, {args.count} sequential round trips, throughput with {args.window} in flight")
        f = floor(args.count, Path(d))
        print(
            f"codec floor (a bare Python peer that decodes a signed measure and encodes a result): "
            f"median {f[0]:.0f} us, p99 {f[1]:.0f} us"
        )
        print(
            f"{'mode':<10}{'raw median us':>15}{'raw p99 us':>12}{'raw msg/s':>11}{'abduce median us':>18}"
            f"{'abduce p99 us':>15}{'abduce meas/s':>15}{'median ratio':>14}"
        )
        for mode, c in (("signed", None), ("curve", curve)):
            r = raw(args.count, args.window, c)
            a = abduce(args.count, args.window, c, Path(d))
            print(
                f"{mode:<10}{r[0]:>15.0f}{r[1]:>12.0f}{r[2]:>11.0f}{a[0]:>18.0f}{a[1]:>15.0f}{a[2]:>15.0f}"
                f"{a[0] / r[0]:>14.1f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
