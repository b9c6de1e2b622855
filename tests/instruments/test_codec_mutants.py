"""The codec's edges, where a slip would pass ``test_codec.py`` and the fuzz: exact limits, the
replay window's size, the SPEC's default numbers, the error messages' summaries, deep JSON, and
the journal's frame packing. Every expected value is worked out from the SPEC or from the input
built here.
"""

from __future__ import annotations

import json

import pytest

from abduce.instruments.protocol import TAG, Codec, Keyring, Message, ProtocolError
from abduce.instruments.protocol.codec import major, pack_frames, unpack_frames
from abduce.instruments.protocol.models import Ack, Ping, Result

KEYS = Keyring({"lab": bytes(range(32))})


def sender() -> Codec:
    return Codec(KEYS, "lab")


def code_of(codec: Codec, frames) -> str | None:
    try:
        codec.decode(frames)
    except ProtocolError as exc:
        return exc.code
    return None


def resigned(frames: list[bytes], **replace: bytes) -> list[bytes]:
    names = ["header", "parent", "metadata", "content"]
    parts = list(frames[2:])
    for name, raw in replace.items():
        parts[names.index(name)] = raw
    return [TAG, KEYS.sign("lab", parts), *parts]


# ------------------------------------------------------------------ keys


def test_a_secret_of_exactly_32_bytes_is_enough_and_31_is_not():
    Keyring({"k": b"\x01" * 32})
    Keyring({"k": b"\x01" * 33})
    with pytest.raises(ValueError, match="32 bytes"):
        Keyring({"k": b"\x01" * 31})
    with pytest.raises(ValueError):
        Keyring({"ok": b"\x01" * 32, "short": b"\x01" * 30})


# ------------------------------------------------------------------ limits, at the byte


@pytest.mark.parametrize("extra,code", [(0, None), (1, "too-large")])
def test_a_json_frame_of_exactly_the_limit_passes_one_byte_more_does_not(extra, code):
    frames = sender().encode(Ack(request_id="r-1"))
    content = frames[5]
    limit = 300
    padded = content + b" " * (limit - len(content) + extra)  # JSON whitespace: the same object
    assert len(padded) == limit + extra
    receiver = Codec(KEYS, "lab", max_json_bytes=limit, max_buffer_bytes=limit)
    assert code_of(receiver, resigned(frames, content=padded)) == code


@pytest.mark.parametrize("extra,code", [(0, None), (1, "too-large")])
def test_a_buffer_of_exactly_the_limit_passes_one_byte_more_does_not(extra, code):
    frames = sender().encode(Ack(request_id="r-1"), buffers=[b"\x07" * (64 + extra)])
    receiver = Codec(KEYS, "lab", max_json_bytes=4096, max_buffer_bytes=64)
    assert code_of(receiver, frames) == code


def test_the_default_limits_are_the_specs():
    """SPEC section 11: 1 MiB per JSON frame, 256 MiB per buffer, by default."""
    codec = Codec(KEYS, "lab")
    assert codec.max_json_bytes == 1_048_576 and codec.max_buffer_bytes == 268_435_456
    frames = sender().encode(Ack(request_id="r-1"))
    at_limit = frames[5] + b" " * (1_048_576 - len(frames[5]))
    assert code_of(codec, resigned(frames, content=at_limit)) is None
    assert code_of(Codec(KEYS, "lab"), resigned(frames, content=at_limit + b" ")) == "too-large"


# ------------------------------------------------------------------ the replay window


def test_a_window_of_two_remembers_exactly_the_last_two():
    a, b = sender(), Codec(KEYS, "lab", replay_window=2)
    first, second, third = a.encode(Ping()), a.encode(Ping()), a.encode(Ping())
    b.decode(first)
    b.decode(second)
    assert code_of(b, first) == "replayed" and code_of(b, second) == "replayed"  # two held
    b.decode(third)  # the oldest, first, goes
    assert code_of(b, second) == "replayed" and code_of(b, third) == "replayed"
    assert isinstance(b.decode(first), Message)


def test_the_default_window_holds_the_last_100000_signatures():
    """SPEC section 5: at least the last 100,000 authenticated messages. Filled through
    ``_remember`` (what decode calls for each authenticated message) to keep it fast."""
    a, b = sender(), Codec(KEYS, "lab")
    first = a.encode(Ping())
    b.decode(first)
    for i in range(99_999):
        b._remember(b"%064d" % i)
    assert code_of(b, first) == "replayed"  # 100,000 remembered, first among them
    b._remember(b"x" * 64)
    assert code_of(b, first) is None  # the 100,001st pushed it out


# ------------------------------------------------------------------ numbers the SPEC fixes


def test_the_first_message_of_a_session_has_seq_0():
    a = sender()
    assert json.loads(a.encode(Ping())[2])["seq"] == 0
    assert json.loads(a.encode(Ping())[2])["seq"] == 1
    assert a.header("ping").seq == 2


@pytest.mark.parametrize("version,expected", [("1.0", 1), ("1.9", 1), ("12.3", 12), ("0.1", 0), ("007.1", 7)])
def test_major_is_the_part_before_the_dot(version, expected):
    assert major(version) == expected


# ------------------------------------------------------------------ what errors say


def test_a_validation_error_lists_five_problems_and_counts_the_rest():
    a, b = sender(), Codec(KEYS, "lab")
    content = {f"field{i}": i for i in range(7)}  # seven fields a ping does not have: seven errors
    with pytest.raises(ProtocolError) as info:
        b.decode(resigned(a.encode(Ping()), content=json.dumps(content).encode()))
    message = info.value.message
    assert info.value.code == "invalid-content"
    assert message.startswith("ping: ")
    listed = message[len("ping: ") :].split("; ")
    assert len(listed) == 5 and listed[-1].endswith("(+2 more)")
    assert [part.split(":")[0] for part in listed] == [f"field{i}" for i in range(5)]


def test_a_validation_error_names_the_nested_field():
    a, b = sender(), Codec(KEYS, "lab")
    content = {"request_id": "r", "status": "ok", "points": [[0.5, "x"]]}
    with pytest.raises(ProtocolError) as info:
        b.decode(resigned(a.encode(Result(request_id="r", status="ok")), content=json.dumps(content).encode()))
    assert "points.0.1:" in info.value.message and "(root)" not in info.value.message
    assert "more)" not in info.value.message  # one problem: nothing more to count


@pytest.mark.parametrize("n", [6, 11])
def test_the_count_is_of_the_problems_not_listed(n):
    a, b = sender(), Codec(KEYS, "lab")
    content = {f"f{i}": i for i in range(n)}
    with pytest.raises(ProtocolError) as info:
        b.decode(resigned(a.encode(Ping()), content=json.dumps(content).encode()))
    assert info.value.message.endswith(f"(+{n - 5} more)")


def test_five_problems_are_listed_without_a_count():
    a, b = sender(), Codec(KEYS, "lab")
    content = {f"f{i}": i for i in range(5)}
    with pytest.raises(ProtocolError) as info:
        b.decode(resigned(a.encode(Ping()), content=json.dumps(content).encode()))
    assert len(info.value.message.split("; ")) == 5 and "more)" not in info.value.message


def test_a_bad_header_says_what_is_wrong_with_it():
    a, b = sender(), Codec(KEYS, "lab")
    frames = a.encode(Ping())
    header = json.loads(frames[2])
    del header["seq"]
    with pytest.raises(ProtocolError) as info:
        b.decode(resigned(frames, header=json.dumps(header).encode()))
    assert info.value.code == "malformed" and "bad header" in info.value.message and "seq" in info.value.message
    with pytest.raises(ProtocolError) as info:
        b.decode(resigned(frames, header=b'{"a": NaN}'))
    assert "header is not JSON" in info.value.message


# ------------------------------------------------------------------ JSON the parser cannot take


@pytest.mark.parametrize("frame", ["header", "parent", "metadata", "content"])
def test_json_nested_too_deep_for_the_parser_is_malformed(frame):
    a, b = sender(), Codec(KEYS, "lab")
    deep = b"[" * 200_000 + b"]" * 200_000  # valid JSON, deeper than Python's parser recurses
    assert code_of(b, resigned(a.encode(Ack(request_id="r")), **{frame: deep})) == "malformed"


def test_the_empty_object_and_an_equal_spelling_of_it_read_the_same():
    a, b = sender(), Codec(KEYS, "lab")
    for spelling in (b"{}", b" { } ", b"{\n}"):
        msg = b.decode(resigned(a.encode(Ack(request_id="r")), parent=spelling, metadata=spelling))
        assert msg.parent is None and msg.metadata == {}


# ------------------------------------------------------------------ packed frames (the journal's raw replies)


def test_packed_frames_are_4_byte_big_endian_lengths_then_bytes():
    assert (
        pack_frames([b"ab", b"", b"\x00" * 3])
        == b"\x00\x00\x00\x02ab" + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x03\x00\x00\x00"
    )
    assert pack_frames([b"x" * 256]) == b"\x00\x00\x01\x00" + b"x" * 256
    assert pack_frames([]) == b""


@pytest.mark.parametrize("frames", [[], [b""], [b"a"], [b"", b""], [b"ab", b"", b"cde"], [b"\xff" * 300, b"z"]])
def test_unpack_is_the_inverse_of_pack(frames):
    assert unpack_frames(pack_frames(frames)) == tuple(frames)


def test_a_real_message_survives_packing():
    frames = sender().encode(Ack(request_id="r"), buffers=[b"\x00\x01"], identities=[b"id"])
    assert list(unpack_frames(pack_frames(frames))) == frames


@pytest.mark.parametrize(
    "blob,match",
    [
        (b"\x00", "truncated frame length"),
        (b"\x00\x00\x00", "truncated frame length"),
        (b"\x00\x00\x00\x01ab\x00", "truncated frame length"),  # one frame, then 1 byte of a length
        (b"\x00\x00\x00\x02a", "^truncated frame$"),
        (b"\x00\x00\x00\x05abcd", "^truncated frame$"),
        (b"\x00\x00\x00\x00\x00\x00\x00\x03ab", "^truncated frame$"),
    ],
)
def test_a_short_blob_is_refused(blob, match):
    with pytest.raises(ValueError, match=match):
        unpack_frames(blob)


@pytest.mark.parametrize("frames", [[b"abc", b"defgh"], [b"", b"x" * 300, b"", b"yz"], [b"\x00\x00\x00\x09", b"q"]])
def test_every_prefix_of_a_packed_blob_is_whole_frames_or_refused(frames):
    """A cut between two frames is the frames before it; a cut anywhere else is refused."""
    blob = pack_frames(frames)
    boundaries, at = {0: 0}, 0
    for k, f in enumerate(frames, 1):
        at += 4 + len(f)
        boundaries[at] = k
    assert at == len(blob)
    for cut in range(len(blob) + 1):
        if cut in boundaries:
            assert unpack_frames(blob[:cut]) == tuple(frames[: boundaries[cut]]), cut
        else:
            with pytest.raises(ValueError, match="truncated"):
                unpack_frames(blob[:cut])


def test_metadata_that_json_cannot_carry_is_not_sent():
    """SPEC section 2: JSON frames carry no NaN or Infinity, so the sender refuses to write them."""
    for bad in (float("nan"), float("inf"), -float("inf")):
        with pytest.raises(ValueError):
            sender().encode(Ping(), metadata={"reading": bad})


def test_a_large_array_of_the_right_size_is_accepted():
    """prod(shape) * itemsize, for sizes past the small integers too (800 and 65,536 bytes)."""
    a, b = sender(), Codec(KEYS, "lab")
    for shape, dtype, size in (([100], "<f8", 800), ([128, 128], "<f4", 65_536), ([3, 300], "|u1", 900)):
        content = Result(
            request_id="r", status="ok", arrays=[{"channel": "c", "buffer": 0, "dtype": dtype, "shape": shape}]
        )
        msg = b.decode(a.encode(content, buffers=[b"\0" * size]))
        assert msg.buffers == (b"\0" * size,)
        assert code_of(b, a.encode(content, buffers=[b"\0" * (size + 1)])) == "buffer-mismatch"


# ------------------------------------------------------------------ what decode hands back


def test_a_decoded_message_is_immutable_and_names_its_type():
    import dataclasses

    msg = Codec(KEYS, "lab").decode(sender().encode(Ack(request_id="r")))
    assert msg.msg_type == "ack" == msg.header.msg_type
    with pytest.raises(dataclasses.FrozenInstanceError):
        msg.content = Ping()


def test_a_codec_signs_in_its_own_session_or_a_fresh_one():
    given = Codec(KEYS, "lab", session="s-1")
    assert json.loads(given.encode(Ping())[2])["session"] == "s-1"
    a, b = Codec(KEYS, "lab"), Codec(KEYS, "lab")
    sa, sb = (json.loads(c.encode(Ping())[2])["session"] for c in (a, b))
    assert sa != sb and len(sa) == 32 and int(sa, 16) >= 0  # a uuid4 in hex
    assert isinstance(Codec(KEYS, "lab").decode(a.encode(Ping())), Message)
