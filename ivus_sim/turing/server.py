"""The reader web app (FastAPI, server-rendered HTML, no external assets).

Routes (nothing else is served; there is no static mount of the study folder):

* ``GET /`` - a landing page.
* ``GET /r/{reader_token}`` - the reader's current page: instructions (not started), the next
  trial, a break between blocks, or the end. Rendering a trial records its display time.
* ``POST /r/{reader_token}/start`` | ``/continue`` | ``/answer`` - form posts answered with
  ``303 See Other`` back to the reader page (post/redirect/get: a reload never re-sends).
  ``/answer`` takes ``trial`` (the trial token), ``choice`` (``left``/``right``) and optional
  ``confidence`` (1-5); validation and status codes are those of
  :meth:`ivus_sim.turing.store.Store.record_answer`; the answer is committed before replying.
* ``GET /r/{reader_token}/i/{view_token}`` - one image of the reader's *current* trial.
  View tokens are random per (reader, trial, side); every image is the same byte size and is
  sent with identical headers (no ``ETag``/``Last-Modified``, ``Cache-Control: no-store``).
* ``GET /static/{style.css,reader.js}`` - the page's own CSS and keyboard script.

Every response carries ``Cache-Control: no-store``, ``Referrer-Policy: no-referrer`` (the
reader token never leaks to another site) and a strict same-origin Content-Security-Policy.
The OpenAPI/docs routes are disabled.
"""

from __future__ import annotations

import ipaddress
import re
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import parse_qs

import jinja2
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from ivus_sim.errors import IvusSimError
from ivus_sim.turing.store import DB_NAME, AnswerError, Store

__all__ = ["create_app", "serve", "is_loopback", "SECURITY_HEADERS", "STATIC_FILES"]

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
_IMAGE_NAME = re.compile(r"^[0-9a-f]{32}\.png$")


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (127.0.0.0/8, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def create_app(study: str | Path) -> FastAPI:
    """Create the FastAPI app serving the study folder ``study``.

    Args:
        study: a folder made by :func:`ivus_sim.turing.study.build_study`.

    Returns:
        A :class:`fastapi.FastAPI` app (run it with uvicorn).
    """
    study = Path(study)
    store = Store(study / DB_NAME)
    images = (study / "images").resolve()
    size = int(store.meta("config", {}).get("size", 256))
    block_size = int(store.meta("block_size", 50))
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(_HERE / "templates")),
                             autoescape=jinja2.select_autoescape(["html"]), undefined=jinja2.StrictUndefined)
    static = {name: (_HERE / "static" / name).read_bytes() for name in STATIC_FILES}

    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None, title="reader study")
    app.state.store = store

    @app.middleware("http")
    async def security_headers(request: Request, call_next):  # type: ignore[no-untyped-def]
        response = await call_next(request)
        for k, v in SECURITY_HEADERS.items():
            response.headers[k] = v
        return response

    def page(name: str, status: int = 200, **ctx: object) -> HTMLResponse:
        return HTMLResponse(env.get_template(name).render(**ctx), status_code=status)

    def message(status: int, title: str, text: str, token: str | None = None) -> HTMLResponse:
        return page("message.html", status, title=title, message=text, token=token)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> HTMLResponse:
        return message(exc.status_code, "Not found" if exc.status_code == 404 else "Error",
                       "There is nothing here." if exc.status_code == 404 else "The request was not accepted.")

    @app.exception_handler(AnswerError)
    async def answer_error(request: Request, exc: AnswerError) -> HTMLResponse:
        token = request.path_params.get("token")
        known = exc.status != 404 or str(exc) != "unknown reader link"
        return message(exc.status, "Not accepted", str(exc), token if known else None)

    def see_other(token: str) -> RedirectResponse:
        return RedirectResponse(f"/r/{token}", status_code=303)

    async def form(request: Request) -> dict[str, str]:
        body = (await request.body()).decode("utf-8", errors="replace")
        return {k: v[-1] for k, v in parse_qs(body, keep_blank_values=True).items()}

    @app.get("/", response_class=HTMLResponse)
    def landing() -> HTMLResponse:
        return page("landing.html")

    @app.get("/r/{token}", response_class=HTMLResponse)
    def reader_page(token: str) -> HTMLResponse:
        reader_id = store.reader_for_token(token)
        st = store.state(reader_id)
        if not st.started:
            return page("instructions.html", token=token, total=st.n_trials, block_size=block_size)
        if st.done:
            return page("done.html", total=st.n_trials)
        if st.break_pending:
            return page("break.html", token=token, answered=st.n_answered, total=st.n_trials)
        trial = store.current_trial(reader_id)
        assert trial is not None
        store.mark_shown(reader_id, trial.position, time.time_ns())
        return page("trial.html", token=token, trial=trial.token, left_view=trial.left_view,
                    right_view=trial.right_view, number=trial.position + 1, total=st.n_trials, size=size)

    @app.post("/r/{token}/start")
    def start(token: str) -> RedirectResponse:
        store.start(token, time.time_ns())
        return see_other(token)

    @app.post("/r/{token}/continue")
    def continue_(token: str) -> RedirectResponse:
        store.continue_break(token, time.time_ns())
        return see_other(token)

    @app.post("/r/{token}/answer")
    async def answer(token: str, request: Request) -> RedirectResponse:
        now = time.time_ns()
        data = await form(request)
        conf_text = data.get("confidence", "").strip()
        if conf_text and not conf_text.isdigit():
            raise AnswerError(400, "confidence must be an integer from 1 to 5")
        conf = int(conf_text) if conf_text else None
        await run_in_threadpool(store.record_answer, token, data.get("trial", ""), data.get("choice", ""), conf, now)
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


def _print(line: str) -> None:
    print(line, flush=True)


def serve(study: str | Path, host: str = "127.0.0.1", port: int = 8000, allow_network: bool = False,
          echo: Callable[[str], None] = _print) -> None:
    """Run the app with uvicorn (blocking); prints the reader links first.

    Args:
        study: the study folder. host, port: where to listen.
        allow_network: required for a non-loopback ``host`` (a warning is printed).
        echo: where the links and warnings go.
    """
    import uvicorn

    if not is_loopback(host) and not allow_network:
        raise IvusSimError(f"refusing to serve on {host}: readers' links would be reachable from the network; "
                           "pass --allow-network to do so deliberately")
    app = create_app(study)
    if not is_loopback(host):
        echo(f"WARNING: serving on {host}:{port} - anyone on the network who obtains a reader link can answer "
             "as that reader; use only on a trusted network (plain HTTP, no encryption)")
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    for rid, tok in app.state.store.readers():
        echo(f"{rid}: http://{shown}:{port}/r/{tok}")
    echo(f"serving {study} on http://{shown}:{port} (Ctrl-C to stop)")
    uvicorn.run(app, host=host, port=port, log_level="warning", server_header=False, date_header=False,
                access_log=False)
