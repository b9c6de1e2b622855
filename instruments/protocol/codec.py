"""Frames <-> messages: building, signing, checking and decoding (no sockets here).

A message on the wire (after any ROUTER routing identities)::

    [identities..., TAG, signature, header, parent_header, metadata, content, buffers...]

``signature`` is the lowercase hex HMAC-SHA256, under the key named by
``header.key_id``, of every frame after it, each prefixed by its length as an
8-byte big-endian unsigned integer (so bytes cannot be moved across frame
boundaries). ``decode`` checks, in this order (SPEC.md section 5, protocol 1.1), and
raises :class:`ProtocolError` with the code in brackets at the first failure:

1. the TAG frame and the five frames after it exist [missing-frame, drop];
2. no JSON frame exceeds ``max_json_bytes`` and no buffer ``max_buffer_bytes`` [too-large, drop];
3. the header is a JSON object matching :class:`Header` [malformed, drop];
4. its ``key_id`` is in the keyring [unknown-key, drop];
5. the signature matches [bad-signature, drop];
6. the signature was not seen before [replayed, drop];

   -- authenticated from here on; the signature enters the replay window --

7. the major version is supported [unsupported-version];
8. the ``msg_type`` is known [unknown-msg-type];
9. this side receives that ``msg_type`` (``role``; :data:`~models.ROUTES`) [wrong-direction;
   ``unknown-msg-type`` to a message stamped 1.0, which knows no other code];
10. parent header, metadata and content are JSON objects [malformed];
11. the content validates against its model, and holds no field newer than the header's version
    (:data:`~models.FIELDS_SINCE`) [invalid-content];
12. every array buffer exists and its size is ``prod(shape) * itemsize`` [buffer-mismatch].

Failures 1-6 come from peers that have not proved they hold a key: they are
logged (and audited) and dropped, never answered, so a stranger learns nothing,
not even that abduce listens. Every other failure is answered with an ``error``
message whose parent header is the offending header.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import struct
import uuid
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ValidationError

from abduce.controller.errors import AbduceError
from abduce.instruments.protocol.models import FIELDS_SINCE, MESSAGES, ROUTES, SUPPORTED_VERSIONS, TAG, Header

DROP_CODES = frozenset({"missing-frame", "too-large", "unknown-key", "bad-signature", "replayed"})
"""Codes that only ever mean "not authenticated" (``malformed`` is also answered, at check 10)."""

_DTYPE_SIZES = {"1": 1, "2": 2, "4": 4, "8": 8}


class ProtocolError(AbduceError):
    """A frame set that cannot be accepted.

    Attributes:
        code: one of ``models.ERROR_CODES``.
        drop: True when the sender is unauthenticated (checks 1-6): log, never answer.
        header: the offending header once authenticated (the parent of the error reply), else None.
        claimed: the header as read, verified or not (for the audit: who the sender claims to be).
        identities: the routing identities, for the reply.
        request_id: the request concerned, when known.
    """

    def __init__(
        self,
        code: str,
        message: str,
        header: Header | None = None,
        identities: Sequence[bytes] = (),
        request_id: str | None = None,
        claimed: Header | None = None,
    ) -> None:
        self.code, self.header, self.identities, self.request_id = code, header, tuple(identities), request_id
        self.claimed = claimed if claimed is not None else header
        self.drop = header is None
        super().__init__(f"[{code}] {message}")
        self.message = message


@dataclass(frozen=True)
class Message:
    """A decoded, verified message."""

    header: Header
    content: BaseModel
    parent: Header | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    buffers: tuple[bytes, ...] = ()
    identities: tuple[bytes, ...] = ()
    raw: tuple[bytes, ...] = ()  # the frames as received, from the tag on (for the journal)

    @property
    def msg_type(self) -> str:
        return self.header.msg_type


class Keyring:
    """Signing keys by id. Holding a key is what lets a peer talk to abduce.

    Args:
        keys: ``{key_id: secret}``, secrets of at least 32 bytes.
    """

    def __init__(self, keys: dict[str, bytes]) -> None:
        for key_id, secret in keys.items():
            if len(secret) < 32:
                raise ValueError(f"key {key_id!r} is shorter than 32 bytes")
        self._keys = dict(keys)

    def __contains__(self, key_id: str) -> bool:
        return key_id in self._keys

    def ids(self) -> list[str]:
        return list(self._keys)

    def sign(self, key_id: str, parts: Sequence[bytes]) -> bytes:
        message = b"".join(struct.pack(">Q", len(part)) + part for part in parts)
        return hmac.digest(self._keys[key_id], message, hashlib.sha256).hex().encode()


def _json(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), allow_nan=False).encode()


def _load_object(frame: bytes, what: str) -> dict:
    if frame == b"{}":  # the common empty parent header / metadata
        return {}
    try:
        obj = _DECODER.decode(frame.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, ValueError, RecursionError) as exc:
        raise ValueError(f"{what} is not JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise ValueError(f"{what} must be a JSON object, got {type(obj).__name__}")
    return obj


def _no_constants(name: str) -> float:
    raise ValueError(f"{name} is not JSON")


def _finite_float(text: str) -> float:
    # "1e400" is valid JSON but overflows to inf, which JSON cannot carry back out.
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text[:40]} is not a finite number")
    return value


_DECODER = json.JSONDecoder(parse_constant=_no_constants, parse_float=_finite_float)


def _validation_summary(exc: ValidationError) -> str:
    parts = [f"{'.'.join(str(p) for p in e['loc']) or '(root)'}: {e['msg']}" for e in exc.errors()[:5]]
    more = f" (+{exc.error_count() - 5} more)" if exc.error_count() > 5 else ""
    return "; ".join(parts) + more


def major(version: str) -> int:
    return int(version.split(".", 1)[0])


def version_key(version: str) -> tuple[int, int]:
    """``"1.10"`` -> ``(1, 10)``: versions compare numerically, major first."""
    a, _, b = version.partition(".")
    return int(a), int(b or 0)


class Codec:
    """Builds and checks messages for one process (one session).

    Args:
        keyring: the keys this side accepts.
        key_id: the key this side signs with (must be in the keyring).
        session: this process's session id (a fresh uuid by default).
        versions: protocol versions this side speaks; it stamps the highest until told otherwise
            (an agent stamps ``MAJOR.0`` until welcomed: :attr:`version` is settable).
        role: ``"controller"`` or ``"agent"``: a message of a type only this role sends is answered
            ``wrong-direction`` (check 9); None skips the check.
        max_json_bytes: largest header/parent/metadata/content frame accepted.
        max_buffer_bytes: largest buffer frame accepted.
        replay_window: how many recent signatures are remembered to refuse replays.
    """

    def __init__(
        self,
        keyring: Keyring,
        key_id: str,
        session: str | None = None,
        versions: Sequence[str] = SUPPORTED_VERSIONS,
        role: str | None = None,
        max_json_bytes: int = 1 << 20,
        max_buffer_bytes: int = 256 << 20,
        replay_window: int = 100_000,
    ) -> None:
        if key_id not in keyring:
            raise ValueError(f"signing key {key_id!r} is not in the keyring")
        self.keyring, self.key_id = keyring, key_id
        self.session = session or uuid.uuid4().hex
        self.versions = tuple(versions)
        self.version = max(self.versions, key=version_key)
        if role not in (None, "controller", "agent"):
            raise ValueError(f"role must be controller, agent or None, got {role!r}")
        self.role = role
        self.max_json_bytes, self.max_buffer_bytes = max_json_bytes, max_buffer_bytes
        self._seq = 0
        self._seen: OrderedDict[bytes, None] = OrderedDict()
        self._window = replay_window

    def header(self, msg_type: str) -> Header:
        """The next header (validated); :meth:`encode` builds the same fields without the model."""
        return Header.model_validate(self._next_header(msg_type))

    def _next_header(self, msg_type: str, version: str | None = None) -> dict[str, Any]:
        h = {
            "msg_id": f"{self.session}-{self._seq}",  # unique: the session is a uuid, seq never repeats in it
            "msg_type": msg_type,
            "version": version or self.version,
            "session": self.session,
            "seq": self._seq,
            "date": datetime.now(UTC).isoformat(),
            "key_id": self.key_id,
        }
        self._seq += 1
        return h

    def encode(
        self,
        content: BaseModel,
        parent: Header | None = None,
        metadata: dict[str, Any] | None = None,
        buffers: Sequence[bytes] = (),
        identities: Sequence[bytes] = (),
        version: str | None = None,
    ) -> list[bytes]:
        """The frames of one message (``msg_type`` from the content's model), stamped ``version`` (default:
        :attr:`version`; a controller stamps each agent's the version agreed with it).

        A field a minor version added (:data:`~models.FIELDS_SINCE`) is left out when it holds its default,
        and always when the stamp is older than that field: a peer that negotiated an older version never
        sees it (an agent's cached 1.2 result re-sent to a 1.1 controller loses its ``sd`` and ``axes``)."""
        msg_type = _TYPES[type(content)]
        header = self._next_header(msg_type, version)
        parts = [
            _json(header),
            parent.model_dump_json().encode() if parent else b"{}",
            _json(metadata) if metadata else b"{}",
            content.model_dump_json(exclude=_newer_fields(content, msg_type, header["version"])).encode(),
            *[bytes(b) for b in buffers],
        ]
        return [*identities, TAG, self.keyring.sign(self.key_id, parts), *parts]

    def decode(self, frames: Sequence[bytes]) -> Message:
        """Check and decode one message (see the module docstring for the order of checks)."""
        frames = [bytes(f) for f in frames]
        try:
            at = frames.index(TAG)
        except ValueError:
            raise ProtocolError("missing-frame", "no protocol tag frame") from None
        identities, rest = frames[:at], frames[at + 1 :]
        if len(rest) < 5:
            raise ProtocolError(
                "missing-frame", f"{len(rest)} frames after the tag, need at least 5", identities=identities
            )
        signature, h_raw, p_raw, m_raw, c_raw, *buffers = rest
        for name, raw in (("header", h_raw), ("parent_header", p_raw), ("metadata", m_raw), ("content", c_raw)):
            if len(raw) > self.max_json_bytes:
                raise ProtocolError(
                    "too-large",
                    f"{name} frame of {len(raw)} bytes exceeds {self.max_json_bytes}",
                    identities=identities,
                )
        for i, b in enumerate(buffers):
            if len(b) > self.max_buffer_bytes:
                raise ProtocolError(
                    "too-large", f"buffer {i} of {len(b)} bytes exceeds {self.max_buffer_bytes}", identities=identities
                )
        try:
            header = Header.model_validate(_load_object(h_raw, "header"))
        except (ValueError, ValidationError) as exc:
            detail = _validation_summary(exc) if isinstance(exc, ValidationError) else str(exc)
            raise ProtocolError("malformed", f"bad header: {detail}", identities=identities) from None
        if header.key_id not in self.keyring:
            raise ProtocolError("unknown-key", f"unknown key {header.key_id!r}", identities=identities, claimed=header)
        expected = self.keyring.sign(header.key_id, rest[1:])
        if not hmac.compare_digest(expected, signature):
            raise ProtocolError(
                "bad-signature",
                f"signature does not match key {header.key_id!r}",
                identities=identities,
                claimed=header,
            )
        if signature in self._seen:
            raise ProtocolError("replayed", "this signature was seen before", identities=identities, claimed=header)
        self._remember(signature)
        if major(header.version) not in {major(v) for v in self.versions}:
            raise ProtocolError(
                "unsupported-version",
                f"version {header.version} not supported; this side speaks {', '.join(self.versions)}",
                header,
                identities,
            )
        model = MESSAGES.get(header.msg_type)
        if model is None:
            raise ProtocolError("unknown-msg-type", f"unknown msg_type {header.msg_type!r}", header, identities)
        sender = ROUTES[header.msg_type][0]
        if self.role is not None and sender == self.role:
            code = "wrong-direction" if version_key(header.version) >= (1, 1) else "unknown-msg-type"
            raise ProtocolError(code, f"{header.msg_type!r} is sent by the {sender}, never to it", header, identities)
        try:
            parent_obj = _load_object(p_raw, "parent_header")
            parent = Header.model_validate(parent_obj) if parent_obj else None
            metadata = _load_object(m_raw, "metadata")
            content_obj = _load_object(c_raw, "content")
        except (ValueError, ValidationError) as exc:
            detail = _validation_summary(exc) if isinstance(exc, ValidationError) else str(exc)
            raise ProtocolError("malformed", detail, header, identities) from None
        rid = content_obj.get("request_id")  # for the error reply: only a valid one (SPEC 5), else none
        request_id = rid if isinstance(rid, str) and 1 <= len(rid) <= 128 else None
        try:
            content = model.model_validate(content_obj)
        except ValidationError as exc:
            raise ProtocolError(
                "invalid-content", f"{header.msg_type}: {_validation_summary(exc)}", header, identities, request_id
            ) from None
        for name, since in FIELDS_SINCE.get(header.msg_type, {}).items():
            if name in content_obj and version_key(since) > version_key(header.version):
                raise ProtocolError(
                    "invalid-content",
                    f"{header.msg_type}: field {name!r} is new in {since}; the message is stamped {header.version}",
                    header,
                    identities,
                    request_id,
                )
        for spec in getattr(content, "arrays", ()):
            if spec.buffer >= len(buffers):
                raise ProtocolError(
                    "buffer-mismatch",
                    f"array {spec.channel!r} names buffer {spec.buffer}; {len(buffers)} sent",
                    header,
                    identities,
                    request_id,
                )
            want = math.prod(spec.shape) * _DTYPE_SIZES[spec.dtype[-1]]
            if len(buffers[spec.buffer]) != want:
                raise ProtocolError(
                    "buffer-mismatch",
                    f"array {spec.channel!r}: {spec.dtype} {spec.shape} needs {want} bytes, buffer has "
                    f"{len(buffers[spec.buffer])}",
                    header,
                    identities,
                    request_id,
                )
        return Message(header, content, parent, metadata, tuple(buffers), tuple(identities), tuple(frames[at:]))

    def _remember(self, signature: bytes) -> None:
        self._seen[signature] = None
        if len(self._seen) > self._window:
            self._seen.popitem(last=False)


_TYPES = {model: name for name, model in MESSAGES.items()}


def _newer_fields(content: BaseModel, msg_type: str, version: str) -> set[str] | None:
    """The minor-version fields of ``content`` to leave out when it is stamped ``version``: those newer than
    the stamp, and those holding their default (so an older message's bytes are unchanged); None: none."""
    added = FIELDS_SINCE.get(msg_type)
    if not added:
        return None
    fields = type(content).model_fields
    return {
        name
        for name, since in added.items()
        if version_key(since) > version_key(version) or getattr(content, name) == fields[name].get_default()
    } or None


def pack_frames(frames: Sequence[bytes]) -> bytes:
    """Frames as one byte string: each as a 4-byte big-endian length, then its bytes."""
    return b"".join(len(f).to_bytes(4, "big") + bytes(f) for f in frames)


def unpack_frames(blob: bytes) -> tuple[bytes, ...]:
    """The inverse of :func:`pack_frames`; a short or overlong blob is a ``ValueError``."""
    out, i = [], 0
    while i < len(blob):
        if i + 4 > len(blob):
            raise ValueError("truncated frame length")
        n = int.from_bytes(blob[i : i + 4], "big")
        if i + 4 + n > len(blob):
            raise ValueError("truncated frame")
        out.append(blob[i + 4 : i + 4 + n])
        i += 4 + n
    return tuple(out)
