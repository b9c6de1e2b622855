"""The CUDA path: the same campaign on the GPU, its state kept there. Skipped without CUDA."""

import dataclasses

import numpy as np
import pytest
import torch

from abduce.controller.core.measurements import Measurement
from abduce.controller.recipe.recipe import resolve_device
from abduce.controller.rehearse.simulated import SimulatedRun

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
RUN = dict(policy="discriminate", budget=16, grid=201, seed=0, hypotheses=("second-order", "linear"))


def test_auto_picks_cuda_exactly_when_it_is_there():
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert resolve_device("cpu").type == "cpu"


def _drive(device: str, **kw):
    campaign, sim = SimulatedRun(**{**RUN, **kw}, device=device).build()
    while not campaign.done:
        r = campaign.ask()
        campaign.tell(Measurement(r.request_id, r.x, float(sim.measure(np.array([r.x]))[0])))
    return campaign


@cuda
def test_a_campaign_on_cuda_matches_the_cpu_campaign_and_keeps_its_state_on_the_gpu():
    gpu, cpu = _drive("cuda"), _drive("cpu")
    assert gpu.leader() == cpu.leader() == "second-order"
    assert gpu.probabilities()["second-order"] == pytest.approx(cpu.probabilities()["second-order"], abs=0.05)
    for slot in gpu.belief.slots:
        assert slot.posterior.mean_rel.device.type == "cuda" and slot.posterior.var_rel.device.type == "cuda"
        assert all(t.device.type == "cuda" for t in slot.fit.state.values())
    assert gpu.belief.points.device.type == "cuda"
    np.testing.assert_allclose(gpu.posterior_mean("second-order"), cpu.posterior_mean("second-order"), atol=0.05)


@cuda
def test_inducing_points_and_batched_fits_run_on_cuda():
    campaign, sim = SimulatedRun(**RUN, device="cuda").build()
    campaign.settings = dataclasses.replace(campaign.settings, exact_max_n=10, inducing=8)
    while not campaign.done:
        r = campaign.ask()
        campaign.tell(Measurement(r.request_id, r.x, float(sim.measure(np.array([r.x]))[0])))
    assert all(slot.fit.inducing == 8 for slot in campaign.belief.slots)
    assert all(slot.posterior.p.device.type == "cuda" for slot in campaign.belief.slots)


@cuda
def test_model_information_scores_the_integrated_bands_on_cuda():
    """Its bands (EvidenceTracker.band) on the GPU: a review found their mass cut-off searched with a CPU tensor."""
    gpu, cpu = _drive("cuda", acquisition="model-information"), _drive("cpu", acquisition="model-information")
    assert gpu.leader() == cpu.leader() == "second-order"
    scores, _ = gpu.acquisition_scores()
    assert np.isfinite(scores).any()
