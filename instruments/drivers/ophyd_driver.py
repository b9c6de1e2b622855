"""The ``ophyd`` driver: a beamline's own ophyd devices served as an abduce instrument, through bluesky.

``abduce instrument serve --driver ophyd:PACKAGE.MODULE:FACTORY -o KEY=VALUE ...`` imports ``FACTORY``, calls
it with the ``-o`` options as keyword arguments, and serves the :class:`OphydInstrument` it returns:

* **axes**: ophyd positioners (anything bluesky can ``set`` and ``read``). Each one's limits and unit come
  from the device's own metadata, in this order: what the factory gives (:class:`OphydAxis`), the
  device's ``.limits`` (ophyd's ``(0, 0)`` means "none"), the ``lower_ctrl_limit``/``upper_ctrl_limit``
  (or event-model ``limits.control``) of its readback in ``describe()``; the unit from the factory, the
  device's ``.egu``, or its readback's ``units``. A positioner with no usable limits is refused, with a
  message saying how to give them: the agent enforces the limits on every request, so there must be some.
* **channels**: readables (detectors, signals). A scalar field becomes a scalar channel, an array field
  (``describe()`` shape ``[m]``, ``[h, w]``) an array channel of that shape; its unit is its ``units``.
* **callbacks**: ``f(name, doc)`` callables subscribed to the RunEngine: the beamline's live plots,
  its databroker/tiled writer, a Kafka publisher receive every document of every request.
* **safe_plan** / **release_plan**: plans (callables returning a bluesky plan) run for the protocol's
  ``safe_state`` (close the shutter, park the stage) and ``release``.
* **run_engine**: the beamline's own ``RunEngine`` (its suspenders, preprocessors such as
  ``SupplementalData`` baselines, its metadata and subscriptions stay in force); None builds a new one.

How a request runs. Every ``measure`` request is **one bluesky run** on the RunEngine::

    open_run(md = metadata | {"plan_name": "abduce_measure", "abduce": {"request_id", "points", "parameters"}})
    for each point p_i (i = 0..n-1):
        checkpoint                                         # a tripped suspender resumes from here
        mv(axis_1, p_i1, ..., axis_d, p_id)                # all axes together, waited for
        trigger_and_read(channels + axes) -> event i       # one event per point, stream "primary"
    close_run

so a request is a complete, self-describing run in the beamline's document stream (start, descriptor,
n events, stop), tagged with its abduce request id, and a resumed or retried abduce request never shares a
run with another. One long-lived run per campaign was the alternative; it would need a plan that blocks
inside the RunEngine between requests (no checkpoint, no baseline per request, and an abort that ends the
whole campaign's run), so the per-request run is what this driver does. The measured point is what the
axes *read back* in the point's event (``OphydAxis.tolerance`` reports the target instead when the
readback is within the motor's deadband of it); the values are the channels' readings in that event.
The reading's ``state`` records the run's ``uid`` and ``scan_id`` and the readbacks, so a journal entry
leads to its bluesky run.

Threads. The agent calls :meth:`OphydDriver.measure` on its worker thread and :meth:`OphydDriver.abort`,
:meth:`~OphydDriver.safe_state` and :meth:`~OphydDriver.release` on its I/O thread. The RunEngine runs
its plans on its own event-loop thread; ``RE(plan)`` only blocks its caller. ``RE.abort()`` is safe from
another thread while the RunEngine is running: it schedules the abort on the RunEngine's loop
(``call_soon_threadsafe``) and waits only for that to be scheduled and done; the RunEngine then cancels the
plan, stops every device it moved, closes the run with ``exit_status="abort"``, and the blocked
``RE(plan)`` raises ``RunEngineInterrupted``. On a *paused* RunEngine, ``RE.abort()`` would resume the plan
on the calling thread and block it, so :meth:`~OphydDriver.abort` aborts only a running or suspending
RunEngine (a suspended one waits for its suspender: the beam, a temperature); a RunEngine that pauses
mid-request (someone else's ``request_pause``) is aborted by ``measure`` itself, on the worker thread, and
the request fails saying so. An abort that arrives after the agent handed the request over but before its
run started is kept until ``measure`` takes the RunEngine, which then does not run the request at all (so
after a safe state nothing moves until ``release``); one that arrives while the plan runs is honoured by the
plan's check before each point; either way the agent reports the request aborted. Plans
never overlap: one lock is held around every ``RE(...)`` call, and ``safe_state`` takes it after aborting,
so the safe plan starts once the aborted request has cleaned up. ``RE(...)`` off the main thread cannot
install bluesky's SIGINT handler (Python allows signal handlers only on the main thread), so the driver
runs the RunEngine without ``SigintHandler`` (the agent owns the process's signals).

Example (``mybeamline.py``; a runnable one using ``ophyd.sim``:
:mod:`abduce.instruments.drivers.simulated_beamline`)::

    from ophyd import EpicsMotor, EpicsSignal, EpicsSignalRO
    import bluesky.plan_stubs as bps
    from abduce.instruments.drivers.ophyd_driver import OphydAxis, OphydInstrument

    def beamline(sample: str = "unknown") -> OphydInstrument:
        x = EpicsMotor("XF:31ID-ES{Stg:X}Mtr", name="x")          # limits and egu from EPICS
        T = EpicsMotor("XF:31ID-ES{Htr}T", name="T")
        I = EpicsSignalRO("XF:31ID-ES{Det}I", name="I")
        shutter = EpicsSignal("XF:31ID-ES{Sh}Cmd", name="shutter")
        return OphydInstrument(
            axes=[x, OphydAxis(T, limits=(280.0, 320.0))],        # narrower than the heater's own range
            channels=[I],
            safe_plan=lambda: bps.mv(shutter, "close"),
            metadata={"sample": sample},
        )

    $ abduce instrument serve --driver ophyd:mybeamline:beamline -o sample=LSMO-7 --connect tcp://ctl:5555 --key lab.key
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import bluesky.plan_stubs as bps
import bluesky.preprocessors as bpp
import numpy as np
from bluesky import RunEngine
from bluesky.protocols import Movable, Readable
from bluesky.utils import DuringTask, RunEngineInterrupted, SigintHandler

from abduce.controller.errors import ConfigError
from abduce.instruments.drivers.base import Driver, Reading
from abduce.instruments.protocol.models import Axis, Capabilities, Channel, Measure

log = logging.getLogger("abduce.ophyd")

Plan = Callable[[], Iterable[Any]]
"""A callable returning a fresh bluesky plan (a generator of ``Msg``), e.g. ``lambda: bps.mv(shutter, 0)``."""

SAFE_WAIT_S = 60.0
"""How long ``safe_state``/``release`` wait for an aborted request's run to clean up before they give up."""

_ABORTABLE = ("running", "suspending")  # states RE.abort() ends from another thread (never a paused one: see above)


@dataclass(frozen=True)
class OphydAxis:
    """A positioner and what the factory says about it beyond the device's own metadata.

    Attributes:
        device: the positioner (``EpicsMotor``, ``SoftPositioner``, ``ophyd.sim.SynAxis``, ...).
        name: the axis's name in abduce (default: the device's ``name``).
        limits: ``(lo, hi)``; default: the device's own (see the module docstring).
        unit: default: the device's ``egu``, else its readback's ``units``.
        field: the data key of its readback in ``read()`` (default: its single hinted field, else its name).
        tolerance: when the readback is within ``tolerance`` of the target (the motor's deadband), the
            point is reported as the target (a candidate-grid campaign needs its points on the grid);
            None: always the readback.
    """

    device: Any
    name: str | None = None
    limits: tuple[float, float] | None = None
    unit: str | None = None
    field: str | None = None
    tolerance: float | None = None


@dataclass(frozen=True)
class OphydChannel:
    """A readable and which of its fields is the channel.

    Attributes:
        device: the readable (a detector, a signal).
        field: its data key in ``read()`` (default: its only key, else its single hinted field).
        name: the channel's name in abduce (default: the field).
        unit: default: the field's ``units`` in ``describe()``.
    """

    device: Any
    field: str | None = None
    name: str | None = None
    unit: str | None = None


@dataclass
class OphydInstrument:
    """What a factory returns: the devices and how to run them.

    Attributes:
        axes: positioners (or :class:`OphydAxis`), in the order a point lists its coordinates.
        channels: readables (or :class:`OphydChannel`); the first scalar one is what a campaign models
            unless told otherwise.
        callbacks: ``f(name, doc)`` subscribed to the RunEngine for every document of every request.
        safe_plan: run by ``safe_state`` after the running request is aborted (None: abort only).
        release_plan: run by ``release`` (None: nothing to do).
        run_engine: the beamline's RunEngine; None builds one (no SIGINT handler, plain blocking).
        metadata: added to every run's start document (sample, proposal, operator...).
        candidates: an optional finite set of allowed points (``N x d``), e.g. a composition library.
        simulator: whether the devices are simulated (``ophyd.sim``).
        idempotent: whether measuring a point twice is harmless (False for a dose-sensitive sample).
    """

    axes: Sequence[Any]
    channels: Sequence[Any]
    callbacks: Sequence[Callable[[str, dict], Any]] = ()
    safe_plan: Plan | None = None
    release_plan: Plan | None = None
    run_engine: RunEngine | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)
    candidates: Sequence[Sequence[float]] | None = None
    simulator: bool = False
    idempotent: bool = True


class _Blocking(DuringTask):
    """Wait for the plan: no Qt loop on the agent's worker thread."""

    def block(self, blocking_event: threading.Event) -> None:
        blocking_event.wait()


def _hinted(device: Any) -> list[str]:
    hints = getattr(device, "hints", None)
    return list(hints.get("fields", [])) if isinstance(hints, Mapping) else []


def _describe(device: Any, what: str) -> dict[str, dict]:
    try:
        described = device.describe()
    except Exception as exc:
        raise ConfigError(f"{what} {_label(device)}: describe() failed: {type(exc).__name__}: {exc}") from exc
    if not isinstance(described, Mapping):
        raise ConfigError(f"{what} {_label(device)}: describe() gave a {type(described).__name__}, not a mapping")
    return dict(described)


def _label(device: Any) -> str:
    return repr(getattr(device, "name", None) or type(device).__name__)


def _pick_field(device: Any, described: Mapping[str, dict], given: str | None, what: str) -> str:
    """The data key of ``device`` that is the axis's readback or the channel's value."""
    if given is not None:
        if given not in described:
            raise ConfigError(f"{what} {_label(device)} has no field {given!r}; it reads {sorted(described)}")
        return given
    if len(described) == 1:
        return next(iter(described))
    hinted = [f for f in _hinted(device) if f in described]
    if len(hinted) == 1:
        return hinted[0]
    name = getattr(device, "name", None)
    if name in described:
        return name
    raise ConfigError(
        f"{what} {_label(device)} reads several fields {sorted(described)}: name the one to use "
        f"(field=...) in the factory"
    )


def _own_limits(device: Any, key: dict) -> tuple[float, float] | None:
    """The device's limits from its metadata, or None where it declares none (ophyd's ``(0, 0)``)."""
    candidates = []
    try:
        candidates.append(tuple(getattr(device, "limits", ()) or ()))
    except Exception:  # a limits property that needs a connection it lacks
        pass
    candidates.append((key.get("lower_ctrl_limit"), key.get("upper_ctrl_limit")))
    control = (key.get("limits") or {}).get("control") or {}
    candidates.append((control.get("low"), control.get("high")))
    for pair in candidates:
        if len(pair) != 2 or any(v is None for v in pair):
            continue
        try:
            lo, hi = float(pair[0]), float(pair[1])
        except (TypeError, ValueError):
            continue
        if math.isfinite(lo) and math.isfinite(hi) and lo < hi:
            return lo, hi
    return None


def _own_unit(device: Any, key: dict) -> str:
    try:
        egu = getattr(device, "egu", None)
    except Exception:  # PositionerBase.egu raises NotImplementedError; an EPICS one may need a connection
        egu = None
    return str(egu if isinstance(egu, str) else key.get("units") or "")


@dataclass(frozen=True)
class _Axis:
    device: Any
    field: str
    declared: Axis
    tolerance: float | None


@dataclass(frozen=True)
class _Channel:
    device: Any
    field: str
    declared: Channel


def _axis(spec: Any) -> _Axis:
    spec = spec if isinstance(spec, OphydAxis) else OphydAxis(spec)
    dev = spec.device
    if not isinstance(dev, Movable) or not isinstance(dev, Readable):
        raise ConfigError(f"axis {_label(dev)} is not a positioner bluesky can set and read (a {type(dev).__name__})")
    described = _describe(dev, "axis")
    fld = _pick_field(dev, described, spec.field, "axis")
    key = dict(described[fld])
    limits = spec.limits if spec.limits is not None else _own_limits(dev, key)
    name = spec.name or getattr(dev, "name", None) or fld
    if limits is None:
        raise ConfigError(
            f"axis {name!r} ({type(dev).__name__}) declares no usable limits (no .limits, no control limits in "
            f"describe()): give them in the factory, OphydAxis(device, limits=(lo, hi))"
        )
    lo, hi = float(limits[0]), float(limits[1])
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        raise ConfigError(f"axis {name!r}: limits {limits} must be finite with lo < hi")
    unit = spec.unit if spec.unit is not None else _own_unit(dev, key)
    return _Axis(dev, fld, Axis(name=name, unit=unit, min=lo, max=hi), spec.tolerance)


def _channel(spec: Any) -> _Channel:
    spec = spec if isinstance(spec, OphydChannel) else OphydChannel(spec)
    dev = spec.device
    if not isinstance(dev, Readable):
        raise ConfigError(f"channel {_label(dev)} is not a readable (a {type(dev).__name__})")
    described = _describe(dev, "channel")
    fld = _pick_field(dev, described, spec.field, "channel")
    key = dict(described[fld])
    if key.get("dtype") not in ("number", "integer", "boolean", "array", None):
        raise ConfigError(f"channel {fld!r} reads {key.get('dtype')!r} values; a channel is numeric")
    shape = [int(s) for s in key.get("shape") or []]
    if any(s < 1 for s in shape):
        raise ConfigError(f"channel {fld!r} declares shape {shape}; every dimension must be >= 1")
    unit = spec.unit if spec.unit is not None else str(key.get("units") or "")
    return _Channel(dev, fld, Channel(name=spec.name or fld, unit=unit, shape=shape))


class OphydDriver(Driver):
    """Serves an :class:`OphydInstrument` through a bluesky RunEngine (see the module docstring).

    Args:
        instrument: the devices and plans a factory returned.

    Attributes:
        RE: the RunEngine every request, safe plan and release plan runs on.
        tokens: the RunEngine subscription tokens of the factory's callbacks (``RE.unsubscribe(token)``).

    Raises:
        ConfigError: a device that is not a positioner/readable, an axis without limits, a field that
            cannot be chosen, a candidate outside the limits, two axes or channels with one name.
    """

    blocking = True

    def __init__(self, instrument: OphydInstrument) -> None:
        if not instrument.axes or not instrument.channels:
            raise ConfigError("an ophyd instrument needs at least one axis and one channel")
        self.instrument = instrument
        self.axes = [_axis(a) for a in instrument.axes]
        self.channels = [_channel(c) for c in instrument.channels]
        for kind, names in (
            ("axis", [a.declared.name for a in self.axes]),
            ("channel", [c.declared.name for c in self.channels]),
        ):
            if len(set(names)) != len(names):
                raise ConfigError(f"two {kind} entries share a name: {names}")
        self.candidates = None
        if instrument.candidates is not None:
            cands = np.asarray(instrument.candidates, dtype=float)
            if cands.ndim != 2 or cands.shape[1] != len(self.axes):
                raise ConfigError(f"candidates must be N x {len(self.axes)}, got shape {cands.shape}")
            lo = np.array([a.declared.min for a in self.axes])
            hi = np.array([a.declared.max for a in self.axes])
            if not np.all((cands >= lo) & (cands <= hi)):
                raise ConfigError("some candidates lie outside the axes' limits: they could never be measured")
            self.candidates = cands.tolist()
        RE = instrument.run_engine
        if RE is None:
            RE = RunEngine({}, context_managers=[], during_task=_Blocking())
        elif SigintHandler in RE.context_managers:  # it would call signal.signal off the main thread
            RE.context_managers = [m for m in RE.context_managers if m is not SigintHandler]
            log.info("the RunEngine's SigintHandler is left out: plans run on the agent's worker thread")
        self.RE = RE
        self.tokens = [RE.subscribe(cb) for cb in instrument.callbacks]
        self._stop = threading.Event()  # an abort: the plan stops before its next point
        self._lock = threading.Lock()  # one RE(...) at a time: a request, the safe plan, the release plan

    def describe(self) -> Capabilities:
        return Capabilities(
            axes=[a.declared for a in self.axes],
            candidates=self.candidates,
            channels=[c.declared for c in self.channels],
            simulator=self.instrument.simulator,
            idempotent=self.instrument.idempotent,
        )

    # ------------------------------------------------------------ measuring

    def _plan(self, request: Measure, events: dict[int, dict]):
        """One run: per point, checkpoint, move every axis, trigger and read channels and axes."""
        md = {
            **self.instrument.metadata,
            "plan_name": "abduce_measure",
            "abduce": {"request_id": request.request_id, "points": request.points, "parameters": request.parameters},
            "motors": [a.field for a in self.axes],
            "hints": {"dimensions": [([a.field], "primary") for a in self.axes]},
        }
        readables = [c.device for c in self._asked(request)] + [a.device for a in self.axes]

        @bpp.run_decorator(md=md)
        def run():
            for i, point in enumerate(request.points):
                if self._stop.is_set():
                    return
                yield from bps.checkpoint()
                yield from bps.mv(*[v for a, x in zip(self.axes, point) for v in (a.device, float(x))])
                events[i] = yield from bps.trigger_and_read(readables)  # by index: a rewound point replaces

        return (yield from run())

    def _asked(self, request: Measure) -> list:
        """The channels a request reads: those it names (protocol 1.3 ``Measure.channels``; the agent has checked
        each is declared), else every channel."""
        return [c for c in self.channels if not request.channels or c.declared.name in request.channels]

    def measure(self, request: Measure) -> Reading:
        """Run the request's plan; the points are what the axes read back, the values the channels' (those the
        request names, or all: only the asked channels' detectors are triggered)."""
        events: dict[int, dict] = {}
        with self._lock:
            # an abort (or the safe state) that came after the agent handed this request over but before it got
            # the RunEngine: it is not run at all, so nothing moves after a safe plan
            if self._stop.is_set():
                self._stop.clear()
                raise RuntimeError("aborted before its run started")
            try:
                ran = self.RE(self._plan(request, events))
            except RunEngineInterrupted:
                if self.RE.state == "paused":  # paused mid-request: end its run here, leave the RE usable
                    self.RE.abort(reason=f"abduce request {request.request_id} paused mid-run")
                if self._stop.is_set():
                    raise RuntimeError("aborted: the RunEngine stopped the request's run") from None
                raise RuntimeError("the RunEngine paused mid-request; its run was aborted") from None
            finally:
                stopped = self._stop.is_set()
                self._stop.clear()  # this request's abort ends with it
        if stopped or len(events) != len(request.points):
            raise RuntimeError(f"aborted after {len(events)} of {len(request.points)} points")
        uids = list(getattr(ran, "run_start_uids", ran) or ())
        return self._reading(request, [events[i] for i in range(len(request.points))], uids)

    def _reading(self, request: Measure, events: list[dict], uids: list[str]) -> Reading:
        points, readback = [], {a.declared.name: [] for a in self.axes}
        for target, event in zip(request.points, events):
            point = []
            for a, x in zip(self.axes, target):
                got = float(event[a.field]["value"])
                readback[a.declared.name].append(got)
                point.append(float(x) if a.tolerance is not None and abs(got - x) <= a.tolerance else got)
            points.append(point)
        values, arrays = {}, {}
        for c in self._asked(request):
            raw = [event[c.field]["value"] for event in events]
            if c.declared.shape:
                arr = np.asarray(raw, dtype=np.float64)
                if arr.shape[1:] != tuple(c.declared.shape):
                    raise ValueError(
                        f"channel {c.declared.name!r} read shape {arr.shape[1:]}, declared {c.declared.shape}"
                    )
                arrays[c.declared.name] = arr
            else:
                values[c.declared.name] = [float(v) for v in raw]
        state = {"bluesky": {"run_uids": uids, "scan_id": self.RE.md.get("scan_id")}, "readback": readback}
        return Reading(points=points, values=values, arrays=arrays, state=state)

    # ------------------------------------------------------------ control lane

    def abort(self) -> bool:
        """Stop the running request: the plan stops before its next point, and a running RunEngine is
        aborted (it stops what it moved and closes the run as aborted). True if a run was aborted."""
        self._stop.set()
        if self.RE.state not in _ABORTABLE:
            return False
        try:
            self.RE.abort(reason="abduce: abort requested by the controller")
        except Exception as exc:  # it went idle in between (a TransitionError): nothing left to stop
            log.info("RunEngine abort not needed: %s", exc)
            return False
        return True

    def _run_plan(self, plan: Plan, what: str, timeout_s: float = SAFE_WAIT_S) -> None:
        if not self._lock.acquire(timeout=timeout_s):
            raise RuntimeError(f"the RunEngine did not come back to idle within {timeout_s} s; {what} not run")
        try:
            self.RE(plan())
        finally:
            self._lock.release()

    def safe_state(self) -> str:
        """Abort what runs, then run the factory's ``safe_plan`` (after the aborted run has cleaned up)."""
        aborted = self.abort()
        done = "aborted the running request; " if aborted else ""
        if self.instrument.safe_plan is None:
            return done + "no safe plan given: nothing else to do"
        self._run_plan(self.instrument.safe_plan, "the safe plan")
        return done + f"ran the safe plan {getattr(self.instrument.safe_plan, '__name__', 'safe_plan')}"

    def release(self) -> str:
        """Run the factory's ``release_plan`` (measurements are accepted again once it returns)."""
        self._stop.clear()  # the safe state's abort, kept so that no request handed over meanwhile ran
        if self.instrument.release_plan is None:
            return "no release plan given: nothing to do"
        self._run_plan(self.instrument.release_plan, "the release plan")
        return f"ran the release plan {getattr(self.instrument.release_plan, '__name__', 'release_plan')}"


def build(spec: str, **options: Any) -> OphydDriver:
    """``ophyd:PACKAGE.MODULE:FACTORY`` (or ``ophyd:MODULE:FACTORY``) -> the driver; ``options`` go to the
    factory as keyword arguments.

    Raises:
        ConfigError: the factory does not import, refuses the options, or returns no :class:`OphydInstrument`.
    """
    from abduce.controller.registry import import_dotted

    _, _, path = spec.partition(":")
    if ":" not in path or not all(part.isidentifier() for part in path.replace(":", ".").split(".")):
        raise ConfigError(
            f"driver {spec!r}: use ophyd:PACKAGE.MODULE:FACTORY (a function returning an OphydInstrument)"
        )
    factory = import_dotted("ophyd factory", path)
    if isinstance(factory, OphydInstrument):
        if options:
            raise ConfigError(
                f"driver {spec!r} names an OphydInstrument, not a factory: it takes no options {sorted(options)}"
            )
        instrument = factory
    elif callable(factory):
        try:
            instrument = factory(**options)
        except TypeError as exc:
            raise ConfigError(f"driver {spec!r}: {exc}") from None
    else:
        raise ConfigError(f"driver {spec!r}: {path} is a {type(factory).__name__}, not a factory")
    if not isinstance(instrument, OphydInstrument):
        raise ConfigError(
            f"driver {spec!r}: the factory returned a {type(instrument).__name__}, not an OphydInstrument"
        )
    return OphydDriver(instrument)
