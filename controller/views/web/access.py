"""Who may look: the token every request must carry beyond loopback (the bind rule itself is
:func:`abduce.controller.recipe.addresses.check_bind`).
"""

from __future__ import annotations

import hmac


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
