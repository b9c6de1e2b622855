"""The daemon's settings: one validated pydantic model, loaded once from TOML at the edge.

A typo is an error that names the key, the file and the line::

    deploy/config/simulated.toml:7: campaign.budgte: Extra inputs are not permitted

Example (``deploy/config/simulated.toml``)::

    [campaign]
    hypotheses = ["second-order", "first-order", "linear", "sigmoid"]
    policy = "discriminate"
    budget = 40
    seed = 0

    [instrument]
    listen = "tcp://127.0.0.1:5555"
    key = "keys/controller.key"

    [daemon]
    run_dir = "runs/simulated"

Relative paths are resolved against the config file's folder.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Annotated, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator

from abduce.controller.errors import ConfigError
from abduce.controller.recipe.recipe import Recipe


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CampaignSection(Recipe):
    """What to learn: the campaign's :class:`~abduce.controller.recipe.recipe.Recipe`. A daemon's
    config states its budget (no default: a week of beam time is not spent on a default).

    ``prior_from``: a past run (its folder or journal) whose posteriors become this campaign's priors,
    ``temper``, ``transfer_share``, ``transfer_drift`` and ``transfer_carry`` how strongly (README, "Transfer between
    campaigns");
    the daemon reads it when it starts the campaign, and a resume uses what its journal says was transferred."""

    budget: Annotated[int, Field(ge=1)]
    prior_from: Path | None = None
    temper: Annotated[float, Field(gt=0, le=1)] | None = None
    transfer_share: Annotated[float, Field(gt=0, le=1)] | None = None
    transfer_drift: Annotated[float, Field(ge=0, le=1)] | None = None
    transfer_carry: Annotated[float, Field(ge=0, lt=1)] | None = None

    @model_validator(mode="after")
    def _transfer(self) -> CampaignSection:
        if self.prior_from is None and any(
            v is not None for v in (self.temper, self.transfer_share, self.transfer_drift, self.transfer_carry)
        ):
            raise ValueError(
                "temper, transfer_share, transfer_drift and transfer_carry go with prior_from (a past run)"
            )
        return self


class InstrumentSection(_Section):
    """Where instruments connect, and the keys."""

    listen: Annotated[str, Field(pattern=r"^(tcp|ipc|inproc)://.+")] = "tcp://127.0.0.1:5555"
    key: Path
    curve_secret: Path | None = None
    curve_clients: Path | None = None
    wait_s: Annotated[float, Field(gt=0)] = 600.0
    instrument_id: str | None = None
    # protocol 1.1: the instrument's safe state when the campaign stops on an unrecoverable error, and
    # what an operator's abort does to the campaign (skip the aborted point and go on, or pause)
    safe_state_on_error: bool = False
    on_abort: Literal["skip", "pause"] = "skip"


class DaemonSection(_Section):
    """Where the daemon writes and how it logs."""

    run_dir: Path
    control: Annotated[str, Field(pattern=r"^(tcp|ipc)://.+")] = "tcp://127.0.0.1:5570"
    log: Literal["stderr"] | Path = "stderr"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    web: str | None = None  # "HOST:PORT": serve the live web view of run_dir there (abduce serve)
    web_token: SecretStr | None = None  # required when `web` is beyond loopback; journalled as "**********"

    @model_validator(mode="after")
    def _web_view(self) -> DaemonSection:
        if self.web is not None:
            from abduce.controller.recipe.addresses import check_bind, parse_address

            try:
                host, _ = parse_address(self.web)
                check_bind(
                    host,
                    None if self.web_token is None else self.web_token.get_secret_value(),
                    token_from="[daemon] web_token",
                )
            except ConfigError as exc:
                raise ValueError(str(exc)) from None
        return self


class Settings(_Section):
    """The whole config file."""

    campaign: CampaignSection
    instrument: InstrumentSection
    daemon: DaemonSection

    def resolved(self, base: Path) -> Settings:
        """Relative paths made absolute against ``base`` (the config file's folder)."""

        def fix(p: Path | None | str) -> Path | None | str:
            if isinstance(p, Path) and not p.is_absolute():
                return (base / p).resolve()
            return p

        inst = self.instrument.model_copy(
            update={k: fix(getattr(self.instrument, k)) for k in ("key", "curve_secret", "curve_clients")}
        )
        daemon = self.daemon.model_copy(update={"run_dir": fix(self.daemon.run_dir), "log": fix(self.daemon.log)})
        campaign = self.campaign.model_copy(update={"prior_from": fix(self.campaign.prior_from)})
        return self.model_copy(update={"instrument": inst, "daemon": daemon, "campaign": campaign})


def _line_of(text: str, loc: tuple) -> int | None:
    """The line of ``[section]`` ... ``key =`` for an error location, if it can be found."""
    section = str(loc[0]) if loc else None
    key = str(loc[1]) if len(loc) > 1 else None
    current = None
    section_line = None
    for number, line in enumerate(text.splitlines(), start=1):
        header = re.match(r"^\s*\[([^\]]+)\]\s*(#.*)?$", line)
        if header:
            current = header.group(1).strip()
            if current == section:
                section_line = number
            continue
        if key is not None and current == section and re.match(rf"^\s*{re.escape(key)}\s*=", line):
            return number
    return section_line


def load_settings(path: str | Path) -> Settings:
    """Read, validate and resolve a daemon config (see :func:`load_toml`)."""
    path = Path(path)
    return load_toml(path, Settings).resolved(path.parent)


M = TypeVar("M", bound=BaseModel)


def load_toml(path: str | Path, model: type[M]) -> M:
    """Read a TOML file and validate it into ``model`` (the daemon's settings, a sweep).

    Raises:
        ConfigError: the file is missing, not TOML, or fails validation; the
            message names the file, the line and the key.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read config {path}: {exc.strerror or exc}") from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = tuple(err["loc"])
            line = _line_of(text, loc)
            where = f"{path}:{line}" if line else str(path)
            problems.append(f"{where}: {'.'.join(str(p) for p in loc)}: {err['msg']}")
        raise ConfigError("invalid config:\n  " + "\n  ".join(problems)) from None
