"""abduce.instruments: the link to instruments (wire protocol, agent, drivers).

Imports no torch: an instrument agent runs on the microscope's own PC.
"""
