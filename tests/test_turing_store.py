"""Answer rules (one answer per trial, in order, own trials only), resume, and the hash-chained log."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from ivus_sim.turing.demo import make_demo_images
from ivus_sim.turing.simulate import simulate_readers
from ivus_sim.turing.store import DB_NAME, AnswerError, Store
from ivus_sim.turing.study import StudyConfig, build_study


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("store")
    make_demo_images(root / "real", 10, size=32, stream="real", prefix="real")
    make_demo_images(root / "fake", 8, size=32, stream="fake", prefix="sim")
    build_study(root / "real", root / "fake", root / "study",
                StudyConfig(n_readers=2, size=32, seed=2, block_size=3), progress=False)
    return root / "study"


def _snapshot(store: Store) -> tuple:
    return (tuple(tuple(r) for r in store.query("SELECT * FROM responses ORDER BY reader_id, position")),
            tuple(tuple(r) for r in store.query("SELECT * FROM audit_log ORDER BY seq")),
            tuple(tuple(r) for r in store.query("SELECT reader_id, breaks_acked, started_ns FROM readers")))


def test_answer_rules(study: Path, tmp_path: Path) -> None:
    import shutil

    s = tmp_path / "s"
    shutil.copytree(study, s)
    with Store(s / DB_NAME) as store:
        (r1, tok1), (r2, tok2) = store.readers()
        t1 = store.current_trial(r1)
        t2 = store.current_trial(r2)
        assert t1 is not None and t2 is not None
        before = _snapshot(store)
        with pytest.raises(AnswerError) as e:
            store.record_answer(tok1, t1.token, "left", None, 1)
        assert e.value.status == 409  # not started
        store.start(tok1, 10)
        store.start(tok2, 10)
        before = _snapshot(store)
        bad = [
            (("nope", t1.token, "left", None), 404),  # unknown reader
            ((tok1, "nope", "left", None), 404),  # unknown trial
            ((tok1, t2.token, "left", None), 403),  # another reader's trial
            ((tok1, t1.token, "up", None), 400),  # bad choice
            ((tok1, t1.token, "left", 7), 400),  # bad confidence
        ]
        later = store.query("SELECT token FROM trials WHERE reader_id = ? AND position = 1", (r1,))[0]["token"]
        bad.append(((tok1, later, "left", None), 409))  # out of order
        for args, status in bad:
            with pytest.raises(AnswerError) as e:
                store.record_answer(*args, now_ns=20)
            assert e.value.status == status, args
            assert _snapshot(store) == before  # nothing changed
        store.mark_shown(r1, 0, 1_000_000_000)
        assert store.record_answer(tok1, t1.token, "right", 4, 1_500_000_000) == 0
        row = store.query("SELECT * FROM responses")[0]
        assert (row["choice"], row["confidence"], row["rt_ms"]) == ("right", 4, 500.0)
        after_one = _snapshot(store)
        with pytest.raises(AnswerError) as e:
            store.record_answer(tok1, t1.token, "left", None, 30)
        assert e.value.status == 409  # duplicate
        assert _snapshot(store) == after_one
        # resume exactly where stopped: a fresh connection sees position 1 next
    with Store(s / DB_NAME) as store:
        nxt = store.current_trial(r1)
        assert nxt is not None and nxt.position == 1 and nxt.token == later


def test_breaks_between_blocks(study: Path, tmp_path: Path) -> None:
    import shutil

    s = tmp_path / "s"
    shutil.copytree(study, s)
    simulate_readers(s, accuracy=0.6, readers=["R01"], max_trials=3, seed=1)
    with Store(s / DB_NAME) as store:
        tok = dict(store.readers())["R01"]
        st = store.state("R01")
        assert st.n_answered == 3 and st.break_pending
        trial = store.current_trial("R01")
        assert trial is not None
        with pytest.raises(AnswerError) as e:
            store.record_answer(tok, trial.token, "left", None, 1)
        assert e.value.status == 409
        store.continue_break(tok, 2)
        assert not store.state("R01").break_pending
        with pytest.raises(AnswerError):
            store.continue_break(tok, 3)  # no second acknowledgement
        store.record_answer(tok, trial.token, "left", None, 4)


def test_hash_chain_detects_tampering(study: Path, tmp_path: Path) -> None:
    import shutil

    s = tmp_path / "s"
    shutil.copytree(study, s)
    simulate_readers(s, accuracy=0.7, seed=4)
    with Store(s / DB_NAME) as store:
        ok, n, bad = store.verify_chain()
        assert ok and bad is None
        assert n == 1 + 2 + 2 * 8 + 2 * 2  # build, 2 starts, 16 answers, 4 break continues (blocks of 3 of 8)
    db = sqlite3.connect(s / DB_NAME)
    db.execute("UPDATE audit_log SET payload = replace(payload, '\"left\"', '\"right\"') "
               "WHERE seq = (SELECT MIN(seq) FROM audit_log WHERE event = 'answer' AND payload LIKE '%\"left\"%')")
    db.commit()
    db.close()
    with Store(s / DB_NAME) as store:
        ok, _, bad = store.verify_chain()
        assert not ok and bad is not None
    # deleting an answer (and its log entry) is caught too
    shutil.rmtree(s)
    shutil.copytree(study, s)
    simulate_readers(s, accuracy=0.7, seed=4)
    db = sqlite3.connect(s / DB_NAME)
    db.execute("DELETE FROM responses WHERE position = 0 AND reader_id = 'R01'")
    db.commit()
    db.close()
    with Store(s / DB_NAME) as store:
        assert not store.verify_chain()[0]
