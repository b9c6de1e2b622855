"""A batch of points per request, chosen greedily with fantasised readings (the kriging believer).

``Campaign.ask(q=...)`` picks its first point exactly as a one-point request does. Each further
point is the acquisition's best after every hypothesis has been told a *fantasy* reading at the
points already in the batch: its own posterior mean there (the kriging believer; Ginsbourger,
Le Riche & Carraro, "Kriging is well-suited to parallelize optimization", 2010). With the
hyperparameters frozen, a reading equal to the posterior mean leaves the mean where it was
and shrinks the variance by the rank-1 term of :mod:`abduce.hypotheses.posterior`:

    var'(c) = var(c) - Cov(c, x*)^2 / (var(x*) + sigma_n^2)

so the next point goes where the hypotheses still disagree or are still unsure *given* the
batch so far. The probabilities that weigh the hypotheses stay those of the last step (a
fantasy carries no evidence). Cost: one ``O(n N)`` update per hypothesis and point, and one
scoring of the candidates per point.

The believer alone keeps the hypotheses' disagreement where it was (the means do not move), so
with ``discriminate`` a batch lined up on neighbouring candidates (0.590, 0.592, 0.594, 0.596 where
the laws' length scales were ~0.2): four readings of nearly one thing, where one point per request
would have learnt from the first before choosing the next. So on a finite candidate set each chosen
point also excludes, for the rest of the batch, every candidate within ``SEPARATION`` length scales
of it,

    sum_d ((c_d - x*_d) / l_d)^2 <= SEPARATION^2,    l_d = min over the fitted laws of their length scale in d

(a minimum separation in the kernels' own units, so it follows the problem's scale; the shortest
length scale, so no law's structure is skipped over). Measured on
``tests/benchmarks/batch_identification.py`` (transition-1d, the four laws, 10 seeds x 4 truths,
share of campaigns identified after n = 8 / 10 / 12 / 15 / 20 / 25 / 30 / 40 measurements;
q = 1: 19 25 31 34 40 40 40 40, median n 10):

==================================== ======================================= ===================
q = 4 rule                           identified after n = 8 ... 40           median n identified
==================================== ======================================= ===================
believer alone                       10 21 23 28 35 36 37 40                 14
+ exclusion 0.25 length scales       21 24 27 34 37 39 39 40                 10.5
+ exclusion 0.15 length scales       21 24 27 34 37 39 39 40                 10.5
+ exclusion 0.5 length scales        23 22 26 31 36 35 36 37                 11.5
+ exclusion 0.03 (unit cube)         19 23 27 34 33 38 39 40                 12
+ exclusion 0.06 (unit cube)         23 24 29 31 37 39 38 37                 11
+ penalty 1 - exp(-d^2 / 2 0.03^2)   22 23 28 33 37 38 39 39                 12
leader's mean told to every law      10 26 24 26 34 35 36 38                 15
8 sampled fantasies (Monte Carlo)    10 27 25 26 35 36 37 39                 15
the same, probabilities updated      16 22 22 32 33 37 38 38                 13
==================================== ======================================= ===================

(the 40 campaigns are a noisy measure: differences of 2-3 are within it. A soft local penalisation,
González et al. 2016, did as well as a hard exclusion of about the same width, a wider exclusion
worse; fantasies that move the means, shared by all laws, did not spread the batch. At 0.25 length
scales the q = 4 campaign reaches q = 1's share within 1.3 x the measurements up to n = 15, and
its median n to be identified for good equals q = 1's. On ten other seeds, 10-19, not used to choose:
rank by rank, q = 4 needs 1.20 x q = 1's measurements to be identified for good (median; 33 of 40
ranks within 1.3 x) against 1.40 x (15 of 40) for the believer alone; a 0.03 penalty or a 0.06
exclusion gave 1.22 x (34) and 1.20 x (32).)
A batch comes out shorter than ``q`` only when no candidate is left outside the excluded balls.
On a box the believer alone chooses (no candidates to exclude).

On a finite candidate set the fantasies update copies of the hypotheses' candidate posteriors;
on a box each hypothesis's model is rebuilt on its data plus its fantasies (frozen
hyperparameters) and the acquisition optimised again. BoTorch's alternative,
``optimize_acqf_discrete`` with a q-batch Monte Carlo acquisition, was measured against this
(``tests/benchmarks/batch_selection.py``): see the README's "Batches" for the figures.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field

import torch
from torch import Tensor

from abduce.hypotheses.belief import Belief
from abduce.hypotheses.posterior import PosteriorAtPoints, RowBuffer

SEPARATION = 0.25  # a batch's points on a finite space: at least this many (shortest) length scales apart


def twin(posterior: PosteriorAtPoints) -> PosteriorAtPoints:
    """A copy of ``posterior`` that can be conditioned without touching the original: every
    ``add`` reassigns its tensors, except the rows appended to a growing factor, copied here."""
    out = copy.copy(posterior)
    for name, value in vars(posterior).items():
        if isinstance(value, RowBuffer):
            setattr(out, name, RowBuffer(value.value))
    return out


@dataclass
class Believed:
    """The hypotheses after fantasised readings at the batch's points so far.

    Attributes:
        posteriors: finite space: per law index, its candidate posterior conditioned on the fantasies.
        data: box: per law index, ``(u, y, y_sd)`` (``n' x d`` unit points, ``n'`` physical values, their
            known sds or None) with the fantasies appended.
        taken: finite space: candidate indices already in the batch or within ``SEPARATION`` length
            scales of one of its points (:func:`near`); never chosen for this batch.
    """

    posteriors: dict[int, PosteriorAtPoints] = field(default_factory=dict)
    data: dict[int, tuple[Tensor, Tensor, Tensor | None]] = field(default_factory=dict)
    taken: list[int] = field(default_factory=list)


def believe(
    believed: Believed,
    belief: Belief,
    usable: list[int],
    u_new: Tensor,
    index: int | None,
    u: Tensor,
    y: Tensor,
    y_sd: Tensor | None = None,
) -> Believed:
    """Tell every usable law its own posterior mean at ``u_new`` (``d`` unit coordinates; ``index``: its
    candidate index on a finite space, else None); ``(u, y, y_sd)``: the campaign's data and its readings'
    known standard deviations (None: none known). Returns ``believed``."""
    for i in usable:
        slot = belief.slots[i]
        if index is not None:
            post = believed.posteriors.get(i)
            if post is None:
                post = believed.posteriors[i] = twin(slot.posterior)  # type: ignore[arg-type]
            post.add(u_new, float(post.mean_rel[index]))  # a reading at the mean: the mean stays, var shrinks
        else:
            uu, yy, ss = believed.data.get(i, (u, y, y_sd))
            model = slot.fit.model(uu, yy, ss)  # type: ignore[union-attr]
            with torch.no_grad():
                mean = model.posterior(u_new.reshape(1, -1)).mean.reshape(()) * model.frame.s
            believed.data[i] = (
                torch.cat([uu, u_new.reshape(1, -1)]),
                torch.cat([yy, mean.reshape(1)]),
                None if ss is None else torch.cat([ss, ss.new_full((1,), math.nan)]),  # a fantasy: no known sd
            )
    if index is not None:
        believed.taken.append(index)
        taken = set(believed.taken)
        believed.taken.extend(j for j in near(belief, usable, u_new) if j not in taken)
    return believed


def length_scales(belief: Belief, usable: list[int]) -> Tensor:
    """``d`` length scales (unit cube): per dimension the shortest among the usable laws' kernels."""
    scales = []
    for i in usable:
        post = belief.slots[i].posterior
        kernel = post._kernel  # type: ignore[union-attr]
        scale = getattr(kernel, "base_kernel", kernel).lengthscale.detach().reshape(-1)
        scales.append(scale.expand(post.points.shape[-1]))  # type: ignore[union-attr]  # one shared by all axes
    return torch.stack(scales).amin(0)


def near(belief: Belief, usable: list[int], u_new: Tensor, separation: float = SEPARATION) -> list[int]:
    """Candidate indices ``c`` with ``||(c - u_new) / l|| <= separation`` (``l``: :func:`length_scales`),
    ``u_new`` itself among them: those a batch's later points skip."""
    points = belief.slots[usable[0]].posterior.points  # type: ignore[union-attr]
    scaled = (points - u_new.reshape(1, -1).to(points)) / length_scales(belief, usable).to(points)
    return [int(j) for j in torch.nonzero(scaled.norm(dim=-1) <= separation)[:, 0]]
