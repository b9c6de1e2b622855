"""Reductions: one raw spectrum -> the one number the hypotheses explain.

A reduction is a plain function ``f(spectrum: np.ndarray) -> float``, or
``f(spectrum, axis=None) -> float`` when it can use the channel's *spectral
axis* (``axis``: the ``m`` bias or frequency values the spectrum's last
dimension is sampled at, as a recorded layout stores it and a driver returns
it in ``Reading.axes``). :func:`apply_reduction` passes ``axis=`` only to a
function whose signature has an ``axis`` parameter and only when the channel
has one; a reduction without it gets the spectrum alone. The built-ins are
registered in :data:`REDUCTIONS`; a user's own is named by a dotted path
(``"package.module:function"``) and found by :func:`resolve_reduction`.

Loop reductions take a hysteresis loop sampled over one cycle in measurement
order (any single-cycle waveform, starting anywhere), in either form:

* a ``2 x m`` array ``[bias; response]`` (the bias travels with the data;
  ``axis`` is then not needed and not used), or
* an ``m``-vector ``response`` with ``axis=`` the ``m`` bias values (a
  recorded channel with a bias spectral axis).

The loop is split at its bias extremes into the *ascending* branch (from the
minimum to the maximum bias, in cycle order) and the *descending* branch
(from the maximum back to the minimum), each monotone in bias for a
triangular or sine waveform. Signs follow the usual ferroelectric loop
(descending branch above the ascending one at zero bias, ascending crossing
zero at positive bias): coercive field and remanence are positive for it and
scatter around 0 for a noisy loop without hysteresis (so averaging many of
them is unbiased). Numpy only: no torch.

A user's reduction, ``reduction = "mylab.loops:peak_bias"`` (or
``--reduction mylab.loops:peak_bias``), is imported with
:func:`importlib.import_module` by the *controller's* process, the one where
the campaign runs: ``abduce run`` (in-process or ``--listen``), ``abduce
daemon``, ``replay``, and each Dask worker of a ``sweep`` (each builds its
own campaign). The instrument agent never imports it: it sends the raw
spectrum (and its spectral axis), the controller reduces it. So the module
must be importable there -- installed in the controller's environment
(``pip install -e ./mylab``) or on its ``PYTHONPATH``; the ``abduce``
console script does not put the current directory on ``sys.path``.
``abduce run`` imports it before it makes a run directory (a path that does
not import fails at once and leaves nothing behind). It is called once per reading, must be a pure function
of its arguments (a replay calls it again on the journalled spectra) and
return one finite float (NaN or inf is a refused reading).

Example:
    >>> bias = np.array([0.0, 1.0, 2.0, 1.0, 0.0, -1.0, -2.0, -1.0])
    >>> response = np.array([-1.0, -1.0, 1.0, 1.0, 1.0, 1.0, -1.0, -1.0])
    >>> coercive_field(response, axis=bias) == coercive_field(np.array([bias, response]))
    True
"""

from __future__ import annotations

import inspect
from collections.abc import Callable

import numpy as np

from abduce.controller.errors import ConfigError, UnknownNameError
from abduce.controller.registry import Registry, import_dotted

Reduction = Callable[..., float]  # f(spectrum) or f(spectrum, axis=values)

REDUCTIONS: Registry[Reduction] = Registry("reduction")


def _loop(spectrum: np.ndarray, axis: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(bias, response)``: the rows of a ``2 x m`` loop, or ``(axis, spectrum)`` for an ``m``-vector response
    with its bias axis (ConfigError for anything else, or m < 4)."""
    a = np.asarray(spectrum, dtype=float)
    if a.ndim == 2 and a.shape[0] == 2 and a.shape[1] >= 4:
        return a[0], a[1]
    if a.ndim == 1 and axis is not None:
        v = np.asarray(axis, dtype=float)
        if v.shape != a.shape or len(a) < 4:
            raise ConfigError(
                f"a loop reduction of a 1-D response needs m >= 4 samples and m bias values; got a response of "
                f"shape {a.shape} and a spectral axis of shape {v.shape}"
            )
        return v, a
    raise ConfigError(
        "a loop reduction needs a 2 x m [bias; response] spectrum with m >= 4, or a 1-D response with its bias "
        f"spectral axis (axis=); got shape {a.shape}" + ("" if axis is not None else " and no spectral axis")
    )


def _branches(
    bias: np.ndarray, resp: np.ndarray
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """``((v_up, p_up), (v_down, p_down))``: the ascending and descending branches, in cycle order.

    Both include the two extreme points; the cycle is closed (the descending
    branch ends at the first point of the ascending one).
    """
    m = len(bias)
    i_min, i_max = int(np.argmin(bias)), int(np.argmax(bias))
    order = (i_min + np.arange(m + 1)) % m  # one full cycle from the minimum, closed
    j_max = (i_max - i_min) % m
    up, down = order[: j_max + 1], order[j_max:]
    return (bias[up], resp[up]), (bias[down], resp[down])


def _zero_crossing(v: np.ndarray, p: np.ndarray) -> float:
    """Mean bias where the response changes sign on one branch, by linear interpolation (NaN if none)."""
    a, b = p[:-1], p[1:]
    k = np.flatnonzero(((a <= 0) & (b > 0)) | ((a >= 0) & (b < 0)))
    if not len(k):
        return float("nan")
    crossing = v[k] - p[k] * (v[k + 1] - v[k]) / (p[k + 1] - p[k])
    return float(np.mean(crossing))


def _at_zero_bias(v: np.ndarray, p: np.ndarray) -> float:
    """The response at zero bias on one (monotone) branch, linearly interpolated (NaN if 0 is not spanned)."""
    if not v.min() <= 0 <= v.max():
        return float("nan")
    order = np.argsort(v, kind="stable")
    return float(np.interp(0.0, v[order], p[order]))


@REDUCTIONS.register("loop-area")
def loop_area(spectrum: np.ndarray, axis: np.ndarray | None = None) -> float:
    """Area enclosed by the loop in the bias-response plane (shoelace formula).

    ``A = |sum_i (V_i P_{i+1} - V_{i+1} P_i)| / 2`` over the closed polygon
    (index ``m`` is index 0), in bias x response units.

    Example:
        >>> square = np.array([[-1.0, 1.0, 1.0, -1.0], [-1.0, -1.0, 1.0, 1.0]])
        >>> loop_area(square)
        4.0
    """
    v, p = _loop(spectrum, axis)
    return float(abs(np.sum(v * np.roll(p, -1) - np.roll(v, -1) * p)) / 2)


@REDUCTIONS.register("coercive-field")
def coercive_field(spectrum: np.ndarray, axis: np.ndarray | None = None) -> float:
    """Half the distance between the branches' zero-response biases.

    ``Ec = (V0_up - V0_down) / 2``, ``V0_*`` the bias where that branch's
    response crosses zero (linear interpolation between the two samples
    around the sign change; the mean if noise makes it cross several times;
    NaN if a branch never crosses).
    """
    up, down = _branches(*_loop(spectrum, axis))
    return (_zero_crossing(*up) - _zero_crossing(*down)) / 2


@REDUCTIONS.register("remanence")
def remanence(spectrum: np.ndarray, axis: np.ndarray | None = None) -> float:
    """Half the difference of the branches' responses at zero bias.

    ``Pr = (P_down(0) - P_up(0)) / 2``, each ``P_*(0)`` linearly interpolated
    on its branch (NaN if a branch does not span zero bias).
    """
    up, down = _branches(*_loop(spectrum, axis))
    return (_at_zero_bias(*down) - _at_zero_bias(*up)) / 2


@REDUCTIONS.register("mean")
def mean(spectrum: np.ndarray) -> float:
    """``sum_i s_i / N`` over every element (e.g. a 1D spectrum's mean intensity)."""
    return float(np.mean(spectrum))


@REDUCTIONS.register("max")
def maximum(spectrum: np.ndarray) -> float:
    """``max_i s_i`` over every element (e.g. a peak height)."""
    return float(np.max(spectrum))


def takes_axis(reduction: Reduction) -> bool:
    """Whether a reduction accepts the spectral axis as a keyword, ``f(spectrum, axis=values)``."""
    try:
        return "axis" in inspect.signature(reduction).parameters
    except (TypeError, ValueError):  # a builtin without a signature
        return False


def apply_reduction(reduction: Reduction, spectrum: np.ndarray, axis: np.ndarray | None = None) -> float:
    """``reduction(spectrum)``, or ``reduction(spectrum, axis=axis)`` when the channel has a spectral
    axis and the reduction takes one."""
    if axis is not None and takes_axis(reduction):
        return float(reduction(spectrum, axis=axis))
    return float(reduction(spectrum))


def resolve_reduction(spec: str) -> Reduction:
    """A registered reduction by name, or a user's function by dotted path.

    Args:
        spec: ``"remanence"`` etc., or ``"package.module:function"`` (also
            ``"package.module.function"``) naming ``f(spectrum) -> float`` or
            ``f(spectrum, axis=None) -> float`` (imported in this process: see the module docstring).

    Raises:
        UnknownNameError: neither a registered name nor a dotted path.
        ConfigError: the dotted path does not import, or names something not callable.
    """
    if spec in REDUCTIONS:
        return REDUCTIONS[spec]
    if "." not in spec and ":" not in spec:
        err = UnknownNameError("reduction", spec, REDUCTIONS.names())
        err.args = (f"{err.args[0]}; or give a 'package.module:function' path",)
        raise err
    func = import_dotted("reduction", spec)
    if not callable(func):
        raise ConfigError(f"reduction {spec!r} is a {type(func).__name__}, not a function")
    return func
