"""The reader web app (FastAPI, server-rendered HTML, no external assets).

Routes (nothing else is served; there is no static mount of the study folder):

* ``GET /`` - a landing page.
* ``GET /r/{reader_token}`` - the reader's current page, in this order: consent (not yet
  given), instructions (not started), feedback on the last practice answer (not yet
  acknowledged), the end with the debrief (all answered), a break between blocks, or the
  next trial. Rendering a trial records its display time.
* ``POST /r/{reader_token}/consent`` | ``/decline`` | ``/start`` | ``/feedback`` |
  ``/continue`` | ``/zoom`` | ``/answer`` - form posts answered with ``303 See Other`` back to
  the reader page (post/redirect/get: a reload never re-sends). ``/answer`` takes ``trial``
  (the trial token), ``choice`` (2AFC: ``left``/``right``; single-image mode:
  ``real``/``simulated``), ``confidence`` (1-5; required in single-image mode, where it is
  the rating) and optionally ``dpr`` (the browser's ``devicePixelRatio``, recorded); ``/zoom``
  takes ``zoom`` (1 or 2: the reader's display scale, recorded with every later answer).
  The answer is committed before replying (:meth:`ivus_sim.turing.store.Store.record_answer`).
* ``GET /r/{reader_token}/i/{view_token}`` - one image of the reader's *current* trial.
  View tokens are random per (reader, trial, side); every image is the same byte size and is
  sent with identical headers (no ``ETag``/``Last-Modified``, ``Cache-Control: no-store``).
* ``GET /static/{style.css,reader.js}`` - the page's own CSS and keyboard script.

Request guard (before routing, before any body byte is read): a ``/r/{token}`` request whose
link is unknown or revoked gets ``403``; a request body larger than :data:`MAX_BODY_BYTES`
gets ``413`` - at once from its ``Content-Length``, or as soon as a chunked body passes the
limit. Every form field is validated (unknown or repeated fields, non-ASCII or over-long
values, a confidence other than one ASCII digit 1-5: ``400``; never a ``500``).

Every response carries ``Cache-Control: no-store``, ``Referrer-Policy: no-referrer`` (the
reader token never leaks to another site) and a strict same-origin Content-Security-Policy.
The OpenAPI/docs routes are disabled.
"""

from __future__ import annotations

import ipaddress
import json
import re
import time
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import jinja2
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from ivus_sim.errors import IvusSimError
from ivus_sim.turing.modes import PRACTICE, StudyMode
from ivus_sim.turing.readers import ensure_links, link_status
from ivus_sim.turing.store import DB_NAME, AnswerError, Store

__all__ = ["create_app", "serve", "is_loopback", "SECURITY_HEADERS", "STATIC_FILES", "MAX_BODY_BYTES",
           "CONFIDENCE_SCALE", "ZOOMS"]

_HERE = Path(__file__).parent
STATIC_FILES = {"style.css": "text/css; charset=utf-8", "reader.js": "text/javascript; charset=utf-8"}
SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": ("default-src 'none'; img-src 'self'; style-src 'self'; script-src 'self'; "
                                "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"),
}
#: the largest request body accepted (an answer form is < 200 bytes)
MAX_BODY_BYTES = 8192
#: the labelled confidence scale shown after the choice
CONFIDENCE_SCALE = ((1, "guess"), (2, "unsure"), (3, "fairly sure"), (4, "sure"), (5, "certain"))
#: display scales a reader can choose (integer: every image pixel becomes zoom x zoom screen pixels)
ZOOMS = (1, 2)

_IMAGE_NAME = re.compile(r"^[0-9a-f]{32}\.png$")
_READER_PATH = re.compile(r"^/r/([^/]*)(?:/|$)")
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_CONFIDENCE = re.compile(r"^[1-5]$")
_ZOOM = re.compile(r"^[12]$")
_DPR = re.compile(r"^[0-9]{1,2}(\.[0-9]{1,8})?$")
_SECURITY_KEYS = {k.lower().encode() for k in SECURITY_HEADERS}

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (127.0.0.0/8, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _paragraphs(text: str | None) -> list[str]:
    return [" ".join(p.split()) for p in re.split(r"\n\s*\n", text or "") if p.strip()]


class _Guard:
    """Pure ASGI middleware: security headers on every response; the reader link is checked and
    the body size limited *before* the app reads anything."""

    def __init__(self, app: Callable[[Scope, Receive, Send], Awaitable[None]], store: Store,
                 refuse: Callable[[int, str, str], Response]) -> None:
        self.app, self.store, self.refuse = app, store, refuse

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_secure(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() not in _SECURITY_KEYS]
                headers += [(k.lower().encode(), v.encode()) for k, v in SECURITY_HEADERS.items()]
                message = {**message, "headers": headers}
            await send(message)

        m = _READER_PATH.match(scope["path"])
        if m:
            status, _ = await run_in_threadpool(link_status, self.store, m.group(1))
            if status != "active":
                text = ("This link has been withdrawn by the study team. If you are a reader of this study, ask them "
                        "for a new link." if status == "revoked" else "This link is not valid.")
                await self.refuse(403, "Link not valid", text)(scope, receive, send_secure)
                return
        if scope["method"] not in ("GET", "HEAD"):
            length = dict(scope.get("headers", [])).get(b"content-length")
            if length is not None and (len(length) > 9 or not length.isdigit() or int(length) > MAX_BODY_BYTES):
                await self.refuse(413, "Request too large", "The request was not accepted.")(
                    scope, receive, send_secure)
                return
            receive = self._limited(receive)
        await self.app(scope, receive, send_secure)

    @staticmethod
    def _limited(receive: Receive) -> Receive:
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > MAX_BODY_BYTES:
                    raise AnswerError(413, "request too large")
            return message

        return limited


def create_app(study: str | Path) -> FastAPI:
    """Create the FastAPI app serving the study folder ``study``.

    Args:
        study: a folder made by :func:`ivus_sim.turing.study.build_study`.

    Returns:
        A :class:`fastapi.FastAPI` app (run it with uvicorn).
    """
    study = Path(study)
    store = Store(study / DB_NAME)
    ensure_links(store)
    images = (study / "images").resolve()
    config = store.meta("config", {}) or {}
    size = int(config.get("size", 256))
    mode = StudyMode(config.get("mode", StudyMode.TWO_AFC.value))
    block_size = int(store.meta("block_size", 50))
    kinds = {str(r["kind"]) for r in store.query("SELECT DISTINCT kind FROM trials")}
    texts = {"consent": _paragraphs(store.meta("consent_text")), "debrief": _paragraphs(store.meta("debrief_text"))}
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(_HERE / "templates")),
                             autoescape=jinja2.select_autoescape(["html"]), undefined=jinja2.StrictUndefined)
    static = {name: (_HERE / "static" / name).read_bytes() for name in STATIC_FILES}

    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None, title="reader study")
    app.state.store = store

    def page(name: str, status: int = 200, **ctx: object) -> HTMLResponse:
        return HTMLResponse(env.get_template(name).render(**ctx), status_code=status)

    def message(status: int, title: str, text: str, token: str | None = None) -> HTMLResponse:
        return page("message.html", status, title=title, message=text, token=token)

    app.add_middleware(_Guard, store=store, refuse=lambda s, t, m: message(s, t, m))  # type: ignore[arg-type]

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> HTMLResponse:
        return message(exc.status_code, "Not found" if exc.status_code == 404 else "Error",
                       "There is nothing here." if exc.status_code == 404 else "The request was not accepted.")

    @app.exception_handler(AnswerError)
    async def answer_error(request: Request, exc: AnswerError) -> HTMLResponse:
        token = request.path_params.get("token")
        return message(exc.status, "Not accepted", str(exc), token if exc.status not in (403, 404, 413) else None)

    def see_other(token: str) -> RedirectResponse:
        return RedirectResponse(f"/r/{token}", status_code=303)

    async def form(request: Request, allowed: tuple[str, ...]) -> dict[str, str]:
        """The urlencoded form of ``request``: only ``allowed`` fields, each at most once, ASCII values."""
        body = bytearray()
        async for chunk in request.stream():  # the guard stops it past MAX_BODY_BYTES
            body += chunk
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if body and ctype != "application/x-www-form-urlencoded":
            raise AnswerError(415, "send the form as application/x-www-form-urlencoded")
        try:
            fields = parse_qsl(bytes(body).decode("ascii"), keep_blank_values=True, errors="strict",
                               max_num_fields=len(allowed) + 1)
        except ValueError:  # non-ASCII, malformed percent-escapes, too many fields
            raise AnswerError(400, "malformed form") from None
        out: dict[str, str] = {}
        for k, v in fields:
            if k not in allowed:
                raise AnswerError(400, "unexpected form field")
            if k in out:
                raise AnswerError(400, "a form field was given twice")
            if len(v) > 64 or not v.isascii():
                raise AnswerError(400, f"malformed {k}")
            out[k] = v
        return out

    # -- reader session facts kept in the (hash-chained) audit log ------------------------------
    def logged(reader_id: str, event: str) -> list[dict[str, Any]]:
        return [json.loads(r["payload"]) for r in store.query(
            "SELECT payload FROM audit_log WHERE reader_id = ? AND event = ? ORDER BY seq", (reader_id, event))]

    def log(reader_id: str, event: str, payload: dict[str, Any]) -> None:
        with store.transaction() as db:
            store.append_log(db, event, reader_id, payload, time.time_ns())

    def zoom_of(reader_id: str) -> int:
        z = logged(reader_id, "zoom")
        return int(z[-1]["zoom"]) if z else 1

    def kind_at(reader_id: str, position: int) -> str:
        rows = store.query("SELECT kind FROM trials WHERE reader_id = ? AND position = ?", (reader_id, position))
        return str(rows[0]["kind"]) if rows else ""

    def n_practice(reader_id: str) -> int:
        return int(store.query("SELECT COUNT(*) AS n FROM trials WHERE reader_id = ? AND kind = ?",
                               (reader_id, PRACTICE))[0]["n"])

    def pending_feedback(reader_id: str, n_answered: int) -> dict[str, Any] | None:
        """The last practice answer, while its feedback has not been acknowledged."""
        if n_answered == 0 or kind_at(reader_id, n_answered - 1) != PRACTICE:
            return None
        pos = n_answered - 1
        if any(int(p.get("position", -1)) == pos for p in logged(reader_id, "feedback_ack")):
            return None
        row = store.query("SELECT t.real_side, t.truth, r.choice FROM trials t JOIN responses r ON "
                          "r.reader_id = t.reader_id AND r.position = t.position WHERE t.reader_id = ? AND "
                          "t.position = ? AND t.kind = ?", (reader_id, pos, PRACTICE))[0]
        truth = row["truth"] if mode is StudyMode.SINGLE else row["real_side"]
        return {"position": pos, "choice": row["choice"], "truth": truth, "correct": row["choice"] == truth,
                "last": pos + 1 >= n_practice(reader_id), "n_practice": n_practice(reader_id)}

    def require_consent(reader_id: str) -> None:
        if not logged(reader_id, "consent"):
            raise AnswerError(409, "please read and agree to the consent page first")

    # -- pages --------------------------------------------------------------------------------
    @app.get("/", response_class=HTMLResponse)
    def landing() -> HTMLResponse:
        return page("landing.html")

    @app.get("/r/{token}", response_class=HTMLResponse)
    def reader_page(token: str) -> HTMLResponse:
        reader_id = store.reader_for_token(token)
        st = store.state(reader_id)
        n_prac = n_practice(reader_id)
        if not logged(reader_id, "consent"):
            return page("consent.html", token=token, paragraphs=texts["consent"])
        if not st.started:
            return page("instructions.html", token=token, total=st.n_trials - n_prac, block_size=block_size,
                        mode=mode.value, n_practice=n_prac, real_real="real_real" in kinds,
                        checks=bool(kinds & {"obvious", "real_real", "repeat"}))
        fb = pending_feedback(reader_id, st.n_answered)
        if fb is not None:
            return page("feedback.html", token=token, mode=mode.value, **fb)
        if st.done:
            return page("done.html", total=st.n_trials - n_prac, paragraphs=texts["debrief"],
                        checks=bool(kinds & {"obvious", "real_real", "repeat"}))
        answered_main = max(0, st.n_answered - n_prac)
        if st.break_pending:
            return page("break.html", token=token, answered=answered_main, total=st.n_trials - n_prac)
        trial = store.current_trial(reader_id)
        assert trial is not None
        store.mark_shown(reader_id, trial.position, time.time_ns())
        practice = trial.position < n_prac
        return page("single.html" if mode is StudyMode.SINGLE else "trial.html", token=token, trial=trial.token,
                    left_view=trial.left_view, right_view=trial.right_view, answered=answered_main,
                    total=st.n_trials - n_prac, practice=practice, practice_number=trial.position + 1,
                    n_practice=n_prac, size=size, zoom=zoom_of(reader_id), zooms=ZOOMS, scale=CONFIDENCE_SCALE)

    @app.post("/r/{token}/consent")
    async def consent(token: str, request: Request) -> RedirectResponse:
        data = await form(request, ("agree",))
        if data.get("agree") != "yes":
            raise AnswerError(400, "tick the box to agree, or close the page to decline")
        reader_id = store.reader_for_token(token)
        if not logged(reader_id, "consent"):
            await run_in_threadpool(log, reader_id, "consent", {"text_sha256": _sha(texts["consent"])})
        return see_other(token)

    @app.post("/r/{token}/decline")
    async def decline(token: str, request: Request) -> HTMLResponse:
        await form(request, ())
        reader_id = store.reader_for_token(token)
        if not logged(reader_id, "consent"):
            await run_in_threadpool(log, reader_id, "consent_declined", {})
        return message(200, "You declined", "Nothing more is recorded. You can close this page; if you change your "
                       "mind, open your link again.")

    @app.post("/r/{token}/start")
    async def start(token: str, request: Request) -> RedirectResponse:
        await form(request, ())
        require_consent(store.reader_for_token(token))
        await run_in_threadpool(store.start, token, time.time_ns())
        return see_other(token)

    @app.post("/r/{token}/continue")
    async def continue_(token: str, request: Request) -> RedirectResponse:
        await form(request, ())
        await run_in_threadpool(store.continue_break, token, time.time_ns())
        return see_other(token)

    @app.post("/r/{token}/feedback")
    async def feedback_ack(token: str, request: Request) -> RedirectResponse:
        await form(request, ())
        reader_id = store.reader_for_token(token)
        fb = pending_feedback(reader_id, store.state(reader_id).n_answered)
        if fb is None:
            raise AnswerError(409, "no feedback is pending")
        await run_in_threadpool(log, reader_id, "feedback_ack", {"position": fb["position"]})
        return see_other(token)

    @app.post("/r/{token}/zoom")
    async def zoom(token: str, request: Request) -> RedirectResponse:
        data = await form(request, ("zoom",))
        if not _ZOOM.match(data.get("zoom", "")):
            raise AnswerError(400, f"zoom must be one of {', '.join(map(str, ZOOMS))}")
        reader_id = store.reader_for_token(token)
        z = int(data["zoom"])
        if z != zoom_of(reader_id):
            await run_in_threadpool(log, reader_id, "zoom", {"zoom": z, "position": store.state(reader_id).n_answered})
        return see_other(token)

    @app.post("/r/{token}/answer")
    async def answer(token: str, request: Request) -> RedirectResponse:
        now = time.time_ns()
        data = await form(request, ("trial", "choice", "confidence", "dpr"))
        trial = data.get("trial", "")
        if not _TOKEN.match(trial):
            raise AnswerError(400, "missing or malformed trial")
        choices = ("real", "simulated") if mode is StudyMode.SINGLE else ("left", "right")
        if data.get("choice") not in choices:
            raise AnswerError(400, f"choice must be '{choices[0]}' or '{choices[1]}'")
        conf_text = data.get("confidence", "")
        if conf_text and not _CONFIDENCE.match(conf_text):
            raise AnswerError(400, "confidence must be an integer from 1 to 5")
        if mode is StudyMode.SINGLE and not conf_text:
            raise AnswerError(400, "a rating from 1 to 5 is required")
        dpr_text = data.get("dpr", "")
        dpr = float(dpr_text) if dpr_text and _DPR.match(dpr_text) else None
        if dpr_text and (dpr is None or not 0 < dpr <= 16):
            raise AnswerError(400, "dpr must be a number in (0, 16]")
        reader_id = store.reader_for_token(token)
        if pending_feedback(reader_id, store.state(reader_id).n_answered) is not None:
            raise AnswerError(409, "feedback on the last practice screen is pending")
        await run_in_threadpool(store.record_answer, token, trial, data["choice"],
                                int(conf_text) if conf_text else None, now, zoom=zoom_of(reader_id), dpr=dpr)
        return see_other(token)

    @app.get("/r/{token}/i/{view}")
    def image(token: str, view: str) -> Response:
        name = store.view_file(token, view)
        if not _IMAGE_NAME.match(name):  # pragma: no cover - names are made by the builder
            raise AnswerError(404, "not found")
        return Response(content=(images / name).read_bytes(), media_type="image/png")

    @app.get("/static/{name}")
    def static_file(name: str) -> Response:
        if name not in static:
            raise AnswerError(404, "not found")
        return Response(content=static[name], media_type=STATIC_FILES[name])

    return app


def _sha(paragraphs: list[str]) -> str:
    import hashlib

    return hashlib.sha256("\n\n".join(paragraphs).encode()).hexdigest()


def _print(line: str) -> None:
    print(line, flush=True)


def serve(study: str | Path, host: str = "127.0.0.1", port: int = 8000, allow_network: bool = False,
          echo: Callable[[str], None] = _print) -> None:
    """Run the app with uvicorn (blocking); prints the active reader links first.

    Args:
        study: the study folder. host, port: where to listen.
        allow_network: required for a non-loopback ``host`` (a warning is printed).
        echo: where the links and warnings go.
    """
    import uvicorn

    from ivus_sim.turing.readers import list_readers

    if not is_loopback(host) and not allow_network:
        raise IvusSimError(f"refusing to serve on {host}: readers' links would be reachable from the network; "
                           "pass --allow-network to do so deliberately")
    app = create_app(study)
    if not is_loopback(host):
        echo(f"WARNING: serving on {host}:{port} - anyone on the network who obtains a reader link can answer "
             "as that reader; use only on a trusted network (plain HTTP, no encryption)")
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    for info in list_readers(study):
        echo(f"{info.reader_id}: http://{shown}:{port}/r/{info.token}" if info.token else
             f"{info.reader_id}: link revoked (`ivus-sim turing readers revoke {study} {info.reader_id} --reissue`)")
    echo(f"serving {study} on http://{shown}:{port} (Ctrl-C to stop)")
    uvicorn.run(app, host=host, port=port, log_level="warning", server_header=False, date_header=False,
                access_log=False)
