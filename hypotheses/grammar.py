"""A grammar of hypotheses: new laws composed from declared ones, with parameters, priors and units derived.

Each operation is one *composition step*; a composed law's ``depth`` counts its steps. Its parameters,
bounds, priors and units come from its parts (renamed where two parts share a name), and its name and
formula are written from theirs:

=============  ==========================================  ===============================================
operation      tree (JSON, what the journal keeps)         builds
=============  ==========================================  ===============================================
sum            ``{"sum": [T1, T2, ...]}``                  ``m = m1 + m2 + ...``: two transitions; a part's
                                                           parameters get the suffix ``_i`` (``x_c_1``)
background     ``{"background": T, "degree": d,            ``m = m_T + b0 + b1 t + b2 t^2`` (``t`` the unit
               "axes": k}``                                coordinate of axis 0; ``g1 s + g2 s^2`` along
                                                           axis 1 when ``k = 2``), ``d`` = 0, 1, 2
along          ``{"along": T, "axis": k}``                 the 1-D law ``T`` as a function of axis ``k``
direction      ``{"direction": T}``                        ``T`` along a fitted direction ``theta`` of a 2-D
                                                           space: ``x' = lo0 + span0 (t0 cos theta + t1 sin theta)``
boundary       ``{"boundary": T, "axis": a, "of": o,       ``T`` (a law with a critical point ``x_c``) in the
               "degree": d}``                              reduced variable ``tau = x_a / T_c(x_o)``, its
                                                           critical point at ``tau = 1``, ``T_c`` a polynomial
                                                           of degree ``d`` in axis ``o``: the phase diagram
                                                           ``m = A (1 - T / T_c(x))^beta``
raise          ``{"raise": T}``                            a boundary law ``T`` with its ``T_c`` one degree higher
leaf           ``{"law": NAME}``                           a declared law (depth 0)
=============  ==========================================  ===============================================

Canonical forms, so that one law is never counted twice (in the enumeration or in its evidence):

* sums are flattened and their parts sorted by name: ``a + b`` and ``b + a`` are one law;
* a background sits on top: ``(a + background) + b`` is ``(a + b) + background``; only laws with a
  critical point (a free parameter located in the space, unit ``"x"``) are summed or given a background,
  since a sum with ``linear`` or ``constant`` *is* a background;
* two copies of one law in a sum are ordered by their critical points
  (:class:`~abduce.hypotheses.declaration.Symmetry`): ``x_c_1 <= x_c_2``, the prior density doubled on
  that half, so that the two mirror modes of the posterior are one.

The complexity prior (:func:`prior_weight`): each composition step costs a factor ``cost`` (1.0 by
default, ``CampaignSettings.composition_cost``) of prior mass, shared equally by the laws of that depth
the grammar can build from a campaign's laws::

    pi(h) proportional to cost^depth(h) / M_depth(h)        (declared laws: depth 0, weight 1 each)

so a composed law leads only where its evidence beats the declared laws' by more than ``log(M / cost)``
(at the default ``cost = 1``, the depth-1 laws together weigh one declared law: about 3.0 nats for 20 of them;
5.3 at ``cost = 0.1``). With ``CampaignSettings.propose_admit`` below 1 a campaign also admits one before it
leads, once it is credible (:mod:`abduce.controller.core.abduction`).
"""

from __future__ import annotations

import itertools
import json
import math
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import torch
from torch import Tensor

from abduce.controller.errors import ConfigError
from abduce.hypotheses.declaration import Hypothesis, Parameter, Symmetry

Resolve = Callable[[str], Hypothesis]

_DEGREE = {0: "constant", 1: "linear", 2: "quadratic"}
_UNIT_IN_TAU = {"x": "1", "dx": "1", "y/dx": "y", "y*dx": "y", "y": "y", "1": "1"}


def key(tree: dict) -> str:
    """The canonical text of a tree (dedupes compositions)."""
    return json.dumps(tree, sort_keys=True)


def located(h: Hypothesis) -> str | None:
    """The first free parameter located in the space (unit ``"x"``): the law's critical point, or None
    (``linear``, ``constant``: a background, not a transition)."""
    return next((p.name for p in h.free if p.unit == "x"), None)


# ---------------------------------------------------------------------------------------- mean functions
# Classes, not closures, so a composed hypothesis pickles (Dask sweeps) wherever its parts do.


@dataclass(frozen=True)
class _SumMean:
    parts: tuple[tuple[Hypothesis, tuple[tuple[str, str], ...]], ...]  # (part, ((its name, our name), ...))

    def __call__(self, x: Tensor, p: dict[str, Tensor]) -> Tensor:
        return sum(h.mean(x, {o: p[n] for o, n in names}) for h, names in self.parts)  # type: ignore[return-value]


def _poly(t: Tensor, coef: Sequence[Tensor]) -> Tensor:
    return sum(c * t**k for k, c in enumerate(coef, start=1)) if coef else torch.zeros_like(t)  # type: ignore[return-value]


@dataclass(frozen=True)
class _BackgroundMean:
    child: Hypothesis
    degree: int
    axes: int

    def __call__(self, x: Tensor, p: dict[str, Tensor]) -> Tensor:
        out = self.child.mean(x, p) + p["b0"]
        t = (x[..., 0] - p["bg_lo0"]) / p["bg_span0"]
        out = out + _poly(t, [p[f"b{k}"] for k in range(1, self.degree + 1)])
        if self.axes > 1:
            s = (x[..., 1] - p["bg_lo1"]) / p["bg_span1"]
            out = out + _poly(s, [p[f"g{k}"] for k in range(1, self.degree + 1)])
        return out


@dataclass(frozen=True)
class _AlongMean:
    child: Hypothesis
    axis: int

    def __call__(self, x: Tensor, p: dict[str, Tensor]) -> Tensor:
        return self.child.mean(x[..., self.axis : self.axis + 1], p)


@dataclass(frozen=True)
class _DirectionMean:
    child: Hypothesis

    def __call__(self, x: Tensor, p: dict[str, Tensor]) -> Tensor:
        t0 = (x[..., 0] - p["dir_lo0"]) / p["dir_span0"]
        t1 = (x[..., 1] - p["dir_lo1"]) / p["dir_span1"]
        along = p["dir_lo0"] + p["dir_span0"] * (t0 * torch.cos(p["theta"]) + t1 * torch.sin(p["theta"]))
        return self.child.mean(along.unsqueeze(-1), p)


@dataclass(frozen=True)
class _BoundaryMean:
    child: Hypothesis
    critical: str  # the child's critical-point parameter, held at tau = 1
    axis: int
    of: int
    degree: int

    def __call__(self, x: Tensor, p: dict[str, Tensor]) -> Tensor:
        s = (x[..., self.of] - p["tc_lo"]) / p["tc_span"]
        tc = p["tc0"] + _poly(s, [p[f"tc{k}"] for k in range(1, self.degree + 1)])
        # T_c must stay positive: below a thousandth of its span's scale the reduced variable is just large
        tc = torch.clamp(tc, min=1e-3 * p["tc_scale"])
        tau = x[..., self.axis] / tc
        q = dict(p)
        q[self.critical] = torch.ones_like(p["tc0"])
        return self.child.mean(tau.unsqueeze(-1), q)


# ------------------------------------------------------------------------------------------- operations


def _rename(text: str, names: dict[str, str]) -> str:
    if not names:
        return text
    pattern = re.compile(r"\b(" + "|".join(map(re.escape, sorted(names, key=len, reverse=True))) + r")\b")
    return pattern.sub(lambda m: names[m.group(1)], text)


def _formula(h: Hypothesis) -> str:
    return h.formula or h.name


def sum_of(parts: Sequence[Hypothesis]) -> Hypothesis:
    """``parts[0] + parts[1] + ...`` (flattened, sorted by name); each part's parameters get ``_i``.

    Raises:
        ConfigError: fewer than two parts, a part that is a background or has no critical point.
    """
    flat = sorted(_flatten(parts), key=lambda h: key(_tree(h)))
    if len(flat) < 2:
        raise ConfigError("a sum needs two parts")
    for h in flat:
        if h.tree is not None and "background" in h.tree:
            raise ConfigError(f"{h.name!r} has a background; the background goes on the whole sum")
        if located(h) is None:
            raise ConfigError(f"{h.name!r} has no critical point; a sum with it is a background")
    params, mapping, formulas = [], [], []
    for i, h in enumerate(flat, start=1):
        names = {p.name: f"{p.name}_{i}" for p in h.parameters}
        params.extend(replace(p, name=names[p.name]) for p in h.parameters)
        mapping.append((h, tuple(names.items())))
        formulas.append(_rename(_formula(h), names))
    symmetries = []
    for _, group in itertools.groupby(range(len(flat)), key=lambda i: key(_tree(flat[i]))):
        idx = list(group)
        if len(idx) > 1:
            first = flat[idx[0]]
            crit = located(first)
            symmetries.append(
                Symmetry(
                    keys=tuple(f"{crit}_{i + 1}" for i in idx),
                    groups=tuple(tuple(f"{p.name}_{i + 1}" for p in first.parameters) for i in idx),
                )
            )
    tree = {"sum": [_tree(h) for h in flat]}
    return Hypothesis(
        name=" + ".join(h.name for h in flat),
        mean=_SumMean(tuple(mapping)),
        parameters=tuple(params),
        doc="The sum of " + ", ".join(h.name for h in flat) + " (each part's parameters suffixed _1, _2, ...).",
        formula=" + ".join(f"[{f}]" for f in formulas),
        symmetries=tuple(symmetries),
        depth=sum(h.depth for h in flat) + len(flat) - 1,  # a + b + c: two steps
        tree=tree,
        nu=flat[0].nu,
    )


def _flatten(parts: Sequence[Hypothesis]) -> list[Hypothesis]:
    out: list[Hypothesis] = []
    for h in parts:
        if isinstance(h.mean, _SumMean):
            out.extend(part for part, _ in h.mean.parts)
        else:
            out.append(h)
    return out


def _tree(h: Hypothesis) -> dict:
    """A composed law's tree; a declared law (depth 0, a built-in boundary law too) is a leaf by name."""
    return h.tree if h.tree is not None and h.depth > 0 else {"law": h.name}


def with_background(child: Hypothesis, degree: int, axes: int = 1) -> Hypothesis:
    """``child`` plus a polynomial background of ``degree`` (0-2) in each of the first ``axes`` (1 or 2) axes.

    Coefficients in units of the data scale per power of the unit coordinate (bounds +-1.5, flat).

    Raises:
        ConfigError: a degree outside 0-2, ``child`` already with a background or without a critical point.
    """
    if degree not in _DEGREE or axes not in (1, 2):
        raise ConfigError(f"a background has degree 0, 1 or 2 along 1 or 2 axes, got {degree}, {axes}")
    if child.tree is not None and "background" in child.tree:
        raise ConfigError(f"{child.name!r} already has a background")
    if located(child) is None:
        raise ConfigError(f"{child.name!r} has no critical point; it is a background itself")
    taken = {p.name for p in child.parameters}
    extra = [Parameter("b0", bounds=(-1.5, 1.5), unit="y")]
    extra += [Parameter(f"b{k}", bounds=(-1.5, 1.5), unit="y") for k in range(1, degree + 1)]
    extra += [Parameter("bg_lo0", unit="x", fixed=0.0), Parameter("bg_span0", unit="dx", fixed=1.0)]
    terms = ["b0"] + [f"b{k} t" + (f"^{k}" if k > 1 else "") for k in range(1, degree + 1)]
    if axes == 2:
        extra += [Parameter(f"g{k}", bounds=(-1.5, 1.5), unit="y", axis=1) for k in range(1, degree + 1)]
        extra += [
            Parameter("bg_lo1", unit="x", axis=1, fixed=0.0),
            Parameter("bg_span1", unit="dx", axis=1, fixed=1.0),
        ]
        terms += [f"g{k} s" + (f"^{k}" if k > 1 else "") for k in range(1, degree + 1)]
    if taken & {p.name for p in extra}:
        raise ConfigError(f"{child.name!r} has parameters named like a background's")
    coords = "t = (x - lo) / span" + (", s the same along axis 1" if axes == 2 else "")
    return Hypothesis(
        name=f"{child.name} + {_DEGREE[degree]} background",
        mean=_BackgroundMean(child, degree, axes),
        parameters=child.parameters + tuple(extra),
        doc=f"{child.name} on a {_DEGREE[degree]} background ({coords}).",
        formula=f"{_formula(child)} + " + " + ".join(terms) + f"  ({coords})",
        symmetries=child.symmetries,
        depth=child.depth + 1,
        tree={"background": _tree(child), "degree": degree, "axes": axes},
        nu=child.nu,
    )


def along(child: Hypothesis, axis: int) -> Hypothesis:
    """The 1-D law ``child`` as a function of axis ``axis`` instead of axis 0."""
    if child.tree is not None:
        raise ConfigError(f"only a declared 1-D law can be turned along an axis, not {child.name!r}")
    params = tuple(replace(p, axis=axis) if p.unit != "1" and p.unit != "y" else p for p in child.parameters)
    return Hypothesis(
        name=f"{child.name} along axis {axis}",
        mean=_AlongMean(child, axis),
        parameters=params,
        doc=f"{child.name} as a function of axis {axis} (the others do not matter).",
        formula=f"{_formula(child)}  (x: axis {axis})",
        depth=child.depth + 1,
        tree={"along": _tree(child), "axis": axis},
        nu=child.nu,
    )


def direction(child: Hypothesis) -> Hypothesis:
    """The 1-D law ``child`` along a fitted direction ``theta`` (radians from axis 0) of a 2-D space."""
    if child.tree is not None:
        raise ConfigError(f"only a declared 1-D law can be turned along a direction, not {child.name!r}")
    if {"theta", "dir_lo0"} & {p.name for p in child.parameters}:
        raise ConfigError(f"{child.name!r} has parameters named like a direction's")
    extra = (
        Parameter("theta", bounds=(-math.pi / 2, math.pi / 2)),
        Parameter("dir_lo0", unit="x", fixed=0.0),
        Parameter("dir_span0", unit="dx", fixed=1.0),
        Parameter("dir_lo1", unit="x", axis=1, fixed=0.0),
        Parameter("dir_span1", unit="dx", axis=1, fixed=1.0),
    )
    return Hypothesis(
        name=f"{child.name} along a direction",
        mean=_DirectionMean(child),
        parameters=child.parameters + extra,
        doc=f"{child.name} along the direction theta of the plane (theta = 0: axis 0).",
        formula=f"{_formula(child)}  (x = lo0 + span0 (t0 cos theta + t1 sin theta), t the unit coordinates)",
        depth=child.depth + 1,
        tree={"direction": _tree(child)},
        nu=child.nu,
    )


def boundary(child: Hypothesis, axis: int = 1, of: int = 0, degree: int = 1, name: str | None = None) -> Hypothesis:
    """``child`` in ``tau = x_axis / T_c(x_of)``, its critical point at ``tau = 1``, with
    ``T_c(x) = tc0 + tc1 s + tc2 s^2`` (``s`` the unit coordinate of axis ``of``; ``tc0`` located on
    axis ``axis``, bounds 0-1.5 of its span; ``tc1``, ``tc2`` widths of it, +-1.5).

    The child's other parameters keep their bounds and priors, in units of ``tau`` where they were
    locations or widths (a sigmoid's ``w``: a width in ``T / T_c``), of the data scale where amplitudes.

    Raises:
        ConfigError: ``child`` is composed, has no critical point, or the axes/degree are invalid.
    """
    if child.tree is not None:
        raise ConfigError(f"only a declared 1-D law can have a phase boundary, not {child.name!r}")
    crit = located(child)
    if crit is None or axis == of or degree not in (1, 2):
        raise ConfigError(f"{child.name!r}: a boundary needs a law with a critical point, two axes, degree 1-2")
    clash = {"tc0", "tc1", "tc2", "tc_lo", "tc_span", "tc_scale"} & {p.name for p in child.parameters}
    if clash:
        raise ConfigError(f"{child.name!r} has parameters named like a boundary's: {sorted(clash)}")
    params = []
    for p in child.parameters:
        if p.name == crit:
            continue
        params.append(replace(p, unit=_UNIT_IN_TAU[p.unit], axis=0))
    params += [Parameter("tc0", bounds=(0.0, 1.5), unit="x", axis=axis)]
    params += [Parameter(f"tc{k}", bounds=(-1.5, 1.5), unit="dx", axis=axis) for k in range(1, degree + 1)]
    params += [
        Parameter("tc_lo", unit="x", axis=of, fixed=0.0),
        Parameter("tc_span", unit="dx", axis=of, fixed=1.0),
        Parameter("tc_scale", unit="dx", axis=axis, fixed=1.0),
    ]
    poly = "tc0" + "".join(f" + tc{k} s" + (f"^{k}" if k > 1 else "") for k in range(1, degree + 1))
    tau = f"x{axis} / T_c(x{of})"
    return Hypothesis(
        name=name or f"{child.name} in axis {axis}, x_c {_DEGREE[degree]} in axis {of}",
        mean=_BoundaryMean(child, crit, axis, of, degree),
        parameters=tuple(params),
        doc=f"A phase diagram: {child.name} in the reduced variable {tau}, critical at 1, "
        f"T_c(x) = {poly} (s the unit coordinate of axis {of}).",
        formula=_rename(_formula(child), {crit: "1", "x": tau}) + f"  (T_c = {poly})",
        depth=0 if name is not None else child.depth + 1,
        tree={"boundary": _tree(child), "axis": axis, "of": of, "degree": degree},
        nu=child.nu,
    )


def raise_degree(h: Hypothesis) -> Hypothesis:
    """A boundary law with its ``T_c`` polynomial one degree higher (one composition step)."""
    tree = h.tree or {}
    if "boundary" not in tree or tree["degree"] >= 2:
        raise ConfigError(f"{h.name!r} is not a boundary law of degree < 2")
    mean = h.mean
    assert isinstance(mean, _BoundaryMean)
    out = boundary(mean.child, tree["axis"], tree["of"], tree["degree"] + 1)
    return replace(
        out,
        name=f"{h.name}, x_c {_DEGREE[tree['degree'] + 1]} in axis {tree['of']}",
        depth=h.depth + 1,
        tree={"raise": _tree(h)},
    )


def build(tree: dict, resolve: Resolve) -> Hypothesis:
    """The hypothesis a tree describes (``resolve``: a declared law by name).

    Raises:
        ConfigError: a tree of unknown shape, or one an operation refuses.
    """
    if not isinstance(tree, dict) or len(tree) == 0:
        raise ConfigError(f"not a hypothesis tree: {tree!r}")
    if "law" in tree:
        return resolve(tree["law"])
    if "sum" in tree:
        return sum_of([build(t, resolve) for t in tree["sum"]])
    if "background" in tree:
        return with_background(build(tree["background"], resolve), int(tree["degree"]), int(tree.get("axes", 1)))
    if "along" in tree:
        return along(build(tree["along"], resolve), int(tree["axis"]))
    if "direction" in tree:
        return direction(build(tree["direction"], resolve))
    if "boundary" in tree:
        return boundary(build(tree["boundary"], resolve), int(tree["axis"]), int(tree["of"]), int(tree["degree"]))
    if "raise" in tree:
        return raise_degree(build(tree["raise"], resolve))
    raise ConfigError(
        f"unknown composition in {tree!r}; known: law, sum, background, along, direction, boundary, raise"
    )


# ------------------------------------------------------------------------------------------ enumeration


def _attempt(out: list[Hypothesis], operation: Callable[..., Hypothesis], *args) -> None:
    """Append ``operation(*args)`` unless the operation refuses those parts (a name collision, no critical point)."""
    try:
        out.append(operation(*args))
    except ConfigError:
        pass


def _steps(h: Hypothesis, bases: Sequence[Hypothesis], dims: int) -> list[Hypothesis]:
    """Every law one composition step from ``h`` (with ``bases`` as the other parts of a sum)."""
    out: list[Hypothesis] = []
    top = h.tree or {}
    if located(h) is not None and "background" not in top:
        for b in bases:
            if located(b) is not None and (b.tree is None or "boundary" in b.tree):
                _attempt(out, sum_of, [h, b])
        for degree in _DEGREE:
            _attempt(out, with_background, h, degree, min(dims, 2))
    if dims >= 2 and h.tree is None:
        for axis in range(1, dims):
            _attempt(out, along, h, axis)
        _attempt(out, direction, h)
        if located(h) is not None:
            for axis, of in ((1, 0), (0, 1)):
                for degree in (1, 2):
                    _attempt(out, boundary, h, axis, of, degree)
    if "boundary" in top and top.get("degree", 2) < 2:
        _attempt(out, raise_degree, h)
    return out


def structure(tree: dict, leaves: dict[str, dict]) -> dict:
    """The law a tree computes, whatever it is named: declared laws that are themselves compositions (the
    built-in boundary laws, ``leaves``: name -> their own tree) are expanded, and a raised boundary is the
    boundary of one degree more. Two trees with the same structure build the same mean."""
    if "law" in tree:
        inner = leaves.get(tree["law"])
        return structure(inner, leaves) if inner is not None else tree
    if "raise" in tree:
        inner = structure(tree["raise"], leaves)
        return dict(inner, degree=inner["degree"] + 1) if "boundary" in inner else {"raise": inner}
    out: dict = {}
    for k, v in tree.items():
        if isinstance(v, dict):
            out[k] = structure(v, leaves)
        elif isinstance(v, list):
            out[k] = sorted((structure(t, leaves) for t in v), key=key)
        else:
            out[k] = v
    return out


def enumerate_compositions(bases: Sequence[Hypothesis], dims: int, depth: int = 1) -> list[Hypothesis]:
    """Every composition of ``bases`` (the campaign's declared laws) up to ``depth`` steps, in canonical
    form, deduplicated by :func:`structure` (a composition that computes a declared law, or another
    composition under another name, is left out), in a fixed order (depth, then the tree's text).
    ``dims``: the space's axes."""
    if depth < 1:
        return []
    leaves = {b.name: b.tree for b in bases if b.tree is not None}
    seen = {key(structure(_tree(b), leaves)) for b in bases}
    frontier = list(bases)
    found: list[Hypothesis] = []
    for _ in range(depth):
        new: list[Hypothesis] = []
        for h in frontier:
            for c in _steps(h, bases, dims):
                k = key(structure(_tree(c), leaves))
                if k not in seen and c.depth <= depth:
                    seen.add(k)
                    new.append(c)
        found.extend(new)
        frontier = new
    return sorted(found, key=lambda h: (h.depth, key(_tree(h))))


def prior_weight(h: Hypothesis, counts: dict[int, int], cost: float) -> float:
    """``cost^depth / M_depth`` (1 for a declared law): the complexity prior's unnormalised weight.
    ``counts``: how many compositions the grammar enumerated at each depth."""
    if h.depth == 0:
        return 1.0
    return cost**h.depth / max(1, counts.get(h.depth, 1))


def depth_counts(compositions: Sequence[Hypothesis]) -> dict[int, int]:
    """How many of ``compositions`` there are at each depth (the ``M_depth`` of :func:`prior_weight`)."""
    return dict(Counter(h.depth for h in compositions))
