"""A real `ivus-sim turing serve` process refuses oversized bodies and unknown links *before* reading
the body (issue 14, item 5). Bodies are streamed from a loop over one small buffer: the test never
holds more than 64 kB, whatever size it claims or sends."""

from __future__ import annotations

import re
import select
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from _helpers import free_port, start_turing_server

from ivus_sim.turing.demo import make_demo_images
from ivus_sim.turing.server import MAX_BODY_BYTES
from ivus_sim.turing.store import DB_NAME, Store
from ivus_sim.turing.study import StudyConfig, build_study

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]
CHUNK = b"confidence=" + b"9" * (64 * 1024 - 11)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, str, Path]]:
    root = tmp_path_factory.mktemp("limits")
    make_demo_images(root / "real", 6, size=24, stream="real", prefix="real")
    make_demo_images(root / "fake", 6, size=24, stream="fake", prefix="sim")
    built = build_study(root / "real", root / "fake", root / "study", StudyConfig(n_readers=1, size=24, seed=1),
                        progress=False)
    port = free_port()
    proc = start_turing_server(root / "study", port)
    token = next(iter(built.readers.values()))
    with httpx.Client(base_url=f"http://127.0.0.1:{port}") as c:
        c.post(f"/r/{token}/consent", data={"agree": "yes"})
        c.post(f"/r/{token}/start")
    try:
        yield port, token, root / "study"
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


def _post(port: int, path: str, headers: dict[str, str], total: int, chunked: bool = False) -> tuple[int, int, float]:
    """POST ``total`` body bytes (or until the server answers); returns (status, bytes sent, seconds)."""
    t0 = time.monotonic()
    sent = 0
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        head = f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\n"
        head += "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
        s.sendall(head.encode())
        s.setblocking(False)
        while sent < total and time.monotonic() - t0 < 60:
            readable, writable, _ = select.select([s], [s], [], 1.0)
            if readable:
                break  # the server has answered
            if writable:
                data = CHUNK[: total - sent]
                frame = f"{len(data):x}\r\n".encode() + data + b"\r\n" if chunked else data
                try:
                    n = s.send(frame)
                except (BrokenPipeError, ConnectionResetError, BlockingIOError):
                    break
                if chunked and n < len(frame):
                    s.setblocking(True)
                    s.sendall(frame[n:])  # keep the chunk framing intact
                    s.setblocking(False)
                sent += len(data) if chunked else n
        s.setblocking(True)
        s.settimeout(10)
        reply = b""
        try:
            while b"\r\n" not in reply:
                part = s.recv(4096)
                if not part:
                    break
                reply += part
        except (ConnectionResetError, TimeoutError):
            pass
    m = re.match(rb"HTTP/1\.1 (\d{3})", reply)
    assert m is not None, reply[:200]
    return int(m.group(1)), sent, time.monotonic() - t0


def _n_answers(study: Path) -> int:
    with Store(study / DB_NAME) as store:
        return int(store.query("SELECT COUNT(*) AS n FROM responses")[0]["n"])


def test_declared_oversized_body_is_refused_before_reading(server: tuple[int, str, Path]) -> None:
    port, token, study = server
    # 200 MB declared, nothing sent: answered at once (a server reading the body would wait for it)
    status, sent, secs = _post(port, f"/r/{token}/answer", {"Content-Length": str(200_000_000)}, total=0)
    assert status == 413 and secs < 10
    # ... and while the client is sending: stops long before 200 MB
    status, sent, _ = _post(port, f"/r/{token}/answer", {"Content-Length": str(200_000_000)}, total=200_000_000)
    assert status == 413 and sent < 50_000_000
    # a Content-Length just over the limit, and a malformed / absurdly long one
    for value in (str(MAX_BODY_BYTES + 1), "9" * 5000, "12abc"):
        status, _, _ = _post(port, f"/r/{token}/answer", {"Content-Length": value}, total=0)
        assert status in (400, 413)
    assert _n_answers(study) == 0
    assert httpx.get(f"http://127.0.0.1:{port}/", timeout=10).status_code == 200  # still serving


def test_unknown_link_is_refused_before_reading_the_body(server: tuple[int, str, Path]) -> None:
    port, _, _ = server
    status, _, secs = _post(port, "/r/not-a-reader-link/answer", {"Content-Length": str(100_000_000)}, total=0)
    assert status == 403 and secs < 10
    status, sent, _ = _post(port, "/r/not-a-reader-link/answer", {"Content-Length": str(100_000_000)},
                            total=100_000_000)
    assert status == 403 and sent < 50_000_000


def test_chunked_body_is_cut_at_the_limit(server: tuple[int, str, Path]) -> None:
    port, token, study = server
    status, sent, _ = _post(port, f"/r/{token}/answer", {"Transfer-Encoding": "chunked"}, total=200_000_000,
                            chunked=True)
    assert status == 413 and sent < 50_000_000
    assert _n_answers(study) == 0
    # a normal answer still goes through
    page = httpx.get(f"http://127.0.0.1:{port}/r/{token}", timeout=10).text
    trial = re.search(r'name="trial" value="([^"]+)"', page)
    assert trial is not None
    r = httpx.post(f"http://127.0.0.1:{port}/r/{token}/answer", timeout=10,
                   data={"trial": trial.group(1), "choice": "left", "confidence": "3"})
    assert r.status_code == 303 and _n_answers(study) == 1
