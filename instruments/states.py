"""The states of an instrument agent and which message is legal in which (SPEC.md section 6, "Agent states").

A pure table, no sockets: the agent asks it what a message does in its current state and carries out
the answer. Events are the messages that change the state (``measure``, ``abort``, ``safe_state``,
``release``) and ``done``: the last accepted measurement ended (result sent).

================  ==============  ===============  ===============  ================  ===========
state             measure         abort            safe_state       release           done
================  ==============  ===============  ===============  ================  ===========
idle              measuring       idle (nothing)   safe             idle (no-op)      idle
measuring         measuring (q)   aborting         safe (+ abort)   measuring (no-op) idle
aborting          busy            aborting (no-op) safe             aborting (no-op)  idle
safe              busy            safe (nothing)   safe (again)     idle              safe
================  ==============  ===============  ===============  ================  ===========

``(q)``: queued behind the running one. ``busy``: the measure is answered with ``reject`` code ``busy``
and the state does not change. In ``safe`` only ``release`` leaves it: a measurement that was running
when the safe state was asked for ends ``aborted``, and nothing is measured until the controller (or
the operator) releases the instrument.
"""

from __future__ import annotations

from typing import Literal

State = Literal["idle", "measuring", "aborting", "safe"]
Event = Literal["measure", "abort", "safe_state", "release", "done"]
STATES: tuple[State, ...] = ("idle", "measuring", "aborting", "safe")
EVENTS: tuple[Event, ...] = ("measure", "abort", "safe_state", "release", "done")

# (state, event) -> (next state, what the agent does): "accept", "busy" (reject), "abort" (stop the running
# measurement), "safe" (abort what runs, drop what is queued, driver.safe_state), "release" (driver.release),
# or "nothing" (answer, change nothing)
TABLE: dict[tuple[State, Event], tuple[State, str]] = {
    ("idle", "measure"): ("measuring", "accept"),
    ("idle", "abort"): ("idle", "nothing"),
    ("idle", "safe_state"): ("safe", "safe"),
    ("idle", "release"): ("idle", "nothing"),
    ("idle", "done"): ("idle", "nothing"),
    ("measuring", "measure"): ("measuring", "accept"),
    ("measuring", "abort"): ("aborting", "abort"),
    ("measuring", "safe_state"): ("safe", "safe"),
    ("measuring", "release"): ("measuring", "nothing"),
    ("measuring", "done"): ("idle", "nothing"),
    ("aborting", "measure"): ("aborting", "busy"),
    ("aborting", "abort"): ("aborting", "nothing"),
    ("aborting", "safe_state"): ("safe", "safe"),
    ("aborting", "release"): ("aborting", "nothing"),
    ("aborting", "done"): ("idle", "nothing"),
    ("safe", "measure"): ("safe", "busy"),
    ("safe", "abort"): ("safe", "nothing"),
    ("safe", "safe_state"): ("safe", "safe"),
    ("safe", "release"): ("idle", "release"),
    ("safe", "done"): ("safe", "nothing"),
}


class AgentState:
    """The agent's current state, moved by :meth:`on` (the table above)."""

    def __init__(self, state: State = "idle") -> None:
        self.state: State = state

    def on(self, event: Event) -> str:
        """Apply ``event``; returns what the agent must do (``accept``, ``busy``, ``abort``, ``safe``,
        ``release`` or ``nothing``)."""
        self.state, action = TABLE[(self.state, event)]
        return action

    def busy_reason(self) -> str:
        if self.state == "safe":
            return "the instrument is in its safe state; nothing is measured until it is released (release)"
        return f"the instrument is {self.state}; try again once it is idle"
