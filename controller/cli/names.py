"""The names the commands take, listed in ``--help`` and checked before anything heavy happens.

A misspelt ``--policy`` (or hypothesis, simulator, truth, acquisition, reduction, plot format, propose mode) fails in
the time Python takes to start: the check reads :data:`abduce.controller.registry.BUILT_IN` (held equal to
the registries by tests/controller/test_cli_names.py), imports no torch and runs before any run directory
is made; a daemon config's ``[campaign]`` names too (:func:`check_daemon_config`, with the file, line
and key). A dotted path to user code (``package.module:Name``) passes these checks; only importing it
can check it, which the commands do before they make their run directory.

Example:
    >>> check_run(simulator="transition-1d", truth="secnd-order")  # doctest: +SKIP
    UnknownNameError: unknown truth 'secnd-order'; known: ...; did you mean 'second-order'?
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, get_args

from pydantic import AfterValidator, BaseModel, ConfigDict

from abduce.controller.errors import ConfigError, UnknownNameError
from abduce.controller.recipe.recipe import Recipe
from abduce.controller.registry import BUILT_IN, check_name, is_dotted

IN_PROCESS_SIMULATORS = ("transition-1d",)
"""The simulators ``abduce run`` builds in its own process (it passes them a law as ``truth``, ``x_c``, ``beta``);
the others are served (``abduce instrument serve --driver simulated:NAME``) or rehearsed (``abduce replay``,
sweeps)."""

SERVED_SIMULATORS = tuple(s for s in BUILT_IN["simulator"] if s not in IN_PROCESS_SIMULATORS)
"""The simulators ``abduce run`` reaches only through an agent (``--listen``)."""


PROPOSE_MODES: tuple[str, ...] = get_args(Recipe.model_fields["propose"].annotation)
"""What a campaign does with composed laws (``--propose``, ``[campaign] propose``): ``off``, ``add`` them
when "none of these" leads, or ``suggest`` them for an operator to accept (:mod:`abduce.controller.core.abduction`)."""


def check_propose(mode: str) -> str:
    """``mode`` when it is one of :data:`PROPOSE_MODES`.

    Raises:
        UnknownNameError: any other (the message names the modes and the closest).
    """
    if mode not in PROPOSE_MODES:
        raise UnknownNameError("propose mode", mode, list(PROPOSE_MODES))
    return mode


def one_of(kind: str, notes: dict[str, str] | None = None) -> str:
    """``"a, b (note), c"``: the built-in names of ``kind`` for a ``--help`` text."""
    notes = notes or {}
    return ", ".join(f"{n} ({notes[n]})" if n in notes else n for n in BUILT_IN[kind])


def check_hypotheses(names: Iterable[str]) -> None:
    """Each a built-in hypothesis or a dotted path (UnknownNameError naming the closest built-ins)."""
    for name in names:
        check_name("hypothesis", name, dotted=True)


def check_run(
    simulator: str | None = None,
    truth: str | None = None,
    hypotheses: Iterable[str] = (),
    policy: str | None = None,
    acquisition: str | None = None,
    reduction: str | None = None,
    propose: str | None = None,
) -> None:
    """The names ``abduce run`` takes (None: not given).

    Raises:
        UnknownNameError: a name that no registry holds (the message names the closest ones).
        ConfigError: a simulator that ``abduce run`` does not build in process (says how to run it).
    """
    check_hypotheses(hypotheses)
    if propose is not None:
        check_propose(propose)
    if policy is not None:
        check_name("policy", policy)
    if acquisition is not None:
        check_name("acquisition", acquisition)
    if reduction is not None:
        check_name("reduction", reduction, dotted=True)
    if simulator is not None:
        check_name("simulator", simulator)
        if simulator not in IN_PROCESS_SIMULATORS:
            raise ConfigError(
                f"abduce run simulates {', '.join(IN_PROCESS_SIMULATORS)} in its own process; serve {simulator} "
                f"(abduce instrument serve --driver simulated:{simulator}) and run with --listen, or rehearse "
                f"it (abduce replay --against simulated:{simulator}, or a sweep)"
            )
    if truth is not None:
        check_name("truth", truth)


def check_source(spec: str) -> None:
    """A rehearsal's source: ``simulated:NAME`` (a built-in simulator), ``recorded:PATH`` (an existing file)
    or ``package.module:Driver``.

    Raises:
        UnknownNameError: an unknown simulator.
        ConfigError: no such recorded file, or a spec of neither form.
    """
    kind, sep, rest = spec.partition(":")
    if kind == "simulated" and sep:
        check_name("simulator", rest)
    elif kind == "recorded" and sep:
        path = Path(rest)
        if not path.exists():
            raise ConfigError(f"recorded data set {rest!r} does not exist")
        if path.is_dir():
            raise ConfigError(f"recorded data set {rest!r} is a directory; name the file (.h5, .nsid, .nc or .npz)")
    elif not (sep and rest):
        raise ConfigError(
            f"source {spec!r}: use simulated:NAME ({one_of('simulator')}), recorded:PATH or package.module:Driver"
        )


def import_plugins(hypotheses: Iterable[str] = (), reduction: str | None = None) -> None:
    """Import the dotted paths among the names (a user's hypotheses and reduction), so one that does not
    import fails before a run directory exists; built-in names are skipped (nothing heavy is imported
    for them).

    Raises:
        ConfigError: a path that does not import, or is not a hypothesis (a reduction).
    """
    dotted = [h for h in hypotheses if is_dotted(h)]
    if dotted:
        from abduce.hypotheses.library import resolve_hypothesis

        for h in dotted:
            resolve_hypothesis(h)
    if reduction is not None and is_dotted(reduction):
        from abduce.controller.intake.reduction import resolve_reduction

        resolve_reduction(reduction)


def _named(kind: str, dotted: bool = False):
    """A pydantic validator of one name of ``kind`` (a ValueError, so the config's error names file, line, key)."""
    return _value_error(lambda name: check_name(kind, name, dotted))


def _value_error(check):
    """``check`` as a pydantic validator: None passes, an UnknownNameError becomes a ValueError."""

    def validate(name: str | None) -> str | None:
        try:
            return None if name is None else check(name)
        except UnknownNameError as exc:
            raise ValueError(str(exc)) from None

    return validate


class _CampaignNames(BaseModel):
    """The names in a daemon config's ``[campaign]``; every other key is left to the full validation."""

    model_config = ConfigDict(extra="ignore")

    hypotheses: list[Annotated[str, AfterValidator(_named("hypothesis", dotted=True))]] = []
    policy: Annotated[str | None, AfterValidator(_named("policy"))] = None
    acquisition: Annotated[str | None, AfterValidator(_named("acquisition"))] = None
    reduction: Annotated[str | None, AfterValidator(_named("reduction", dotted=True))] = None
    propose: Annotated[str | None, AfterValidator(_value_error(check_propose))] = None


class _ConfigNames(BaseModel):
    model_config = ConfigDict(extra="ignore")

    campaign: _CampaignNames | None = None


def check_daemon_config(path: Path) -> None:
    """The names in a daemon config (``abduce daemon CONFIG``), checked before torch is imported; the full
    validation (:func:`~abduce.controller.recipe.settings.load_settings`) follows.

    Raises:
        ConfigError: a name that no registry holds (file, line and key named), or a file that does not read.
    """
    from abduce.controller.recipe.settings import load_toml

    load_toml(path, _ConfigNames)
