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
        taken: finite space: candidate indices already in the batch (never chosen twice).
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
    return believed
