"""``abduce serve RUN [RUN...]``: a live, read-only web view of campaigns.

One page lists the campaigns (run directories or journal files): where each
stands (measurements / budget, leader, probabilities, stopped), the composed
laws abduction proposed (RunStatus ``proposals``: each one's formula, step,
reason, status, evidence, probabilities and parameters, as
:mod:`abduce.controller.views.proposals` describes them; the proposals figure
beside the others once one joined the campaign) and its
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
                                        spectra, proposals (a figure the campaign cannot draw yet is a
                                        PNG that says why, with the reason in X-Abduce-Not-Drawn)

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

from abduce.controller.views.web.app import POLL_S, create_app
from abduce.controller.views.web.server import WebServer, url_of
from abduce.controller.views.web.status import (
    FIGURES,
    SCHEMA_VERSION,
    SHOWN,
    Campaigns,
    RunList,
    RunStatus,
    journal_head,
)

__all__ = [
    "FIGURES",
    "POLL_S",
    "SCHEMA_VERSION",
    "SHOWN",
    "Campaigns",
    "RunList",
    "RunStatus",
    "WebServer",
    "create_app",
    "journal_head",
    "url_of",
]
