"""The built-in hypotheses, a registry of them, and dotted-path lookup.

Every built-in is written in physical units; its parameters are declared in
the relative frame of :mod:`abduce.hypotheses.declaration` (amplitudes in units
of the data scale ``s = max|y|``, locations and widths in units of the space).
Bounds are chosen so that the curve stays within a few times the data's range
over the space; priors are flat unless physics says more (critical exponents).

Kinks are smoothed over a fixed width ``delta`` (a constant with units, 10^-3
of the span; ``beta * delta`` for the power law, whose tail above ``x_c`` then
falls as ``e^(t / delta)`` for every ``beta``) so that gradients exist everywhere: ``relu(t)^beta`` has an
infinite derivative at ``t = 0`` and a zero one below, which stalls or breaks a
gradient-based fit of ``x_c``. A power of the smoothed kink is computed in log
space (:func:`log_smooth_relu`): ``delta * softplus(t / delta)`` underflows to
exactly 0 once ``-t`` passes about 0.7 of the span (``softplus(-708) = 0`` in
float64), and the gradients of ``0^beta`` in ``x_c`` and ``beta`` are then NaN,
so one measurement far above ``x_c`` broke every later fit of the law. Every
built-in is checked over its whole declared range (:func:`abduce.hypotheses.check`).
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.nn.functional import softplus

from abduce.controller.errors import ConfigError, UnknownNameError
from abduce.controller.registry import import_dotted
from abduce.hypotheses.declaration import Hypothesis, KernelPriors, LogNormal, Parameter
from abduce.hypotheses.grammar import boundary

_SOFTPLUS_TAIL = -30.0  # below this, softplus(z) = e^z (1 - e^z / 2 + ...): log softplus(z) = z to 1e-13


def smooth_relu(t: Tensor, delta: Tensor) -> Tensor:
    """``delta * softplus(t / delta)``: relu(t) with the kink rounded over ``delta``; >= 0 (0 only by underflow)."""
    return delta * softplus(t / delta)


def log_smooth_relu(t: Tensor, delta: Tensor) -> Tensor:
    """``log(delta * softplus(t / delta))``, finite with a finite gradient for every finite ``t``.

    For ``z = t / delta < -30`` it is ``log delta + z`` (``log softplus(z) = z + log(1 - e^z / 2 + ...)``,
    the rest below 1e-13); above, ``log softplus(z)`` directly. Both branches are evaluated at values
    where they are finite, so ``torch.where`` passes no NaN back through the branch it did not take.
    """
    z = t / delta
    tail = z < _SOFTPLUS_TAIL
    body = torch.log(softplus(torch.where(tail, torch.full_like(z, _SOFTPLUS_TAIL), z)))
    return torch.log(delta) + torch.where(tail, z, body)


def _second_order(x: Tensor, p: dict[str, Tensor]) -> Tensor:
    # A relu((x_c - x) / span)^beta as A exp(beta log(...)): finite, with finite gradients, however far x is
    # above x_c. The distance is in units of the space's span so that A, bounded in units of the data
    # scale, means the same on every space: in physical units, (x_c - x)^beta on a space 0.25 wide made
    # A = m / (x_c - x)^beta several times the data scale and cut off the power laws a few points allow.
    # The kink is rounded over beta * delta, not delta: above x_c, (delta softplus(t / delta))^beta falls as
    # e^(beta t / delta), over delta / beta, so at beta = 1/8 the law one grid step (0.005) above x_c was
    # still 44% of its value one step below, and fits moved x_c below the truth by several of its sds.
    # With beta * delta it falls as e^(t / delta) for every beta (0.4% of that value there).
    return p["A"] * torch.exp(
        p["beta"] * (log_smooth_relu(p["x_c"] - x[..., 0], p["beta"] * p["delta"]) - torch.log(p["span"]))
    )


def _first_order(x: Tensor, p: dict[str, Tensor]) -> Tensor:
    return p["A"] * torch.sigmoid((p["x_c"] - x[..., 0]) / p["delta"])


def _sigmoid(x: Tensor, p: dict[str, Tensor]) -> Tensor:
    return p["A"] * torch.sigmoid((p["x_c"] - x[..., 0]) / p["w"])


def _linear(x: Tensor, p: dict[str, Tensor]) -> Tensor:
    t = (x[..., 0] - p["x0"]) / p["span"]
    return p["y_lo"] + (p["y_hi"] - p["y_lo"]) * t


def _constant(x: Tensor, p: dict[str, Tensor]) -> Tensor:
    return p["c"] + 0.0 * x[..., 0]


def _curie_weiss(x: Tensor, p: dict[str, Tensor]) -> Tensor:
    return p["C"] / (x[..., 0] - p["theta"])


# A step's height is at most the data's range (1.5 s with margin for noise);
# a power law's prefactor A = m(lo) / ((x_c - lo) / span)^beta may be larger.
_AMPLITUDE = Parameter("A", bounds=(0.0, 1.5), unit="y")
_POWER_AMPLITUDE = Parameter("A", bounds=(0.0, 3.0), unit="y")
_XC = Parameter("x_c", bounds=(0.0, 1.0), unit="x")
_DELTA = Parameter("delta", bounds=(1e-6, 1.0), unit="dx", fixed=1e-3)

SECOND_ORDER = Hypothesis(
    name="second-order",
    mean=_second_order,
    parameters=(
        _POWER_AMPLITUDE,
        _XC,
        # Critical exponents of real order parameters lie between the 2D Ising
        # 1/8 and mean-field 1/2 (3D Ising 0.33); the prior is centred there
        # (95% of its mass in [0.14, 0.66]) and allows up to 2.
        Parameter("beta", bounds=(0.05, 2.0), prior=LogNormal(median=0.3, sigma=0.4)),
        _DELTA,
        Parameter("span", unit="dx", fixed=1.0),
    ),
    formula="A ((x_c - x) / span)^beta below x_c, 0 above",
    doc="Second-order (continuous) transition: the order parameter "
    "m(x) = A ((x_c - x) / span)^beta below x_c, 0 above (Landau theory gives beta = 1/2); "
    "span is the width of the space, so A is the law's value one span below x_c.",
)

FIRST_ORDER = Hypothesis(
    name="first-order",
    mean=_first_order,
    # The jump is rounded over 2e-5 of the span. With 2e-4, the law was still 5% off its plateau 3 deltas from
    # x_c, so the measurements either side of the jump excluded x_c from 6e-4 of the gap between them: on a
    # gap of 1.2e-3 the posterior filled its middle half and the truth, nearer an edge, lay 2-5 sds out.
    parameters=(_AMPLITUDE, _XC, Parameter("delta", bounds=(1e-6, 1.0), unit="dx", fixed=2e-5)),
    formula="A below x_c, 0 above",
    doc="First-order (discontinuous) transition: m(x) = A below x_c, 0 above, "
    "a jump of height A at x_c (rounded over 2e-5 of the span).",
)

SIGMOID = Hypothesis(
    name="sigmoid",
    mean=_sigmoid,
    parameters=(
        _AMPLITUDE,
        _XC,
        # A crossover narrower than the sampling cannot be told from a jump;
        # the prior puts its weight on widths of a few percent of the space.
        Parameter("w", bounds=(1e-3, 0.25), prior=LogNormal(median=0.05, sigma=1.0), unit="dx"),
    ),
    formula="A sigmoid((x_c - x) / w)",
    doc="Smooth crossover: m(x) = A sigmoid((x_c - x) / w), a step of height A "
    "smeared over a width w (e.g. a diffuse or disorder-broadened transition).",
)

LINEAR = Hypothesis(
    name="linear",
    mean=_linear,
    parameters=(
        Parameter("y_lo", bounds=(-1.5, 1.5), unit="y"),
        Parameter("y_hi", bounds=(-1.5, 1.5), unit="y"),
        Parameter("x0", unit="x", fixed=0.0),
        Parameter("span", unit="dx", fixed=1.0),
    ),
    formula="y_lo + (y_hi - y_lo) (x - x0) / span",
    doc="No transition, a linear trend (Vegard-like) given by its values at the "
    "space's edges: m(x) = y_lo + (y_hi - y_lo) (x - x0) / span, x0 the lower "
    "edge, span the width of the space.",
)

CONSTANT = Hypothesis(
    name="constant",
    mean=_constant,
    parameters=(Parameter("c", bounds=(-1.5, 1.5), unit="y"),),
    formula="c",
    doc="No transition and no trend: m(x) = c.",
)

CURIE_WEISS = Hypothesis(
    name="curie-weiss",
    mean=_curie_weiss,
    parameters=(
        Parameter("C", bounds=(0.0, 1.5), unit="y*dx"),
        Parameter("theta", bounds=(-1.0, -0.02), unit="x"),
    ),
    formula="C / (x - theta)",
    doc="Curie-Weiss law: a susceptibility chi(x) = C / (x - theta) above the "
    "Weiss temperature theta, which lies below the space (theta < lower edge).",
)

# "None of these": no physics, a flexible residual. It competes in the evidence with the laws of a
# campaign (abduce.controller.core.campaign, CampaignSettings.none_prior), so the user sees when the set as a
# whole does not explain the data. A constant mean and a residual GP whose prior allows anything the data
# scale allows (amplitude up to 2 s, features down to 2% of the space, rougher Matern-3/2): it explains a
# transition as well as any law does, but pays for the freedom in its marginal likelihood (a log det of
# a wide kernel); a law that fits with a small residual wins. Two transitions, a peak or a staircase
# leave every law with a large residual, which its own kernel prior (at most 0.15 s, median 0.03 s)
# makes expensive, and then this wins.
NONE_OF_THESE = Hypothesis(
    name="none of these",
    mean=_constant,
    parameters=(Parameter("c", bounds=(-1.5, 1.5), unit="y"),),
    doc="No law of the set: m(x) = c plus a flexible residual GP (amplitude median 0.3 s, up to 2 s; "
    "lengthscale median 0.15, at least 0.02 of the space; Matern-3/2).",
    nu=1.5,
    kernel=KernelPriors(
        outputscale_median=0.3**2,
        outputscale_sigma=1.5,
        outputscale_bounds=(1e-4, 4.0),
        lengthscale_median=0.15,
        lengthscale_sigma=1.0,
        lengthscale_bounds=(0.02, 10.0),
    ),
)

ONE_D: dict[str, Hypothesis] = {h.name: h for h in (SECOND_ORDER, FIRST_ORDER, SIGMOID, LINEAR, CONSTANT, CURIE_WEISS)}
"""The built-in laws of one variable (axis 0)."""
BUILTIN: dict[str, Hypothesis] = dict(ONE_D)

# 2-D phase diagrams (the phase-2d simulator's axes: composition, then temperature): the order parameter's
# law in T / T_c(x), its phase boundary T_c linear in the composition (abduce.hypotheses.grammar.boundary).
# The grammar raises T_c to a quadratic in one composition step.
PHASE_BOUNDARIES: dict[str, Hypothesis] = {
    f"{law.name} boundary": boundary(law, axis=1, of=0, degree=1, name=f"{law.name} boundary")
    for law in (SECOND_ORDER, FIRST_ORDER, SIGMOID)
}
BUILTIN.update(PHASE_BOUNDARIES)


def resolve_hypothesis(name: str) -> Hypothesis:
    """A built-in by name, or a user's :class:`Hypothesis` by dotted path.

    Args:
        name: ``"second-order"`` etc., or ``"package.module:OBJECT"`` /
            ``"package.module.OBJECT"`` naming a Hypothesis or a zero-argument
            callable returning one.

    Raises:
        UnknownNameError: no built-in has that name and it is not a dotted path.
        ConfigError: the dotted path does not import or is not a Hypothesis.
    """
    if name in BUILTIN:
        return BUILTIN[name]
    if name == NONE_OF_THESE.name:
        raise ConfigError(
            f"{name!r} is not a hypothesis to list: every campaign weighs it (CampaignSettings.none_prior)"
        )
    if "." not in name and ":" not in name:
        raise UnknownNameError("hypothesis", name, list(BUILTIN))
    obj = import_dotted("hypothesis", name)
    if callable(obj) and not isinstance(obj, Hypothesis):
        obj = obj()
    if not isinstance(obj, Hypothesis):
        raise ConfigError(f"{name!r} is a {type(obj).__name__}, not an abduce Hypothesis")
    return obj
