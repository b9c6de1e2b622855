"""Where things listen, and whether that stays on this machine: the one loopback check.

The link (a ZeroMQ endpoint, ``tcp://host:port``), the web view (``HOST:PORT``) and the daemon's
config (``[daemon] web``) all ask "is this loopback?": beyond it the link needs CURVE keys and the web
view a token. One function answers for all of them, by address (``ipaddress``: all of ``127.0.0.0/8``
and ``::1``) or by name (``localhost``, in any case), so ``tcp://LOCALHOST:5555`` and
``127.1.2.3:8765`` read the same everywhere.
"""

from __future__ import annotations

import ipaddress
import re

from abduce.controller.errors import ConfigError

MIN_TOKEN = 16  # characters
LOOPBACK_NAMES = ("localhost",)


def loopback(host: str) -> bool:
    """Whether ``host`` names this machine only (``127.0.0.0/8``, ``::1``, ``localhost``; brackets allowed)."""
    host = host.strip("[]")
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def endpoint_is_loopback(endpoint: str) -> bool:
    """Whether a ZeroMQ endpoint stays on this machine: ``inproc://`` and ``ipc://`` always,
    ``tcp://host:port`` when ``host`` is :func:`loopback`."""
    scheme, _, rest = endpoint.partition("://")
    if scheme in ("inproc", "ipc"):
        return True
    return loopback(rest.rpartition(":")[0])


def check_bind(
    host: str, token: str | None, token_from: str = "--token, or ABDUCE_WEB_TOKEN in the environment"
) -> None:
    """Refuse a web bind beyond loopback without a token, and a short token anywhere.

    Args:
        token_from: where the user gives the token (named in the error).

    Raises:
        ConfigError: says which, and how to make a token.
    """
    make = 'make one with: python -c "import secrets; print(secrets.token_urlsafe(32))"'
    if token is not None and len(token) < MIN_TOKEN:
        raise ConfigError(f"the web view's token must be at least {MIN_TOKEN} characters; {make}")
    if token is None and not loopback(host):
        raise ConfigError(f"the web view binds {host}, beyond loopback, so it needs a token ({token_from}); {make}")


def parse_address(address: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:8765`` for IPv6) -> (host, port).

    Raises:
        ConfigError: not of that shape.
    """
    m = re.fullmatch(r"\[([0-9A-Fa-f:.]+)\]:(\d{1,5})|([A-Za-z0-9_.-]+):(\d{1,5})", address.strip())
    if m is None or int(m.group(2) or m.group(4)) > 65535:
        raise ConfigError(f"web address {address!r}: use HOST:PORT, e.g. 127.0.0.1:8765 or [::1]:8765")
    return (m.group(1) or m.group(3)), int(m.group(2) or m.group(4))
