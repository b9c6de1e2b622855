"""A driver from its name: ``simulated:NAME``, ``recorded:PATH`` or ``package.module:DriverClass``.

What ``abduce instrument serve --driver``, rehearsals, sweeps and a rebuilt journal's spec all build from.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from abduce.controller.errors import ConfigError
from abduce.controller.registry import import_dotted
from abduce.instruments.drivers.base import Driver


def build_driver(spec: str, options: Mapping[str, Any] | None = None) -> Driver:
    """``simulated:NAME``, ``recorded:PATH`` or ``package.module:DriverClass`` -> a driver.

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
    if not rest or "." not in kind:
        raise ConfigError(f"driver {spec!r}: use simulated:SIMULATOR, recorded:PATH or package.module:DriverClass")
    cls = import_dotted("driver", spec)
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
