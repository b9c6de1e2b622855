"""Faults: the spec, its validation, and the seeded behaviour of the wrappers and the reply gate (no sockets)."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest

from abduce.controller.errors import ConfigError
from abduce.instruments.drivers.base import Driver, Reading
from abduce.instruments.drivers.faults import AgentCrash, Faults, FaultyDriver, FaultySimulator, ReplyGate
from abduce.instruments.drivers.simulated import SimulatedDriver
from abduce.instruments.protocol.models import Axis, Capabilities, Channel, Measure
from abduce.simulators.base import check_simulator
from abduce.simulators.transition1d import Transition1D

# ------------------------------------------------------------ spec and validation


def test_the_cli_spec_sets_every_field():
    f = Faults.parse("latency=0.01, jitter=0.002,drop=0.05,nan=0.02,inf=0.01,crash=0.01,reorder=0.05,hold=0.5,seed=3")
    assert f == Faults(
        latency_s=0.01,
        jitter_s=0.002,
        p_drop=0.05,
        p_nan=0.02,
        p_inf=0.01,
        p_crash=0.01,
        p_reorder=0.05,
        hold_s=0.5,
        seed=3,
    )


def test_field_names_work_as_keys_and_an_empty_spec_is_no_faults():
    assert Faults.parse("p_drop=0.5,latency_s=1") == Faults(p_drop=0.5, latency_s=1.0)
    assert Faults.parse("") == Faults() and Faults.parse(" , ") == Faults()
    assert Faults().reply_gate() is None  # nothing to do on the send path


@pytest.mark.parametrize(
    "spec, words",
    [
        ("latency=0.01,dorp=0.1", ["dorp", "known", "drop"]),
        ("drop=lots", ["drop", "not a number"]),
        ("seed=1.5", ["seed", "not an integer"]),
        ("drop", ["drop", "needs a value"]),
        ("drop=0.1,drop=0.2", ["drop", "twice"]),
        ("drop=1.5", ["p_drop", "[0, 1]"]),
        ("latency=-1", ["latency_s", ">= 0"]),
    ],
)
def test_a_bad_spec_is_a_config_error_naming_the_key(spec, words):
    with pytest.raises(ConfigError) as info:
        Faults.parse(spec)
    for w in words:
        assert w in str(info.value)


@pytest.mark.parametrize("name", ["p_drop", "p_nan", "p_inf", "p_crash", "p_reorder"])
@pytest.mark.parametrize("value", [-0.1, 1.01, math.nan])
def test_every_rate_must_be_a_probability(name, value):
    with pytest.raises(ConfigError, match=name):
        Faults(**{name: value})


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"latency_s": math.inf}, "latency_s"),
        ({"jitter_s": -0.1}, "jitter_s"),
        ({"hold_s": -1.0}, "hold_s"),
        ({"seed": -1}, "seed"),
        ({"seed": 1.0}, "seed"),
        ({"p_nan": 0.6, "p_inf": 0.6}, "p_nan + p_inf"),
    ],
)
def test_times_and_seed_are_checked(kwargs, name):
    with pytest.raises(ConfigError, match=name.replace("+", r"\+")):
        Faults(**kwargs)


def test_rates_at_the_edges_are_allowed():
    assert Faults(p_drop=0.0, p_reorder=1.0, p_crash=1.0).p_reorder == 1.0


# ------------------------------------------------------------ FaultySimulator


def test_the_faulty_simulator_delegates_the_interface_and_keeps_the_noise_stream():
    plain, faulty = (
        Transition1D(grid=11, seed=4),
        FaultySimulator(Transition1D(grid=11, seed=4), Faults(p_nan=0.3, seed=1)),
    )
    assert check_simulator(faulty) is faulty  # the whole interface, delegated
    assert (faulty.bounds, faulty.axis_names, faulty.seed, faulty.channel, faulty.spectrum_shape) == (
        plain.bounds,
        plain.axis_names,
        4,
        plain.channel,
        (),
    )
    np.testing.assert_array_equal(faulty.candidates(), plain.candidates())
    x = np.linspace(0, 1, 200)[:, None]
    np.testing.assert_array_equal(faulty.truth(x), plain.truth(x))
    got, expected = faulty.measure(x), plain.measure(x)
    bad = np.isnan(got)
    assert 40 <= bad.sum() <= 80  # p = 0.3 of 200 points: 60 +- 6.5 sd
    np.testing.assert_array_equal(got[~bad], expected[~bad])  # the rest untouched, same stream
    assert [i for _, i, _ in faulty.corrupted] == list(np.flatnonzero(bad))


def test_the_same_seed_corrupts_the_same_points():
    runs = []
    for _ in range(2):
        sim = FaultySimulator(Transition1D(seed=0), Faults(p_nan=0.1, p_inf=0.1, seed=7))
        runs.append([sim.measure(np.array([[0.5], [0.7]])) for _ in range(20)])
    np.testing.assert_array_equal(np.array(runs[0]), np.array(runs[1]))  # NaN == NaN position-wise
    other = FaultySimulator(Transition1D(seed=0), Faults(p_nan=0.1, p_inf=0.1, seed=8))
    assert not np.array_equal(
        np.isfinite(np.array([other.measure(np.array([[0.5], [0.7]])) for _ in range(20)])),
        np.isfinite(np.array(runs[0])),
    )


def test_inf_has_both_signs_and_nan_and_inf_rates_hold():
    sim = FaultySimulator(Transition1D(seed=0), Faults(p_nan=0.2, p_inf=0.3, seed=2))
    y = sim.measure(np.full((4000, 1), 0.3))
    assert abs(np.isnan(y).mean() - 0.2) < 0.03 and abs(np.isinf(y).mean() - 0.3) < 0.03
    assert (y == math.inf).any() and (y == -math.inf).any()


def test_latency_and_jitter_are_slept_per_measurement(monkeypatch):
    slept = []
    monkeypatch.setattr(
        time, "sleep", slept.append
    )  # the clock boundary: what is asked of the OS, not how long it took
    faults = Faults(latency_s=0.02, jitter_s=0.02, seed=0)
    sim = FaultySimulator(Transition1D(seed=0), faults)
    for _ in range(5):
        sim.measure(np.array([[0.5]]))
    jitter = faults.stream("latency").random(5)  # one draw per measurement, from the latency stream
    np.testing.assert_allclose(slept, 0.02 + 0.02 * jitter, rtol=0, atol=1e-15)
    assert sim.delays == slept and len(set(slept)) == 5


def test_the_simulated_driver_serves_a_faulty_simulator():
    driver = SimulatedDriver(FaultySimulator(Transition1D(grid=11, seed=0), Faults(p_nan=1.0)))
    assert driver.describe() == SimulatedDriver(Transition1D(grid=11, seed=0)).describe()
    assert all(math.isnan(v) for v in driver.measure(req(0, n=3)).values["y"])


def test_no_faults_is_the_plain_simulator():
    plain, faulty = Transition1D(seed=3), FaultySimulator(Transition1D(seed=3), Faults())
    x = np.random.default_rng(0).random((50, 1))
    np.testing.assert_array_equal(faulty.measure(x), plain.measure(x))
    assert faulty.corrupted == []


# ------------------------------------------------------------ FaultyDriver


class SpectrumDriver(Driver):
    """A driver returning a scalar channel and a 5-element spectrum per point (values from the point)."""

    blocking = False

    def describe(self) -> Capabilities:
        return Capabilities(axes=[Axis(name="x", min=0.0, max=1.0)], channels=[Channel(name="y")], simulator=True)

    def measure(self, request: Measure) -> Reading:
        x = np.asarray(request.points, dtype=float)
        return Reading(points=request.points, values={"y": list(x[:, 0])}, arrays={"s": x[:, :1] * np.arange(1, 6)})


def req(i: int, n: int = 1) -> Measure:
    return Measure(request_id=f"r{i}", points=[[0.5]] * n)


def test_a_crash_happens_before_measuring_and_is_not_an_ordinary_exception():
    calls = []
    driver = FaultyDriver(
        SimulatedDriver(Transition1D(grid=11, seed=0)), Faults(p_crash=1.0), on_crash=lambda: calls.append(1)
    )
    with pytest.raises(AgentCrash, match="r0"):
        driver.measure(req(0))
    assert not issubclass(AgentCrash, Exception)  # the agent's `except Exception` must not turn it into a result
    assert calls == [1] and driver.crashes == 1 and driver.measured == []


def test_crashes_are_seeded_and_independent_of_the_other_faults():
    def crash_calls(faults):
        driver, crashed = FaultyDriver(SimulatedDriver(Transition1D(grid=11, seed=0)), faults), []
        for i in range(40):
            try:
                driver.measure(Measure(request_id=f"r{i}", points=[[0.5]]))
            except AgentCrash:
                crashed.append(i)
        return crashed, driver

    a, da = crash_calls(Faults(p_crash=0.2, seed=2))
    b, _ = crash_calls(Faults(p_crash=0.2, seed=2, p_nan=0.5, latency_s=0.0))
    assert a == b and a[:2] == [3, 4] and 3 <= len(a) <= 15
    assert da.measured == [f"r{i}" for i in range(40) if i not in a]


def test_the_driver_wrapper_corrupts_values_and_one_element_of_each_bad_spectrum():
    driver = FaultyDriver(SpectrumDriver(), Faults(p_nan=0.25, p_inf=0.25, seed=5))
    got_values, got_arrays = [], []
    for i in range(30):
        r = driver.measure(req(i, n=4))
        got_values.append(r.values["y"])
        got_arrays.append(r.arrays["s"])
    y, s = np.array(got_values), np.array(got_arrays)  # (30, 4), (30, 4, 5)
    assert 0.3 < (~np.isfinite(y)).mean() < 0.7
    np.testing.assert_array_equal(y[np.isfinite(y)], 0.5)
    bad_per_spectrum = (~np.isfinite(s)).sum(-1)
    assert set(bad_per_spectrum.ravel()) == {0, 1} and bad_per_spectrum.sum() > 20
    assert len(driver.corrupted) == (~np.isfinite(y)).sum() + bad_per_spectrum.sum()
    assert {c for _, _, c, _ in driver.corrupted} == {"y", "s"}


def test_latency_makes_a_driver_blocking_and_the_rest_is_delegated():
    inner = SimulatedDriver(Transition1D(grid=11, seed=0))
    assert FaultyDriver(inner, Faults()).blocking is False
    assert FaultyDriver(inner, Faults(latency_s=0.01)).blocking is True
    assert FaultyDriver(inner, Faults()).describe() == inner.describe()
    assert FaultyDriver(inner, Faults()).safe_state() == inner.safe_state()
    plain = Transition1D(grid=11, seed=0)
    d = FaultyDriver(SimulatedDriver(Transition1D(grid=11, seed=0)), Faults())
    assert d.measure(req(0, n=3)).values["y"] == [float(v) for v in plain.measure(np.full((3, 1), 0.5))]


# ------------------------------------------------------------ ReplyGate


def test_a_held_result_goes_out_right_after_the_next_one():
    gate = ReplyGate(Faults(p_reorder=1.0, hold_s=10.0))
    assert gate.route("a", "A", now=0.0) == []  # held
    assert gate.route("b", "B", now=1.0) == ["B", "A"]  # one at a time: b is not held while a is
    assert gate.log == [("a", "held"), ("b", "sent"), ("a", "sent")]


def test_a_held_result_is_flushed_after_hold_s_when_nothing_follows():
    gate = ReplyGate(Faults(p_reorder=1.0, hold_s=0.5))
    gate.route("a", "A", now=0.0)
    assert gate.due(now=0.4) == [] and gate.due(now=0.5) == ["A"] and gate.due(now=9.0) == []


def test_dropped_results_never_go_out_and_rates_hold():
    gate = ReplyGate(Faults(p_drop=0.2, p_reorder=0.1, seed=3))
    sent = []
    for i in range(5000):
        sent += gate.route(str(i), i, now=float(i))
    sent += gate.due(now=1e9)
    what = [w for _, w in gate.log]
    dropped = what.count("dropped")
    assert abs(dropped / 5000 - 0.2) < 0.02
    assert len(sent) == 5000 - dropped == len(set(sent))  # everything not dropped goes out exactly once
    assert sent != sorted(sent)  # and some of it late
    held = what.count("held")
    assert abs(held / (5000 - dropped) - 0.1 * 0.9) < 0.03  # held only when nothing else is held


def test_the_gate_is_seeded():
    def log(seed):
        gate = ReplyGate(Faults(p_drop=0.3, p_reorder=0.3, seed=seed))
        for i in range(100):
            gate.route(str(i), i, now=0.0)
        return gate.log

    assert log(1) == log(1) and log(1) != log(2)
