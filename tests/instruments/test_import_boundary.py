"""abduce.instruments and abduce.simulators must import without torch (an agent runs on the microscope's PC)."""

import subprocess
import sys

import pytest


@pytest.mark.parametrize(
    "module",
    [
        "abduce.instruments",
        "abduce.simulators",
        "abduce.simulators.transition1d",
        "abduce.simulators.registry",
        "abduce.controller.errors",
        "abduce.instruments.agent",
        "abduce.instruments.drivers.simulated",
        "abduce.instruments.drivers.recorded",
        "abduce.instruments.drivers.faults",
        "abduce.instruments.drivers.record",
        "abduce.simulators.loops",
        "abduce.simulators.spm",
        "abduce.simulators.phase2d",
    ],
)
def test_imports_without_torch(module):
    code = f"import sys; sys.modules['torch'] = None; import {module}"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_simulators_never_import_hypotheses():
    code = (
        "import sys; import abduce.simulators.registry; "
        "assert not any(m.startswith('abduce.hypotheses') for m in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
