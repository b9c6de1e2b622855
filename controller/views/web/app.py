"""The Starlette app: GET routes only (:mod:`abduce.controller.views.web`), the page, the cards and the
server-sent events.
"""

from __future__ import annotations

import importlib.resources
import json
import secrets
import time
from urllib.parse import urlencode

from pydantic import BaseModel

from abduce.controller.views.terminal import STATUS, check_cell, evidence_text, parameters_text
from abduce.controller.views.transfer import carried_label, moments_text, transferred_text
from abduce.controller.views.web.access import TokenRequired
from abduce.controller.views.web.status import FIGURES, SHOWN, Campaigns, RunList

POLL_S = 0.5  # how often a server-sent-event stream looks at the journals


def _template():
    from jinja2 import Environment

    page = importlib.resources.files("abduce.controller.views.web").joinpath("web_page.html")
    source = page.read_text(encoding="utf-8")
    env = Environment(autoescape=True, trim_blocks=True, lstrip_blocks=True)
    env.filters["clock"] = lambda t: "-" if t is None else time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t))
    env.globals["check_cell"] = check_cell
    env.globals["proposal_status"] = STATUS
    env.globals["evidence_text"] = evidence_text
    env.globals["parameters_text"] = parameters_text
    env.globals["transferred_text"] = transferred_text
    env.globals["carried_label"] = carried_label
    env.globals["moments_text"] = moments_text
    return env.from_string(source)


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
