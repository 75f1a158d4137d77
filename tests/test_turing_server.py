"""The web app: crawl every page and asset of every trial and check nothing reveals the answer key;
HTTP-level answer rules; exactly the answers given reach the analysis."""

from __future__ import annotations

import json
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


# -- request validation, reader flow and display (issue 14) ------------------------------------------------------


def _small_study(root: Path, **cfg: object) -> tuple[Path, dict[str, str]]:
    make_demo_images(root / "real", 16, size=32, stream="real", prefix="real")
    make_demo_images(root / "fake", 16, size=32, stream="fake", prefix="sim")
    config = StudyConfig(**{"n_readers": 2, "size": 32, "seed": 5, "n_pairs": 8, "block_size": 4, **cfg})  # type: ignore[arg-type]
    built = build_study(root / "real", root / "fake", root / "study", config, progress=False)
    return root / "study", built.readers


def _begin(client: TestClient, tok: str) -> str:
    """Consent, start, and return the first trial page."""
    assert client.post(f"/r/{tok}/consent", data={"agree": "yes"}, follow_redirects=False).status_code == 303
    assert client.post(f"/r/{tok}/start", follow_redirects=False).status_code == 303
    return client.get(f"/r/{tok}").text


def _trial(page: str) -> str:
    m = re.search(r'name="trial" value="([^"]+)"', page)
    assert m is not None, page
    return m.group(1)


def test_answer_fields_are_validated_never_500(tmp_path: Path) -> None:
    study, readers = _small_study(tmp_path)
    client = TestClient(create_app(study), raise_server_exceptions=False)
    tok = readers["R01"]
    trial = _trial(_begin(client, tok))
    form = "application/x-www-form-urlencoded"
    bad = [
        {"trial": trial, "choice": "left", "confidence": "\u00b2"},  # superscript two: str.isdigit() is True
        {"trial": trial, "choice": "left", "confidence": "9" * 5000},  # int() refuses > 4300 digits: was a 500
        {"trial": trial, "choice": "left", "confidence": "3" * 40},
        {"trial": trial, "choice": "left", "confidence": "0"},
        {"trial": trial, "choice": "left", "confidence": "6"},
        {"trial": trial, "choice": "left", "confidence": " 3"},
        {"trial": trial, "choice": "left", "confidence": "3.0"},
        {"trial": trial, "choice": "left", "confidence": "\u0663"},  # Arabic-Indic three
        {"trial": trial, "choice": "left", "dpr": "nan"},
        {"trial": trial, "choice": "left", "dpr": "1e309"},
        {"trial": trial, "choice": "left", "dpr": "0"},
        {"trial": trial, "choice": "real"},  # a single-image answer in a 2AFC study
        {"trial": trial, "choice": "LEFT"},
        {"trial": trial},
        {"trial": "x" * 5000, "choice": "left"},
        {"trial": "../../etc", "choice": "left"},
        {"trial": trial, "choice": "left", "extra": "1"},
    ]
    for data in bad:
        r = client.post(f"/r/{tok}/answer", data=data, follow_redirects=False)
        assert r.status_code == 400, (data, r.status_code)
    # over the 8 kB body limit: 413
    for data in ({"trial": trial, "choice": "left", "confidence": "9" * 9000}, {"trial": "x" * 9000, "choice": "left"}):
        assert client.post(f"/r/{tok}/answer", data=data, follow_redirects=False).status_code == 413
    raw = [
        (f"trial={trial}&choice=left&choice=right", form, 400),  # a field twice
        (f"trial={trial}&choice=left&confidence=%C2%B2", form, 400),
        (f"trial={trial}&choice=left&confidence=%FF", form, 400),  # not UTF-8
        (f"trial={trial}&choice=l\u00e9ft".encode(), form, 400),  # raw non-ASCII body
        ('{"trial": "x", "choice": "left"}', "application/json", 415),
        (f"trial={trial}&choice=left", "multipart/form-data; boundary=x", 415),
    ]
    for body, ctype, status in raw:
        r = client.post(f"/r/{tok}/answer", content=body, headers={"content-type": ctype}, follow_redirects=False)
        assert r.status_code == status, (body, r.status_code)
    for url, data in ((f"/r/{tok}/zoom", {"zoom": "3"}), (f"/r/{tok}/zoom", {"zoom": "\u00b2"}),
                      (f"/r/{tok}/consent", {"agree": "no"}), (f"/r/{tok}/start", {"x": "1"})):
        assert client.post(url, data=data, follow_redirects=False).status_code == 400, (url, data)
    with Store(study / DB_NAME) as store:
        assert store.query("SELECT COUNT(*) AS n FROM responses")[0]["n"] == 0
    ok = client.post(f"/r/{tok}/answer", data={"trial": trial, "choice": "left", "confidence": "3"},
                     follow_redirects=False)
    assert ok.status_code == 303


def test_unknown_and_revoked_links_get_403_and_answers_stay_flagged(tmp_path: Path) -> None:
    from ivus_sim.turing.readers import list_readers, revoke_reader, revoked_answers

    study, readers = _small_study(tmp_path)
    client = TestClient(create_app(study))
    tok = readers["R01"]
    page = _begin(client, tok)
    for _ in range(3):
        assert client.post(f"/r/{tok}/answer", data={"trial": _trial(page), "choice": "left", "confidence": "2"},
                           follow_redirects=False).status_code == 303
        page = client.get(f"/r/{tok}").text
    for url in ("/r/not-a-reader", "/r/not-a-reader/answer", "/r/not-a-reader/i/x"):
        assert client.get(url).status_code == 403 if "answer" not in url else client.post(url).status_code == 403
    new = revoke_reader(study, "R01", reissue=True, reason="link was forwarded")  # on a running server
    assert new and new != tok
    for method, url in (("GET", f"/r/{tok}"), ("POST", f"/r/{tok}/answer"), ("POST", f"/r/{tok}/start")):
        r = client.request(method, url, data={"trial": _trial(page), "choice": "left"} if method == "POST" else None)
        assert r.status_code == 403 and "withdrawn" in r.text
    # the new link continues the schedule where the reader stopped
    page = client.get(f"/r/{new}").text
    assert 'id="progress-text">3 / ' in page
    assert client.post(f"/r/{new}/answer", data={"trial": _trial(page), "choice": "right", "confidence": "4"},
                       follow_redirects=False).status_code == 303
    with Store(study / DB_NAME) as store:
        assert store.query("SELECT COUNT(*) AS n FROM responses WHERE reader_id = 'R01'")[0]["n"] == 4
        assert revoked_answers(store) == {("R01", 0), ("R01", 1), ("R01", 2)}  # kept, flagged
        events = [r["event"] for r in store.query("SELECT event FROM audit_log WHERE reader_id = 'R01' ORDER BY seq")]
        assert "link_revoked" in events and "link_issued" in events
        assert tok not in "".join(r["payload"] for r in store.query("SELECT payload FROM audit_log"))
    # revoke without re-issue: the reader has no working link at all
    revoke_reader(study, "R01")
    assert client.get(f"/r/{new}").status_code == 403
    info = {r.reader_id: r for r in list_readers(study)}
    assert info["R01"].status == "revoked" and info["R01"].token is None and info["R01"].n_revoked_links == 2
    assert info["R02"].status == "active" and info["R02"].token == readers["R02"]


def test_display_is_native_size_with_recorded_zoom(tmp_path: Path) -> None:
    study, readers = _small_study(tmp_path)
    client = TestClient(create_app(study))
    tok = readers["R01"]
    page = _begin(client, tok)
    # 1:1 by default: the img box is the image's own size and no CSS rule resizes frames
    assert re.findall(r'<img src="/r/[^"]+" width="(\d+)" height="(\d+)"', page) == [("32", "32")] * 2
    css = client.get("/static/style.css").text
    img_rules = " ".join(re.findall(r"\.frame img[^{]*\{([^}]*)\}", css))
    assert "image-rendering: pixelated" in img_rules and "max-width: none" in img_rules
    assert not re.search(r"(^|[^-])(width|height)\s*:", img_rules.replace("max-width", "").replace("max-height", ""))
    assert "vw" not in css and "aspect-ratio" not in css
    assert 'id="zoom-1" aria-pressed="true"' in page
    assert client.post(f"/r/{tok}/zoom", data={"zoom": "2"}, follow_redirects=False).status_code == 303
    page = client.get(f"/r/{tok}").text
    assert re.findall(r'<img src="/r/[^"]+" width="(\d+)"', page) == ["64", "64"]
    assert 'id="zoom-2" aria-pressed="true"' in page
    client.post(f"/r/{tok}/answer", data={"trial": _trial(page), "choice": "left", "confidence": "5", "dpr": "1.25"})
    client.post(f"/r/{tok}/zoom", data={"zoom": "1"})
    page = client.get(f"/r/{tok}").text
    client.post(f"/r/{tok}/answer", data={"trial": _trial(page), "choice": "right", "confidence": "1"})
    with Store(study / DB_NAME) as store:
        rows = [tuple(r) for r in store.query("SELECT position, zoom, dpr FROM responses ORDER BY position")]
        assert rows == [(0, 2, 1.25), (1, 1, None)]
        zooms = [json.loads(r["payload"])
                 for r in store.query("SELECT payload FROM audit_log WHERE event = 'zoom' ORDER BY seq")]
        assert zooms == [{"zoom": 2, "position": 0}, {"zoom": 1, "position": 1}]


def test_confidence_after_choice_confirm_step_progress_and_instructions(tmp_path: Path) -> None:
    study, readers = _small_study(tmp_path / "a")
    client = TestClient(create_app(study))
    tok = readers["R01"]
    client.post(f"/r/{tok}/consent", data={"agree": "yes"})
    instructions = client.get(f"/r/{tok}").text
    assert "Exactly one of them was acquired in a patient" in instructions  # true: no real-vs-real checks
    page = _begin(client, tok)
    # the progress bar starts empty: nothing answered yet
    assert re.search(r'id="progress-text">0 / 8 done<', page)
    assert re.search(r'<progress id="progress" value="0" max="8">', page)
    # choice and confidence are radio inputs committed only by the confirm button (undo = reset)
    assert page.count('name="choice"') == 2 and 'type="submit" name="choice"' not in page
    labels = dict(re.findall(r'id="confidence-(\d)" required> <b>\d</b> <span>([^<]+)</span>', page))
    assert labels == {"1": "guess", "2": "unsure", "3": "fairly sure", "4": "sure", "5": "certain"}
    assert page.index('name="choice"') < page.index('name="confidence"')
    assert re.search(r'<button type="reset" id="undo"', page) and re.search(r'<button type="submit" id="confirm"', page)
    css = client.get("/static/style.css").text
    assert '.answer:not(:has(input[name="choice"]:checked)) .confidence { visibility: hidden; }' in css
    # with real-vs-real checks in the study the instructions no longer claim "exactly one"
    study2, readers2 = _small_study(tmp_path / "b", n_catch=1)
    client2 = TestClient(create_app(study2))
    client2.post(f"/r/{readers2['R01']}/consent", data={"agree": "yes"})
    text = client2.get(f"/r/{readers2['R01']}").text
    assert "Exactly one" not in text and "both frames may have been acquired in patients" in text


def test_consent_practice_with_feedback_then_study(tmp_path: Path) -> None:
    study, readers = _small_study(tmp_path, n_practice=2, block_size=3)
    client = TestClient(create_app(study))
    tok = readers["R01"]
    assert client.post(f"/r/{tok}/start", follow_redirects=False).status_code == 409  # no consent yet
    r = client.post(f"/r/{tok}/decline", follow_redirects=False)
    assert r.status_code == 200 and "declined" in r.text
    page = _begin(client, tok)
    with Store(study / DB_NAME) as store:
        key = {r["position"]: r for r in store.query("SELECT position, kind, real_side, block FROM trials "
                                                     "WHERE reader_id = 'R01' ORDER BY position")}
        events = [r["event"] for r in store.query("SELECT event FROM audit_log WHERE reader_id = 'R01' ORDER BY seq")]
    assert events[:3] == ["consent_declined", "consent", "start"]
    assert [key[p]["kind"] for p in (0, 1)] == ["practice", "practice"] and key[0]["block"] == -1
    for p in (0, 1):
        assert f'id="progress-text">Practice {p + 1} of 2<' in page
        choice = key[p]["real_side"] if p == 0 else ("left" if key[p]["real_side"] == "right" else "right")
        assert client.post(f"/r/{tok}/answer", data={"trial": _trial(page), "choice": choice, "confidence": "3"},
                           follow_redirects=False).status_code == 303
        fb = client.get(f"/r/{tok}").text
        assert (": correct</h1>" if p == 0 else ": not correct</h1>") in fb
        assert f"The {key[p]['real_side']} frame was acquired in a patient" in fb
        assert ('id="practice-over"' in fb) == (p == 1)
        assert 'name="trial"' not in fb
        # no answer while the feedback is shown
        assert client.post(f"/r/{tok}/feedback", follow_redirects=False).status_code == 303
        assert client.post(f"/r/{tok}/feedback", follow_redirects=False).status_code == 409
        page = client.get(f"/r/{tok}").text
    # the study proper: progress and blocks count main trials only, no feedback
    assert 'id="progress-text">0 / 8 done<' in page
    for _ in range(3):
        client.post(f"/r/{tok}/answer", data={"trial": _trial(page), "choice": "left", "confidence": "2"})
        page = client.get(f"/r/{tok}").text
        assert "correct</h1>" not in page and "Practice" not in page
    assert 'action="/r/' + tok + '/continue"' in page and "3 of 8" in page  # break after 3 main trials
    an = analyze_study(study, n_boot=10, mixed=False)
    main = [r for r in an.reads if r["kind"] == "main"]
    assert len(main) == 3 and {r["position"] for r in main} == {2, 3, 4}
    assert an.readers[0].accuracy.n == 3  # practice answers are not in the accuracy
    assert an.readers[0].n_answered == 3 and an.readers[0].n_trials_scheduled == 8  # nor in any count
    assert [r["kind"] for r in an.reads[:2]] == ["practice", "practice"]  # but exported, marked


def test_single_image_mode_serving_and_storage(tmp_path: Path) -> None:
    from ivus_sim.turing.modes import StudyMode

    study, readers = _small_study(tmp_path, mode=StudyMode.SINGLE, n_practice=1, n_catch=1)
    client = TestClient(create_app(study))
    tok = readers["R02"]
    client.post(f"/r/{tok}/consent", data={"agree": "yes"})
    assert "For each frame" in client.get(f"/r/{tok}").text
    client.post(f"/r/{tok}/start")
    with Store(study / DB_NAME) as store:
        trials = [dict(r) for r in store.query("SELECT * FROM trials WHERE reader_id = 'R02' ORDER BY position")]
        n_images = store.query("SELECT COUNT(*) AS n FROM images")[0]["n"]
    assert trials[0]["kind"] == "practice"
    main = [t for t in trials if t["kind"] == "main"]
    assert len(main) == 16 and sum(t["truth"] == "real" for t in main) == 8  # every image of the 8 pairs, balanced
    assert all(t["right_image"] is None and t["right_view"] is None and t["real_side"] is None for t in trials)
    assert {t["kind"] for t in trials} == {"practice", "main", "obvious", "repeat"}
    assert n_images >= 17
    n = 0
    while True:
        page = client.get(f"/r/{tok}").text
        if "Thank you" in page:
            break
        if 'action="/r/' + tok + '/feedback"' in page:
            client.post(f"/r/{tok}/feedback")
            continue
        if 'action="/r/' + tok + '/continue"' in page:
            client.post(f"/r/{tok}/continue")
            continue
        srcs = re.findall(r'src="(/r/[^"]+/i/[^"]+)"', page)
        assert len(srcs) == 1 and client.get(srcs[0]).status_code == 200
        trial = _trial(page)
        for data in ({"trial": trial, "choice": "left", "confidence": "3"},  # 2AFC answer
                     {"trial": trial, "choice": "real"}):  # the rating is required
            assert client.post(f"/r/{tok}/answer", data=data, follow_redirects=False).status_code == 400
        choice = "real" if n % 3 else "simulated"
        assert client.post(f"/r/{tok}/answer", data={"trial": trial, "choice": choice, "confidence": str(n % 5 + 1)},
                           follow_redirects=False).status_code == 303
        n += 1
    assert n == len(trials)
    with Store(study / DB_NAME) as store:
        reads = store.reads()
    assert [(r["position"], r["choice"], r["confidence"]) for r in reads] == \
        [(k, "real" if k % 3 else "simulated", k % 5 + 1) for k in range(n)]
    assert all(r["truth"] in ("real", "simulated") for r in reads)


def test_single_image_pages_do_not_depend_on_the_truth(tmp_path: Path) -> None:
    from ivus_sim.turing.modes import StudyMode

    study, readers = _small_study(tmp_path, mode=StudyMode.SINGLE, n_practice=2, n_catch=1, block_size=100)
    client = TestClient(create_app(study))
    with Store(study / DB_NAME) as store:
        image_of = {r["token"]: (r["left_image"], r["kind"]) for r in store.query("SELECT * FROM trials")}
        used = {r["left_image"] for r in store.query("SELECT left_image FROM trials WHERE kind != 'practice'")}
        practice = {r["left_image"] for r in store.query("SELECT left_image FROM trials WHERE kind = 'practice'")}
    assert practice and not practice & used  # feedback reveals practice images: they appear nowhere else
    pages: set[str] = set()
    sizes: set[int] = set()
    headers: list[dict[str, str]] = []
    for tok in readers.values():
        page = _begin(client, tok)
        while "Thank you" not in page:
            if 'action="/r/' + tok + '/feedback"' in page:
                client.post(f"/r/{tok}/feedback")
            else:
                trial = _trial(page)
                if image_of[trial][1] != "practice":
                    pages.add(re.sub(r"\d+", "N", _strip_tokens(page)))
                    img = client.get(re.findall(r'src="(/r/[^"]+/i/[^"]+)"', page)[0])
                    sizes.add(len(img.content))
                    headers.append({k: v for k, v in img.headers.items()})
                client.post(f"/r/{tok}/answer", data={"trial": trial, "choice": "real", "confidence": "3"})
            page = client.get(f"/r/{tok}").text
    assert len(pages) == 1 and len(sizes) == 1 and all(h == headers[0] for h in headers)


def test_custom_consent_and_debrief_texts(tmp_path: Path) -> None:
    study, readers = _small_study(tmp_path, n_pairs=2, consent_text="Study <X> of the lab.\n\nYou may stop.",
                                  debrief_text="Thanks & goodbye.\n\n\nContact: lab@example.org")
    client = TestClient(create_app(study))
    tok = readers["R01"]
    page = client.get(f"/r/{tok}").text
    assert "<p>Study &lt;X&gt; of the lab.</p>" in page and "<p>You may stop.</p>" in page  # escaped paragraphs
    assert "Taking part is voluntary" not in page  # the built-in text is replaced
    page = _begin(client, tok)
    while "Thank you" not in page:
        client.post(f"/r/{tok}/answer", data={"trial": _trial(page), "choice": "left", "confidence": "3"})
        page = client.get(f"/r/{tok}").text
    assert "<p>Thanks &amp; goodbye.</p>" in page and "<p>Contact: lab@example.org</p>" in page
    with Store(study / DB_NAME) as store:
        consent = [json.loads(r["payload"]) for r in store.query("SELECT payload FROM audit_log WHERE event = "
                                                                  "'consent' ORDER BY seq")]
    assert len(consent) == 1 and len(consent[0]["text_sha256"]) == 64
