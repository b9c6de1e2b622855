"""Key files: the HMAC signing key (and optionally a CURVE key pair) of one identity.

A signing key file is JSON, readable by its owner only::

    {"key_id": "lab-controller", "hmac": "<64 hex characters>"}

With ``--curve`` a ZeroMQ CURVE certificate pair is written beside it
(``PATH.curve.key`` public, ``PATH.curve.key_secret`` secret), in the format
``zmq.auth`` reads, so a controller can allow a directory of agents' public
certificates.
"""

from __future__ import annotations

import json
import os
import secrets
import stat
from pathlib import Path

from abduce.controller.errors import ConfigError


def new_key(path: str | os.PathLike, key_id: str, curve: bool = False) -> list[Path]:
    """Write a new signing key (and a CURVE pair); refuses to overwrite. Returns the files written."""
    path = Path(path)
    if path.exists():
        raise ConfigError(f"{path} exists; abduce never overwrites a key")
    if not key_id or len(key_id) > 128:
        raise ConfigError("key id must be 1 to 128 characters")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump({"key_id": key_id, "hmac": secrets.token_hex(32)}, f)
        f.write("\n")
    written = [path]
    if curve:
        import zmq.auth

        public, secret = zmq.auth.create_certificates(str(path.parent), f"{path.name}.curve")
        os.chmod(secret, 0o600)
        written += [Path(public), Path(secret)]
    return written


def load_key(path: str | os.PathLike) -> tuple[str, bytes]:
    """``(key_id, secret)`` from a key file (mode 0600: one that its group or others may read is refused),
    with a clear error for anything else."""
    path = Path(path)
    try:
        mode = path.stat().st_mode
    except OSError:
        mode = 0  # a missing file: said below
    if os.name == "posix" and mode & 0o077:  # SPEC section 12: the owner's only
        raise ConfigError(
            f"key file {path} may be read by its group or others (mode {stat.S_IMODE(mode):o}): "
            f"a signing secret must be the owner's only; run `chmod 600 {path}`"
        )
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"key file {path} does not exist (make one with `abduce keys new {path}`)") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"key file {path} is not a JSON key file: {exc}") from None
    if not isinstance(obj, dict) or not isinstance(obj.get("key_id"), str) or not isinstance(obj.get("hmac"), str):
        raise ConfigError(f'key file {path} must hold {{"key_id": ..., "hmac": ...}}')
    try:
        secret = bytes.fromhex(obj["hmac"])
    except ValueError:
        raise ConfigError(f"key file {path}: hmac is not hex") from None
    if len(secret) < 32:
        raise ConfigError(f"key file {path}: the secret is shorter than 32 bytes")
    return obj["key_id"], secret


def load_certificate(path: str | os.PathLike | None) -> tuple[bytes, bytes | None] | None:
    """A CURVE certificate file (as ``abduce keys new --curve`` writes) -> ``(public, secret or None)``;
    None for None. The controller's daemon and command line, and the agent, all read theirs here.

    Raises:
        ConfigError: no such file, or not a CURVE certificate.
    """
    if path is None:
        return None
    import zmq.auth

    path = Path(path)
    if not path.exists():
        raise ConfigError(f"CURVE certificate {path} does not exist")
    try:
        return zmq.auth.load_certificate(str(path))
    except Exception as exc:  # zmq raises plain ValueError/OSError variants
        raise ConfigError(f"{path} is not a CURVE certificate: {exc}") from None
