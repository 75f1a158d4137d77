"""A real `ivus-sim turing serve` process on loopback: concurrent readers lose nothing, and a server
killed with SIGKILL mid-run keeps every acknowledged answer and resumes each reader exactly."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import threading
import time
from pathlib import Path

import httpx
import pytest
from _helpers import free_port, start_turing_server

from ivus_sim.turing.demo import make_demo_images
from ivus_sim.turing.store import DB_NAME, Store
from ivus_sim.turing.study import StudyConfig, build_study

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
    if proc.stdout:
        proc.stdout.close()


def _reader(base: str, token: str, salt: int, acks: list[tuple[int, str, int | None]],
            stop: threading.Event, max_answers: int | None = None) -> None:
    """One bounded reader: answers its schedule in order and records every acknowledged answer."""
    with httpx.Client(base_url=base, timeout=30) as c:
        try:
            c.post(f"/r/{token}/consent", data={"agree": "yes"})
            c.post(f"/r/{token}/start")
            n = 0
            while not stop.is_set() and (max_answers is None or n < max_answers):
                page = c.get(f"/r/{token}").text
                if "Thank you" in page:
                    return
                if f'action="/r/{token}/continue"' in page:
                    c.post(f"/r/{token}/continue")
                    continue
                trial = re.search(r'name="trial" value="([^"]+)"', page)
                pos = int(re.search(r'id="progress-text">(\d+) /', page).group(1))  # type: ignore[union-attr]
                assert trial is not None
                choice = "left" if (pos + salt) % 2 else "right"
                conf = None if pos % 7 == 0 else (pos + salt) % 5 + 1
                data = {"trial": trial.group(1), "choice": choice, "confidence": "" if conf is None else str(conf)}
                r = c.post(f"/r/{token}/answer", data=data, follow_redirects=False)
                assert r.status_code == 303, r.text
                acks.append((pos, choice, conf))  # acknowledged
                n += 1
        except (httpx.HTTPError, OSError):
            return  # server gone (kill test)


def _stored(study: Path) -> dict[str, list[tuple[int, str, int | None]]]:
    with Store(study / DB_NAME) as store:
        out: dict[str, list[tuple[int, str, int | None]]] = {rid: [] for rid, _ in store.readers()}
        for r in store.query("SELECT reader_id, position, choice, confidence FROM responses "
                             "ORDER BY reader_id, position"):
            out[r["reader_id"]].append((r["position"], r["choice"], r["confidence"]))
        assert store.verify_chain()[0]
    return out


def _study(root: Path, n_pairs: int, n_readers: int, block: int) -> tuple[Path, dict[str, str]]:
    make_demo_images(root / "real", n_pairs, size=24, stream="real", prefix="real")
    make_demo_images(root / "fake", n_pairs, size=24, stream="fake", prefix="sim")
    built = build_study(root / "real", root / "fake", root / "study",
                        StudyConfig(n_readers=n_readers, size=24, seed=9, block_size=block), progress=False)
    return root / "study", built.readers


def test_ten_concurrent_readers_lose_nothing(tmp_path: Path) -> None:
    study, readers = _study(tmp_path, n_pairs=100, n_readers=10, block=50)
    port = free_port()
    proc = start_turing_server(study, port, capture=True)
    try:
        acks: dict[str, list] = {rid: [] for rid in readers}
        stop = threading.Event()
        threads = [threading.Thread(target=_reader, args=(f"http://127.0.0.1:{port}", tok, i, acks[rid], stop))
                   for i, (rid, tok) in enumerate(readers.items())]
        for t in threads:
            t.start()
        for t in threads:
            t.join(240)
        assert not any(t.is_alive() for t in threads)
    finally:
        stop.set()
        _stop(proc)
    stored = _stored(study)
    for rid in readers:
        assert len(acks[rid]) == 100
        assert stored[rid] == sorted(acks[rid])  # every answer, exactly once, as sent


def test_sigkill_keeps_every_acknowledged_answer(tmp_path: Path) -> None:
    study, readers = _study(tmp_path, n_pairs=30, n_readers=3, block=1000)
    port = free_port()
    proc = start_turing_server(study, port, capture=True)
    acks: dict[str, list] = {rid: [] for rid in readers}
    stop = threading.Event()
    threads = [threading.Thread(target=_reader, args=(f"http://127.0.0.1:{port}", tok, i, acks[rid], stop))
               for i, (rid, tok) in enumerate(readers.items())]
    try:
        for t in threads:
            t.start()
        deadline = time.monotonic() + 120
        while sum(len(a) for a in acks.values()) < 20 and time.monotonic() < deadline:
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)  # mid-run, requests in flight
        proc.wait(10)
    finally:
        stop.set()
        for t in threads:
            t.join(30)
        _stop(proc)
    acked = {rid: list(a) for rid, a in acks.items()}
    assert sum(len(a) for a in acked.values()) >= 20
    stored = _stored(study)
    for rid in readers:
        assert set(acked[rid]) <= set(stored[rid])  # nothing acknowledged was lost
        assert len(stored[rid]) - len(acked[rid]) <= 1  # at most the one in flight was stored unacknowledged
        assert [p for p, _, _ in stored[rid]] == list(range(len(stored[rid])))  # no gaps
    # restart: every reader resumes exactly at the first unanswered trial and can finish
    port2 = free_port()
    proc2 = start_turing_server(study, port2, capture=True)
    try:
        for rid, tok in readers.items():
            page = httpx.get(f"http://127.0.0.1:{port2}/r/{tok}", timeout=30).text
            assert f'id="progress-text">{len(stored[rid])} / 30 done<' in page
        stop2 = threading.Event()
        for i, (rid, tok) in enumerate(readers.items()):
            _reader(f"http://127.0.0.1:{port2}", tok, i, acks[rid], stop2)
    finally:
        _stop(proc2)
    final = _stored(study)
    for rid in readers:
        assert [p for p, _, _ in final[rid]] == list(range(30))
        assert set(acked[rid]) <= set(final[rid])
