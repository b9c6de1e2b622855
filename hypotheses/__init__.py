"""abduce.hypotheses: physical hypotheses as structured GPs, their fitting and evidence.

Declare a hypothesis with :class:`Hypothesis` and :class:`Parameter`; the
built-ins are in :mod:`abduce.hypotheses.library`.
"""

from abduce.hypotheses.check import check
from abduce.hypotheses.declaration import Hypothesis, LogNormal, Normal, Parameter, Uniform

__all__ = ["Hypothesis", "LogNormal", "Normal", "Parameter", "Uniform", "check"]
