"""The web app: crawl every page and asset of every trial and check nothing reveals the answer key;
HTTP-level answer rules; exactly the answers given reach the analysis."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from ivus_sim.turing.analysis import analyze_study
from ivus_sim.turing.demo import make_demo_images
from ivus_sim.turing.encode import png_chunks
from ivus_sim.turing.server import create_app, is_loopback
from ivus_sim.turing.store import DB_NAME, Store
from ivus_sim.turing.study import StudyConfig, build_study

HINTS = ("real", "fake", "sim", "synth", "generat", "truth", "correct", "answer_key", "obvious", "catch", "repeat")
TOKENISH = re.compile(r"[A-Za-z0-9_-]{16,}")


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("server")
    make_demo_images(root / "real", 14, size=32, stream="real", prefix="real_case")
    make_demo_images(root / "fake", 8, size=32, stream="fake", prefix="simulated_case")
    build_study(root / "real", root / "fake", root / "study",
                StudyConfig(n_readers=2, size=32, seed=4, n_catch=2, block_size=5), progress=False)
    return root / "study"


def _strip_tokens(text: str) -> str:
    return TOKENISH.sub("TOKEN", text)


def _check_text(text: str, forbidden: list[str], where: str) -> None:
    low = _strip_tokens(text).lower()
    for word in (*HINTS, *forbidden):
        assert word.lower() not in low, f"{word!r} in {where}"


def test_no_response_reveals_the_key(study: Path, tmp_path: Path) -> None:
    import shutil

    root = study.parent
    study = Path(shutil.copytree(study, tmp_path / "s"))
    forbidden = [p.stem for p in (root / "real").iterdir()] + [p.stem for p in (root / "fake").iterdir()]
    forbidden += [p.stem for p in (study / "images").iterdir()] + ["img0", "study.sqlite", "study.json"]
    client = TestClient(create_app(study))
    with Store(study / DB_NAME) as store:
        readers = store.readers()
        keys = {(r["reader_id"], r["position"]): r["real_side"]
                for r in store.query("SELECT reader_id, position, real_side FROM trials")}
    page_headers: list[dict[str, str]] = []
    image_headers: list[dict[str, str]] = []
    image_sizes: set[int] = set()
    trial_pages: list[str] = []
    for asset in ("/", "/static/style.css", "/static/reader.js"):
        r = client.get(asset)
        assert r.status_code == 200
        _check_text(r.text, forbidden, asset)
    instructions = []
    for rid, tok in readers:
        r = client.get(f"/r/{tok}")
        assert 'id="consent-text"' in r.text
        _check_text(r.text, forbidden, "consent")
        assert client.post(f"/r/{tok}/start", follow_redirects=False).status_code == 409  # consent first
        assert client.post(f"/r/{tok}/consent", data={"agree": "yes"}, follow_redirects=False).status_code == 303
        r = client.get(f"/r/{tok}")
        assert "Instructions" in r.text
        _check_text(r.text, forbidden, "instructions")
        instructions.append(r.text.replace(tok, "TOKEN"))
        assert client.post(f"/r/{tok}/start", follow_redirects=False).status_code == 303
        n_done = 0
        while True:
            r = client.get(f"/r/{tok}")
            assert r.status_code == 200
            _check_text(r.text, forbidden, f"{rid} page after {n_done} answers")
            page_headers.append({k: v for k, v in r.headers.items() if k != "content-length"})
            if "Thank you" in r.text:
                break
            if 'action="/r/' + tok + '/continue"' in r.text:
                assert client.post(f"/r/{tok}/continue", follow_redirects=False).status_code == 303
                continue
            trial = re.search(r'name="trial" value="([^"]+)"', r.text)
            assert trial is not None
            srcs = re.findall(r'src="(/r/[^"]+/i/[^"]+)"', r.text)
            assert len(srcs) == 2
            for src in srcs:
                img = client.get(src)
                assert img.status_code == 200
                assert png_chunks(img.content) == ["IHDR", "IDAT", "IEND"]
                image_headers.append(dict(img.headers))
                image_sizes.add(len(img.content))
            trial_pages.append(re.sub(r"\d+", "N", _strip_tokens(r.text)))
            choice = "left" if n_done % 3 else "right"
            resp = client.post(f"/r/{tok}/answer", data={"trial": trial.group(1), "choice": choice},
                               follow_redirects=False)
            assert resp.status_code == 303 and resp.headers["location"] == f"/r/{tok}"
            assert resp.text == ""
            # the images of an answered trial are no longer served
            assert client.get(srcs[0]).status_code == 404
            n_done += 1
        assert n_done == sum(1 for k in keys if k[0] == rid)
    # identical structure everywhere: only tokens and progress numbers differ
    assert len(set(trial_pages)) == 1
    assert len({s.replace("TOKEN", "") for s in instructions}) == 1
    # identical headers for every image and every page (no ETag / Last-Modified / size differences)
    assert len(image_sizes) == 1
    assert all(h == image_headers[0] for h in image_headers)
    assert "etag" not in image_headers[0] and "last-modified" not in image_headers[0]
    assert image_headers[0]["cache-control"] == "no-store"
    assert all(h == page_headers[0] for h in page_headers)
    assert page_headers[0]["referrer-policy"] == "no-referrer"
    # nothing of the study folder is reachable
    for path in ("/study.sqlite", "/images", f"/images/{next((study / 'images').iterdir()).name}",
                 "/study.json", "/leakage_audit.json", "/static/../study.sqlite", "/docs", "/openapi.json",
                 f"/static/{DB_NAME}"):
        assert client.get(path).status_code == 404, path


def test_http_answer_rules_and_resume(study: Path, tmp_path: Path) -> None:
    import shutil

    s = tmp_path / "s"
    shutil.copytree(study, s)
    client = TestClient(create_app(s))
    with Store(s / DB_NAME) as store:
        (r1, tok1), (_r2, tok2) = store.readers()
        later = store.query("SELECT token FROM trials WHERE reader_id = ? AND position = 2", (r1,))[0]["token"]
    for tok in (tok1, tok2):
        client.post(f"/r/{tok}/consent", data={"agree": "yes"})
        client.post(f"/r/{tok}/start")
    t1 = re.search(r'name="trial" value="([^"]+)"', client.get(f"/r/{tok1}").text).group(1)  # type: ignore[union-attr]
    t2 = re.search(r'name="trial" value="([^"]+)"', client.get(f"/r/{tok2}").text).group(1)  # type: ignore[union-attr]
    cases = [
        ("/r/unknown-token/answer", {"trial": t1, "choice": "left"}, 403),
        (f"/r/{tok1}/answer", {"trial": "unknown", "choice": "left"}, 404),
        (f"/r/{tok1}/answer", {"trial": t2, "choice": "left"}, 403),
        (f"/r/{tok1}/answer", {"trial": later, "choice": "left"}, 409),
        (f"/r/{tok1}/answer", {"trial": t1, "choice": "middle"}, 400),
        (f"/r/{tok1}/answer", {"trial": t1, "choice": "left", "confidence": "9"}, 400),
        (f"/r/{tok1}/answer", {"trial": t1, "choice": "left", "confidence": "high"}, 400),
    ]
    for url, data, status in cases:
        assert client.post(url, data=data, follow_redirects=False).status_code == status, (url, data)
    with Store(s / DB_NAME) as store:
        assert store.query("SELECT COUNT(*) AS n FROM responses")[0]["n"] == 0
    ok = client.post(f"/r/{tok1}/answer", data={"trial": t1, "choice": "left", "confidence": "2"},
                     follow_redirects=False)
    assert ok.status_code == 303
    dup = client.post(f"/r/{tok1}/answer", data={"trial": t1, "choice": "right"}, follow_redirects=False)
    assert dup.status_code == 409
    # a new app (server restart) resumes at trial 2 of reader 1
    client2 = TestClient(create_app(s))
    page = client2.get(f"/r/{tok1}").text
    assert re.search(r'id="progress-text">1 / \d+ done<', page)
    an = analyze_study(s, n_boot=10, mixed=False)
    reads = [(r["reader_id"], r["position"], r["choice"], r["confidence"]) for r in an.reads]
    assert reads == [(r1, 0, "left", 2)]


def test_loopback_detection() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("localhost") and is_loopback("::1") and is_loopback("127.0.0.2")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.5") and not is_loopback("example.org")
