"""Campaigns through the instrument protocol: the controller end of ``abduce run --listen``."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Annotated

import numpy as np
from pydantic import Field

from abduce.controller.core.measurements import Measurement, MeasureRequest
from abduce.controller.drive.audit import AuditLog
from abduce.controller.drive.link import Agent, InstrumentLink
from abduce.controller.errors import ConfigError
from abduce.controller.intake.readings import channel_points, check_channels, on_channels, pick_channel, to_measurement
from abduce.controller.recipe.recipe import Recipe
from abduce.instruments.keys import load_certificate, load_key
from abduce.instruments.protocol.codec import Codec, Keyring, pack_frames, version_key
from abduce.instruments.protocol.models import Measure


class LinkInstrument:
    """``f(MeasureRequest) -> Measurement`` over an :class:`InstrumentLink` (for :func:`run_campaign`).

    The measured value is the campaign's ``channel`` (default: the first
    scalar channel), or the ``reduction`` of an array channel (a spectrum,
    kept with the measurement); see :mod:`abduce.controller.intake.readings`. ``channels``: a campaign
    over several channels (``Campaign.channels.names``), each point read on the channel it names.
    """

    def __init__(
        self,
        link: InstrumentLink,
        agent: Agent,
        channel: str | None = None,
        timeout_s: float | None = None,
        in_flight: set[str] | None = None,
        reduction: str | None = None,
        channels: Sequence[str] | None = None,
    ):
        self.link, self.agent, self.timeout_s = link, agent, timeout_s
        self.in_flight = set(in_flight or ())  # requests sent before a restart: settled with query first
        self.channel = pick_channel(agent.capabilities, channel, reduction)
        self.channels = check_agent(agent, channels)  # a campaign over several channels, in order
        self.reduction = None
        if reduction is not None:
            from abduce.controller.intake.reduction import resolve_reduction

            self.reduction = resolve_reduction(reduction)

    def __call__(self, request: MeasureRequest) -> Measurement | list[Measurement]:
        """One ``measure`` message with every point of the request; one Measurement per point (``index``),
        or the one Measurement of a one-point request."""
        points, names = channel_points(request.points, self.channels)
        reply = self.link.measure(
            Measure(
                request_id=request.request_id,
                points=points,
                idempotent=self.agent.capabilities.idempotent,
                channels=sorted(set(names or ())),
            ),
            self.agent.instrument_id,
            timeout_s=self.timeout_s,
            settle=request.request_id in self.in_flight,
        )
        self.in_flight.discard(request.request_id)
        result = reply.result
        arrays = {
            a.channel: np.frombuffer(reply.buffers[a.buffer], dtype=a.dtype).reshape(a.shape) for a in result.arrays
        }
        raw = pack_frames(reply.raw)  # the whole reply, signature included
        out = [
            to_measurement(
                request.request_id,
                requested,
                result.points,
                result.values,
                arrays,
                names[i] if names else self.channel,
                self.reduction,
                index=i,
                sd=result.sd,
                axes={name: np.asarray(axis.values, dtype=float) for name, axis in result.axes.items()},
                raw=raw if i == 0 else None,  # journalled once, with the request's first point
                source=reply.key_id,
            )
            for i, requested in enumerate(points)
        ]
        out = on_channels(out, request.points, names)
        return out[0] if request.q == 1 else out


def check_agent(agent: Agent, channels: Sequence[str] | None) -> tuple[str, ...] | None:
    """``channels`` (a campaign over several channels), each a scalar channel ``agent`` declares, and an agent
    that reads only the channel asked for (protocol 1.3).

    Raises:
        ConfigError: a channel the instrument lacks or that is a spectrum; an agent older than 1.3 (it would read
            every channel at every point, and the costs the campaign counts would not be what it spent).
    """
    names = check_channels(agent.capabilities, channels)
    if names is not None and version_key(agent.version) < version_key("1.3"):
        raise ConfigError(
            f"instrument {agent.instrument_id!r} speaks protocol {agent.version}: a campaign over several channels "
            "needs 1.3, whose measure names the channel to read (an older agent reads every channel at every "
            "point, and the costs the campaign counts would not be what the instrument spent)"
        )
    return names


def channel_names(campaign) -> tuple[str, ...] | None:
    """The channels a campaign reads, in its order (the explained one first); None: one channel."""
    return None if campaign.channels is None else campaign.channels.names


class ListenRun(Recipe):
    """A campaign (its :class:`~abduce.controller.recipe.recipe.Recipe`) against whatever instrument
    registers on ``listen``, waited for ``wait_s`` seconds."""

    listen: str
    wait_s: Annotated[float, Field(gt=0)] = 60.0


def listening_link(
    listen: str,
    key: Path,
    audit: AuditLog | None = None,
    curve_secret: Path | None = None,
    curve_clients: Path | None = None,
) -> InstrumentLink:
    """The controller's end of the protocol, as ``abduce run --listen`` and the daemon open it: bound (when
    started) on ``listen``, signing with ``key``, every message in ``audit``, and CURVE-encrypted when
    ``curve_secret`` (this controller's secret certificate) is given, admitting the agents whose public
    certificates are in ``curve_clients``.

    Raises:
        ConfigError: a key or certificate that cannot be read, or a certificate without its secret half.
    """
    key_id, secret = load_key(key)
    curve = load_certificate(curve_secret)
    if curve is not None and curve[1] is None:
        raise ConfigError(f"{curve_secret} holds no secret key (use the .key_secret file)")
    return InstrumentLink(
        listen,
        Codec(Keyring({key_id: secret}), key_id),
        audit=audit,
        curve=curve,
        curve_clients=str(curve_clients) if curve_clients else None,
    )
