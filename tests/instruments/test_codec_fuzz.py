"""Property-based: whatever frames arrive, ``Codec.decode`` returns a Message or raises ProtocolError.

Over 10,000 examples in all, split over four strategies: random frame lists;
valid messages with one frame mutated, truncated, duplicated, dropped or
swapped; valid messages with random bytes inserted; and re-signed messages
with random JSON (so the signature passes and the header, content and buffer
checks are the ones exercised).
"""

from __future__ import annotations

import json
import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from abduce.instruments.protocol import MESSAGES, TAG, Codec, Keyring, Message, ProtocolError
from abduce.instruments.protocol.codec import DROP_CODES
from abduce.instruments.protocol.models import (
    ERROR_CODES,
    Abort,
    Ack,
    ArraySpec,
    Axis,
    Capabilities,
    Channel,
    Error,
    Hello,
    Measure,
    Ping,
    Query,
    Reject,
    Result,
    Welcome,
)

KEYRING = Keyring({"lab": os.urandom(32), "other": os.urandom(32)})
SENDER = Codec(KEYRING, "lab")
# A small limit so that the too-large check is reached too.
LIMITS = {"max_json_bytes": 4096, "max_buffer_bytes": 4096}

FUZZ = settings(
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)

BASES = [
    (Ping(), ()),
    (Ack(request_id="r-1"), ()),
    (Query(request_id="r-1"), ()),
    (Abort(), ()),
    (Welcome(version="1.0", controller_session="c", heartbeat_s=1.0), ()),
    (Reject(request_id="r-1", code="busy", reason="later"), ()),
    (Error(code="internal", message="oops"), ()),
    (Measure(request_id="r-1", points=[[0.5, 1.0]], parameters={"dwell": 1}), ()),
    (
        Hello(
            instrument_id="i",
            versions=["1.0"],
            capabilities=Capabilities(axes=[Axis(name="x", min=0, max=1)], candidates=[[0.5]], channels=[Channel(name="y")]),
        ),
        (),
    ),
    (
        Result(
            request_id="r-1",
            status="ok",
            points=[[0.5]],
            values={"y": [1.0, None]},
            arrays=[ArraySpec(channel="a", buffer=0, dtype="<f8", shape=[2]), ArraySpec(channel="b", buffer=1, dtype="|u1", shape=[3])],
        ),
        (b"\0" * 16, b"abc"),
    ),
]

base_index = st.integers(min_value=0, max_value=len(BASES) - 1)
# Positions are drawn modulo a frame's length: lengths vary a little between
# runs (seq, date), and hypothesis wants the same draws to mean the same thing.
index = st.integers(min_value=0, max_value=1 << 20)
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
    st.sampled_from(["1.0", "2.0", "NaN", "inf", "<f8", "f1", "r-1", "ok", "lab", "", "x" * 200]),
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=12,
)


def check(codec: Codec, frames: list[bytes]) -> None:
    try:
        msg = codec.decode(frames)
    except ProtocolError as exc:
        assert exc.code in ERROR_CODES
        assert exc.drop is (exc.code in DROP_CODES)
    else:
        assert isinstance(msg, Message)
        assert msg.msg_type in MESSAGES


def fresh(i: int) -> list[bytes]:
    content, buffers = BASES[i]
    return SENDER.encode(content, buffers=buffers)


def receiver() -> Codec:
    return Codec(KEYRING, "other", **LIMITS)


@settings(FUZZ, max_examples=3000)
@given(st.lists(frame_bytes, max_size=12))
def test_random_frame_lists(frames):
    check(receiver(), frames)


@settings(FUZZ, max_examples=2500)
@given(base_index, st.data())
def test_mutated_valid_messages(i, data):
    frames = fresh(i)
    n = len(frames)
    op = data.draw(st.sampled_from(["flip", "truncate", "duplicate", "drop", "swap", "replace", "extend", "identity"]))
    k = data.draw(index) % n
    if op == "flip" and frames[k]:
        pos = data.draw(index) % len(frames[k])
        b = bytearray(frames[k])
        b[pos] ^= data.draw(st.integers(min_value=1, max_value=255))
        frames[k] = bytes(b)
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
    elif op == "extend":
        frames += data.draw(st.lists(frame_bytes, min_size=1, max_size=3))
    elif op == "identity":
        frames = data.draw(st.lists(st.binary(max_size=8), min_size=1, max_size=3)) + frames
    check(receiver(), frames)


@settings(FUZZ, max_examples=2000)
@given(base_index, st.data())
def test_random_bytes_inserted(i, data):
    frames = fresh(i)
    k = data.draw(index) % len(frames)
    pos = data.draw(index) % (len(frames[k]) + 1)
    junk = data.draw(st.binary(min_size=1, max_size=32))
    if data.draw(st.booleans()):
        frames[k] = frames[k][:pos] + junk + frames[k][pos:]
    else:
        frames.insert(k + 1, junk)  # a whole extra frame
    codec = receiver()
    check(codec, frames)
    check(codec, frames)  # a second time: replay handling on whatever got through


def _resigned(header: dict, parent: bytes, metadata: bytes, content: bytes, buffers: list[bytes]) -> list[bytes]:
    parts = [json.dumps(header).encode(), parent, metadata, content, *buffers]
    return [TAG, KEYRING.sign("lab", parts), *parts]


@settings(FUZZ, max_examples=2800)
@given(base_index, st.data())
def test_resigned_random_json(i, data):
    frames = fresh(i)
    header = json.loads(frames[2])
    content = json.loads(frames[5])
    buffers = list(frames[6:])
    what = data.draw(st.sampled_from(
        ["content", "field", "header", "plausible-header", "type", "parent", "metadata", "buffers", "arrays"]
    ))
    parent, metadata = frames[3], frames[4]
    if what == "content":
        content = data.draw(json_values)
    elif what == "field" and content:
        key = data.draw(st.sampled_from(sorted(content)))
        content[key] = data.draw(json_values)
    elif what == "field":
        content[data.draw(st.text(max_size=8))] = data.draw(json_values)
    elif what == "header":
        key = data.draw(st.sampled_from(sorted(header)))
        header[key] = data.draw(json_values)
    elif what == "plausible-header":
        header["key_id"] = data.draw(st.sampled_from(["lab", "lab", "other", "nobody"]))
        header["version"] = data.draw(st.sampled_from(["1.0", "1.9", "2.0", "0.1", "10.0", "1.0.0"]))
    elif what == "type":
        header["msg_type"] = data.draw(st.one_of(st.sampled_from(sorted(MESSAGES)), st.text(max_size=10)))
        content = data.draw(st.one_of(json_values, st.just(content)))
    elif what == "parent":
        parent = data.draw(st.one_of(
            st.builds(lambda v: json.dumps(v).encode(), json_values), st.just(frames[2]), st.just(b"{}")
        ))
    elif what == "metadata":
        metadata = json.dumps(data.draw(json_values)).encode()
    elif what == "buffers":
        buffers = data.draw(st.lists(st.binary(max_size=40), max_size=3))
    elif what == "arrays":
        header["msg_type"] = "result"
        content = {
            "request_id": "r",
            "status": "ok",
            "arrays": data.draw(st.lists(
                st.fixed_dictionaries({
                    "channel": st.sampled_from(["a", "b", ""]),
                    "buffer": st.integers(min_value=-1, max_value=4),
                    "dtype": st.sampled_from(["<f8", "|u1", ">i2", "b1", "f1", "<c16", "=u8", "x"]),
                    "shape": st.lists(st.integers(min_value=-1, max_value=5), max_size=3),
                }),
                max_size=3,
            )),
        }
        buffers = data.draw(st.lists(st.binary(max_size=48), max_size=4))
    # Signed with "lab" whatever the header says: a changed key_id is then an unknown key or a bad signature.
    check(receiver(), _resigned(header, parent, metadata, json.dumps(content).encode(), buffers))
