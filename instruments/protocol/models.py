"""The instrument protocol's message models: one pydantic model per ``msg_type``.

``SPEC.md`` beside this file is the authority; its JSON schemas are generated
from these models and a test fails when they drift apart. Content models are
strict (``extra="forbid"``): a field one side does not know is a version
mismatch, caught by negotiation. Metadata is a free dict that both sides
tolerate whatever it holds.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, model_validator

PROTOCOL_VERSION = "1.3"
# newest first; 1.1 adds bye, release, release_reply and wrong-direction; 1.2 adds result.sd and result.axes
SUPPORTED_VERSIONS = ("1.3", "1.2", "1.1", "1.0")
TAG = b"<ABDUCE|MSG>"  # the delimiter frame between routing identities and the message


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]
Point = list[FiniteFloat]
RequestId = Annotated[str, Field(min_length=1, max_length=128)]
Name = Annotated[str, Field(min_length=1, max_length=128)]


class Header(_Strict):
    """The header of every message.

    Attributes:
        msg_id: unique id of this message (abduce sends "SESSION-SEQ").
        msg_type: which content model follows.
        version: protocol version, "MAJOR.MINOR".
        session: id of the sending process; a new one means the peer restarted.
        seq: per-session sequence number, from 0, +1 per message sent.
        date: UTC send time, ISO 8601.
        key_id: the name of the key that signed the message (for the audit log).
    """

    msg_id: Annotated[str, Field(min_length=1, max_length=64)]
    msg_type: Annotated[str, Field(min_length=1, max_length=64)]
    # ASCII digits, bounded: an unbounded or non-ASCII number made int() fail in codec.major().
    version: Annotated[str, Field(pattern=r"^[0-9]{1,9}\.[0-9]{1,9}$")]
    session: Annotated[str, Field(min_length=1, max_length=64)]
    seq: Annotated[int, Field(ge=0)]
    date: str
    key_id: Annotated[str, Field(min_length=1, max_length=128)]


class Axis(_Strict):
    """One controllable axis: a name, a unit and hard limits the agent enforces."""

    name: Name
    unit: str = ""
    min: FiniteFloat
    max: FiniteFloat

    @model_validator(mode="after")
    def _ordered(self) -> Axis:
        if not self.min < self.max:
            raise ValueError(f"axis {self.name!r}: min {self.min} must be below max {self.max}")
        return self


class Channel(_Strict):
    """One measured quantity: a scalar (``shape == []``) or an array (a spectrum, an image)."""

    name: Name
    unit: str = ""
    shape: list[Annotated[int, Field(ge=1)]] = []
    dtype: str = "<f8"


class ArraySpec(_Strict):
    """An array travelling as a raw buffer frame: the frame index (0 = first buffer), dtype and shape."""

    channel: Name
    buffer: Annotated[int, Field(ge=0)]
    # only the dtypes numpy (and every reader) can interpret: no "f1", "b2", "b4", "b8".
    dtype: Annotated[str, Field(pattern=r"^[<>|=]?(f[248]|[iu][1248]|b1)$")]
    shape: list[Annotated[int, Field(ge=0)]]


class SpectralAxisSpec(_Strict):
    """1.2: the axis an array channel is sampled along (a bias sweep, a frequency vector).

    Attributes:
        name: what varies along it (``"bias"``, ``"frequency"``).
        unit: its unit, free text; ``""`` when dimensionless.
        values: ``(m,)`` its values, one per element of the channel's last dimension, in that order.
    """

    name: Name
    unit: str = ""
    values: list[FiniteFloat] = Field(min_length=1)


class Capabilities(_Strict):
    """What an instrument can do.

    Attributes:
        axes: the controllable axes, in the order points list their coordinates.
        candidates: optional finite set of allowed points (a composition or
            pixel grid); when given, a request must name one of them.
        channels: the measured quantities; the first scalar channel is what a
            campaign models unless told otherwise.
        simulator: whether this is a simulated instrument.
        idempotent: whether measuring the same request twice is harmless
            (a simulator: yes; a dose-sensitive sample: no).
    """

    axes: list[Axis] = Field(min_length=1)
    candidates: list[Point] | None = None
    channels: list[Channel] = Field(min_length=1)
    simulator: bool = False
    idempotent: bool = True

    @model_validator(mode="after")
    def _consistent(self) -> Capabilities:
        if self.candidates is not None:
            d = len(self.axes)
            for p in self.candidates:
                if len(p) != d:
                    raise ValueError(f"candidate {p} has {len(p)} coordinates, the axes are {d}")
        return self


class Hello(_Strict):
    """agent -> controller: register."""

    instrument_id: Name
    versions: list[str] = Field(min_length=1)
    capabilities: Capabilities
    software: str = ""


class Welcome(_Strict):
    """controller -> agent: registered; the version both will speak and the heartbeat period."""

    version: str
    controller_session: str
    heartbeat_s: Annotated[float, Field(gt=0)]


class Measure(_Strict):
    """controller -> agent: measure one or more points.

    A retry reuses ``request_id``; the agent answers it from its result cache
    and never measures it twice. ``channels`` (1.3): the channels to read, by name (a campaign that models
    a cheap channel beside a costly one asks for one of them at a time); empty: every channel.
    """

    request_id: RequestId
    points: list[Point] = Field(min_length=1)
    parameters: dict[str, Any] = {}
    deadline_s: Annotated[float, Field(gt=0)] | None = None
    idempotent: bool = True
    channels: list[Name] = []


class Ack(_Strict):
    """agent -> controller: the request is accepted (or still running, in answer to a query)."""

    request_id: RequestId


RejectCode = Literal["out-of-limits", "off-grid", "wrong-dimension", "busy", "unknown-request", "invalid"]
REJECT_CODES: tuple[str, ...] = get_args(RejectCode)


class Reject(_Strict):
    """agent -> controller: the request will not be measured."""

    request_id: RequestId
    code: RejectCode
    reason: str


class Result(_Strict):
    """agent -> controller: what was measured.

    Attributes:
        request_id: the request answered.
        status: "ok", "failed" (the driver raised; see ``error``) or "aborted".
        points: the points actually measured (may differ from those asked).
        values: scalar channels, one value per point; ``null`` for a reading
            that is not a finite number (JSON has no NaN; the controller, not
            the wire, decides what such a reading means).
        arrays: array channels as buffer frames.
        started, finished: UTC ISO 8601 times.
        state: instrument state worth recording (free-form).
        error: for ``status == "failed"``, what went wrong (no traceback).
        sd: (1.2) for scalar channels whose readings carry their own uncertainty: one standard
            deviation per point (finite, >= 0, in the channel's unit), ``null`` where unknown; every
            channel named here is in ``values``, with as many entries.
        axes: (1.2) for array channels sampled along a spectral axis: that axis, by channel; its
            ``values`` have one entry per element of the array's last dimension.
    """

    request_id: RequestId
    status: Literal["ok", "failed", "aborted"]
    points: list[Point] = []
    values: dict[str, list[FiniteFloat | None]] = {}
    arrays: list[ArraySpec] = []
    started: str = ""
    finished: str = ""
    state: dict[str, Any] = {}
    error: str = ""
    sd: dict[str, list[Annotated[float, Field(ge=0, allow_inf_nan=False)] | None]] = {}
    axes: dict[str, SpectralAxisSpec] = {}

    @model_validator(mode="after")
    def _uncertainties_and_axes_fit(self) -> Result:
        for channel, spread in self.sd.items():
            if channel not in self.values:
                raise ValueError(f"sd names channel {channel!r}, which has no values")
            if len(spread) != len(self.values[channel]):
                raise ValueError(f"sd of {channel!r} has {len(spread)} entries, its values {len(self.values[channel])}")
        shapes = {a.channel: a.shape for a in self.arrays}
        for channel, axis in self.axes.items():
            if channel not in shapes:
                raise ValueError(f"axes names channel {channel!r}, which is not in arrays")
            if not shapes[channel] or shapes[channel][-1] != len(axis.values):
                raise ValueError(
                    f"the axis of {channel!r} has {len(axis.values)} values, the array's shape is {shapes[channel]}"
                )
        return self


class ResultAck(_Strict):
    """controller -> agent: the result is recorded; the agent may drop it from its cache later."""

    request_id: RequestId


class Query(_Strict):
    """controller -> agent: what became of this request? Answered by the cached ``result``, an ``ack``
    (still running) or a ``reject`` with code ``unknown-request``."""

    request_id: RequestId


class Abort(_Strict):
    """controller -> agent, control lane: stop the running measurement (all of them if no id)."""

    request_id: RequestId | None = None


class AbortReply(_Strict):
    request_id: RequestId | None = None
    aborted: bool
    detail: str = ""


class SafeState(_Strict):
    """controller -> agent, control lane: put the instrument in its safe state (beam off, stage parked)."""

    reason: str = ""


class SafeStateReply(_Strict):
    ok: bool
    detail: str = ""


class Release(_Strict):
    """controller -> agent, control lane (1.1): leave the safe state; measurements are accepted again."""

    reason: str = ""


class ReleaseReply(_Strict):
    """agent -> controller, control lane (1.1): whether the instrument left its safe state."""

    ok: bool
    detail: str = ""


class Bye(_Strict):
    """controller -> agent, instrument lane (1.1): the campaign ended; do not re-register until a new
    controller session appears (SPEC section 8).

    Attributes:
        reason: "done" (the campaign finished), "stopped" (by the operator) or "error" (it failed).
        detail: human-readable detail, never a traceback.
    """

    reason: Literal["done", "stopped", "error"]
    detail: str = ""


class Ping(_Strict):
    pass


class Pong(_Strict):
    pass


ErrorCode = Literal[
    "bad-signature",
    "replayed",
    "unknown-key",
    "unsupported-version",
    "unknown-msg-type",
    "missing-frame",
    "malformed",
    "too-large",
    "invalid-content",
    "buffer-mismatch",
    "not-registered",
    "internal",
    "wrong-direction",  # 1.1: a known msg_type this side never receives (answered only to 1.1 messages)
]
ERROR_CODES: tuple[str, ...] = get_args(ErrorCode)


class Error(_Strict):
    """Either side: a message could not be handled. Never carries a traceback."""

    code: ErrorCode
    message: str
    request_id: RequestId | None = None
    retryable: bool = False


MESSAGES: dict[str, type[BaseModel]] = {
    "hello": Hello,
    "welcome": Welcome,
    "measure": Measure,
    "ack": Ack,
    "reject": Reject,
    "result": Result,
    "result_ack": ResultAck,
    "query": Query,
    "abort": Abort,
    "abort_reply": AbortReply,
    "safe_state": SafeState,
    "safe_state_reply": SafeStateReply,
    "release": Release,
    "release_reply": ReleaseReply,
    "bye": Bye,
    "ping": Ping,
    "pong": Pong,
    "error": Error,
}

# Content fields added by a minor version: {msg_type: {field: the version that introduced it}}. They are
# optional (their defaults keep the older meaning); a message stamped an older version never carries them:
# the codec leaves them out when it encodes for an older peer and refuses them when it decodes one (SPEC 9).
FIELDS_SINCE: dict[str, dict[str, str]] = {"result": {"sd": "1.2", "axes": "1.2"}, "measure": {"channels": "1.3"}}

# Who sends each message type ("controller", "agent" or "either") and on which lane ("instrument",
# "control" or "either"); the version that introduced it. A receiver answers a message its own role
# sends with wrong-direction (SPEC section 5, check 9).
ROUTES: dict[str, tuple[str, str, str]] = {
    "hello": ("agent", "instrument", "1.0"),
    "welcome": ("controller", "instrument", "1.0"),
    "measure": ("controller", "instrument", "1.0"),
    "ack": ("agent", "instrument", "1.0"),
    "reject": ("agent", "instrument", "1.0"),
    "result": ("agent", "instrument", "1.0"),
    "result_ack": ("controller", "instrument", "1.0"),
    "query": ("controller", "instrument", "1.0"),
    "abort": ("controller", "control", "1.0"),
    "abort_reply": ("agent", "control", "1.0"),
    "safe_state": ("controller", "control", "1.0"),
    "safe_state_reply": ("agent", "control", "1.0"),
    "release": ("controller", "control", "1.1"),
    "release_reply": ("agent", "control", "1.1"),
    "bye": ("controller", "instrument", "1.1"),
    "ping": ("either", "either", "1.0"),
    "pong": ("either", "either", "1.0"),
    "error": ("either", "either", "1.0"),
}
