"""``python -m abduce.controller.cli``: the command line, as the ``abduce`` script."""

from abduce.controller.cli import app

app()
