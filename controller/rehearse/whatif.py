"""``abduce replay RUN``: what would another policy or hypothesis set have done with this sample?

The recorded campaign is rebuilt from its journal; the what-if campaign runs
with the changed settings (same seed, same budget) against a simulator or a
recorded data set -- by default the simulator the run itself used. Both are
then described the same way:

* ``to_identification``: the first number of measurements after which the
  true hypothesis (where the source knows it, else the recorded run's final
  leader) had posterior probability >= 0.95; None if never;
* ``probabilities``: the final posterior probabilities;
* ``error``: the reconstruction error of the final leader against the
  source's truth (RMS over the space / the truth's range), where it is known;
* ``reconstruction``: the same error in the channel's unit, RMS and largest, against a
  simulator's truth or, for a recorded data set, its whole recorded grid
  (:mod:`abduce.controller.rehearse.reconstruction`); None where no truth is known.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from abduce.controller.core.campaign import Campaign
from abduce.controller.drive.loop import run_campaign
from abduce.controller.errors import ConfigError
from abduce.controller.journal.rebuild import rebuild
from abduce.controller.journal.store import Journal
from abduce.controller.recipe.spec import RunSpec
from abduce.controller.rehearse.reconstruction import Truth, score, truth_of
from abduce.controller.rehearse.rehearsal import Rehearsal
from abduce.controller.views.inspection import journal_path

THRESHOLD = 0.95


def describe(campaign: Campaign, target: str | None, truth: Truth | None) -> dict[str, Any]:
    """The side-by-side figures of one campaign (module docstring)."""
    reconstruction = score(campaign, truth)
    first = None
    for record in campaign.history:
        if target is not None and record.probabilities.get(target, 0.0) >= THRESHOLD:
            first = record.step + 1
            break
    return {
        "policy": campaign.policy.name,
        "hypotheses": list(campaign.hypothesis_names),
        "measurements": campaign.n,
        "to_identification": first,
        "leader": campaign.leader(),
        "probabilities": campaign.probabilities(),
        "error": reconstruction["relative"] if reconstruction is not None else None,
        "reconstruction": reconstruction,
    }


def what_if(
    run: Path,
    policy: str | None = None,
    hypotheses: tuple[str, ...] | None = None,
    against: str | None = None,
    options: dict[str, Any] | None = None,
    truth: str | None = None,
    out: Path | None = None,
) -> dict[str, Any]:
    """Rebuild ``run``, re-run it with the changes, return ``{"recorded", "what_if", "target", "source"}``.

    Raises:
        ConfigError: the run was against a real instrument and no ``against`` was given.
    """
    with Journal.open(journal_path(run), readonly=True) as journal:
        spec, recorded = rebuild(journal)
    source = against or spec.source
    if source is None:
        raise ConfigError(f"{run} ran against a real instrument ({spec.mode}); give --against SIMULATOR|DATASET")
    opts = dict(options or {}) if against else dict(spec.options)
    changes = {"policy": policy, "acquisition": None} if policy else {}
    rehearsal = Rehearsal.model_validate(
        {
            **spec.recipe().model_dump(),
            **changes,
            "hypotheses": tuple(hypotheses or spec.hypotheses),
            "source": source,
            "options": opts,
        }
    )
    campaign, instrument = rehearsal.build()
    if out is None:
        run_campaign(campaign, instrument)
    else:
        rehearsal.run_into(out, built=(campaign, instrument), replay_of=str(run), truth=truth)
    known = truth or spec.truth or (opts.get("truth") if isinstance(opts.get("truth"), str) else None)
    target = known or recorded.leader()
    return {
        "source": source,
        "target": target,
        "target_is_truth": known is not None,
        "recorded": describe(recorded, target, truth_of(instrument, recorded.points(), spec.reduction)),
        "what_if": describe(campaign, target, truth_of(instrument, campaign.points(), spec.reduction)),
    }


def _fmt(v) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    return f"{v:.3g}" if isinstance(v, float) else str(v)


def _against(r: dict[str, Any] | None) -> str:
    """What a reconstruction was scored against: "simulator's truth", "recorded grid, 50 points (1 NaN)"."""
    if r is None:
        return "-"
    if r["source"] == "simulator":
        return f"simulator's truth, {r['points']} points"
    return f"recorded grid, {r['points']} points" + (f" ({r['missing']} NaN left out)" if r["missing"] else "")


def rows(result: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(label, recorded, what-if) rows for a table."""
    a, b = result["recorded"], result["what_if"]
    names = list(dict.fromkeys([*a["probabilities"], *b["probabilities"]]))
    out = [
        ("policy", a["policy"], b["policy"]),
        ("hypotheses", ", ".join(a["hypotheses"]), ", ".join(b["hypotheses"])),
        ("measurements", _fmt(a["measurements"]), _fmt(b["measurements"])),
        (
            f"measurements to P({result['target']}) >= {THRESHOLD}",
            _fmt(a["to_identification"]),
            _fmt(b["to_identification"]),
        ),
        ("final leader", _fmt(a["leader"]), _fmt(b["leader"])),
    ]
    out += [(f"P({n})", _fmt(a["probabilities"].get(n)), _fmt(b["probabilities"].get(n))) for n in names]
    out.append(("error vs truth (RMS / range)", _fmt(a["error"]), _fmt(b["error"])))
    ra, rb = a.get("reconstruction"), b.get("reconstruction")
    if ra is not None or rb is not None:
        unit = (ra or rb)["unit"]
        unit = f" ({unit})" if unit and unit != "1" else ""  # "1": dimensionless
        out.append(("reconstruction against", _against(ra), _against(rb)))
        out.append((f"RMSE{unit}", _fmt(ra and ra["rmse"]), _fmt(rb and rb["rmse"])))
        out.append((f"max error{unit}", _fmt(ra and ra["max"]), _fmt(rb and rb["max"])))
    return out


__all__ = ["what_if", "rows", "describe", "RunSpec"]
