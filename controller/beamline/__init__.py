"""abduce inside a beamline's own tools: an abduce campaign as a bluesky-adaptive optimizer.

:class:`~abduce.controller.beamline.optimizer.CampaignOptimizer` implements bluesky-adaptive 1.x's
``Optimizer`` protocol (with ``SupportsStoppingCriteria``, ``TrialFaultAware`` and ``Checkpointable``)
over a :class:`~abduce.controller.core.campaign.Campaign`, so ``bluesky_adaptive.plans.optimize`` drives
the campaign in a ``RunEngine`` with the beamline's own ophyd devices;
:class:`~abduce.controller.beamline.evaluation.Readings` is an evaluation function over the RunEngine's
documents. (The other way, abduce driving ophyd devices over its own protocol, is the ``ophyd`` driver in
``abduce.instruments.drivers``.)
"""

from abduce.controller.beamline.evaluation import Readings
from abduce.controller.beamline.optimizer import CampaignOptimizer

__all__ = ["CampaignOptimizer", "Readings"]
