"""Faults on purpose: a simulator, a driver or an agent that misbehaves, reproducibly.

For protocol and daemon tests (and for rehearsing a campaign against a flaky
instrument with ``abduce instrument serve --faults SPEC``). Each fault has a
rate and every decision comes from a seeded stream, one stream per kind of
fault (``numpy.random.default_rng([seed, kind])``), so the same seed and the
same sequence of calls give the same faults, and turning one fault on does not
move the others.

Where each fault happens::

    FaultySimulator.measure / FaultyDriver.measure    latency, NaN/inf values
    FaultyDriver.measure                             crash (before measuring)
    InstrumentAgent(faults=...) send path            dropped and reordered results

Per call of ``measure`` (one request)::

    crash   with probability p_crash, before anything is measured
    delay   latency_s + U(0, jitter_s) seconds
    values  per measured point: NaN with probability p_nan, else +-inf (sign
            50/50) with probability p_inf; a spectrum gets one element
            corrupted, at a random index

Per ``result`` message the agent sends (fresh, or answered from its cache)::

    drop     with probability p_drop it is never sent
    reorder  with probability p_reorder it is held back and sent right after
             the next result that goes out, or after ``hold_s`` if none does

Example:
    >>> faults = Faults.parse("latency=0.01,drop=0.05,nan=0.02,crash=0.01,reorder=0.05,seed=3")
    >>> agent = InstrumentAgent(FaultyDriver(driver, faults, on_crash=hard_exit), endpoint, codec, "sim",
    ...                         faults=faults)
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any, NoReturn

import numpy as np

from abduce.controller.errors import ConfigError
from abduce.instruments.drivers.base import Driver, Reading
from abduce.instruments.protocol.models import Capabilities, Measure

log = logging.getLogger("abduce.faults")

# one seeded stream per kind of fault: [seed, kind]
_STREAMS = {"latency": 1, "values": 2, "crash": 3, "drop": 4, "reorder": 5}

# short keys of the CLI spec -> fields
_KEYS = {
    "latency": "latency_s",
    "jitter": "jitter_s",
    "drop": "p_drop",
    "nan": "p_nan",
    "inf": "p_inf",
    "crash": "p_crash",
    "reorder": "p_reorder",
    "hold": "hold_s",
    "seed": "seed",
}


class AgentCrash(BaseException):
    """The injected death of an agent.

    A ``BaseException`` (like ``SystemExit``), so the agent's ``except
    Exception`` around the driver does not turn it into a ``failed`` result:
    raised from a driver measured inline (``blocking = False``), it unwinds
    :meth:`InstrumentAgent.serve` at once, nothing more is sent, and the
    agent's result cache and session are gone, as after ``kill -9``.
    """


def hard_exit() -> NoReturn:
    """``on_crash`` for an agent in its own process: die at once, exit status 1, no cleanup."""
    log.error("fault injection: the agent crashes now")
    os._exit(1)


@dataclass(frozen=True)
class Faults:
    """Rates and parameters of the injected faults (all off by default).

    Attributes:
        latency_s: extra delay per measurement, seconds.
        jitter_s: plus a uniform ``U(0, jitter_s)`` delay.
        p_drop: probability a result message is never sent.
        p_nan: probability a measured point's value becomes NaN.
        p_inf: probability a measured point's value becomes +-inf.
        p_crash: probability the agent dies at a measurement (before measuring).
        p_reorder: probability a result is held back and sent after the next one.
        hold_s: the longest a held-back result waits for a next one.
        seed: seeds every decision (one stream per kind of fault).

    Raises:
        ConfigError: a probability outside [0, 1], a negative or non-finite
            time, a negative seed; the message names the field.
    """

    latency_s: float = 0.0
    jitter_s: float = 0.0
    p_drop: float = 0.0
    p_nan: float = 0.0
    p_inf: float = 0.0
    p_crash: float = 0.0
    p_reorder: float = 0.0
    hold_s: float = 0.2
    seed: int = 0

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "seed":
                if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                    raise ConfigError(f"faults: seed must be an integer >= 0, got {value!r}")
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ConfigError(f"faults: {f.name} must be a finite number, got {value!r}")
            if f.name.startswith("p_") and not 0.0 <= value <= 1.0:
                raise ConfigError(f"faults: {f.name} is a probability, in [0, 1]; got {value!r}")
            if f.name.endswith("_s") and value < 0:
                raise ConfigError(f"faults: {f.name} must be >= 0 seconds, got {value!r}")
        if self.p_nan + self.p_inf > 1.0:
            raise ConfigError(f"faults: p_nan + p_inf must be <= 1, got {self.p_nan} + {self.p_inf}")

    @classmethod
    def parse(cls, spec: str) -> Faults:
        """``"latency=0.01,drop=0.05,nan=0.02,crash=0.01,reorder=0.05,seed=3"`` -> Faults.

        Keys: latency, jitter, drop, nan, inf, crash, reorder, hold, seed (or
        the field names, ``p_drop``...). An empty spec is no faults.

        Raises:
            ConfigError: an unknown key, a value that is not a number, or a
                value out of range (names the key).
        """
        values: dict[str, Any] = {}
        for item in (s.strip() for s in spec.split(",")):
            if not item:
                continue
            key, sep, text = (s.strip() for s in item.partition("="))
            name = _KEYS.get(key, key if key in _KEYS.values() else None)
            if name is None:
                raise ConfigError(f"faults: unknown key {key!r} in {spec!r}; known: {', '.join(_KEYS)}")
            if not sep or not text:
                raise ConfigError(f"faults: {key} needs a value ({key}=...)")
            if name in values:
                raise ConfigError(f"faults: {key} given twice in {spec!r}")
            try:
                values[name] = int(text) if name == "seed" else float(text)
            except ValueError:
                kind = "an integer" if name == "seed" else "a number"
                raise ConfigError(f"faults: {key}={text!r} is not {kind}") from None
        return cls(**values)

    def stream(self, kind: str) -> np.random.Generator:
        """The seeded generator of one kind of fault ("latency", "values", "crash", "drop", "reorder")."""
        return np.random.default_rng([self.seed, _STREAMS[kind]])

    def reply_gate(self) -> ReplyGate | None:
        """The agent's send-path faults (drop, reorder), or None when both rates are 0."""
        if self.p_drop == 0 and self.p_reorder == 0:
            return None
        return ReplyGate(self)


class _Delay:
    """``latency_s + U(0, jitter_s)`` seconds, slept; one draw per call when there is jitter.

    Attributes:
        slept: the seconds slept at each call, in order (0 when there is no latency).
    """

    def __init__(self, faults: Faults) -> None:
        self.latency_s, self.jitter_s = faults.latency_s, faults.jitter_s
        self._rng = faults.stream("latency")
        self.slept: list[float] = []

    def __call__(self) -> float:
        seconds = self.latency_s + (self.jitter_s * self._rng.random() if self.jitter_s else 0.0)
        if seconds:
            time.sleep(seconds)
        self.slept.append(seconds)
        return seconds


class _Corrupter:
    """Per point (axis 0), NaN with probability ``p_nan``, else +-inf with ``p_inf``.

    One uniform, one sign and one element index are drawn per point, whatever
    is decided, so the stream does not depend on the values.
    """

    def __init__(self, faults: Faults) -> None:
        self.p_nan, self.p_inf = faults.p_nan, faults.p_inf
        self._rng = faults.stream("values")

    @property
    def active(self) -> bool:
        return bool(self.p_nan or self.p_inf)

    def __call__(self, values: np.ndarray) -> tuple[np.ndarray, list[tuple[int, float]]]:
        """``values``: ``n`` or ``n x *spectrum_shape`` -> a corrupted copy, and ``[(point, bad value)]``."""
        out = np.array(values, dtype=float, copy=True)
        flat = out.reshape(out.shape[0], -1)  # a view: one row per point, one element for a scalar
        bad: list[tuple[int, float]] = []
        for i in range(out.shape[0]):
            u, sign, where = self._rng.random(), self._rng.random(), self._rng.random()
            if u < self.p_nan:
                value = math.nan
            elif u < self.p_nan + self.p_inf:
                value = math.inf if sign < 0.5 else -math.inf
            else:
                continue
            flat[i, min(int(where * flat.shape[1]), flat.shape[1] - 1)] = value
            bad.append((i, value))
        return out, bad


class FaultySimulator:
    """A simulator whose ``measure`` is slow and sometimes not finite; everything else delegated.

    Args:
        simulator: any simulator of the interface (``bounds``, ``candidates()``,
            ``truth``/``measure``...).
        faults: latency and NaN/inf are used here; the other rates are ignored.

    Served by the simulated driver, the latency is slept wherever the driver
    calls ``measure``: on the agent's I/O thread when the simulator has no
    ``dwell_s``. For a slow instrument behind an agent prefer
    :class:`FaultyDriver`, which runs on the worker thread.

    Attributes:
        corrupted: ``(call, point, value)`` for each corrupted point, in order.
        delays: the seconds slept before each measurement, in order.
    """

    def __init__(self, simulator, faults: Faults) -> None:
        self.simulator, self.faults = simulator, faults
        self.corrupted: list[tuple[int, int, float]] = []
        self._delay, self._corrupt, self._calls = _Delay(faults), _Corrupter(faults), 0

    def __getattr__(self, name: str):
        if name in ("simulator", "_delay"):  # not set yet (unpickling): no recursion
            raise AttributeError(name)
        return getattr(self.simulator, name)

    @property
    def delays(self) -> list[float]:
        return self._delay.slept

    def measure(self, x) -> np.ndarray:
        """The wrapped ``measure(x)`` (same noise stream), after the delay, with corrupted points."""
        call, self._calls = self._calls, self._calls + 1
        self._delay()
        y = self.simulator.measure(x)
        if not self._corrupt.active:
            return y
        y, bad = self._corrupt(y)
        self.corrupted += [(call, i, v) for i, v in bad]
        return y

    def __repr__(self) -> str:
        return f"FaultySimulator({self.simulator!r}, {self.faults!r})"


class FaultyDriver(Driver):
    """Any :class:`~abduce.instruments.drivers.base.Driver`, slow, sometimes not finite, sometimes dying.

    A crash happens at the start of ``measure``, before the wrapped driver is
    called (the process died as the measurement began: nothing was measured,
    nothing is sent). It calls ``on_crash`` and then raises
    :class:`AgentCrash`:

    * agent in its own process (``abduce instrument serve --faults``):
      ``on_crash=hard_exit``, ``os._exit(1)``.
    * agent on a thread, driver measured inline (``blocking = False``, e.g. the
      simulated driver with no latency): leave ``on_crash`` None;
      ``AgentCrash`` unwinds ``agent.serve()``, which returns nothing and
      sends nothing more.
    * agent on a thread, driver on the worker thread (``blocking``):
      ``on_crash=agent.stop`` stops the I/O thread; the ``AgentCrash`` ends
      the worker thread.

    A driver with latency is ``blocking`` (it runs on the agent's worker
    thread, so a long delay never stalls heartbeats).

    Args:
        driver: the driver to wrap.
        faults: latency, NaN/inf and crash are used here (drop and reorder are
            the agent's: ``InstrumentAgent(faults=...)``).
        on_crash: called before :class:`AgentCrash` is raised.

    Attributes:
        measured: request ids the wrapped driver measured, in order.
        delays: the seconds slept before each measurement, in order.
        corrupted: ``(request_id, point, channel, value)`` for each corrupted value.
        crashes: crashes injected.
    """

    def __init__(self, driver: Driver, faults: Faults, on_crash: Callable[[], None] | None = None) -> None:
        self.driver, self.faults, self.on_crash = driver, faults, on_crash
        self.blocking = driver.blocking or faults.latency_s > 0 or faults.jitter_s > 0
        self.measured: list[str] = []
        self.corrupted: list[tuple[str, int, str, float]] = []
        self.crashes = 0
        self._delay, self._corrupt, self._crash = _Delay(faults), _Corrupter(faults), faults.stream("crash")

    @property
    def delays(self) -> list[float]:
        return self._delay.slept

    def describe(self) -> Capabilities:
        return self.driver.describe()

    def measure(self, request: Measure) -> Reading:
        if self.faults.p_crash and self._crash.random() < self.faults.p_crash:
            self.crashes += 1
            log.warning("fault injection: agent crash at request %s", request.request_id)
            if self.on_crash is not None:
                self.on_crash()
            raise AgentCrash(f"injected crash at request {request.request_id}")
        self._delay()
        reading = self.driver.measure(request)
        self.measured.append(request.request_id)
        if self._corrupt.active:
            for name, vals in reading.values.items():  # channels in order: a reproducible stream
                arr, bad = self._corrupt(np.asarray(vals, dtype=float))
                reading.values[name] = arr.tolist()
                self.corrupted += [(request.request_id, i, name, v) for i, v in bad]
            for name, arr in reading.arrays.items():
                out, bad = self._corrupt(arr)
                reading.arrays[name] = out
                self.corrupted += [(request.request_id, i, name, v) for i, v in bad]
        return reading

    def abort(self) -> bool:
        return self.driver.abort()

    def safe_state(self) -> str:
        return self.driver.safe_state()

    def release(self) -> str:
        return self.driver.release()


class ReplyGate:
    """The agent's send path with faults: drops results and holds some back (one at a time).

    The agent hands it every result it would send, with the item to send
    (opaque here), and sends what :meth:`route` returns; its loop sends what
    :meth:`due` returns. Two draws per result (drop, reorder), each from its
    own stream.

    Attributes:
        log: ``(request_id, "sent" | "dropped" | "held")`` per result, in order;
            a held result is logged again as "sent" when it goes out.
    """

    def __init__(self, faults: Faults) -> None:
        self.p_drop, self.p_reorder, self.hold_s = faults.p_drop, faults.p_reorder, faults.hold_s
        self._drop, self._reorder = faults.stream("drop"), faults.stream("reorder")
        self._held: tuple[float, str, Any] | None = None  # (deadline, request_id, item)
        self.log: list[tuple[str, str]] = []

    def route(self, request_id: str, item: Any, now: float) -> list[Any]:
        """What to send now, in order, given one more result to send."""
        drop, hold = self._drop.random() < self.p_drop, self._reorder.random() < self.p_reorder
        if drop:
            self.log.append((request_id, "dropped"))
            return []
        if hold and self._held is None:
            self._held = (now + self.hold_s, request_id, item)
            self.log.append((request_id, "held"))
            return []
        self.log.append((request_id, "sent"))
        return [item] + self._release()

    def due(self, now: float) -> list[Any]:
        """A held result whose ``hold_s`` ran out (no other result came to overtake it)."""
        if self._held is not None and now >= self._held[0]:
            return self._release()
        return []

    def _release(self) -> list[Any]:
        if self._held is None:
            return []
        _, request_id, item = self._held
        self._held = None
        self.log.append((request_id, "sent"))
        return [item]
