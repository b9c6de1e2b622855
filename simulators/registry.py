"""Simulators by name, for the CLI and configs."""

from __future__ import annotations

from abduce.controller.registry import Registry
from abduce.simulators.transition1d import Transition1D

SIMULATORS: Registry[type] = Registry("simulator")
SIMULATORS.register("transition-1d")(Transition1D)
