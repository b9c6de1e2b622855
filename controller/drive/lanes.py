"""Binding the link's two lanes: the controller's ROUTER sockets for the instrument lane and its control lane.

The control lane listens on the instrument port + 1
(:func:`abduce.instruments.agent.control_endpoint`), so an agent finds both
from one endpoint. :class:`~abduce.controller.drive.link.InstrumentLink`
binds them once, on its I/O thread, and owns them from then on.
"""

from __future__ import annotations

import zmq

from abduce.controller.drive.link_types import LinkError


def router(ctx: zmq.Context, endpoint: str, curve: tuple[bytes, bytes] | None) -> zmq.Socket:
    """A ROUTER socket bound to ``endpoint``; a CURVE server when ``curve`` (``(public, secret)``) is given."""
    s = ctx.socket(zmq.ROUTER)
    s.setsockopt(zmq.LINGER, 0)
    s.setsockopt(zmq.ROUTER_HANDOVER, 1)  # a reconnecting agent with the same identity takes over
    if curve is not None:
        s.curve_server = True
        s.curve_publickey, s.curve_secretkey = curve
    try:
        s.bind(endpoint)
    except zmq.ZMQError:
        s.close(linger=0)  # an open socket, bound or not, keeps the context's term() waiting
        raise
    return s


def bind_lanes(
    ctx: zmq.Context, endpoint: str, curve: tuple[bytes, bytes] | None
) -> tuple[zmq.Socket, zmq.Socket, str]:
    """Bind the instrument lane and its control lane (port + 1): ``(data, control, the endpoint bound)``.

    Port 0 (``tcp://127.0.0.1:0``) asks the system for a free port whose
    successor is free too; the endpoint actually bound is returned (the link
    makes it its :attr:`endpoint`). Retrying on a taken port + 1 is
    race-free: a port is only ever used while this link holds it.

    Raises:
        LinkError: code "bind", the control lane's port is taken (or no free pair in 100 tries).
        zmq.ZMQError: the instrument lane cannot be bound.
    """
    from abduce.instruments.agent import control_endpoint

    wildcard = endpoint.startswith("tcp://") and endpoint.rpartition(":")[2] in ("0", "*")
    for _ in range(100 if wildcard else 1):
        data = router(ctx, endpoint, curve)
        bound = data.last_endpoint.decode()
        try:
            control = router(ctx, control_endpoint(bound), curve)
        except zmq.ZMQError as exc:
            data.close(linger=0)
            if wildcard:
                continue
            raise LinkError(
                None,
                "bind",
                f"cannot bind {endpoint}'s control lane {control_endpoint(bound)} "
                f"(the instrument port + 1): {exc.strerror}",
            ) from None
        return data, control, bound
    raise LinkError(None, "bind", f"no free pair of ports for {endpoint} in 100 tries")
