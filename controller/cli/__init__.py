"""The ``abduce`` command line: one typer app, its commands in one module per group.

Argument parsing lives here; the work lives in the modules the commands call (a campaign:
:func:`abduce.controller.cli.campaigns.run_in_process`), so a notebook or a test can do the same
without a shell. The groups register in the order ``abduce --help`` lists them.
"""

from abduce.controller.cli import campaigns, daemon, instrument, proposals, rehearse, views  # noqa: F401 (they register)
from abduce.controller.cli.common import app


def main() -> None:  # pragma: no cover - console entry point
    app()


__all__ = ["app", "main"]
