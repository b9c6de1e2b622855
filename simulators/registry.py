"""Simulators by name, for the CLI and configs."""

from __future__ import annotations

from abduce.controller.registry import Registry
from abduce.simulators.channels import TwoChannel
from abduce.simulators.loops import Loops
from abduce.simulators.phase2d import Phase2D
from abduce.simulators.series import SampleSeries
from abduce.simulators.spm import SPMImage
from abduce.simulators.transition1d import Transition1D

SIMULATORS: Registry[type] = Registry("simulator")
SIMULATORS.register("transition-1d")(Transition1D)
SIMULATORS.register("loops")(Loops)
SIMULATORS.register("phase-2d")(Phase2D)
SIMULATORS.register("spm-image")(SPMImage)
SIMULATORS.register("sample-series")(SampleSeries)
SIMULATORS.register("two-channel")(TwoChannel)
