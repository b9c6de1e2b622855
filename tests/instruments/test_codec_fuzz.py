"""Property-based: ``Codec.decode`` accepts exactly the validly signed messages, and refuses
everything else with the code SPEC.md section 5 assigns to it.

The oracle is written from the SPEC, not from the codec:

* **What may be accepted.** Every frame list this file signs with a key's real
  secret, under that key's id, is recorded in ``SIGNED``. A decoded
  ``Message`` must be one of them, byte for byte from the TAG on (the frames
  before the first TAG are routing identities, SPEC section 2), and its
  header, content, parent, metadata, buffers and identities must be what
  those frames say.
* **Which code a refusal carries.** Each strategy makes one kind of change
  and says which code that change must give, e.g. a flipped signature byte is
  ``bad-signature``, a dropped frame of a message without buffers is
  ``missing-frame``, a header naming a key that is not in the keyring is
  ``unknown-key`` whatever the signature, a correctly signed header that is
  not a JSON object is ``malformed``, a second delivery is ``replayed``.
  Where a change can land in more than one check (a random byte flipped in
  the header), :func:`spec_outcome` -- the section 5 checks transcribed in
  order, with its own HMAC, JSON and replay bookkeeping -- names the first
  one that fails; the message models are the schema of sections 4 and 6
  (``test_spec.py`` ties them to the SPEC's JSON schemas).
* Every refusal is also checked for what the SPEC says travels with it:
  nothing is answered before the signature is verified (protocol 1.1), so
  every failure of checks 1 to 6 -- ``missing-frame``, ``too-large``, a
  ``malformed`` header, ``unknown-key``, ``bad-signature``, ``replayed`` -- is
  a drop, and every later one is answered; the offending header is carried
  from check 7 on and never before; the identities are the frames before the
  TAG; ``invalid-content`` and ``buffer-mismatch`` carry the content's string
  ``request_id``.

Everything is fixed: the secrets, the headers (no clock, no uuid), and so the
bytes hypothesis mutates. About 10,400 examples in all, 5,000 of them frame lists that fail checks 1 to 3
(~25 s on one core).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import struct
from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from abduce.instruments.protocol import FIELDS_SINCE, MESSAGES, TAG, Codec, Keyring, Message, ProtocolError
from abduce.instruments.protocol.models import (
    Abort,
    Ack,
    ArraySpec,
    Axis,
    Capabilities,
    Channel,
    Error,
    Header,
    Hello,
    Measure,
    Ping,
    Query,
    Reject,
    Result,
    Welcome,
)

# ---------------------------------------------------------------------------- keys and limits

SECRETS = {"lab": bytes(range(32)), "other": bytes(range(100, 132))}
FOREIGN = bytes(range(200, 232))  # a secret no keyring holds
KEYRING = Keyring(SECRETS)
JSON_LIMIT = BUFFER_LIMIT = 4096  # small, so that the too-large check is reached too
DROP = {"missing-frame", "too-large", "unknown-key", "bad-signature", "replayed"}  # SPEC 5: checks 1-6 (+ a bad header)
SESSION = "5e551011" * 4
DATE = "2025-01-02T03:04:05.678901+00:00"

FUZZ = settings(
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)


def receiver() -> Codec:
    return Codec(KEYRING, "other", max_json_bytes=JSON_LIMIT, max_buffer_bytes=BUFFER_LIMIT)


# ---------------------------------------------------------------------------- signing (SPEC section 3)

SIGNED: set[tuple[bytes, ...]] = set()  # (signature, header, parent, metadata, content, *buffers), validly signed


def mac(secret: bytes, parts: list[bytes]) -> bytes:
    """SPEC section 3: lowercase hex HMAC-SHA256 over each frame after the signature, length-prefixed."""
    m = hmac.new(secret, digestmod=hashlib.sha256)
    for part in parts:
        m.update(struct.pack(">Q", len(part)))
        m.update(part)
    return m.hexdigest().encode()


def signed(parts: list[bytes], secret: bytes) -> list[bytes]:
    """``[TAG, signature, *parts]``; recorded in SIGNED when ``secret`` is the real secret of the
    key the header names (the only case that is a validly signed message)."""
    frames = [TAG, mac(secret, parts), *parts]
    try:
        claimed = json.loads(parts[0]).get("key_id")
    except (ValueError, AttributeError, UnicodeDecodeError, RecursionError):
        claimed = None
    if isinstance(claimed, str) and SECRETS.get(claimed) == secret:
        SIGNED.add(tuple(frames[1:]))
    return frames


def header(msg_type: str, seq: int, key_id: str = "lab", **changes) -> dict:
    h = {
        "msg_id": f"{SESSION}-{seq}",
        "msg_type": msg_type,
        "version": "1.0",
        "session": SESSION,
        "seq": seq,
        "date": DATE,
        "key_id": key_id,
    }
    h.update(changes)
    return h


def dumps(obj) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


# ---------------------------------------------------------------------------- valid messages

MEASURE_HEADER = header("measure", 900, key_id="other")
BASES: list[tuple[dict, dict | None, dict, object, tuple[bytes, ...]]] = [
    # (header, parent header, metadata, content, buffers)
    (header("ping", 0), None, {}, Ping(), ()),
    (header("ack", 1), MEASURE_HEADER, {"operator": "ab"}, Ack(request_id="r-1"), ()),
    (header("query", 2), None, {}, Query(request_id="r-1"), ()),
    (header("abort", 3), None, {}, Abort(), ()),
    (header("welcome", 4), None, {}, Welcome(version="1.0", controller_session="c", heartbeat_s=1.0), ()),
    (header("reject", 5), MEASURE_HEADER, {}, Reject(request_id="r-1", code="busy", reason="later"), ()),
    (header("error", 6), None, {}, Error(code="internal", message="oops"), ()),
    (
        header("measure", 7, key_id="other"),
        None,
        {"note": [1, "two", None]},
        Measure(request_id="r-1", points=[[0.5, 1.0]], parameters={"dwell": 1}),
        (),
    ),
    (
        header("hello", 8),
        None,
        {},
        Hello(
            instrument_id="i",
            versions=["1.0"],
            capabilities=Capabilities(
                axes=[Axis(name="x", min=0, max=1)], candidates=[[0.5]], channels=[Channel(name="y")]
            ),
        ),
        (),
    ),
    (
        header("result", 9),
        MEASURE_HEADER,
        {},
        Result(
            request_id="r-1",
            status="ok",
            points=[[0.5]],
            values={"y": [1.0, None]},
            arrays=[
                ArraySpec(channel="a", buffer=0, dtype="<f8", shape=[2]),
                ArraySpec(channel="b", buffer=1, dtype="|u1", shape=[3]),
            ],
        ),
        (b"\0" * 16, b"abc"),
    ),
]
WITH_BUFFERS = {i for i, base in enumerate(BASES) if base[4]}


def parts_of(i: int) -> list[bytes]:
    h, parent, metadata, content, buffers = BASES[i]
    return [dumps(h), dumps(parent) if parent else b"{}", dumps(metadata), content_json(h, content), *buffers]


def content_json(h: dict, content) -> bytes:
    """The content as a sender of ``h["version"]`` writes it (SPEC 9): without the fields a later minor
    version added, which the base messages leave at their defaults."""
    newer = set(FIELDS_SINCE.get(h["msg_type"], {}))
    return content.model_dump_json(exclude=newer or None).encode()


def _version(v: str) -> tuple[int, int]:
    major, minor = v.split(".")
    return int(major), int(minor)


def base(i: int) -> list[bytes]:
    """Base message ``i``, validly signed under the key its header names."""
    return signed(parts_of(i), SECRETS[BASES[i][0]["key_id"]])


# ---------------------------------------------------------------------------- the SPEC's section 5, in order


def strict_json(frame: bytes):
    """SPEC section 2/10: UTF-8 JSON with no NaN/Infinity and no number overflowing a double."""

    def no_constant(name):
        raise ValueError(name)

    def finite(text):
        value = float(text)
        if not math.isfinite(value):
            raise ValueError(text)
        return value

    return json.loads(frame.decode("utf-8"), parse_constant=no_constant, parse_float=finite)


def json_object(frame: bytes) -> dict | None:
    try:
        obj = strict_json(frame)
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
    return obj if isinstance(obj, dict) else None


def valid_header(frame_or_obj) -> Header | None:
    obj = json_object(frame_or_obj) if isinstance(frame_or_obj, bytes) else frame_or_obj
    if obj is None:
        return None
    try:
        return Header.model_validate(obj)
    except ValidationError:
        return None


ACCEPT = "accept"


@dataclass
class Want:
    code: str  # an error code, or ACCEPT
    header: Header | None = None  # the header the refusal must carry (checks 7 to 11)
    identities: tuple[bytes, ...] | None = None
    request_id: str | None = None
    content: object = None  # for ACCEPT: the content model


def spec_outcome(frames: list[bytes], seen: set[bytes]) -> Want:
    """What SPEC section 5 says a receiver holding SECRETS does with ``frames``, having
    authenticated the signatures in ``seen`` (updated as the SPEC's replay window is)."""
    if TAG not in frames:
        return Want("missing-frame")
    at = frames.index(TAG)  # the first TAG; before it, routing
    ids, rest = tuple(frames[:at]), frames[at + 1 :]
    if len(rest) < 5:
        return Want("missing-frame", identities=ids)
    signature, h_raw, p_raw, m_raw, c_raw, *buffers = rest
    if any(len(f) > JSON_LIMIT for f in (h_raw, p_raw, m_raw, c_raw)) or any(len(b) > BUFFER_LIMIT for b in buffers):
        return Want("too-large", identities=ids)
    h = valid_header(h_raw)
    if h is None:
        return Want("malformed", identities=ids)
    if h.key_id not in SECRETS:
        return Want("unknown-key", identities=ids)
    if signature != mac(SECRETS[h.key_id], rest[1:]):
        return Want("bad-signature", identities=ids)
    if signature in seen:
        return Want("replayed", identities=ids)
    seen.add(signature)
    if int(h.version.split(".")[0]) != 1:  # this receiver speaks 1.2, 1.1 and 1.0
        return Want("unsupported-version", h, ids)
    if h.msg_type not in MESSAGES:
        return Want("unknown-msg-type", h, ids)
    parent, metadata, content = json_object(p_raw), json_object(m_raw), json_object(c_raw)
    if parent is None or metadata is None or content is None or (parent and valid_header(parent) is None):
        return Want("malformed", h, ids)
    rid = content.get("request_id") if isinstance(content.get("request_id"), str) else None
    try:
        model = MESSAGES[h.msg_type].model_validate(content)
    except ValidationError:
        return Want("invalid-content", h, ids, rid)
    for name, since in FIELDS_SINCE.get(h.msg_type, {}).items():  # SPEC 9: a field newer than the stamp
        if name in content and _version(since) > _version(h.version):
            return Want("invalid-content", h, ids, rid)
    for spec in getattr(model, "arrays", ()):
        itemsize = int(spec.dtype[-1])  # f8 -> 8, u1 -> 1, ... (SPEC section 10)
        size = itemsize
        for n in spec.shape:
            size *= n
        if spec.buffer >= len(buffers) or len(buffers[spec.buffer]) != size:
            return Want("buffer-mismatch", h, ids, rid)
    return Want(ACCEPT, identities=ids, content=model)


def check(codec: Codec, frames: list[bytes], seen: set[bytes], want: str | None = None) -> Want:
    """Decode ``frames`` and hold the result to the SPEC; ``want``, when given, is the outcome
    the kind of change made says it must be (and the transcription must agree)."""
    expected = spec_outcome(frames, seen)
    if want is not None:
        assert expected.code == want, f"the SPEC transcription says {expected.code}, the change made says {want}"
    try:
        msg = codec.decode(frames)
    except ProtocolError as exc:
        assert exc.code == expected.code, f"expected {expected.code}, got {exc}"
        # SPEC 5 (1.1): unanswered exactly when a check before the signature's acceptance failed
        assert exc.drop is (expected.header is None)
        if exc.code != "malformed":  # malformed is both: dropped at check 3, answered at check 10
            assert exc.drop is (exc.code in DROP)
        if expected.identities is not None:
            assert exc.identities == expected.identities
        assert exc.header == expected.header
        if exc.code in ("invalid-content", "buffer-mismatch"):
            assert exc.request_id == expected.request_id
        return expected
    assert expected.code == ACCEPT, f"accepted what the SPEC refuses with {expected.code}"
    assert isinstance(msg, Message)
    at = frames.index(TAG)
    assert msg.raw == tuple(frames[at:]) and msg.raw[1:] in SIGNED, "accepted a message nobody signed"
    assert msg.identities == tuple(frames[:at])
    _, h_raw, p_raw, m_raw, c_raw, *buffers = frames[at + 1 :]
    assert msg.header == valid_header(h_raw) and msg.content == expected.content
    assert type(msg.content) is MESSAGES[msg.header.msg_type]
    parent = json_object(p_raw)
    assert msg.parent == (valid_header(parent) if parent else None)
    assert msg.metadata == json_object(m_raw)
    assert msg.buffers == tuple(buffers)
    return expected


# ---------------------------------------------------------------------------- strategies

base_index = st.integers(min_value=0, max_value=len(BASES) - 1)
index = st.integers(min_value=0, max_value=1 << 20)  # taken modulo a length
frame_bytes = st.one_of(
    st.binary(max_size=64),
    st.just(TAG),
    st.just(b"{}"),
    st.sampled_from([b"[]", b"null", b"{", b'{"a":1}', b"\xff", b"NaN", b"1e400", b"0" * 5000]),
)
json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
    st.sampled_from(["1.0", "2.0", "NaN", "inf", "<f8", "f1", "r-1", "ok", "lab", "other", "", "x" * 200]),
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=12,
)
not_an_object = st.one_of(
    st.builds(dumps, json_values).filter(lambda b: not b.startswith(b"{")),
    st.sampled_from(
        [
            b"",
            b"{",
            b"\xff{}",
            b"\xef\xbb\xbf{}",
            b'{"a":NaN}',
            b'{"a":1e400}',
            b'{"a":Infinity}',
            b'{"a":1}{"b":2}',
            b"[{}]",
            b'"{}"',
            b"{'a': 1}",
        ]
    ),
)
identities = st.lists(st.binary(max_size=8), min_size=1, max_size=3)  # shorter than the TAG: never one
unknown_key_ids = st.text(min_size=1, max_size=20).filter(lambda k: k not in SECRETS)


def changed(data, frame: bytes) -> bytes:
    """``frame`` with one change (flip, truncate, insert, replace); never equal to it."""
    how = data.draw(st.sampled_from(["flip", "truncate", "insert", "replace"]))
    if how == "flip" and frame:
        pos = data.draw(index) % len(frame)
        b = bytearray(frame)
        b[pos] ^= data.draw(st.integers(min_value=1, max_value=255))
        return bytes(b)
    if how == "truncate" and frame:
        return frame[: data.draw(index) % len(frame)]
    if how == "insert":
        pos = data.draw(index) % (len(frame) + 1)
        return frame[:pos] + data.draw(st.binary(min_size=1, max_size=32)) + frame[pos:]
    return data.draw(frame_bytes.filter(lambda b: b != frame))


# ---------------------------------------------------------------------------- unsigned: frames from anywhere


@settings(FUZZ, max_examples=500)
@given(st.lists(frame_bytes, max_size=12))
def test_random_frame_lists_are_never_accepted(frames):
    assert check(receiver(), frames, set()).code != ACCEPT


@settings(FUZZ, max_examples=5000)
@given(
    st.one_of(
        st.lists(frame_bytes.filter(lambda f: f != TAG), max_size=8),  # check 1: no TAG
        st.builds(
            lambda a, b: [*a, TAG, *b], st.lists(st.binary(max_size=8), max_size=3), st.lists(frame_bytes, max_size=4)
        ),
        st.builds(  # check 2: a frame past the limit
            lambda i, k: (lambda f: f[:k] + [b"x" * (JSON_LIMIT + 1)] + f[k + 1 :])(base(i)),
            base_index,
            st.integers(2, 5),
        ),
        st.builds(lambda i, h: [TAG, b"0" * 64, h, *parts_of(i)[1:]], base_index, not_an_object),  # check 3
    )
)
def test_nothing_that_fails_checks_1_to_3_is_answered(frames):
    """Protocol 1.1: a frame list too broken to carry a verifiable signature is dropped, never answered."""
    want = check(receiver(), frames, set())
    assert want.code in {"missing-frame", "too-large", "malformed"} and want.header is None


@settings(FUZZ, max_examples=200)
@given(st.lists(frame_bytes.filter(lambda f: f != TAG), max_size=8), st.lists(frame_bytes, max_size=4), st.booleans())
def test_no_tag_or_fewer_than_five_frames_after_it_is_missing_frame(before, after, tagged):
    check(receiver(), [*before, TAG, *after] if tagged else before, set(), "missing-frame")


# ---------------------------------------------------------------------------- unsigned: a valid message tampered with


@settings(FUZZ, max_examples=400)
@given(base_index, st.data())
def test_a_changed_signature_is_bad_signature(i, data):
    frames = base(i)
    how = data.draw(st.sampled_from(["changed", "upper-case", "foreign-secret", "other-key"]))
    if how == "changed":
        frames[1] = changed(data, frames[1])
    elif how == "upper-case":  # SPEC section 3: upper-case hex does not match
        frames[1] = frames[1].upper() if frames[1].upper() != frames[1] else frames[1][:-1] + b"A"
    elif how == "foreign-secret":
        frames[1] = mac(FOREIGN, frames[2:])
    else:  # right for the other key in the keyring, not for the one the header names
        frames[1] = mac(SECRETS["lab" if BASES[i][0]["key_id"] == "other" else "other"], frames[2:])
    check(receiver(), frames, set(), "bad-signature")


@settings(FUZZ, max_examples=500)
@given(base_index, st.data())
def test_a_changed_signed_frame_after_the_header_is_bad_signature(i, data):
    frames = base(i)
    k = 3 + data.draw(index) % (len(frames) - 3)  # parent, metadata, content or a buffer
    frames[k] = changed(data, frames[k])
    check(receiver(), frames, set(), "too-large" if len(frames[k]) > JSON_LIMIT else "bad-signature")


@settings(FUZZ, max_examples=500)
@given(base_index, st.data())
def test_a_changed_header_is_malformed_unknown_key_or_bad_signature(i, data):
    frames = base(i)
    frames[2] = changed(data, frames[2])
    obj = json_object(frames[2])
    if len(frames[2]) > JSON_LIMIT:
        want = "too-large"
    elif valid_header(frames[2]) is None:
        want = "malformed"
    elif obj["key_id"] not in SECRETS:
        want = "unknown-key"
    else:
        want = "bad-signature"  # a valid header, but not the bytes that were signed
    check(receiver(), frames, set(), want)


@settings(FUZZ, max_examples=200)
@given(base_index, st.data())
def test_a_dropped_frame(i, data):
    frames = base(i)
    k = data.draw(index) % len(frames)
    dropped = frames.pop(k)
    if dropped == TAG or i not in WITH_BUFFERS:
        want = "missing-frame"  # no TAG, or four frames after it
    elif k in (1, 2):  # the frames move up: the header's place holds the parent header
        want = "malformed" if BASES[i][1] is None else "bad-signature"  # {}, or a valid header signed over other bytes
    else:
        want = "bad-signature"  # a signed frame is missing
    check(receiver(), frames, set(), want)


@settings(FUZZ, max_examples=200)
@given(base_index, st.data())
def test_a_duplicated_frame(i, data):
    frames = base(i)
    k = data.draw(index) % len(frames)
    frames.insert(k, frames[k])
    # a second TAG or signature pushes the signature into the header's place; anything else adds a signed frame
    check(receiver(), frames, set(), "malformed" if k in (0, 1) else "bad-signature")


@settings(FUZZ, max_examples=200)
@given(base_index, st.lists(frame_bytes.filter(lambda f: len(f) <= BUFFER_LIMIT), min_size=1, max_size=3))
def test_extra_frames_are_bad_signature(i, extra):
    check(receiver(), base(i) + extra, set(), "bad-signature")


@settings(FUZZ, max_examples=200)
@given(base_index, identities, st.data())
def test_routing_identities_are_not_part_of_the_message(i, ids, data):
    frames = base(i)
    check(receiver(), ids + frames, set(), ACCEPT)
    # a TAG before them moves the message boundary: an identity (or the real TAG) lands in the header's place
    check(receiver(), [*ids, TAG, *ids, *frames], set(), "malformed")


@settings(FUZZ, max_examples=500)
@given(base_index, st.data())
def test_any_tampering_is_refused_unless_nothing_signed_changed(i, data):
    """Several changes at once; accepted only when the signed frames came out unchanged."""
    frames = base(i)
    original = list(frames)
    for _ in range(data.draw(st.integers(min_value=1, max_value=3))):
        op = data.draw(st.sampled_from(["change", "truncate", "duplicate", "drop", "swap", "replace", "extend"]))
        n = len(frames)
        if n == 0:
            break
        k = data.draw(index) % n
        if op == "change":
            frames[k] = changed(data, frames[k])
        elif op == "truncate":
            frames[k] = frames[k][: data.draw(index) % (len(frames[k]) + 1)]
        elif op == "duplicate":
            frames.insert(k, frames[k])
        elif op == "drop":
            del frames[k]
        elif op == "swap":
            j = data.draw(index) % n
            frames[k], frames[j] = frames[j], frames[k]
        elif op == "replace":
            frames[k] = data.draw(frame_bytes)
        else:
            frames += data.draw(st.lists(frame_bytes, min_size=1, max_size=3))
    got = check(receiver(), frames, set())
    # accepted exactly when the frames from the first TAG on are the signed ones (swapping two {} frames
    # changes nothing; a frame ending up before the TAG is a routing identity)
    assert (got.code == ACCEPT) is (TAG in frames and frames[frames.index(TAG) :] == original)


# ---------------------------------------------------------------------------- forged: signed without the secret


@settings(FUZZ, max_examples=250)
@given(base_index, st.data())
def test_forgeries_are_unknown_key_or_bad_signature_whatever_they_carry(i, data):
    h, parts = dict(BASES[i][0]), parts_of(i)
    claim = data.draw(st.one_of(st.sampled_from(sorted(SECRETS)), unknown_key_ids))
    h["key_id"] = claim
    parts[0] = dumps(h)
    if data.draw(st.booleans()):  # content is never looked at before the signature is checked
        parts[3] = data.draw(
            st.one_of(not_an_object, st.builds(dumps, json_values)).filter(lambda b: len(b) <= JSON_LIMIT)
        )
    # the signer holds some secret, but not the one of the key it claims
    secret = data.draw(st.sampled_from([s for k, s in [*SECRETS.items(), ("foreign", FOREIGN)] if k != claim]))
    frames = signed(parts, secret)
    check(receiver(), frames, set(), "bad-signature" if claim in SECRETS else "unknown-key")
    # an unknown key id is refused even when the signature is right for some key
    if claim not in SECRETS:
        check(receiver(), signed(parts, SECRETS["lab"]), set(), "unknown-key")


# ---------------------------------------------------------------------------- re-signed by a key holder


@settings(FUZZ, max_examples=250)
@given(base_index, st.data())
def test_a_correctly_signed_header_that_is_not_a_valid_header_is_malformed(i, data):
    parts = parts_of(i)
    h = dict(BASES[i][0])
    how = data.draw(st.sampled_from(["not-object", "missing", "extra", "type", "version"]))
    if how == "not-object":
        parts[0] = data.draw(not_an_object)
    else:
        if how == "missing":
            del h[data.draw(st.sampled_from(sorted(h)))]
        elif how == "extra":
            h[data.draw(st.text(min_size=1, max_size=8).filter(lambda k: k not in h))] = data.draw(json_values)
        elif how == "type":  # SPEC section 4: strings of 1 to 64 (128) characters, seq an integer >= 0
            key = data.draw(st.sampled_from(["msg_id", "msg_type", "session", "key_id", "seq"]))
            h[key] = data.draw(
                st.sampled_from([None, [], {}, "", "x" * 200, -1] if key != "seq" else [None, "one", -1, 0.5, []])
            )
        else:  # "MAJOR.MINOR", ASCII digits, 1 to 9 each
            h["version"] = data.draw(
                st.sampled_from(["1", "1.0.0", "v1.0", "1.x", "", "1.0 ", "1234567890.0", "١.٠", 1.0])
            )
        parts[0] = dumps(h)
    check(receiver(), signed(parts, SECRETS["lab"]), set(), "malformed")


@settings(FUZZ, max_examples=250)
@given(base_index, st.data())
def test_the_checks_after_the_signature_in_order(i, data):
    """Correctly signed: version, then msg_type, then the other JSON frames, then the content."""
    h, parts = dict(BASES[i][0]), parts_of(i)
    how = data.draw(st.sampled_from(["version", "minor", "type", "parent", "parent-header", "metadata", "content"]))
    want = {
        "version": "unsupported-version",
        "minor": ACCEPT,
        "type": "unknown-msg-type",
        "parent": "malformed",
        "parent-header": "malformed",
        "metadata": "malformed",
        "content": "malformed",
    }[how]
    if how == "version":
        h["version"] = data.draw(st.sampled_from(["0.1", "2.0", "10.0", "0.0", "999999999.1"]))
        parts[3] = data.draw(st.sampled_from([parts[3], b"garbage"]))  # never reached
    elif how == "minor":
        h["version"] = data.draw(st.sampled_from(["1.1", "1.999999999", "01.0"]))
    elif how == "type":
        h["msg_type"] = data.draw(st.text(min_size=1, max_size=20).filter(lambda t: t not in MESSAGES))
        parts[3] = data.draw(st.sampled_from([parts[3], b"garbage"]))
    elif how == "parent-header":  # a non-empty parent header must itself be a header
        broken = dict(MEASURE_HEADER)
        del broken[data.draw(st.sampled_from(sorted(broken)))]
        parts[1] = data.draw(st.sampled_from([dumps(broken), b'{"a":1}', dumps({**MEASURE_HEADER, "seq": -1})]))
    else:
        parts[{"parent": 1, "metadata": 2, "content": 3}[how]] = data.draw(not_an_object)
    parts[0] = dumps(h)
    check(receiver(), signed(parts, SECRETS[h["key_id"]]), set(), want)


@settings(FUZZ, max_examples=500)
@given(base_index, st.data())
def test_re_signed_random_json(i, data):
    """Random JSON in one place, signed with the real secret of the key the header names (or
    not): whatever fails first in SPEC order is the code."""
    h, parts = dict(BASES[i][0]), parts_of(i)
    content = json.loads(parts[3])
    buffers = list(parts[4:])
    what = data.draw(st.sampled_from(["content", "field", "header", "type", "parent", "metadata", "buffers", "key"]))
    if what == "content":
        content = data.draw(json_values)
    elif what == "field" and content:
        content[data.draw(st.sampled_from(sorted(content)))] = data.draw(json_values)
    elif what == "field":
        content[data.draw(st.text(max_size=8))] = data.draw(json_values)
    elif what == "header":
        h[data.draw(st.sampled_from(sorted(h)))] = data.draw(json_values)
    elif what == "type":
        h["msg_type"] = data.draw(st.sampled_from(sorted(MESSAGES)))
        content = data.draw(st.one_of(json_values, st.just(content)))
    elif what == "parent":
        parts[1] = data.draw(st.one_of(st.builds(dumps, json_values), st.just(dumps(MEASURE_HEADER)), st.just(b"{}")))
    elif what == "metadata":
        parts[2] = dumps(data.draw(json_values))
    elif what == "buffers":
        buffers = data.draw(st.lists(st.binary(max_size=40), max_size=3))
    else:
        h["key_id"] = data.draw(st.sampled_from(["lab", "other", "nobody"]))
    parts = [dumps(h), parts[1], parts[2], dumps(content), *buffers]
    signer = data.draw(st.sampled_from(["lab", "other"]))
    check(receiver(), signed(parts, SECRETS[signer]), set())


@settings(FUZZ, max_examples=250)
@given(st.data())
def test_arrays_need_their_buffer_of_the_right_size(data):
    arrays = data.draw(
        st.lists(
            st.fixed_dictionaries(
                {
                    "channel": st.sampled_from(["a", "b"]),
                    "buffer": st.integers(min_value=0, max_value=3),
                    "dtype": st.sampled_from(
                        ["<f8", "|u1", ">i2", "b1", "<f4", "=u8", "<i8"]
                    ),  # all valid (SPEC section 10)
                    "shape": st.lists(st.integers(min_value=0, max_value=4), max_size=3),
                }
            ),
            min_size=1,
            max_size=3,
        )
    )
    buffers = data.draw(st.lists(st.binary(max_size=48), max_size=4))
    content = {"request_id": "r-7", "status": "ok", "arrays": arrays}
    # the expectation from the array descriptions alone: prod(shape) * itemsize bytes, in a buffer that was sent
    fits = all(
        a["buffer"] < len(buffers) and len(buffers[a["buffer"]]) == math.prod(a["shape"]) * int(a["dtype"][-1])
        for a in arrays
    )
    parts = [dumps(header("result", 50)), b"{}", b"{}", dumps(content), *buffers]
    got = check(receiver(), signed(parts, SECRETS["lab"]), set(), ACCEPT if fits else "buffer-mismatch")
    if not fits:
        assert got.request_id == "r-7"


@settings(FUZZ, max_examples=150)
@given(base_index, st.data())
def test_too_large_comes_before_everything_but_the_frame_count(i, data):
    parts = parts_of(i)
    if data.draw(st.booleans()):
        k = data.draw(st.integers(min_value=0, max_value=3))  # a JSON frame: pad it with JSON whitespace
        parts[k] = parts[k] + b" " * (JSON_LIMIT + 1 - len(parts[k]) + data.draw(st.integers(0, 8)))
    else:
        parts.append(b"\0" * (BUFFER_LIMIT + 1 + data.draw(st.integers(0, 8))))
    if data.draw(st.booleans()):
        parts[0] = (
            data.draw(st.sampled_from([b"not json", dumps(header("ping", 0, key_id="nobody"))])) + b" " * JSON_LIMIT
        )
    secret = data.draw(st.sampled_from([SECRETS["lab"], FOREIGN]))
    check(receiver(), signed(parts, secret), set(), "too-large")


# ---------------------------------------------------------------------------- replays


def _failing_after_the_signature(i: int, how: str) -> list[bytes]:
    h, parts = dict(BASES[i][0]), parts_of(i)
    if how == "version":
        h["version"] = "2.0"
    elif how == "type":
        h["msg_type"] = "no-such-type"
    else:
        parts[3] = b'{"request_id":"r-9","unexpected":1}'
    parts[0] = dumps(h)
    return signed(parts, SECRETS[h["key_id"]])


@settings(FUZZ, max_examples=200)
@given(base_index, identities, identities, st.sampled_from(["valid", "version", "type", "content"]))
def test_a_second_delivery_is_replayed_whoever_routes_it(i, ids1, ids2, how):
    frames = base(i) if how == "valid" else _failing_after_the_signature(i, how)
    codec, seen = receiver(), set()
    first = check(codec, ids1 + frames, seen)
    assert first.code == {"valid": ACCEPT, "version": "unsupported-version", "type": "unknown-msg-type"}.get(
        how, "invalid-content"
    )
    check(codec, ids2 + frames, seen, "replayed")  # SPEC section 5: authenticated, so remembered
    check(codec, frames, seen, "replayed")
    tampered = list(frames)
    tampered[1] = tampered[1][::-1] if tampered[1][::-1] != tampered[1] else b"0" * 64
    check(codec, tampered, seen, "bad-signature")  # the signature is checked before the replay window


@settings(FUZZ, max_examples=150)
@given(
    st.lists(
        st.tuples(base_index, st.sampled_from(["valid", "version", "tampered", "unsigned"])), min_size=1, max_size=12
    )
)
def test_one_receiver_over_a_stream_with_repeats(stream):
    """The replay window holds exactly the authenticated signatures seen so far."""
    codec, seen = receiver(), set()
    for i, how in stream:
        if how == "valid":
            frames = base(i)
        elif how == "version":
            frames = _failing_after_the_signature(i, "version")
        elif how == "tampered":
            frames = base(i)
            frames[-1] = frames[-1] + b" "
        else:
            frames = signed(parts_of(i), FOREIGN)
        check(codec, frames, seen)


def test_the_oracle_itself_accepts_the_codecs_own_messages():
    """The transcription and the codec agree on what is valid: the codec's encode is accepted by it."""
    sender = Codec(KEYRING, "lab")
    for i in range(len(BASES)):
        _, parent, metadata, content, buffers = BASES[i]
        frames = sender.encode(
            content,
            parent=Header.model_validate(parent) if parent else None,
            metadata=metadata or None,
            buffers=buffers,
        )
        assert spec_outcome(frames, set()).code == ACCEPT
        SIGNED.add(tuple(frames[1:]))
        check(receiver(), frames, set(), ACCEPT)


@pytest.mark.parametrize("i", range(len(BASES)))
def test_every_base_message_is_accepted_once(i):
    codec, seen = receiver(), set()
    check(codec, base(i), seen, ACCEPT)
    check(codec, base(i), seen, "replayed")
