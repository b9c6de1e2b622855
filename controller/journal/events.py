"""What a journal's events mean, read back: one reading of them that resume, rebuild and inspection share."""

from __future__ import annotations


def refused_readings(events) -> tuple[set[str], set[str]]:
    """``(refused, skipped)`` request ids: measurements ``tell`` refused (not part of the data; an
    instrument error leaves its request in flight instead), and of those, the NaN/inf readings
    whose point was skipped."""
    errors = [e for e in events if e.kind == "error" and e.body.get("stage") != "instrument"]
    return {e.request_id for e in errors}, {e.request_id for e in errors if e.body.get("skipped")}
