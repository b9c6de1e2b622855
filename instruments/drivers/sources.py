"""A driver from its name: ``simulated:NAME``, ``recorded:PATH``, ``ophyd:MODULE:FACTORY`` or ``module:DriverClass``.

What ``abduce instrument serve --driver``, rehearsals, sweeps and a rebuilt journal's spec all build from.
A user's driver class is named ``package.module:DriverClass`` or, for a plain module importable from
``sys.path`` (the working directory, ``PYTHONPATH``), ``module:DriverClass``.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any

from abduce.controller.errors import ConfigError
from abduce.controller.registry import import_dotted
from abduce.instruments.drivers.base import Driver

KINDS = ("simulated", "recorded", "ophyd")
USAGE = "use simulated:SIMULATOR, recorded:PATH, ophyd:PACKAGE.MODULE:FACTORY or package.module:DriverClass"


def _usage(spec: str, kind: str) -> str:
    """The usage line, with the kind the user probably meant when ``kind`` is a near miss of one."""
    near = difflib.get_close_matches(kind, KINDS, n=1, cutoff=0.6)
    return f"driver {spec!r}: " + (f"did you mean {near[0]}:? " if near else "") + USAGE


def build_driver(spec: str, options: Mapping[str, Any] | None = None) -> Driver:
    """``simulated:NAME``, ``recorded:PATH``, ``ophyd:MODULE:FACTORY`` or ``[package.]module:DriverClass``
    -> a driver; ``options`` go to the simulator, the recorded reader, the ophyd factory or the class.

    Raises:
        ConfigError: an unknown kind, a driver that does not import, or not a Driver.
    """
    options = dict(options or {})
    kind, _, rest = spec.partition(":")
    if kind == "simulated":
        from abduce.instruments.drivers.simulated import build

        try:
            return build(spec, **options)
        except TypeError as exc:
            raise ConfigError(f"driver {spec!r}: {exc}") from None
    if kind == "recorded":
        from abduce.instruments.drivers.recorded import build as build_recorded

        try:
            return build_recorded(spec, **options)
        except TypeError as exc:
            raise ConfigError(f"driver {spec!r}: {exc}") from None
    if kind == "ophyd":
        try:
            from abduce.instruments.drivers.ophyd_driver import build as build_ophyd
        except ImportError as exc:
            raise ConfigError(
                f"driver {spec!r} needs bluesky and ophyd ({exc}): pip install 'abduce[bluesky]'"
            ) from None
        return build_ophyd(spec, **options)
    if not all(part.isidentifier() for part in kind.split(".")) or not rest.isidentifier():
        raise ConfigError(_usage(spec, kind))
    try:
        cls = import_dotted("driver", spec)
    except ConfigError as exc:
        near = difflib.get_close_matches(kind, KINDS, n=1, cutoff=0.6)
        raise ConfigError(f"{exc} (did you mean {near[0]}:?)" if near else str(exc)) from None
    try:
        drv = cls(**options)
    except TypeError as exc:  # options it does not take, or a class that is not one to build
        raise ConfigError(f"driver {spec!r}: {exc}") from None
    if not isinstance(drv, Driver):
        raise ConfigError(f"driver {spec!r} built a {type(drv).__name__}, not an abduce Driver")
    return drv


def build_seeded(spec: str, options: dict | None, seed: int) -> Driver:
    """:func:`build_driver` for a campaign seeded ``seed``: a simulator's noise takes the campaign's seed unless
    its options name one; a recorded data set or a user's driver takes the options as they are."""
    options = dict(options or {})
    return build_driver(spec, {"seed": seed, **options} if spec.startswith("simulated:") else options)
