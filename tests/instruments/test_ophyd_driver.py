"""The ophyd driver: ophyd devices served as an abduce instrument through a bluesky RunEngine.

The oracle for every reading is a second, independent instance of the simulator whose law the ophyd.sim
detector computes (same seed, same points): the driver must move, trigger and read through bluesky without
adding, dropping or reordering a draw of the noise stream.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import threading

import numpy as np
import pytest

pytest.importorskip("bluesky")
pytest.importorskip("ophyd")

import bluesky.plan_stubs as bps  # noqa: E402
from bluesky import RunEngine, SupplementalData  # noqa: E402
from bluesky.suspenders import SuspendBoolHigh  # noqa: E402
from bluesky.utils import SigintHandler  # noqa: E402
from ophyd import EpicsMotor, Signal, SoftPositioner  # noqa: E402
from ophyd.sim import SynAxis, SynSignal, make_fake_device  # noqa: E402

from abduce.controller.errors import ConfigError  # noqa: E402
from abduce.instruments.drivers.ophyd_driver import OphydAxis, OphydChannel, OphydDriver, OphydInstrument  # noqa: E402
from abduce.instruments.drivers.simulated_beamline import beamline  # noqa: E402
from abduce.instruments.drivers.sources import build_driver  # noqa: E402
from abduce.instruments.protocol.models import Measure  # noqa: E402
from abduce.simulators.loops import Loops  # noqa: E402
from abduce.simulators.transition1d import Transition1D  # noqa: E402
from tests.instruments.conftest import AgentThread, wait_until  # noqa: E402

BEAMLINE = "ophyd:abduce.instruments.drivers.simulated_beamline:beamline"


class Documents:
    """A beamline callback: every ``(name, doc)`` the RunEngine emits, in order."""

    def __init__(self) -> None:
        self.docs: list[tuple[str, dict]] = []

    def __call__(self, name: str, doc: dict) -> None:
        self.docs.append((name, doc))

    def of(self, name: str) -> list[dict]:
        return [d for n, d in self.docs if n == name]


# ---------------------------------------------------------------- describe


def test_the_simulated_beamline_declares_its_motor_detector_and_grid():
    caps = OphydDriver(beamline(seed=1, grid=11)).describe()
    assert [(a.name, a.unit, a.min, a.max) for a in caps.axes] == [("x", "mm", 0.0, 1.0)]  # egu: the SynAxis's own
    assert [(c.name, c.shape) for c in caps.channels] == [("y", [])]
    assert caps.candidates == np.linspace(0, 1, 11)[:, None].tolist() and caps.simulator is True


def test_limits_and_units_come_from_the_devices_own_metadata():
    soft = SoftPositioner(name="theta", limits=(-2.0, 3.0), egu="deg", init_pos=0.0)
    motor = make_fake_device(EpicsMotor)("XF:31ID{Mtr}", name="stage")
    motor.user_setpoint.sim_set_limits((-5.0, 5.0))
    motor.motor_egu.sim_put("um")
    det = Signal(name="I", value=0.0)
    caps = OphydDriver(OphydInstrument(axes=[soft, motor], channels=[det])).describe()
    assert [(a.name, a.unit, a.min, a.max) for a in caps.axes] == [
        ("theta", "deg", -2.0, 3.0),
        ("stage", "um", -5.0, 5.0),
    ]
    narrower = OphydDriver(OphydInstrument(axes=[OphydAxis(motor, limits=(0.0, 1.0), name="z")], channels=[det]))
    assert [(a.name, a.unit, a.min, a.max) for a in narrower.describe().axes] == [("z", "um", 0.0, 1.0)]


def test_a_positioner_without_limits_is_refused_saying_how_to_give_them():
    with pytest.raises(
        ConfigError, match=r"axis 'm' \(SynAxis\) declares no usable limits.*OphydAxis\(device, limits="
    ):
        OphydDriver(OphydInstrument(axes=[SynAxis(name="m")], channels=[Signal(name="I", value=0.0)]))
    zero = SoftPositioner(name="free", limits=(0, 0), init_pos=0.0)  # ophyd's "no limits"
    with pytest.raises(ConfigError, match="'free'.*no usable limits"):
        OphydDriver(OphydInstrument(axes=[zero], channels=[Signal(name="I", value=0.0)]))
    with pytest.raises(ConfigError, match="not a positioner bluesky can set and read"):
        OphydDriver(OphydInstrument(axes=[object()], channels=[Signal(name="I", value=0.0)]))
    with pytest.raises(ConfigError, match="outside the axes' limits"):
        OphydDriver(
            OphydInstrument(
                axes=[OphydAxis(SynAxis(name="m"), limits=(0.0, 1.0))],
                channels=[Signal(name="I", value=0.0)],
                candidates=[[0.5], [1.5]],
            )
        )


def test_a_device_reading_several_fields_needs_the_one_named():
    from ophyd.sim import SynGauss

    m = SynAxis(name="m")
    gauss = SynGauss("g", m, "m", center=0.0, Imax=1.0, sigma=1.0)  # reads g and g_noise..., hints g
    drv = OphydDriver(OphydInstrument(axes=[OphydAxis(m, limits=(-1.0, 1.0))], channels=[gauss]))
    assert [c.name for c in drv.describe().channels] == ["g"]
    with pytest.raises(ConfigError, match=r"channel 'g' has no field 'gg'; it reads \["):
        OphydDriver(OphydInstrument(axes=[OphydAxis(m, limits=(-1.0, 1.0))], channels=[OphydChannel(gauss, "gg")]))


# ---------------------------------------------------------------- measure


def test_measure_moves_triggers_and_reads_the_law_at_the_motor():
    drv = OphydDriver(beamline(truth="sigmoid", seed=4, grid=0))
    points = [[0.1], [0.55], [0.9], [0.55]]
    reading = drv.measure(Measure(request_id="r1", points=points))
    assert reading.points == points and reading.arrays == {}
    np.testing.assert_array_equal(
        reading.values["y"], Transition1D(truth="sigmoid", seed=4, grid=0).measure(np.array(points))
    )
    assert reading.state["readback"] == {"x": [0.1, 0.55, 0.9, 0.55]} and len(reading.state["bluesky"]["run_uids"]) == 1


def test_the_point_is_the_readback_unless_within_the_axis_tolerance_of_the_target():
    def instrument(tolerance):
        m = SynAxis(name="m", readback_func=lambda v: v + 2e-4)  # a motor that stops 0.2 um past its target
        return OphydInstrument(axes=[OphydAxis(m, limits=(0.0, 1.0), tolerance=tolerance)], channels=[m.setpoint])

    honest = OphydDriver(instrument(None)).measure(Measure(request_id="r", points=[[0.5]]))
    assert honest.points == [[0.5002]] and honest.state["readback"] == {"m": [0.5002]}
    snapped = OphydDriver(instrument(1e-3)).measure(Measure(request_id="r", points=[[0.5]]))
    assert snapped.points == [[0.5]] and snapped.state["readback"] == {"m": [0.5002]}
    outside = OphydDriver(instrument(1e-4)).measure(Measure(request_id="r", points=[[0.5]]))
    assert outside.points == [[0.5002]]


def test_an_array_signal_is_an_array_channel_of_its_shape():
    loops = Loops(m=16, seed=1)
    comp = SoftPositioner(name="composition", limits=loops.bounds[0], egu="", init_pos=0.0)
    loop = SynSignal(name="loop")
    loop.put(np.zeros((2, 16)))  # its shape, before the law takes over
    loop.sim_set_func(lambda: loops.measure(np.array([[comp.position]]))[0])
    drv = OphydDriver(OphydInstrument(axes=[comp], channels=[OphydChannel(loop, unit="pm/V")]))
    assert [(c.name, c.unit, c.shape) for c in drv.describe().channels] == [("loop", "pm/V", [2, 16])]
    points = [[0.05], [0.2]]
    reading = drv.measure(Measure(request_id="r", points=points))
    assert reading.values == {} and reading.arrays["loop"].shape == (2, 2, 16)
    np.testing.assert_array_equal(reading.arrays["loop"], Loops(m=16, seed=1).measure(np.array(points)))


def test_every_request_is_one_run_whose_documents_reach_the_callbacks():
    docs = Documents()
    drv = OphydDriver(beamline(seed=0, grid=11, callbacks=(docs,)))
    drv.measure(Measure(request_id="a", points=[[0.2], [0.4]], parameters={"dwell": 2}))
    drv.measure(Measure(request_id="b", points=[[0.6]]))
    assert [n for n, _ in docs.docs] == ["start", "descriptor", "event", "event", "stop"] + [
        "start", "descriptor", "event", "stop"]  # fmt: skip
    first, second = docs.of("start")
    assert first["abduce"] == {"request_id": "a", "points": [[0.2], [0.4]], "parameters": {"dwell": 2}}
    assert first["plan_name"] == "abduce_measure" and first["sample"] == "simulated second-order transition"
    assert second["abduce"]["request_id"] == "b" and second["scan_id"] == first["scan_id"] + 1
    assert [e["data"]["x"] for e in docs.of("event")] == [0.2, 0.4, 0.6]
    assert {d["exit_status"] for d in docs.of("stop")} == {"success"}


def test_the_beamlines_own_run_engine_keeps_its_baseline_and_suspenders():
    temperature = Signal(name="T_sample", value=295.0)
    beam_lost = Signal(name="beam_lost", value=0)
    RE = RunEngine({"proposal": "p-1"}, context_managers=[SigintHandler])
    sd = SupplementalData(baseline=[temperature])
    RE.preprocessors.append(sd)
    RE.install_suspender(SuspendBoolHigh(beam_lost))
    beam_lost.put(1)  # the beam is lost before the request comes
    docs = Documents()
    instrument = beamline(seed=2, grid=11, callbacks=(docs,))
    instrument.run_engine = RE
    drv = OphydDriver(instrument)
    assert SigintHandler not in RE.context_managers  # it cannot be installed from the agent's worker thread
    box = {}
    t = threading.Thread(target=lambda: box.setdefault("r", drv.measure(Measure(request_id="r", points=[[0.3]]))))
    t.start()
    assert wait_until(lambda: RE.state == "running", 30)
    assert docs.of("event") == []  # held by the suspender: nothing measured while the beam is lost
    beam_lost.put(0)
    t.join(60)  # a guard against a hang only
    np.testing.assert_array_equal(box["r"].values["y"], Transition1D(seed=2, grid=11).measure(np.array([[0.3]])))
    streams = [d["name"] for d in docs.of("descriptor")]
    assert streams.count("baseline") == 1 and "primary" in streams
    assert docs.of("start")[0]["proposal"] == "p-1"


def slow_beamline(docs: Documents) -> tuple[OphydInstrument, SynAxis, list[str]]:
    """A motor that moves at once and a detector whose exposure lasts an hour: only an abort ends it."""
    x = SynAxis(name="x", egu="mm")
    det = SynSignal(lambda: x.position, name="I", exposure_time=3600.0)
    parked = []

    def park():
        parked.append("parked")
        yield from bps.mv(x, 0.0)

    def unpark():
        parked.append("released")
        yield from bps.null()

    instrument = OphydInstrument(
        axes=[OphydAxis(x, limits=(0.0, 1.0))], channels=[det], callbacks=[docs], safe_plan=park,
        release_plan=unpark,
    )  # fmt: skip
    return instrument, x, parked


def run_in_thread(drv: OphydDriver, request: Measure) -> tuple[threading.Thread, dict]:
    box: dict = {}

    def work():
        try:
            box["reading"] = drv.measure(request)
        except Exception as exc:
            box["error"] = exc

    t = threading.Thread(target=work)
    t.start()
    return t, box


def test_abort_from_another_thread_stops_the_run_engine_and_the_next_request_runs():
    docs = Documents()
    instrument, x, _ = slow_beamline(docs)
    drv = OphydDriver(instrument)
    t, box = run_in_thread(drv, Measure(request_id="long", points=[[0.7], [0.8]]))
    assert wait_until(lambda: drv.RE.state == "running" and x.position == 0.7, 30)
    assert drv.abort() is True
    t.join(60)  # a guard against a hang only: without the abort this takes two hours
    assert "aborted" in str(box["error"]) and drv.RE.state == "idle"
    assert docs.of("stop")[-1]["exit_status"] == "abort" and docs.of("event") == []
    instrument.channels[0].exposure_time = 0.0
    reading = drv.measure(Measure(request_id="next", points=[[0.25]]))
    assert reading.values == {"I": [0.25]} and docs.of("stop")[-1]["exit_status"] == "success"


def test_an_abort_that_comes_before_the_run_starts_keeps_the_request_from_running():
    """The agent hands a request over (it is the running one) and an abort, or the safe state, comes before
    ``measure`` has the RunEngine (here: the lock held, as by a safe plan): the request is not run at all, and
    nothing moves; the next one runs."""
    docs = Documents()
    instrument, x, _ = slow_beamline(docs)
    instrument.channels[0].exposure_time = 0.0
    drv = OphydDriver(instrument)
    with drv._lock:  # the RunEngine busy (a safe plan) while the request is handed over
        t, box = run_in_thread(drv, Measure(request_id="handed-over", points=[[0.7], [0.8]]))
        assert drv.abort() is False  # nothing runs yet
    t.join(60)
    assert "aborted before its run started" in str(box["error"])
    assert x.position == 0.0 and docs.of("start") == []  # never moved, no run opened
    reading = drv.measure(Measure(request_id="next", points=[[0.25]]))
    assert reading.values == {"I": [0.25]}


def test_after_the_safe_state_no_request_runs_until_release():
    docs = Documents()
    instrument, x, parked = slow_beamline(docs)
    instrument.channels[0].exposure_time = 0.0
    drv = OphydDriver(instrument)
    assert drv.safe_state() == "ran the safe plan park"
    with pytest.raises(RuntimeError, match="aborted before its run started"):
        drv.measure(Measure(request_id="sneaked-in", points=[[0.6]]))
    assert x.position == 0.0
    drv.release()
    assert drv.measure(Measure(request_id="after", points=[[0.6]])).values == {"I": [0.6]}


def test_a_run_engine_paused_mid_request_fails_the_request_and_stays_usable():
    """Someone else's pause (here a ``pause`` message slipped in by a preprocessor, once): the request fails
    saying so, its run is closed as aborted, and the next request runs on an idle RunEngine."""
    import bluesky.preprocessors as bpp

    docs = Documents()
    drv = OphydDriver(beamline(seed=1, grid=11, callbacks=(docs,)))
    pending = [True]

    def pause_once(plan):
        if not pending:
            return plan
        pending.clear()
        return bpp.plan_mutator(
            plan,
            lambda msg: (bpp.pchain(bps.pause(), bpp.single_gen(msg)), None) if msg.command == "save" else (None, None),
        )

    drv.RE.preprocessors.append(pause_once)
    with pytest.raises(RuntimeError, match="paused mid-request; its run was aborted"):
        drv.measure(Measure(request_id="p", points=[[0.2], [0.3]]))
    assert drv.RE.state == "idle" and docs.of("stop")[-1]["exit_status"] == "abort"
    reading = drv.measure(Measure(request_id="q", points=[[0.2]]))
    spent, expected = Transition1D(seed=1, grid=11).measure(np.array([[0.2], [0.2]]))  # the paused one was triggered
    np.testing.assert_array_equal(reading.values["y"], [expected])


def test_safe_state_aborts_then_runs_the_safe_plan_and_release_its_release_plan():
    docs = Documents()
    instrument, x, parked = slow_beamline(docs)
    drv = OphydDriver(instrument)
    t, box = run_in_thread(drv, Measure(request_id="long", points=[[0.9]]))
    assert wait_until(lambda: drv.RE.state == "running" and x.position == 0.9, 30)
    detail = drv.safe_state()
    t.join(60)
    assert detail == "aborted the running request; ran the safe plan park" and "error" in box
    assert x.position == 0.0 and parked == ["parked"]
    assert drv.release() == "ran the release plan unpark" and parked == ["parked", "released"]
    bare = OphydDriver(
        OphydInstrument(axes=[OphydAxis(SynAxis(name="m"), limits=(0.0, 1.0))], channels=[Signal(name="I", value=0.0)])
    )
    assert bare.safe_state() == "no safe plan given: nothing else to do"
    assert bare.release() == "no release plan given: nothing to do"


# ---------------------------------------------------------------- driver specs


def test_the_ophyd_spec_builds_through_build_driver_with_its_options():
    drv = build_driver(BEAMLINE, {"truth": "linear", "seed": 7, "grid": 21})
    points = [[0.05], [0.5]]
    reading = drv.measure(Measure(request_id="r", points=points))
    np.testing.assert_array_equal(
        reading.values["y"], Transition1D(truth="linear", seed=7, grid=21).measure(np.array(points))
    )
    with pytest.raises(ConfigError, match=r"driver 'ophyd:.*': .*unexpected keyword argument 'colour'"):
        build_driver(BEAMLINE, {"colour": "red"})


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("ophyd:abduce.instruments.drivers.simulated_beamline:beamlin", r"ophyd factory '.*:beamlin' does not import"),
        ("ophyd:abduce.instruments.drivers.simulated_beamlin:beamline", r"does not import: No module named"),
        ("ophyd:abduce.instruments.drivers.simulated_beamline", r"use ophyd:PACKAGE.MODULE:FACTORY"),
        ("ophyd:abduce.instruments.drivers.simulated_beamline:np", r"is a module, not a factory"),
        (
            "ophyd:abduce.instruments.drivers.simulated_beamline:Transition1D",
            r"returned a Transition1D, not an OphydInstrument",
        ),
    ],
)
def test_a_misspelt_or_wrong_factory_is_a_clear_error(spec, message):
    with pytest.raises(ConfigError, match=message):
        build_driver(spec)


def test_instrument_serve_reports_a_misspelt_factory_before_serving(tmp_path):
    from typer.testing import CliRunner

    from abduce.controller.cli import app

    key = tmp_path / "lab.key"
    runner = CliRunner()
    assert runner.invoke(app, ["keys", "new", str(key)]).exit_code == 0
    serve = ["instrument", "serve", "--connect", "tcp://127.0.0.1:9", "--key", str(key), "--duration", "0.01"]
    result = runner.invoke(app, [*serve, "--driver", BEAMLINE + "s"])
    assert result.exit_code == 2 and "beamlines' does not import" in " ".join(result.output.split())


def test_a_plain_module_class_driver_is_accepted(tmp_path, monkeypatch):
    (tmp_path / "mydriver.py").write_text(
        textwrap.dedent(
            """
            from abduce.instruments.drivers.simulated import SimulatedDriver
            from abduce.simulators.transition1d import Transition1D

            class MyDriver(SimulatedDriver):
                def __init__(self, seed=0):
                    super().__init__(Transition1D(grid=11, seed=seed))
            """
        )
    )
    (tmp_path / "mybeamline.py").write_text(
        "from abduce.instruments.drivers.simulated_beamline import beamline as make\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    assert build_driver("ophyd:mybeamline:make", {"grid": 5}).describe().candidates == [
        [0.0],
        [0.25],
        [0.5],
        [0.75],
        [1.0],
    ]
    drv = build_driver("mydriver:MyDriver", {"seed": 5})
    reading = drv.measure(Measure(request_id="r", points=[[0.3]]))
    np.testing.assert_array_equal(reading.values["y"], Transition1D(grid=11, seed=5).measure(np.array([[0.3]])))
    with pytest.raises(ConfigError, match=r"^driver 'mydriver:MyDrivr' does not import"):
        build_driver("mydriver:MyDrivr")
    with pytest.raises(ConfigError, match=r"did you mean simulated:\?"):
        build_driver("simulate:transition-1d")
    with pytest.raises(ConfigError, match=r"did you mean recorded:\?"):
        build_driver("recordd:/data/scan.h5")


def test_abduce_instruments_imports_without_bluesky_and_says_what_the_ophyd_spec_needs():
    code = (
        "import sys; sys.modules['bluesky'] = None; sys.modules['ophyd'] = None; sys.modules['torch'] = None\n"
        "import abduce.instruments, abduce.instruments.agent\n"
        "from abduce.instruments.drivers.sources import build_driver\n"
        "from abduce.controller.errors import ConfigError\n"
        "try:\n"
        f"    build_driver({BEAMLINE!r})\n"
        "except ConfigError as exc:\n"
        "    print(exc)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "needs bluesky and ophyd" in result.stdout and "pip install 'abduce[bluesky]'" in result.stdout


# ---------------------------------------------------------------- over the protocol


def campaign_over_the_protocol(keyring, budget: int, seed: int, docs: Documents):
    """A campaign (the four transition laws) through a real agent serving the ophyd driver over loopback TCP."""
    from abduce.controller.drive.link import InstrumentLink
    from abduce.controller.drive.loop import run_campaign
    from abduce.controller.drive.remote import LinkInstrument
    from abduce.controller.intake.capabilities import space_of
    from abduce.controller.recipe.recipe import TRANSITION_LAWS, Recipe
    from abduce.instruments.agent import InstrumentAgent
    from abduce.instruments.protocol.codec import Codec

    link = InstrumentLink("tcp://127.0.0.1:0", Codec(keyring, "lab"), heartbeat_s=0.2, ack_timeout_s=5.0).start()
    drv = build_driver(BEAMLINE, {"seed": seed, "callbacks": [docs]})
    agent = AgentThread(InstrumentAgent(drv, link.endpoint, Codec(keyring, "lab"), "ophyd-beamline"))
    try:
        registered = link.wait_for_agent(30)
        assert [(a.name, a.unit) for a in registered.capabilities.axes] == [("x", "mm")]
        recipe = Recipe(hypotheses=TRANSITION_LAWS, budget=budget, seed=seed, device="cpu")
        campaign = recipe.build_campaign(space_of(registered.capabilities))
        return run_campaign(campaign, LinkInstrument(link, registered, timeout_s=60))
    finally:
        agent.stop()
        link.close()


def test_abort_safe_state_and_release_on_the_control_lane_reach_the_run_engine(keyring):
    """A request whose exposure lasts an hour, over TCP: the controller's abort ends the bluesky run as
    aborted (its stop document says so), the safe state runs the safe plan, release the release plan."""
    from abduce.controller.drive.link import InstrumentLink, LinkError
    from abduce.instruments.agent import InstrumentAgent
    from abduce.instruments.protocol.codec import Codec

    docs = Documents()
    instrument, x, parked = slow_beamline(docs)
    drv = OphydDriver(instrument)
    link = InstrumentLink("tcp://127.0.0.1:0", Codec(keyring, "lab"), heartbeat_s=0.2, ack_timeout_s=5.0).start()
    agent = AgentThread(InstrumentAgent(drv, link.endpoint, Codec(keyring, "lab"), "bl"))
    try:
        link.wait_for_agent(30)
        assert wait_until(lambda: link.agents["bl"].control_identity is not None, 30)
        box = {}

        def measure():
            try:
                box["r"] = link.measure(Measure(request_id="long", points=[[0.4]]), "bl", 120)
            except LinkError as exc:
                box["error"] = exc

        t = threading.Thread(target=measure)
        t.start()
        assert wait_until(lambda: drv.RE.state == "running" and x.position == 0.4, 30)
        assert link.abort("bl", "long", timeout_s=60).aborted
        t.join(120)  # a guard against a hang only
        assert box["error"].code == "aborted" and docs.of("stop")[-1]["exit_status"] == "abort"
        reply = link.safe_state("bl", "test", timeout_s=60)
        assert reply.ok and reply.detail.endswith("ran the safe plan park") and parked == ["parked"]
        assert link.release("bl", "test", timeout_s=60).detail == "ran the release plan unpark"
        instrument.channels[0].exposure_time = 0.0
        after = link.measure(Measure(request_id="after", points=[[0.3]]), "bl", 60)
        assert after.result.status == "ok" and after.result.values == {"I": [0.3]}
        assert after.result.state["bluesky"]["run_uids"] == [docs.of("start")[-1]["uid"]]
    finally:
        agent.stop()
        link.close()


def in_process(budget: int, seed: int):
    from abduce.controller.rehearse.simulated import SimulatedRun

    return SimulatedRun(budget=budget, seed=seed, device="cpu").run()


def test_a_short_campaign_through_the_ophyd_driver_matches_the_in_process_run(keyring):
    docs = Documents()
    remote = campaign_over_the_protocol(keyring, budget=8, seed=2, docs=docs)
    local = in_process(budget=8, seed=2)
    assert remote.data == local.data  # the same points, the same noise draws: bluesky changed nothing
    assert remote.leader() == local.leader() and remote.probabilities() == pytest.approx(local.probabilities())
    starts = docs.of("start")  # one run per request, each tagged with its request id
    assert [s["abduce"]["request_id"] for s in starts] == [r.request_id for r in remote.history]
    assert len(docs.of("event")) == 8


@pytest.mark.slow
def test_a_30_measurement_campaign_over_the_protocol_identifies_the_law_as_in_process(tmp_path):
    """Issue 16, must hold: `abduce instrument serve --driver ophyd:...` (ophyd.sim devices, a RunEngine) in its
    own process, `abduce run --listen` in another, 30 measurements; the same points, readings and winner as
    `abduce run` in process with the same seed, and the winner is the simulated law."""
    from typer.testing import CliRunner

    from abduce.controller.cli import app

    key = tmp_path / "lab.key"
    assert CliRunner().invoke(app, ["keys", "new", str(key)]).exit_code == 0
    common = ["--budget", "30", "--seed", "2", "--quiet"]
    cli = [sys.executable, "-m", "abduce.controller.cli"]
    out = tmp_path / "remote"
    controller = subprocess.Popen(
        [*cli, "run", "--out", str(out), "--listen", "tcp://127.0.0.1:0", "--key", str(key), "--wait", "600", *common],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    agent = None
    try:
        assert wait_until(lambda: (out / "endpoints.json").exists() or controller.poll() is not None, timeout=300)
        endpoint = json.loads((out / "endpoints.json").read_text())["instrument"]
        agent = subprocess.Popen(
            [*cli, "instrument", "serve", "--driver", BEAMLINE, "-o", "seed=2", "--connect", endpoint,
             "--key", str(key)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        output, _ = controller.communicate(timeout=600)  # a guard against a hang only
    finally:
        for proc in (controller, agent):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait(30)
    assert controller.returncode == 0, output
    local = CliRunner().invoke(app, ["run", "--out", str(tmp_path / "local"), *common])
    assert local.exit_code == 0, local.output
    lines = lambda d: [json.loads(l) for l in (tmp_path / d / "measurements.jsonl").read_text().splitlines()]
    assert len(lines("remote")) == 30 and lines("remote") == lines("local")
    summary = {d: json.loads((tmp_path / d / "summary.json").read_text()) for d in ("remote", "local")}
    assert summary["remote"]["leader"] == summary["local"]["leader"] == "second-order"  # the simulated law
    config = json.loads((out / "config.json").read_text())
    assert config["capabilities"]["axes"][0]["unit"] == "mm" and config["instrument"] == BEAMLINE


def test_a_request_naming_channels_triggers_only_their_detectors():
    """Protocol 1.3's ``measure.channels``: the other detectors are neither triggered nor read (their time or
    dose is not spent), and a request naming none reads them all."""
    m = SynAxis(name="m", labels={"motors"})
    m.limits = (-1.0, 1.0)
    triggered: list[str] = []

    class Counting(SynSignal):
        def trigger(self):
            triggered.append(self.name)
            return super().trigger()

    cheap = Counting(func=lambda: 1.0, name="image")
    costly = Counting(func=lambda: 2.0, name="spectrum")
    drv = OphydDriver(OphydInstrument(axes=[OphydAxis(m, limits=(-1.0, 1.0))], channels=[costly, cheap]))
    reading = drv.measure(Measure(request_id="r", points=[[0.1], [0.2]], channels=["image"]))
    assert set(reading.values) == {"image"} and triggered == ["image", "image"]
    triggered.clear()
    every = drv.measure(Measure(request_id="s", points=[[0.3]]))
    assert set(every.values) == {"image", "spectrum"} and sorted(triggered) == ["image", "spectrum"]
