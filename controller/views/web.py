"""``abduce serve RUN [RUN...]``: a live, read-only web view of campaigns.

One page lists the campaigns (run directories or journal files): where each
stands (measurements / budget, leader, probabilities, stopped) and its
posterior and probability plots (the figures of :mod:`abduce.controller.views.plots`,
as PNG). The page follows the journals as measurements arrive: the server
polls each journal's last sequence number (one indexed ``SELECT`` on a
read-only connection) and pushes a server-sent event when it grows; the page
then re-fetches that campaign's card (server-rendered HTML: the numbers and
the plot URLs, which carry the sequence number so the images reload).

Read-only by construction: every route is ``GET`` (``HEAD``); journals are
opened read-only (SQLite ``mode=ro``, as ``abduce inspect`` opens them), so
the view never writes to a journal, and it holds nothing that reaches the
instrument or the daemon's control lane.

Routes (``NAME``: the campaign's name on the page, from its folder)::

    GET /                               the page
    GET /events                         server-sent events: "hello" {"runs": {NAME: seq}},
                                        then "update" {"run": NAME, "seq": int} whenever a journal grows
    GET /api/runs                       {"runs": [RunStatus, ...]}  (JSON; RunStatus below)
    GET /api/runs/NAME                  RunStatus
    GET /api/runs/NAME/inspection       the full ``abduce inspect --json`` of the campaign
    GET /runs/NAME/card                 the campaign's card (HTML fragment of the page)
    GET /runs/NAME/plots/FIGURE.png     FIGURE in posteriors, probabilities, choices, acquisition,
                                        spectra (a figure the campaign cannot draw yet is a PNG
                                        that says why, with the reason in X-Abduce-Not-Drawn)

Access: bound to loopback (``127.0.0.1``, ``::1``, ``localhost``) the view
needs no token, and answers only requests whose ``Host`` is a loopback name
(so a web page elsewhere cannot reach it by DNS rebinding). Bound to any
other address it refuses to start without a token, and every request must
carry it, as ``?token=TOKEN`` or ``Authorization: Bearer TOKEN``; anything
else gets 401. (The page passes the token it was opened with on to its own
requests.) Plain HTTP: beyond loopback, put it behind an SSH tunnel or a
TLS-terminating proxy, since the token travels with every request.

Costs: a status is recomputed (``inspect_journal``, journal only) once per
journal growth, and the figures once per growth *that someone looks at*
(the posteriors rebuild the campaign, as ``abduce plot`` does); both are
cached by sequence number.
"""

from __future__ import annotations

import hmac
import importlib.resources
import json
import re
import secrets
import socket
import sqlite3
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlencode

from pydantic import BaseModel, ConfigDict

from abduce.controller.errors import AbduceError, ConfigError
from abduce.controller.recipe.addresses import check_bind
from abduce.controller.views.inspection import HypothesisSummary, Inspection, MeasurementRow, check_cell, inspect_run

SCHEMA_VERSION = 3  # 2: none, unfitted, fit_failures; 3: explained, hypotheses[].check
FIGURES = ("posteriors", "probabilities", "choices", "acquisition", "spectra")
SHOWN = ("posteriors", "probabilities")  # drawn on the page; the others are linked
POLL_S = 0.5  # how often a server-sent-event stream looks at the journals
DPI = 90

_DRAW = threading.RLock()  # matplotlib's font cache and the rebuilds share state: one figure at a time


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", ser_json_inf_nan="null")


class RunStatus(_Strict):
    """Where one campaign stands, as ``GET /api/runs/NAME`` returns it."""

    schema_version: int = SCHEMA_VERSION
    name: str
    run: str  # the journal file
    seq: int | None  # the journal's last event (None: no journal yet, or unreadable)
    updated: float | None  # when that event was written (UTC seconds)
    last_event: str | None  # its kind: "measurement" while the campaign decides on it, "decision" once done...
    state: Literal["waiting", "unreadable", "in-progress", "complete"]
    message: str | None  # why waiting or unreadable
    mode: str | None
    measurements: int
    budget: int | None
    stopped: bool  # the stopping rule fired
    leader: str | None
    probabilities: dict[str, float]
    none: float | None  # the probability of "none of these"
    unfitted: list[str]  # never fitted: no probability, so no leader
    fit_failures: dict[str, int]
    explained: bool | None  # the most probable explanation is a law that passes its checks (None: not checked)
    hypotheses: list[HypothesisSummary]
    in_flight: int
    errors: int
    last: MeasurementRow | None


class RunList(_Strict):
    """``GET /api/runs``."""

    runs: list[RunStatus]


# --------------------------------------------------------------------------- the runs (no web here)


def journal_head(path: Path) -> tuple[int, float, str] | None:
    """``(seq, t, kind)`` of the journal's last event, read-only; None if there is no readable journal (yet).

    One indexed query (``seq`` is the events table's integer primary key, see
    :mod:`abduce.controller.journal.store`), cheap enough to poll.
    """
    if not path.is_file():
        return None
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            row = conn.execute("SELECT seq, t, kind FROM events ORDER BY seq DESC LIMIT 1").fetchone()
        finally:
            conn.close()
    except sqlite3.Error:
        return None
    return (int(row[0]), float(row[1]), str(row[2])) if row else None


def _journal_of(run: Path) -> Path:
    """A run directory (existing or not yet) or a journal file -> the journal file."""
    return run if run.is_file() or run.suffix == ".sqlite" else run / "journal.sqlite"


def _names(runs: Sequence[Path]) -> list[str]:
    """A URL-safe, unique name per run: its folder's name (a journal file's folder)."""
    out: list[str] = []
    for run in runs:
        p = _journal_of(Path(run))
        base = p.parent.name if p.name == "journal.sqlite" else p.stem
        base = re.sub(r"[^A-Za-z0-9_.-]+", "-", base).strip("-.") or "run"
        name, i = base, 2
        while name in out:
            name, i = f"{base}-{i}", i + 1
        out.append(name)
    return out


@dataclass
class _Run:
    name: str
    journal: Path
    lock: threading.Lock = field(default_factory=threading.Lock)  # guards status and inspection
    drawing: threading.Lock = field(default_factory=threading.Lock)  # guards plots
    status: tuple[int | None, RunStatus | None] = (None, None)  # (seq, status) last computed
    inspection: Inspection | None = None
    plots: tuple[int | None, Any, dict[str, bytes]] = (None, None, None)  # (seq, Plots, name -> PNG)


class Campaigns:
    """The campaigns a web view shows: their status and figures, cached by journal sequence number.

    Pure and synchronous (no web framework): the routes of :func:`create_app`
    call it from worker threads.

    Args:
        runs: run directories or journal files (a directory need not hold its journal yet).
    """

    def __init__(self, runs: Sequence[str | Path]) -> None:
        paths = [Path(r) for r in runs]
        self._runs = {name: _Run(name, _journal_of(p)) for name, p in zip(_names(paths), paths)}
        self.closing = threading.Event()  # set when the server stops: event streams end

    @property
    def names(self) -> list[str]:
        return list(self._runs)

    def __contains__(self, name: str) -> bool:
        return name in self._runs

    def heads(self) -> dict[str, int | None]:
        """Every journal's last sequence number (None: none yet)."""
        return {name: (h[0] if (h := journal_head(r.journal)) else None) for name, r in self._runs.items()}

    def status(self, name: str) -> RunStatus:
        """Where campaign ``name`` stands (recomputed only when its journal has grown)."""
        run = self._runs[name]
        head = journal_head(run.journal)
        seq = head[0] if head else None
        with run.lock:
            cached_seq, cached = run.status
            if cached is not None and cached_seq == seq and seq is not None:
                return cached
            status = self._status(run, head)
            run.status = (seq, status)
            return status

    def _status(self, run: _Run, head: tuple[int, float, str] | None) -> RunStatus:
        empty = dict(
            mode=None,
            measurements=0,
            budget=None,
            stopped=False,
            leader=None,
            probabilities={},
            none=None,
            unfitted=[],
            fit_failures={},
            explained=None,
            hypotheses=[],
            in_flight=0,
            errors=0,
            last=None,
        )
        base = dict(name=run.name, run=str(run.journal))
        if head is None and not run.journal.exists():
            return RunStatus(
                **base,
                seq=None,
                updated=None,
                last_event=None,
                state="waiting",
                message="no journal yet: the campaign has not started",
                **empty,
            )
        try:
            ins = inspect_run(run.journal)
        except AbduceError as exc:
            run.inspection = None
            return RunStatus(
                **base, seq=None, updated=None, last_event=None, state="unreadable", message=str(exc), **empty
            )
        run.inspection = ins
        st, s = ins.stopping, ins.summary
        last = ins.measurements[-1] if ins.measurements else None
        return RunStatus(
            **base,
            seq=head[0] if head else None,
            updated=head[1] if head else None,
            last_event=head[2] if head else None,
            state="complete" if st.stopped or st.measurements >= st.budget else "in-progress",
            message=None,
            mode=ins.mode,
            measurements=st.measurements,
            budget=st.budget,
            stopped=st.stopped,
            leader=s.leader,
            probabilities={h.name: h.probability for h in s.hypotheses},
            hypotheses=s.hypotheses,
            none=s.none.probability if s.none else None,
            unfitted=s.unfitted,
            fit_failures=s.fit_failures,
            explained=s.explained,
            in_flight=len(st.in_flight),
            errors=len(st.errors),
            last=last,
        )

    def inspection(self, name: str) -> Inspection | None:
        """The full inspection behind the current status (None: no readable journal)."""
        self.status(name)
        return self._runs[name].inspection

    def figure_png(self, name: str, figure: str) -> tuple[bytes, str | None]:
        """FIGURE of campaign ``name`` as PNG, and why it is not drawn (None: it is).

        A figure the campaign cannot draw (no journal yet, no fit yet, a space
        of three axes, no raw spectra...) comes back as a PNG that says why.
        """
        if figure not in FIGURES:
            raise KeyError(figure)
        run = self._runs[name]
        head = journal_head(run.journal)
        if head is None:
            why = "no journal yet" if not run.journal.exists() else "the journal cannot be read"
            return _note_png(figure, why), why
        from abduce.controller.journal.store import Journal
        from abduce.controller.views.plots import build_plots

        with run.drawing, _DRAW:
            seq, plots, pngs = run.plots
            if seq != head[0] or plots is None:
                try:
                    with Journal.open(run.journal, readonly=True) as journal:
                        plots = build_plots(journal)
                except AbduceError as exc:
                    return _note_png(figure, str(exc)), str(exc)
                pngs = {}
                run.plots = (head[0], plots, pngs)
            if figure not in pngs:
                if figure in plots.figures:
                    pngs[figure] = _png(plots.figures[figure])
                else:
                    why = plots.skipped.get(figure) or "nothing to draw"
                    return _note_png(figure, why), why
            return pngs[figure], None


def _png(fig) -> bytes:
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    return buf.getvalue()


def _note_png(figure: str, why: str) -> bytes:
    import textwrap

    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 1.2))
    fig.text(0.02, 0.5, f"{figure}: not drawn\n" + textwrap.fill(why, 90), va="center", fontsize=9, color="0.35")
    with _DRAW:
        return _png(fig)


# --------------------------------------------------------------------------- the web app


def _template():
    from jinja2 import Environment

    source = importlib.resources.files("abduce.controller.views").joinpath("web_page.html").read_text(encoding="utf-8")
    env = Environment(autoescape=True, trim_blocks=True, lstrip_blocks=True)
    env.filters["clock"] = lambda t: "-" if t is None else time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t))
    env.globals["check_cell"] = check_cell
    return env.from_string(source)


class TokenRequired:
    """ASGI middleware: every request carries the token (``?token=`` or ``Authorization: Bearer``), else 401."""

    def __init__(self, app, token: str) -> None:
        self.app, self._token = app, token.encode("utf-8")

    def _carried(self, scope) -> bool:
        from starlette.datastructures import Headers, QueryParams

        given = QueryParams(scope.get("query_string", b"").decode("latin-1")).get("token")
        auth = Headers(scope=scope).get("authorization", "")
        if given is None and auth[:7].lower() == "bearer ":
            given = auth[7:].strip()
        return given is not None and hmac.compare_digest(given.encode("utf-8"), self._token)

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http" and not self._carried(scope):
            from starlette.responses import PlainTextResponse

            response = PlainTextResponse(
                "401: this view needs its token (?token=... or Authorization: Bearer ...)\n",
                status_code=401,
                headers={"WWW-Authenticate": 'Bearer realm="abduce"'},
            )
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


def create_app(campaigns: Campaigns, token: str | None = None, poll_s: float = POLL_S, host: str | None = None):
    """The Starlette app of the view: GET routes only (module docstring).

    Args:
        campaigns: what it shows.
        token: required on every request when given; without one, only
            loopback ``Host`` names (and ``host``) are answered.
        poll_s: how often an event stream looks at the journals.
        host: the address it is bound to.
    """
    import anyio
    from sse_starlette import EventSourceResponse, ServerSentEvent
    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.exceptions import HTTPException
    from starlette.middleware import Middleware
    from starlette.middleware.trustedhost import TrustedHostMiddleware
    from starlette.responses import HTMLResponse, Response
    from starlette.routing import Route

    template = _template()

    def url(path: str, **params) -> str:
        """A URL relative to the page, carrying the token when the view has one."""
        if token is not None:
            params["token"] = token
        return path + ("?" + urlencode(params) if params else "")

    def headers(nonce: str | None = None) -> dict[str, str]:
        script = f"'nonce-{nonce}'" if nonce else "'none'"
        return {
            "Content-Security-Policy": f"default-src 'none'; img-src 'self'; connect-src 'self'; "
            f"style-src {script}; script-src {script}; base-uri 'none'; "
            "form-action 'none'; frame-ancestors 'none'",
            "Referrer-Policy": "no-referrer",
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "no-cache",
        }

    def known(request) -> str:
        name = request.path_params["name"]
        if name not in campaigns:
            raise HTTPException(404, f"no campaign {name!r} here")
        return name

    def json_response(model: BaseModel) -> Response:
        return Response(model.model_dump_json(), media_type="application/json", headers=headers())

    async def page(request):
        statuses = await run_in_threadpool(lambda: [campaigns.status(n) for n in campaigns.names])
        nonce = secrets.token_urlsafe(16)
        html = template.render(
            runs=statuses, url=url, shown=SHOWN, others=FIGURES[len(SHOWN) :], nonce=nonce, poll_s=poll_s
        )
        return HTMLResponse(html, headers=headers(nonce))

    async def card(request):
        name = known(request)
        status = await run_in_threadpool(campaigns.status, name)
        html = str(template.module.card(status, url, SHOWN, FIGURES[len(SHOWN) :]))
        return HTMLResponse(html, headers=headers())

    async def runs(request):
        statuses = await run_in_threadpool(lambda: [campaigns.status(n) for n in campaigns.names])
        return json_response(RunList(runs=statuses))

    async def run(request):
        return json_response(await run_in_threadpool(campaigns.status, known(request)))

    async def inspection(request):
        ins = await run_in_threadpool(campaigns.inspection, known(request))
        if ins is None:
            raise HTTPException(404, "no readable journal yet")
        return json_response(ins)

    async def plot(request):
        name, figure = known(request), request.path_params["figure"]
        if figure not in FIGURES:
            raise HTTPException(404, f"no figure {figure!r}; known: {', '.join(FIGURES)}")
        png, why = await run_in_threadpool(campaigns.figure_png, name, figure)
        extra = {"X-Abduce-Not-Drawn": " ".join(why.encode("ascii", "replace").decode().split())[:300]} if why else {}
        return Response(png, media_type="image/png", headers={**headers(), **extra})

    async def events(request):
        shutdown = anyio.Event()  # set by sse-starlette when the server shuts down: end the stream cleanly

        async def stream():
            heads = await run_in_threadpool(campaigns.heads)
            yield ServerSentEvent(json.dumps({"runs": heads}), event="hello", retry=2000)
            while not (campaigns.closing.is_set() or shutdown.is_set()):
                await anyio.sleep(poll_s)
                now = await run_in_threadpool(campaigns.heads)
                for name, seq in now.items():
                    if seq != heads.get(name):
                        yield ServerSentEvent(json.dumps({"run": name, "seq": seq}), event="update")
                heads = now

        return EventSourceResponse(
            stream(), ping=15, headers=headers(), shutdown_event=shutdown, shutdown_grace_period=poll_s + 1
        )

    middleware = []
    if token is not None:
        middleware.append(Middleware(TokenRequired, token=token))
    else:  # loopback only: refuse other Host names (DNS rebinding)
        hosts = ["127.0.0.1", "localhost", "[::1]", "::1"] + ([host, f"[{host}]"] if host else [])
        middleware.append(Middleware(TrustedHostMiddleware, allowed_hosts=hosts))
    routes = [
        Route("/", page, methods=["GET"]),
        Route("/events", events, methods=["GET"]),
        Route("/api/runs", runs, methods=["GET"]),
        Route("/api/runs/{name}", run, methods=["GET"]),
        Route("/api/runs/{name}/inspection", inspection, methods=["GET"]),
        Route("/runs/{name}/card", card, methods=["GET"]),
        Route("/runs/{name}/plots/{figure}.png", plot, methods=["GET"]),
    ]
    app = Starlette(routes=routes, middleware=middleware)
    app.state.campaigns = campaigns
    return app


# --------------------------------------------------------------------------- serving


def _bind(host: str, port: int) -> socket.socket:
    """A listening socket on (host, port); port 0 picks a free one. Raises OSError (port taken...)."""
    family, _, _, _, addr = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind(addr)
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"


class WebServer:
    """A view served by uvicorn on a socket already bound (so the port is known, and errors come early).

    ``run()`` serves in this thread (signals handled: the CLI); ``start()``
    serves on a daemon thread (the daemon, tests) until ``close()``.

    Args:
        runs, token, poll_s: as :class:`Campaigns` and :func:`create_app` take them.
        host, port: where to listen (port 0: a free one; see ``url``).
        own_logging: uvicorn configures its own log lines (the CLI, with access
            lines); else its records go to the host process's logging (the
            daemon's JSON lines), without access lines.

    Raises:
        ConfigError: beyond loopback without a token, or a short token.
        OSError: the address cannot be bound.
    """

    def __init__(
        self,
        runs: Sequence[str | Path],
        host: str = "127.0.0.1",
        port: int = 8765,
        token: str | None = None,
        poll_s: float = POLL_S,
        own_logging: bool = True,
    ) -> None:
        import uvicorn

        check_bind(host, token)
        self.campaigns = Campaigns(runs)
        self.app = create_app(self.campaigns, token, poll_s, host.strip("[]"))
        self.socket = _bind(host, port)
        self.url = url_of(self.socket)
        logging = {} if own_logging else {"log_config": None}
        self.server = uvicorn.Server(
            uvicorn.Config(
                self.app,
                access_log=own_logging,
                timeout_graceful_shutdown=2,
                server_header=False,
                lifespan="off",
                **logging,
            )
        )
        self._thread: threading.Thread | None = None

    def run(self) -> None:
        try:
            self.server.run(sockets=[self.socket])
        finally:
            self.campaigns.closing.set()
            self.socket.close()

    def start(self, timeout_s: float = 10.0) -> WebServer:
        self._thread = threading.Thread(target=self.run, name="abduce-web", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout_s
        while not self.server.started and self._thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.01)
        if not self.server.started:
            self.close()
            raise ConfigError(f"the web view at {self.url} did not start")
        return self

    def close(self) -> None:
        self.campaigns.closing.set()  # event streams end at their next poll
        self.server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def __enter__(self) -> WebServer:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
