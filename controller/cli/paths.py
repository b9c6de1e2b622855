"""The paths the commands take, checked with messages that say what is wrong with them.

A RUN argument (``inspect``, ``plot``, ``report``, ``export``, ``replay``, ``serve``) is a run directory or
its ``journal.sqlite``; an ``--out`` names a folder to fill or a file to write. Each check runs before
anything heavy is imported or written, and says which of these it is: the path does not exist; it is a
directory without a journal; it is a file where a folder is expected, or a folder where a file is.
(A file that is not a journal is told by :meth:`abduce.controller.journal.store.Journal.open`.)
"""

from __future__ import annotations

from pathlib import Path

from abduce.controller.errors import ConfigError

JOURNAL = "journal.sqlite"


def run_path(run: Path, may_wait: bool = False) -> Path:
    """``run`` when it names a run directory or a journal file.

    Args:
        may_wait: a directory without a journal yet is fine (``abduce serve`` waits for its journal).

    Raises:
        ConfigError: ``run`` does not exist, or is a directory without a journal (the message names the
            run directories it holds, if any: ``runs/`` given for ``runs/demo``).
    """
    if not run.exists():
        where = "" if run.parent.is_dir() else f" (nor does its folder {run.parent})"
        raise ConfigError(f"{run} does not exist{where}: give a run directory or its {JOURNAL}")
    if run.is_dir() and not (run / JOURNAL).exists() and not may_wait:
        inside = sorted(p.name for p in run.iterdir() if (p / JOURNAL).is_file())
        hint = f"; it holds the run directories {', '.join(inside[:5])}{', ...' if len(inside) > 5 else ''}"
        raise ConfigError(
            f"{run} is a directory without a journal ({JOURNAL}): not a run directory" + (hint if inside else "")
        )
    return run


def out_folder(path: Path, what: str) -> Path:
    """``path`` when it is a folder or does not exist yet (``what`` it is for, for the message).

    Raises:
        ConfigError: ``path`` is a file.
    """
    if path.exists() and not path.is_dir():
        raise ConfigError(f"{path} is a file; --out names a folder ({what})")
    return path


def out_file(path: Path, what: str) -> Path:
    """``path`` when it is not a folder (``what`` it is for, for the message).

    Raises:
        ConfigError: ``path`` is a folder.
    """
    if path.is_dir():
        raise ConfigError(f"{path} is a folder; --out names the file to write ({what})")
    return path
