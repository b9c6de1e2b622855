"""The recorded driver: data sets in four layouts, grid look-up, replay over the protocol, replay = live."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
import xarray as xr

from abduce.controller.drive.link import InstrumentLink, LinkError
from abduce.controller.errors import ConfigError, MeasurementRejected
from abduce.instruments.agent import InstrumentAgent
from abduce.instruments.drivers.base import SpectralAxis
from abduce.instruments.drivers.record import record
from abduce.instruments.drivers.recorded import RecordedDataset, RecordedDriver, build
from abduce.instruments.protocol.codec import Codec
from abduce.instruments.protocol.models import Measure
from abduce.simulators.transition1d import Transition1D
from tests.instruments.conftest import AgentThread

GRID, SEED = 51, 3
FORMATS = ["h5", "nsid", "nc", "npz"]


def frozen_realisation(grid: int = GRID, seed: int = SEED) -> tuple[np.ndarray, np.ndarray]:
    """The candidates and one noisy reading of each, in candidate order, from a fresh simulator."""
    sim = Transition1D(grid=grid, seed=seed)
    x = sim.candidates()
    return x, sim.measure(x)


def loop_dataset(nan_at: int | None = 7) -> RecordedDataset:
    """A 4 x 5 grid (C order) with a (2, 16) loop per point -- row 0 the bias, row 1 the response -- and its area."""
    a, b = np.linspace(0.0, 3.0, 4), np.linspace(-1.0, 1.0, 5)
    pts = np.stack([m.ravel() for m in np.meshgrid(a, b, indexing="ij")], axis=1)
    bias = np.sin(np.linspace(0, 2 * np.pi, 16))
    resp = np.tanh(3 * (bias[None, :] - 0.1 * pts[:, :1])) + 0.01 * pts[:, 1:]
    loops = np.stack([np.broadcast_to(bias, resp.shape), resp], axis=1)  # (20, 2, 16)
    area = np.trapezoid(resp, bias, axis=1)
    if nan_at is not None:
        area[nan_at] = np.nan
    return RecordedDataset(
        points=pts,
        axis_names=("a", "b"),
        values={"loop": loops, "area": area},
        units={"a": "um", "loop": "pm"},
        attrs={"sample": "PZT-3"},
    )


def start(endpoint, keyring, driver):
    link = InstrumentLink(endpoint, Codec(keyring, "lab"), heartbeat_s=0.2, ack_timeout_s=0.5).start()
    agent = AgentThread(InstrumentAgent(driver, link.endpoint, Codec(keyring, "lab"), "recorded"))
    return link, agent


# ------------------------------------------------------------------ formats


@pytest.mark.parametrize("ext", FORMATS)
def test_a_recorded_simulator_round_trips_exactly_in_every_format(tmp_path, ext):
    path = tmp_path / f"run.{ext}"
    written = record(Transition1D(grid=GRID, seed=SEED), path)
    x, y = frozen_realisation()
    back = RecordedDataset.load(path)
    assert back.axis_names == ("x",) and list(back.values) == ["y"]
    np.testing.assert_array_equal(back.points, x)
    np.testing.assert_array_equal(back.values["y"], y)  # bit for bit, the simulator's noisy readings
    np.testing.assert_array_equal(written.values["y"], y)
    assert back.attrs["simulator"] == "Transition1D"
    caps = RecordedDriver(back).describe()
    assert caps.simulator and caps.candidates == x.tolist()
    assert (caps.axes[0].name, caps.axes[0].min, caps.axes[0].max) == ("x", 0.0, 1.0)
    sim = Transition1D(grid=GRID, seed=SEED)  # the simulator's declared units travel with the recording
    assert (caps.axes[0].unit, caps.channels[0].unit) == (sim.axis_units[0], sim.unit)


@pytest.mark.parametrize("ext", FORMATS)
def test_a_spectroscopic_data_set_round_trips_and_is_served_as_an_array_channel(tmp_path, ext):
    ds = loop_dataset()
    back = RecordedDataset.load(ds.save(tmp_path / f"loops.{ext}"))
    assert back.axis_names == ("a", "b") and list(back.values) == ["loop", "area"]  # order kept: not alphabetical
    np.testing.assert_array_equal(back.points, ds.points)  # the grid is in C order: NSID keeps it
    np.testing.assert_array_equal(back.values["loop"], ds.values["loop"])
    np.testing.assert_array_equal(back.values["area"], ds.values["area"])  # NaN where NaN was written
    assert back.units["a"] == "um" and back.units["loop"] == "pm" and back.attrs["sample"] == "PZT-3"
    driver = RecordedDriver(back)
    chans = {c.name: c for c in driver.describe().channels}
    assert chans["loop"].shape == [2, 16] and chans["loop"].unit == "pm" and chans["area"].shape == []
    assert not driver.describe().simulator  # no simulator attribute: a measured data set
    reading = driver.measure(Measure(request_id="r", points=[ds.points[13].tolist(), ds.points[7].tolist()]))
    assert reading.arrays["loop"].shape == (2, 2, 16)
    np.testing.assert_array_equal(reading.arrays["loop"], ds.values["loop"][[13, 7]])
    assert reading.values["area"][0] == ds.values["area"][13] and np.isnan(reading.values["area"][1])


# a file pyNSID itself writes, served by the recorded driver: tests/instruments/test_nsid_roundtrip.py


@pytest.mark.parametrize("ext", FORMATS)
def test_a_spectral_axis_is_stored_next_to_its_channel_and_returned_with_each_reading(tmp_path, ext):
    ds = loop_dataset()
    bias = ds.values["loop"][0, 0]  # the sine sweep every point shares
    response = RecordedDataset(
        points=ds.points,
        axis_names=ds.axis_names,
        values={"response": ds.values["loop"][:, 1], "area": ds.values["area"], "raw": ds.values["loop"]},
        units={"a": "um", "response": "pm"},
        spectral_axes={"response": SpectralAxis("bias", "V", bias), "raw": {"name": "t", "values": np.arange(16.0)}},
    )
    back = RecordedDataset.load(response.save(tmp_path / f"swept.{ext}"))
    assert set(back.spectral_axes) == {"response", "raw"}  # none for the scalar channel
    axis = back.spectral_axes["response"]
    assert (axis.name, axis.unit) == ("bias", "V")
    np.testing.assert_array_equal(axis.values, bias)
    assert (back.spectral_axes["raw"].name, back.spectral_axes["raw"].unit) == ("t", "")
    np.testing.assert_array_equal(back.values["response"], response.values["response"])
    reading = RecordedDriver(back).measure(Measure(request_id="r", points=[ds.points[13].tolist()]))
    assert set(reading.axes) == {"response", "raw"} and reading.axes["response"].unit == "V"
    np.testing.assert_array_equal(reading.axes["response"].values, bias)
    np.testing.assert_array_equal(reading.arrays["response"][0], ds.values["loop"][13, 1])


def test_record_writes_the_simulators_spectral_axis_and_a_data_set_without_one_has_none(tmp_path):
    from abduce.simulators.loops import Loops

    sim = Loops(grid=5, m=8, seed=2)
    cycle = SpectralAxis("cycle", "", np.linspace(0.0, 1.0, 8, endpoint=False))
    record(sim, tmp_path / "l.h5", spectral_axis=cycle)
    back = RecordedDataset.load(tmp_path / "l.h5")
    np.testing.assert_array_equal(back.spectral_axes[sim.channel].values, cycle.values)
    record(sim, tmp_path / "plain.npz")
    assert RecordedDataset.load(tmp_path / "plain.npz").spectral_axes == {}
    with pytest.raises(ConfigError, match=r"spectral axis 'cycle' of 'loop' has shape \(7,\).*8 samples"):
        record(sim, tmp_path / "bad.h5", spectral_axis=SpectralAxis("cycle", "", np.zeros(7)))


def test_a_spectral_axis_that_does_not_fit_its_channel_is_a_config_error():
    ds = loop_dataset()

    def with_axes(axes):
        return RecordedDataset(ds.points, ds.axis_names, ds.values, spectral_axes=axes)

    with pytest.raises(ConfigError, match="no such channel"):
        with_axes({"current": SpectralAxis("bias", "V", np.zeros(16))})
    with pytest.raises(ConfigError, match="scalar channel has no spectral axis"):
        with_axes({"area": SpectralAxis("bias", "V", np.zeros(1))})
    with pytest.raises(ConfigError, match="name of a grid axis or channel"):
        with_axes({"loop": SpectralAxis("a", "V", np.zeros(16))})
    with pytest.raises(ConfigError, match="NaN or inf"):
        with_axes({"loop": SpectralAxis("bias", "V", np.full(16, np.nan))})
    with pytest.raises(ConfigError, match="give name, values and optionally unit"):
        with_axes({"loop": {"values": np.zeros(16)}})


def test_a_gridded_netcdf_takes_its_axes_from_an_attribute_or_the_caller(tmp_path):
    a, b, bias = np.array([1.0, 2.0, 3.0]), np.array([0.5, 1.5]), np.linspace(-1, 1, 6)
    current = np.random.default_rng(0).normal(size=(3, 2, 6))
    topo = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    xds = xr.Dataset(
        {
            "current": (("a", "b", "bias"), current, {"units": "nA"}),
            "topo": (("a", "b"), topo),
            "waveform": (("bias",), bias),
        },
        coords={"a": a, "b": b, "bias": bias},
    )
    xds.to_netcdf(tmp_path / "plain.nc", engine="h5netcdf")
    ds = RecordedDataset.load(tmp_path / "plain.nc", axes=["a", "b"])
    assert ds.axis_names == ("a", "b") and set(ds.values) == {"current", "topo"}  # the waveform is not over the grid
    assert ds.points.tolist() == [[1.0, 0.5], [1.0, 1.5], [2.0, 0.5], [2.0, 1.5], [3.0, 0.5], [3.0, 1.5]]
    np.testing.assert_array_equal(ds.values["current"][3], current[1, 1])
    assert ds.values["topo"].tolist() == [1.0, 2.0, 3.0, 4.0, 5.0, 6.0] and ds.units["current"] == "nA"
    assert list(ds.spectral_axes) == ["current"]  # its last dimension has a coordinate: the spectral axis
    np.testing.assert_array_equal(ds.spectral_axes["current"].values, bias)
    assert (ds.spectral_axes["current"].name, ds.spectral_axes["current"].unit) == ("bias", "")
    xds.attrs["axes"] = "a, b"
    xds.to_netcdf(tmp_path / "tagged.nc", engine="h5netcdf")
    tagged = RecordedDataset.load(tmp_path / "tagged.nc")
    np.testing.assert_array_equal(tagged.values["current"], ds.values["current"])
    with pytest.raises(ConfigError, match="neither coordinates nor dimensions"):
        RecordedDataset.load(tmp_path / "plain.nc", axes=["a", "temperature"])


def test_unreadable_data_sets_are_clear_config_errors(tmp_path):
    with pytest.raises(ConfigError, match=r"scan\.txt.*unknown extension"):
        RecordedDataset.load(tmp_path / "scan.txt")
    with pytest.raises(ConfigError, match="no such file"):
        RecordedDataset.load(tmp_path / "absent.h5")
    with h5py.File(tmp_path / "other.h5", "w") as f:
        f.create_dataset("image", data=np.zeros((3, 3)))
    with pytest.raises(ConfigError, match=r"other\.h5.*'points'.*main_data_name"):
        RecordedDataset.load(tmp_path / "other.h5")
    with h5py.File(tmp_path / "half.h5", "w") as f:
        f.create_dataset("points", data=np.zeros((3, 1)))
    with pytest.raises(ConfigError, match=r"half\.h5.*missing 'values'"):
        RecordedDataset.load(tmp_path / "half.h5")
    np.savez(tmp_path / "bare.npz", points=np.zeros((3, 1)))
    with pytest.raises(ConfigError, match=r"bare\.npz.*values_<channel>"):
        RecordedDataset.load(tmp_path / "bare.npz")
    not_a_product = RecordedDataset(
        points=[[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]], axis_names=("a", "b"), values={"y": [1.0, 2.0, 3.0]}
    )
    with pytest.raises(ConfigError, match="not one"):
        not_a_product.save(tmp_path / "tri.nsid")
    with pytest.raises(ConfigError, match="appears 2 times"):
        RecordedDataset(points=[[0.0], [0.0]], axis_names=("x",), values={"y": [1.0, 2.0]})
    with pytest.raises(ConfigError, match="single value"):
        RecordedDriver(
            RecordedDataset(points=[[0.0, 1.0], [1.0, 1.0]], axis_names=("a", "b"), values={"y": [1.0, 2.0]})
        )


def test_build_reads_the_path_after_recorded(tmp_path):
    record(Transition1D(grid=GRID, seed=SEED), tmp_path / "d.npz")
    driver = build(f"recorded:{tmp_path / 'd.npz'}", tolerance=0.001)
    assert isinstance(driver, RecordedDriver) and driver.tolerance == 0.001
    with pytest.raises(ConfigError, match="recorded:PATH"):
        build("recorded:")


# ------------------------------------------------------------------ look-up


def test_look_up_exact_nearest_and_off_the_grid():
    x, y = frozen_realisation()
    driver = RecordedDriver(RecordedDataset(points=x, axis_names=("x",), values={"y": y}))
    assert driver.tolerance == pytest.approx(0.01)  # half the spacing 1/50, in spans
    exact = driver.measure(Measure(request_id="e", points=[[0.4], [0.02]]))
    assert (
        exact.values["y"] == [y[20], y[1]] and exact.state["distance"] == [0.0, 0.0] and exact.state["index"] == [20, 1]
    )
    near = driver.measure(Measure(request_id="n", points=[[0.4053]]))
    assert near.points == [[0.4]] and near.values["y"] == [y[20]]
    assert near.state["distance"][0] == pytest.approx(0.0053)
    for far in ([1.5], [-0.2]):  # beyond the grid: farther than half a spacing from every recorded point
        with pytest.raises(MeasurementRejected, match="off the recorded grid") as info:
            driver.measure(Measure(request_id="f", points=[[0.4], far]))
        assert info.value.reason == "off-grid"
    strict = RecordedDriver(driver.dataset, tolerance=0.001)
    with pytest.raises(MeasurementRejected, match="off-grid"):
        strict.measure(Measure(request_id="s", points=[[0.4053]]))


def test_look_up_on_a_hundred_thousand_point_grid_is_right():
    """Its speed (a k-d tree, not a scan) is printed by tests/benchmarks/latency_promises.py."""
    g = np.linspace(0.0, 1.0, 317)
    pts = np.stack([m.ravel() for m in np.meshgrid(g, 10 * g, indexing="ij")], axis=1)  # 100,489 points
    vals = np.arange(len(pts), dtype=float)
    driver = RecordedDriver(RecordedDataset(points=pts, axis_names=("a", "b"), values={"y": vals}))
    rng = np.random.default_rng(1)
    idx = rng.integers(0, len(pts), 2000)
    jitter = (rng.random((2000, 2)) - 0.5) * 0.5 * driver.tolerance * np.array([1.0, 10.0])
    reading = driver.measure(Measure(request_id="big", points=(pts[idx] + jitter).tolist()))
    assert reading.values["y"] == vals[idx].tolist()


# ------------------------------------------------------------------ over the protocol


def test_the_agent_rejects_off_grid_requests_and_serves_recorded_arrays(endpoint, keyring):
    ds = loop_dataset()
    link, agent = start(endpoint, keyring, RecordedDriver(ds))
    try:
        link.wait_for_agent(15)
        with pytest.raises(LinkError) as info:
            link.measure(Measure(request_id="off", points=[[0.5, 0.0]]), "recorded", 5)
        assert info.value.code == "rejected:off-grid" and agent.agent.measured == 0
        reply = link.measure(Measure(request_id="on", points=[ds.points[13].tolist()]), "recorded", 5)
        spec = {a.channel: a for a in reply.result.arrays}["loop"]
        got = np.frombuffer(bytes(reply.buffers[spec.buffer]), dtype=spec.dtype).reshape(spec.shape)
        np.testing.assert_array_equal(got, ds.values["loop"][[13]])
        assert reply.result.values["area"] == [ds.values["area"][13]] and reply.result.state["distance"] == [0.0]
        nan = link.measure(Measure(request_id="nan", points=[ds.points[7].tolist()]), "recorded", 5)
        assert nan.result.values["area"] == [None]  # NaN travels as null; the controller refuses it
    finally:
        agent.stop()
        link.close()


# ------------------------------------------------------------------ replay = live


def test_the_recorded_file_answers_every_candidate_as_the_live_frozen_simulator_does(tmp_path):
    """Per point, in any order and any number of times: the property that makes the campaigns equal."""
    record(Transition1D(grid=GRID, seed=SEED, noise_per_point=True), tmp_path / "frozen.nc")
    driver = build(f"recorded:{tmp_path / 'frozen.nc'}")
    live = Transition1D(grid=GRID, seed=SEED, noise_per_point=True)
    x = live.candidates()
    order = np.random.default_rng(0).permutation(np.tile(np.arange(GRID), 2))
    replayed = [driver.measure(Measure(request_id=f"r{i}", points=[x[i].tolist()])).values["y"][0] for i in order]
    assert replayed == live.measure(x[order]).tolist()


def _campaign(space, seed: int = SEED):
    from abduce.controller.recipe.recipe import Recipe

    recipe = Recipe(hypotheses=("second-order", "linear"), policy="epsilon-greedy", budget=12, seed=seed, n_init=4)
    return recipe.build_campaign(space)


def _run(instrument, space):
    from abduce.controller.drive.loop import run_campaign

    asked = []

    def logged(request):
        asked.append((request.request_id, request.step, request.x, request.hypothesis, request.reason))
        return instrument(request)

    campaign = run_campaign(_campaign(space), logged)
    return campaign.data, asked


def _replay_in_process(driver):
    from abduce.controller.core.measurements import Measurement
    from abduce.controller.core.space import Space

    def replay(request):
        reading = driver.measure(Measure(request_id=request.request_id, points=[list(request.x)]))
        return Measurement(request.request_id, tuple(reading.points[0]), reading.values["y"][0])

    return _run(replay, Space.finite(driver.dataset.points, names=driver.dataset.axis_names))


def test_a_replayed_recording_gives_exactly_the_live_campaign_with_the_same_noise(tmp_path):
    from abduce.controller.core.measurements import Measurement
    from abduce.controller.core.space import Space

    record(Transition1D(grid=GRID, seed=SEED), tmp_path / "run.h5")
    replayed = _replay_in_process(build(f"recorded:{tmp_path / 'run.h5'}"))
    x, y = frozen_realisation()  # the same realisation: one reading per candidate, in candidate order

    def frozen(request):
        i = int(np.flatnonzero(x[:, 0] == request.x[0])[0])
        return Measurement(request.request_id, request.x, float(y[i]))

    live = _run(frozen, Space.finite(x, names=("x",)))
    assert replayed == live
    (_, values), asked = replayed
    assert len(values) == 12 and {a[4] for a in asked} - {"initial-design", "warm-up"}  # past the fixed design


@pytest.mark.slow
def test_a_replayed_recording_gives_the_campaign_of_a_live_simulator_with_frozen_noise(tmp_path):
    from abduce.controller.core.measurements import Measurement
    from abduce.controller.core.space import Space

    record(Transition1D(grid=GRID, seed=SEED, noise_per_point=True), tmp_path / "frozen.npz")
    replayed = _replay_in_process(build(f"recorded:{tmp_path / 'frozen.npz'}"))
    sim = Transition1D(grid=GRID, seed=SEED, noise_per_point=True)
    live = _run(
        lambda r: Measurement(r.request_id, r.x, float(sim.measure(np.array([r.x]))[0])),
        Space.finite(sim.candidates(), names=sim.axis_names),
    )
    assert replayed == live


@pytest.mark.slow
def test_a_replay_over_the_protocol_gives_the_in_process_campaign(tmp_path, endpoint, keyring):
    from abduce.controller.drive.remote import LinkInstrument
    from abduce.controller.intake.capabilities import space_of

    record(Transition1D(grid=GRID, seed=SEED), tmp_path / "run.nsid")
    driver = build(f"recorded:{tmp_path / 'run.nsid'}")
    in_process = _replay_in_process(driver)
    link, agent = start(endpoint, keyring, RecordedDriver(driver.dataset))
    try:
        registered = link.wait_for_agent(15)
        remote = _run(LinkInstrument(link, registered, timeout_s=30), space_of(registered.capabilities))
    finally:
        agent.stop()
        link.close()
    assert remote == in_process
