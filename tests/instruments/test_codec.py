"""The codec without sockets: every message type round-trips; every failure has its exact code."""

from __future__ import annotations

import json
import math
import os

import numpy as np
import pytest

from abduce.instruments.protocol import (
    MESSAGES,
    PROTOCOL_VERSION,
    TAG,
    Abort,
    AbortReply,
    Ack,
    ArraySpec,
    Axis,
    Bye,
    Capabilities,
    Channel,
    Codec,
    Error,
    Hello,
    Keyring,
    Measure,
    Message,
    Ping,
    Pong,
    ProtocolError,
    Query,
    Reject,
    Release,
    ReleaseReply,
    Result,
    ResultAck,
    SafeState,
    SafeStateReply,
    Welcome,
)
from abduce.instruments.protocol.models import ERROR_CODES

IMAGE = np.arange(6, dtype="<f8").reshape(2, 3) / 7.0
COUNTS = np.array([0, 1, 65535, 42, 7], dtype="<u2")


def examples() -> dict[str, tuple]:
    """One valid ``(content, buffers)`` per msg_type."""
    caps = Capabilities(
        axes=[Axis(name="x", unit="nm", min=-5.0, max=5.0), Axis(name="T", unit="K", min=4, max=300)],
        candidates=[[0.0, 4.0], [1.5, 300.0]],
        channels=[
            Channel(name="y", unit="counts"),
            Channel(name="image", shape=[2, 3]),
            Channel(name="hist", shape=[5], dtype="<u2"),
        ],
        simulator=True,
        idempotent=False,
    )
    result = Result(
        request_id="r-1",
        status="ok",
        points=[[0.0, 4.0]],
        values={"y": [1.25], "z": [None]},
        arrays=[
            ArraySpec(channel="image", buffer=0, dtype="<f8", shape=[2, 3]),
            ArraySpec(channel="hist", buffer=1, dtype="<u2", shape=[5]),
        ],
        started="2025-01-01T00:00:00+00:00",
        finished="2025-01-01T00:00:01+00:00",
        state={"temperature_K": 4.2, "nested": {"ok": True, "list": [1, "two", None]}},
    )
    out = {
        "hello": (Hello(instrument_id="stem-1", versions=["1.0"], capabilities=caps, software="test 0"), ()),
        "welcome": (Welcome(version="1.0", controller_session="c" * 32, heartbeat_s=0.5), ()),
        "measure": (
            Measure(
                request_id="r-1",
                points=[[0.0, 4.0], [1.5, 300.0]],
                parameters={"dwell_s": 0.1, "mode": "fast"},
                deadline_s=30.0,
                idempotent=False,
            ),
            (),
        ),
        "ack": (Ack(request_id="r-1"), ()),
        "reject": (Reject(request_id="r-1", code="out-of-limits", reason="x = 6 outside [-5, 5]"), ()),
        "result": (result, (IMAGE.tobytes(), COUNTS.tobytes())),
        "result_ack": (ResultAck(request_id="r-1"), ()),
        "query": (Query(request_id="r-1"), ()),
        "abort": (Abort(request_id="r-1"), ()),
        "abort_reply": (AbortReply(request_id="r-1", aborted=True, detail="stopped"), ()),
        "safe_state": (SafeState(reason="operator"), ()),
        "safe_state_reply": (SafeStateReply(ok=True, detail="beam off"), ()),
        "release": (Release(reason="operator: tip replaced"), ()),
        "release_reply": (ReleaseReply(ok=True, detail="beam on"), ()),
        "bye": (Bye(reason="done", detail="budget of 40 spent"), ()),
        "ping": (Ping(), ()),
        "pong": (Pong(), ()),
        "error": (Error(code="invalid-content", message="points: too short", request_id="r-1", retryable=False), ()),
    }
    assert list(out) == list(MESSAGES)
    return out


@pytest.fixture
def keyring():
    return Keyring({"lab": os.urandom(32)})


@pytest.fixture
def pair(keyring):
    """Two peers sharing one keyring: a controller and an agent codec."""
    return Codec(keyring, "lab"), Codec(keyring, "lab")


def resign(keyring: Keyring, frames: list[bytes], key_id: str = "lab", **replace: bytes) -> list[bytes]:
    """The message ``frames`` with some JSON frames replaced, correctly signed again."""
    at = frames.index(TAG)
    names = ["header", "parent", "metadata", "content"]
    parts = list(frames[at + 2 :])
    for name, raw in replace.items():
        parts[names.index(name)] = raw
    return [*frames[:at], TAG, keyring.sign(key_id, parts), *parts]


def header_of(frames: list[bytes]) -> dict:
    return json.loads(frames[frames.index(TAG) + 2])


def expect(code: str, codec: Codec, frames: list[bytes]) -> ProtocolError:
    with pytest.raises(ProtocolError) as info:
        codec.decode(frames)
    exc = info.value
    assert exc.code == code, exc
    assert exc.code in ERROR_CODES
    # nothing is answered before the signature is verified (SPEC 5, protocol 1.1): checks 1-6 drop
    assert exc.drop is (exc.header is None)
    assert exc.drop is (code in {"missing-frame", "too-large", "unknown-key", "bad-signature", "replayed"}) or (
        code == "malformed" and exc.drop is (exc.claimed is None)
    )
    return exc


# ---------------------------------------------------------------- round trips


def test_every_message_type_round_trips(pair):
    a, b = pair
    seqs = []
    for msg_type, (content, buffers) in examples().items():
        frames = a.encode(content, buffers=buffers)
        assert frames[0] == TAG and len(frames) == 6 + len(buffers)
        msg = b.decode(frames)
        assert isinstance(msg, Message)
        assert msg.msg_type == msg_type == msg.header.msg_type
        assert msg.content == content and type(msg.content) is type(content)
        assert msg.header.version == PROTOCOL_VERSION
        assert msg.header.session == a.session != b.session
        assert msg.header.key_id == "lab"
        assert msg.parent is None and msg.metadata == {} and msg.identities == ()
        assert msg.buffers == tuple(buffers)
        seqs.append(msg.header.seq)
    assert seqs == list(range(len(MESSAGES)))
    assert b._seq == 0  # decoding sends nothing


def test_result_arrays_rebuild_from_buffers(pair):
    a, b = pair
    content, buffers = examples()["result"]
    msg = b.decode(a.encode(content, buffers=buffers))
    arrays = {
        s.channel: np.frombuffer(msg.buffers[s.buffer], dtype=s.dtype).reshape(s.shape) for s in msg.content.arrays
    }
    assert arrays["image"].dtype == np.dtype("<f8") and np.array_equal(arrays["image"], IMAGE)
    assert arrays["hist"].dtype == np.dtype("<u2") and np.array_equal(arrays["hist"], COUNTS)
    assert msg.content.values["z"] == [None]


def test_parent_header_pairs_reply_with_request(pair):
    controller, agent = pair
    request = agent.decode(controller.encode(Measure(request_id="r-9", points=[[0.5]])))
    reply = controller.decode(agent.encode(Ack(request_id="r-9"), parent=request.header))
    assert reply.parent == request.header
    assert reply.parent.msg_type == "measure" and reply.parent.session == controller.session
    assert reply.header.msg_id != request.header.msg_id


def test_msg_ids_are_unique_and_seq_counts_every_message(pair):
    a, b = pair
    headers = [b.decode(a.encode(Ping())).header for _ in range(20)]
    assert len({h.msg_id for h in headers}) == 20
    assert [h.seq for h in headers] == list(range(20))


def test_arbitrary_nested_metadata_is_accepted(pair):
    a, b = pair
    metadata = {
        "operator": "ab",
        "deep": {"a": [1, 2.5, None, True, {"b": [[], {}, "ü ∑ 😀"]}]},
        "future_field_from_v1_9": {"x": -1e300},
        "": 0,
    }
    msg = b.decode(a.encode(Ping(), metadata=metadata))
    assert msg.metadata == metadata


def test_routing_identities_are_kept_apart(pair):
    a, b = pair
    frames = a.encode(Pong(), identities=[b"\x00k\x8b\xc4V", b"second"])
    assert frames[:2] == [b"\x00k\x8b\xc4V", b"second"] and frames[2] == TAG
    msg = b.decode(frames)
    assert msg.identities == (b"\x00k\x8b\xc4V", b"second")


def test_signature_is_lowercase_hex_over_length_prefixed_frames(keyring, pair):
    import hashlib
    import hmac as hmac_mod
    import struct

    a, _ = pair
    frames = a.encode(Ack(request_id="r"), buffers=[b"\x01\x02"])
    secret = keyring._keys["lab"]
    mac = hmac_mod.new(secret, digestmod=hashlib.sha256)
    for part in frames[2:]:
        mac.update(struct.pack(">Q", len(part)) + part)
    assert frames[1] == mac.hexdigest().encode() and frames[1] == frames[1].lower() and len(frames[1]) == 64


def test_optional_fields_may_be_omitted(keyring, pair):
    a, b = pair
    frames = resign(
        keyring, a.encode(Measure(request_id="r", points=[[1]])), content=b'{"request_id":"r","points":[[1]]}'
    )
    msg = b.decode(frames)
    assert msg.content == Measure(request_id="r", points=[[1.0]])


def test_short_keys_are_refused():
    with pytest.raises(ValueError):
        Keyring({"lab": b"x" * 31})
    with pytest.raises(ValueError):
        Codec(Keyring({"lab": os.urandom(32)}), "other")


# ---------------------------------------------------------------- failures, in the order they are checked


def test_missing_tag(pair):
    a, b = pair
    frames = a.encode(Ping())
    expect("missing-frame", b, frames[1:])


def test_too_few_frames(pair):
    a, b = pair
    frames = a.encode(Ping(), identities=[b"peer"])
    exc = expect("missing-frame", b, frames[:-1])
    assert exc.identities == (b"peer",)


def test_oversized_json_frame(keyring):
    a, small = Codec(keyring, "lab"), Codec(keyring, "lab", max_json_bytes=256)
    expect("too-large", small, a.encode(Ping(), metadata={"pad": "x" * 300}))
    assert isinstance(small.decode(a.encode(Ping())), Message)


def test_oversized_buffer(keyring):
    a, small = Codec(keyring, "lab"), Codec(keyring, "lab", max_buffer_bytes=16)
    content = Result(request_id="r", status="ok", arrays=[ArraySpec(channel="s", buffer=0, dtype="<f8", shape=[4])])
    expect("too-large", small, a.encode(content, buffers=[np.zeros(4).tobytes()]))


def test_non_object_header(keyring, pair):
    a, b = pair
    frames = a.encode(Ping())
    for raw in (b"[1, 2]", b'"header"', b"null", b"not json", b"\xff\xfe"):
        exc = expect("malformed", b, resign(keyring, frames, header=raw))
        assert exc.header is None


def test_header_failing_its_model(keyring, pair):
    a, b = pair
    frames = a.encode(Ping())
    h = header_of(frames)
    for bad in (
        {**h, "seq": -1},
        {**h, "extra": 1},
        {k: v for k, v in h.items() if k != "session"},
        {**h, "version": "1"},
        {**h, "version": "9" * 5000 + ".0"},
        {**h, "version": "\u0661.\u0660"},
    ):
        expect("malformed", b, resign(keyring, frames, header=json.dumps(bad).encode()))


def test_unknown_key_id(keyring, pair):
    _, b = pair
    stranger = Codec(Keyring({"intruder": os.urandom(32)}), "intruder")
    exc = expect("unknown-key", b, stranger.encode(Measure(request_id="r", points=[[0.0]])))
    assert exc.drop is True


def test_key_id_of_someone_else_without_their_secret(keyring, pair):
    _, b = pair
    forger = Codec(Keyring({"lab": os.urandom(32)}), "lab")  # right name, wrong secret
    assert expect("bad-signature", b, forger.encode(Ping())).drop is True


def test_bad_signature_from_a_flipped_content_byte(pair):
    a, b = pair
    frames = a.encode(Measure(request_id="r", points=[[0.25]]))
    content = bytearray(frames[5])
    content[content.index(b"0.25")] ^= 0x01
    frames[5] = bytes(content)
    exc = expect("bad-signature", b, frames)
    assert exc.drop is True


def test_bad_signature_from_bytes_moved_across_frames(keyring, pair):
    a, b = pair
    frames = a.encode(Ping(), buffers=[b"ab", b"cd"])
    frames[-2:] = [b"abc", b"d"]  # same concatenation, other boundaries
    expect("bad-signature", b, frames)
    frames = a.encode(Ping(), buffers=[b"x"])
    expect("bad-signature", b, frames[:-1])  # a dropped buffer


def test_replayed(pair):
    a, b = pair
    frames = a.encode(Ping())
    b.decode(frames)
    exc = expect("replayed", b, frames)
    assert exc.drop is True


def test_replay_window_forgets_the_oldest(keyring):
    a, b = Codec(keyring, "lab"), Codec(keyring, "lab", replay_window=2)
    first = a.encode(Ping())
    b.decode(first)
    expect("replayed", b, first)
    for _ in range(2):
        b.decode(a.encode(Ping()))
    assert isinstance(b.decode(first), Message)  # past the window: the caller's risk, documented


def test_unsupported_major_version(keyring, pair):
    a, b = pair
    frames = a.encode(Ping())
    h = {**header_of(frames), "version": "2.0"}
    exc = expect("unsupported-version", b, resign(keyring, frames, header=json.dumps(h).encode()))
    assert exc.drop is False and exc.header is not None and exc.header.version == "2.0"


def test_newer_minor_version_is_accepted(keyring, pair):
    a, b = pair
    frames = a.encode(Ping())
    h = {**header_of(frames), "version": "1.7"}
    assert b.decode(resign(keyring, frames, header=json.dumps(h).encode())).header.version == "1.7"


def test_unknown_msg_type(keyring, pair):
    a, b = pair
    frames = a.encode(Ping())
    h = {**header_of(frames), "msg_type": "teleport"}
    exc = expect("unknown-msg-type", b, resign(keyring, frames, header=json.dumps(h).encode()))
    assert exc.header is not None and exc.header.msg_type == "teleport"


def test_parent_and_metadata_must_be_objects(keyring, pair):
    a, b = pair
    frames = a.encode(Ping())
    expect("malformed", b, resign(keyring, frames, parent=b"[]"))
    expect("malformed", b, resign(keyring, frames, parent=b'{"msg_id": "x"}'))
    expect("malformed", b, resign(keyring, frames, metadata=b'"just text"'))
    exc = expect("malformed", b, resign(keyring, frames, metadata=b'{"x": NaN}'))
    assert exc.header is not None and exc.header.msg_type == "ping"


def test_non_json_content(keyring, pair):
    a, b = pair
    frames = a.encode(Ping())
    for raw in (b"not json", b"{", b"\xff\xfe\x00", b"[]", b'{"x": Infinity}', b'{"request_id": "r", "n": 1e400}'):
        expect("malformed", b, resign(keyring, frames, content=raw))


def test_content_failing_its_model(keyring, pair):
    a, b = pair
    frames = a.encode(Measure(request_id="r-7", points=[[0.5]]))
    exc = expect("invalid-content", b, resign(keyring, frames, content=b'{"request_id": "r-7", "points": []}'))
    assert exc.request_id == "r-7" and exc.header is not None and exc.header.msg_type == "measure"
    for raw in (
        b'{"request_id": "r-7", "points": [["NaN"]]}',
        b'{"request_id": "r-7", "points": [["inf"]]}',
        b'{"request_id": "r-7", "points": [[0.5]], "unknown_field": 1}',
        b'{"points": [[0.5]]}',
        b'{"request_id": "", "points": [[0.5]]}',
        b'{"request_id": "r-7", "points": [[0.5]], "deadline_s": 0}',
    ):
        expect("invalid-content", b, resign(keyring, frames, content=raw))


def test_invalid_nested_models(keyring, pair):
    a, b = pair
    content, _ = examples()["hello"]
    frames = a.encode(content)
    good = json.loads(frames[5])
    bad_axis = json.loads(frames[5])
    bad_axis["capabilities"]["axes"][0]["min"] = 10  # min above max
    bad_grid = json.loads(frames[5])
    bad_grid["capabilities"]["candidates"] = [[0.0]]  # one coordinate, two axes
    for obj in (bad_axis, bad_grid):
        expect("invalid-content", b, resign(keyring, frames, content=json.dumps(obj).encode()))
    assert b.decode(resign(keyring, frames, content=json.dumps(good).encode())).content == content


def test_array_dtype_must_be_one_numpy_reads(keyring, pair):
    a, b = pair
    content = Result(request_id="r", status="ok", arrays=[ArraySpec(channel="s", buffer=0, dtype="<f8", shape=[1])])
    frames = a.encode(content, buffers=[b"\0" * 8])
    for dtype in ("f1", "<b8", "<c16", "O", "<U8"):
        raw = frames[5].replace(b'"<f8"', json.dumps(dtype).encode())
        expect("invalid-content", b, resign(keyring, frames, content=raw))


def test_buffer_size_must_match_dtype_and_shape(pair):
    a, b = pair
    content = Result(
        request_id="r-3", status="ok", arrays=[ArraySpec(channel="img", buffer=0, dtype="<f4", shape=[2, 3])]
    )
    exc = expect("buffer-mismatch", b, a.encode(content, buffers=[np.zeros((2, 3), "<f8").tobytes()]))
    assert exc.request_id == "r-3"
    assert isinstance(b.decode(a.encode(content, buffers=[np.zeros((2, 3), "<f4").tobytes()])), Message)


def test_array_naming_a_missing_buffer(pair):
    a, b = pair
    content = Result(
        request_id="r-4",
        status="ok",
        arrays=[
            ArraySpec(channel="a", buffer=0, dtype="|u1", shape=[3]),
            ArraySpec(channel="b", buffer=1, dtype="|u1", shape=[3]),
        ],
    )
    exc = expect("buffer-mismatch", b, a.encode(content, buffers=[b"abc"]))
    assert exc.request_id == "r-4"


def test_empty_array_and_zero_dimension(pair):
    a, b = pair
    content = Result(
        request_id="r",
        status="ok",
        arrays=[
            ArraySpec(channel="e", buffer=0, dtype="<i8", shape=[0, 4]),
            ArraySpec(channel="s", buffer=1, dtype="<i8", shape=[]),
        ],
    )
    msg = b.decode(a.encode(content, buffers=[b"", b"\0" * 8]))
    assert msg.buffers == (b"", b"\0" * 8)


def test_non_finite_values_cannot_be_built_and_travel_as_null(pair):
    a, b = pair
    with pytest.raises(ValueError):
        Result(request_id="r", status="ok", values={"y": [math.nan]})
    msg = b.decode(a.encode(Result(request_id="r", status="ok", values={"y": [None, 1.0]})))
    assert msg.content.values == {"y": [None, 1.0]}


def test_errors_from_a_readable_header_carry_it(keyring, pair):
    a, b = pair
    frames = a.encode(Measure(request_id="r-5", points=[[1.0]]), identities=[b"agent-7"])
    exc = expect(
        "invalid-content", b, resign(keyring, frames, content=b'{"request_id": "r-5", "points": [[]], "x": 1}')
    )
    assert exc.identities == (b"agent-7",)
    assert exc.header is not None and exc.header.msg_id == header_of(frames)["msg_id"]
    # the answer the receiver would send pairs with the offending header
    reply = a.decode(b.encode(Error(code=exc.code, message=exc.message, request_id=exc.request_id), parent=exc.header))
    assert reply.parent == exc.header and reply.content.request_id == "r-5"
    assert "Traceback" not in reply.content.message


def test_an_error_names_only_a_valid_request_id(keyring, pair):
    """SPEC 5: an error carries the content's request_id only when it is one (1 to 128 characters); an empty
    or overlong one built an Error that could not validate and ended the link's I/O thread."""
    a, b = pair
    for bad, named in (("", None), ("x" * 129, None), ("r-7", "r-7")):
        frames = a.encode(Ack(request_id="r-1"))
        exc = expect(
            "invalid-content" if named is None else "invalid-content",
            b,
            resign(keyring, frames, content=json.dumps({"request_id": bad, "extra": 1}).encode()),
        )
        assert exc.request_id == named
        Error(code=exc.code, message=exc.message, request_id=exc.request_id)  # the reply can be built


def test_a_message_sent_the_wrong_way_is_wrong_direction_or_unknown_to_a_1_0_sender(keyring):
    controller = Codec(keyring, "lab", role="controller")
    agent_1_1, agent_1_0 = Codec(keyring, "lab"), Codec(keyring, "lab", versions=("1.0",))
    expect("wrong-direction", controller, agent_1_1.encode(Measure(request_id="r", points=[[0.1]])))
    expect("unknown-msg-type", controller, agent_1_0.encode(Measure(request_id="r", points=[[0.1]])))
    assert controller.decode(agent_1_1.encode(Ping())).msg_type == "ping"  # either side sends pings
    assert controller.decode(agent_1_1.encode(Ack(request_id="r"))).msg_type == "ack"  # the agent's own way
    agent = Codec(keyring, "lab", role="agent")
    plain = Codec(keyring, "lab")
    assert agent.decode(plain.encode(Measure(request_id="r", points=[[0.1]]))).msg_type == "measure"
    expect("wrong-direction", agent, plain.encode(Ack(request_id="r")))


def test_an_error_carries_the_header_the_sender_claimed_verified_or_not(keyring):
    """``claimed`` (what the audit names as the sender) is the verified header when there is one, else the
    header as read from a frame that failed its checks, else None."""
    a, b = Codec(keyring, "lab"), Codec(keyring, "lab")
    frames = a.encode(Ack(request_id="r-1"))
    exc = expect("invalid-content", b, resign(keyring, frames, content=b'{"request_id": "r-1", "extra": 1}'))
    assert exc.header is not None and exc.claimed is exc.header
    stranger = Codec(Keyring({"other": bytes(32)}), "other").encode(Ack(request_id="r-2"))
    exc = expect("unknown-key", b, stranger)
    assert exc.header is None and exc.claimed is not None and exc.claimed.key_id == "other"
