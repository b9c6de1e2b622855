"""The JSON schemas of the protocol's messages, generated from the models.

``python -m abduce.instruments.protocol.schema`` prints them as Markdown;
with ``--write`` it rewrites the part of ``SPEC.md`` between the lines
``<!-- schemas:begin -->`` and ``<!-- schemas:end -->``. A test fails when
``SPEC.md`` and :func:`render` disagree.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from abduce.instruments.protocol.models import MESSAGES, Header

BEGIN = "<!-- schemas:begin -->"
END = "<!-- schemas:end -->"
SPEC = Path(__file__).with_name("SPEC.md")


def schemas() -> dict[str, dict]:
    """``{msg_type: JSON schema}``: "header" first, then every message in ``MESSAGES`` order."""
    out: dict[str, dict] = {"header": Header.model_json_schema()}
    for msg_type, model in MESSAGES.items():
        out[msg_type] = model.model_json_schema()
    return out


def render() -> str:
    """The schemas as Markdown: one ``### msg_type`` heading and a fenced JSON block each."""
    blocks = []
    for name, schema in schemas().items():
        blocks.append(f"### {name}\n\n```json\n{json.dumps(schema, indent=2, sort_keys=True)}\n```\n")
    return "\n".join(blocks)


def _span(text: str) -> tuple[int, int]:
    """Where the schema section lies: from the end of the begin marker line to the start of the end marker line."""
    lines = text.splitlines(keepends=True)
    begins = [i for i, line in enumerate(lines) if line.strip() == BEGIN]
    ends = [i for i, line in enumerate(lines) if line.strip() == END]
    if len(begins) != 1 or len(ends) != 1 or ends[0] < begins[0]:
        raise ValueError(f"need exactly one line {BEGIN} followed by exactly one line {END}")
    start = sum(len(line) for line in lines[: begins[0] + 1])
    end = sum(len(line) for line in lines[: ends[0]])
    return start, end


def schema_section(text: str) -> str:
    """What ``text`` holds between the marker lines, without surrounding blank lines (one trailing newline)."""
    start, end = _span(text)
    return text[start:end].strip("\n") + "\n"


def splice(text: str, body: str) -> str:
    """``text`` with the part between the marker lines replaced by ``body`` (a blank line either side)."""
    start, end = _span(text)
    return text[:start] + "\n" + body.strip("\n") + "\n\n" + text[end:]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m abduce.instruments.protocol.schema", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--write", action="store_true", help=f"rewrite the schema section of {SPEC.name}")
    parser.add_argument(
        "--spec", type=Path, default=SPEC, help="the specification file (default: the one beside this module)"
    )
    args = parser.parse_args(argv)
    body = render()
    if not args.write:
        sys.stdout.write(body)
        return 0
    text = args.spec.read_text(encoding="utf-8")
    new = splice(text, body)
    if new != text:
        args.spec.write_text(new, encoding="utf-8")
        print(f"rewrote the schemas in {args.spec}")
    else:
        print(f"{args.spec} is up to date")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
