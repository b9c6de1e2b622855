"""``abduce serve``: the live, read-only web view (page, JSON, plots, server-sent events, tokens)."""

from __future__ import annotations

import hashlib
import json
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import httpx2
import pytest
from starlette.routing import Route
from starlette.testclient import TestClient
from typer.testing import CliRunner

from abduce.controller.cli import app as cli
from abduce.controller.errors import ConfigError
from abduce.controller.journal.store import Journal
from abduce.controller.views.inspection import inspect_run
from abduce.controller.views.web import FIGURES, Campaigns, WebServer, create_app
from tests.controller.views.test_inspect import recorded, synthetic_journal

TOKEN = "s3cret-token-for-the-tests-0123456789"
PNG = b"\x89PNG\r\n\x1a\n"
runner = CliRunner()


def copy_of_recorded(tmp_path: Path) -> Path:
    """A copy of the small real run (10 measurements, epsilon-greedy, second-order vs linear), without its lock."""
    out, _ = recorded()
    return Path(shutil.copytree(out, tmp_path / "live", ignore=shutil.ignore_patterns("*.lock")))


def client(campaigns: Campaigns, token: str | None = None) -> TestClient:
    return TestClient(create_app(campaigns, token), base_url="http://127.0.0.1")


def sse(lines):
    """Server-sent events from a stream of lines: dicts of their fields (comments skipped)."""
    event: dict[str, str] = {}
    for line in lines:
        if not line:
            if event:
                yield event
            event = {}
        elif not line.startswith(":"):
            key, _, value = line.partition(":")
            event[key] = value[1:] if value.startswith(" ") else value


def test_the_page_and_the_json_show_every_campaign(tmp_path):
    live = copy_of_recorded(tmp_path)
    synthetic = synthetic_journal(tmp_path / "synthetic" / "journal.sqlite", 8, budget=20)
    (tmp_path / "later").mkdir()  # a daemon's run directory before its journal exists
    with Journal.open(live / "journal.sqlite", readonly=True) as j:
        Journal.create(tmp_path / "fresh" / "journal.sqlite", j.config()).close()  # started, nothing measured yet
    before = hashlib.sha256((live / "journal.sqlite").read_bytes()).hexdigest()
    campaigns = Campaigns([live, synthetic, tmp_path / "later", tmp_path / "fresh" / "journal.sqlite"])
    assert campaigns.names == ["live", "synthetic", "later", "fresh"]
    c = client(campaigns)
    expected = inspect_run(live)

    page = c.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    html = page.text
    for name in campaigns.names:
        assert f'<section class="run" id="run-{name}"' in html
    assert '<span class="n">10</span> / <span class="budget">10</span>' in html
    assert '<span class="n">8</span> / <span class="budget">20</span>' in html
    assert '<span class="n">0</span> / <span class="budget">10</span>' in html
    assert f'<tr class="leader"><td>{expected.summary.leader}</td>' in html
    assert "no journal yet" in html
    assert 'src="runs/live/plots/posteriors.png?seq=' in html and 'src="runs/live/plots/probabilities.png?seq=' in html
    assert "script-src 'nonce-" in page.headers["content-security-policy"]
    assert not re.search(r"""(?:src|href)\s*=\s*["']?\s*(?:[a-z][a-z0-9+.-]*:)?//""", html, re.I)  # nothing external

    runs = {r["name"]: r for r in c.get("/api/runs").json()["runs"]}
    assert [runs[n]["state"] for n in campaigns.names] == ["complete", "complete", "waiting", "in-progress"]
    status = c.get("/api/runs/live").json()
    assert status == runs["live"]
    assert status["measurements"] == 10 and status["budget"] == 10 and status["stopped"] is True
    assert status["last_event"] == "decision"
    assert status["leader"] == expected.summary.leader
    assert status["probabilities"] == {h.name: h.probability for h in expected.summary.hypotheses}
    assert status["none"] == expected.summary.none.probability and status["unfitted"] == []
    assert status["fit_failures"] == expected.summary.fit_failures
    assert status["explained"] == expected.summary.explained and expected.summary.explained is not None
    lead = next(h for h in expected.summary.hypotheses if h.name == expected.summary.leader)
    assert f'<td class="checks">{"MISFIT" if lead.check.misfit else "ok"} (loo {lead.check.loo_rms:.2f}' in html
    assert '<tr class="none-of-these"><td><em>none of these</em></td>' in html
    assert status["last"]["request_id"] == expected.measurements[-1].request_id
    with Journal.open(live / "journal.sqlite", readonly=True) as j:
        assert status["seq"] == max(e.seq for e in j.events())
    assert runs["synthetic"]["measurements"] == 8 and runs["later"]["seq"] is None
    assert c.get("/api/runs/live/inspection").json() == json.loads(expected.model_dump_json())

    drawn = c.get("/runs/live/plots/posteriors.png")
    assert drawn.status_code == 200 and drawn.content.startswith(PNG) and "x-abduce-not-drawn" not in drawn.headers
    assert len(drawn.content) > 20_000
    probs = c.get("/runs/live/plots/probabilities.png")
    assert probs.content.startswith(PNG) and "x-abduce-not-drawn" not in probs.headers
    not_drawn = c.get("/runs/synthetic/plots/posteriors.png")  # made-up ids: it cannot be rebuilt
    assert not_drawn.content.startswith(PNG) and "could not be rebuilt" in not_drawn.headers["x-abduce-not-drawn"]
    assert "no journal yet" in c.get("/runs/later/plots/probabilities.png").headers["x-abduce-not-drawn"]
    card = c.get("/runs/live/card").text
    assert card.startswith('<section class="run" id="run-live"') and card.count("<img") == 2

    assert c.get("/api/runs/nope").status_code == 404
    assert c.get("/runs/live/plots/nope.png").status_code == 404
    assert c.get("/api/runs/later/inspection").status_code == 404
    # read-only: the journal is byte for byte as it was, and no writer's lock was ever taken
    assert hashlib.sha256((live / "journal.sqlite").read_bytes()).hexdigest() == before
    assert not (live / "journal.sqlite.lock").exists()


def test_the_event_stream_announces_a_measurement_appended_to_a_journal(tmp_path):
    live = copy_of_recorded(tmp_path)
    with (
        WebServer([live], port=0, poll_s=0.05, own_logging=False).start() as server,
        httpx2.Client(base_url=server.url, timeout=60) as http,
    ):
        with http.stream("GET", "events") as stream:
            assert stream.status_code == 200 and stream.headers["content-type"].startswith("text/event-stream")
            events = sse(stream.iter_lines())
            hello = next(events)
            assert hello["event"] == "hello"
            seq = json.loads(hello["data"])["runs"]["live"]
            assert http.get("api/runs/live").json()["measurements"] == 10
            with Journal.open(live / "journal.sqlite") as journal:  # the instrument's next reading arrives
                appended = journal.append("measurement", {"x": [0.42], "y": 0.5}, request_id="web-test")
            update = next(events)  # the stream's own read timeout guards against a hang
            assert update["event"] == "update", update
            assert json.loads(update["data"]) == {"run": "live", "seq": appended} and appended > seq
        status = http.get("api/runs/live").json()
        assert status["measurements"] == 11 and status["seq"] == appended and status["last"]["x"] == [0.42]
        assert status["last_event"] == "measurement"  # told, not yet decided on
        card = http.get("runs/live/card").text
        assert '<span class="n">11</span>' in card and "deciding on the last measurement" in card


def test_a_token_is_required_beyond_loopback_and_checked_on_every_request(tmp_path):
    live = copy_of_recorded(tmp_path)
    for host in ("0.0.0.0", "::", "192.0.2.7", "lab-pc.example.org"):
        with pytest.raises(ConfigError, match="needs a token"):
            WebServer(
                [live], host, 0
            )  # refused before anything is bound (the rule: tests/controller/recipe/test_addresses.py)
    result = runner.invoke(cli, ["serve", str(live), "--host", "0.0.0.0"], env={"ABDUCE_WEB_TOKEN": None})
    assert result.exit_code == 2 and "needs a token" in result.output

    c = TestClient(create_app(Campaigns([live]), TOKEN), base_url="http://lab-pc.example.org")
    for path in (
        "/",
        "/api/runs",
        "/api/runs/live",
        "/runs/live/card",
        "/runs/live/plots/probabilities.png",
        "/events",
    ):
        denied = c.get(path)
        assert denied.status_code == 401 and denied.headers["www-authenticate"].startswith("Bearer"), path
        assert c.get(path, params={"token": TOKEN[:-1] + "x"}).status_code == 401
        assert c.get(path, headers={"Authorization": "Bearer wrong-token-wrong-token"}).status_code == 401
    page = c.get("/", params={"token": TOKEN})
    assert page.status_code == 200 and "run-live" in page.text
    assert (
        f"plots/posteriors.png?seq={c.get('/api/runs/live', params={'token': TOKEN}).json()['seq']}&amp;token="
        in page.text
    )
    assert c.get("/api/runs", headers={"Authorization": f"Bearer {TOKEN}"}).json()["runs"][0]["name"] == "live"
    assert c.get("/runs/live/plots/probabilities.png", params={"token": TOKEN}).content.startswith(PNG)

    # without a token (loopback only), a Host that is not a loopback name is refused (DNS rebinding)
    open_app = create_app(Campaigns([live]))
    assert TestClient(open_app, base_url="http://evil.example").get("/").status_code == 400
    assert TestClient(open_app, base_url="http://localhost:8765").get("/").status_code == 200


def test_there_is_nothing_to_post_put_or_delete(tmp_path):
    web = create_app(Campaigns([copy_of_recorded(tmp_path)]))
    routes = [r for r in web.routes if isinstance(r, Route)]
    assert len(routes) == len(web.routes) >= 7
    assert all(r.methods <= {"GET", "HEAD"} for r in routes)
    c = client(Campaigns([tmp_path / "live"]))
    for path in ("/", "/events", "/api/runs", "/api/runs/live", "/runs/live/card", "/runs/live/plots/posteriors.png"):
        for method in ("POST", "PUT", "PATCH", "DELETE"):
            assert c.request(method, path).status_code == 405, (method, path)
    assert set(FIGURES) >= {"posteriors", "probabilities"}


def test_the_daemon_serves_its_run_when_its_config_asks(tmp_path):
    from abduce.controller.daemon import Daemon

    live = copy_of_recorded(tmp_path)
    daemon = Daemon.__new__(Daemon)  # only the hook: no instrument, no control lane
    daemon.settings = SimpleNamespace(daemon=SimpleNamespace(run_dir=live, web=None, web_token=None))
    assert daemon._start_web(live) is None  # no `web` setting (older settings): no view
    daemon.settings = SimpleNamespace(daemon=SimpleNamespace(web="0.0.0.0:0", web_token=None))
    with pytest.raises(ConfigError, match=r"needs a token \(\[daemon\] web_token\)"):
        daemon._start_web(live)
    daemon.settings = SimpleNamespace(daemon=SimpleNamespace(web="127.0.0.1:0", web_token=None))
    web = daemon._start_web(live)
    try:
        status = httpx2.get(web.url + "api/runs/live", timeout=60).json()
        assert status["measurements"] == 10
    finally:
        web.close()


def test_ipv6_loopback_needs_no_token(tmp_path):
    live = copy_of_recorded(tmp_path)
    try:
        server = WebServer([live], "::1", 0, own_logging=False).start()
    except OSError as exc:
        pytest.skip(f"no IPv6 loopback here: {exc}")
    with server:
        assert server.url.startswith("http://[::1]:")
        assert httpx2.get(server.url + "api/runs/live", timeout=60).json()["measurements"] == 10


def test_abduce_serve_on_the_command_line(tmp_path):
    live = copy_of_recorded(tmp_path)
    env = {k: v for k, v in os.environ.items() if k != "ABDUCE_WEB_TOKEN"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "abduce.controller.cli", "serve", str(live), "--port", "0"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in proc.stderr], daemon=True).start()
    try:
        url = None
        deadline = time.monotonic() + 120
        while url is None and time.monotonic() < deadline:
            try:
                m = re.search(r"serving 1 campaign at (http://\S+/)", lines.get(timeout=1))
            except queue.Empty:
                assert proc.poll() is None, "abduce serve exited"
                continue
            url = m.group(1) if m else None
        assert url, "abduce serve printed no URL"
        assert httpx2.get(url + "api/runs/live", timeout=60).json()["measurements"] == 10
        assert "run-live" in httpx2.get(url, timeout=60).text
    finally:
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(timeout=60)
    assert rc in (0, -signal.SIGTERM)  # uvicorn shuts down cleanly, then re-raises the signal it caught
