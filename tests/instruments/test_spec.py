"""SPEC.md is the authority: its schemas must be the models', and its prose must cover every type and code."""

from __future__ import annotations

import re

from abduce.instruments.protocol import TAG, Codec, Keyring
from abduce.instruments.protocol.models import ERROR_CODES, MESSAGES, PROTOCOL_VERSION, REJECT_CODES
from abduce.instruments.protocol.schema import BEGIN, END, SPEC, render, schema_section, schemas, splice

TEXT = SPEC.read_text(encoding="utf-8")
PROSE = TEXT.split(BEGIN)[0]


def test_schema_section_matches_models():
    assert schema_section(TEXT) == render(), (
        "SPEC.md's JSON schemas differ from the models: run "
        "`python -m abduce.instruments.protocol.schema --write` and review the change"
    )


def test_schemas_cover_header_and_every_message_in_order():
    names = list(schemas())
    assert names == ["header", *MESSAGES]
    assert re.findall(r"^### (\S+)$", schema_section(TEXT), flags=re.M) == names


def test_splice_is_idempotent_and_keeps_the_markers():
    again = splice(TEXT, render())
    assert again == TEXT
    assert again.count(BEGIN) == 1 and again.count(END) == 1


def test_spec_names_the_version_and_the_tag():
    assert TEXT.startswith(f"# abduce instrument protocol, version {PROTOCOL_VERSION}")
    assert TAG.decode() in PROSE


def test_spec_mentions_every_msg_type():
    missing = [t for t in MESSAGES if f"`{t}`" not in PROSE]
    assert not missing, f"SPEC.md's prose never mentions {missing}"


def test_spec_mentions_every_error_code():
    missing = [c for c in ERROR_CODES if f"`{c}`" not in PROSE]
    assert not missing, f"SPEC.md's prose never mentions the error codes {missing}"


def test_spec_mentions_every_reject_code():
    missing = [c for c in REJECT_CODES if f"`{c}`" not in PROSE]
    assert not missing, f"SPEC.md's prose never mentions the reject codes {missing}"


def test_spec_test_vector_is_right():
    """The worked signing example in section 3 verifies and decodes with the reference codec."""
    block = PROSE.split("**Test vector.**", 1)[1].split("```text", 1)[1].split("```", 1)[0]
    fields = dict(re.findall(r"^(key|frame \d+)\s*= (.*)$", block, flags=re.M))
    secret = bytes.fromhex(fields.pop("key"))
    frames = []
    for i in range(len(fields)):
        value = fields[f"frame {i}"]
        frames.append(bytes.fromhex(value[4:]) if value.startswith("hex:") else value.encode())
    keyring = Keyring({"example": secret})
    assert frames[0] == TAG
    assert keyring.sign("example", frames[2:]) == frames[1]
    msg = Codec(keyring, "example").decode(frames)
    assert msg.msg_type == "result" and msg.parent is not None and msg.parent.msg_type == "measure"
    assert msg.metadata == {"operator": "ab"}
    assert msg.buffers == (bytes.fromhex("000000000000f03f0000000000000040"),)
