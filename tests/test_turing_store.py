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


# -- tamper evidence: the chain covers the answers and the key, anchored outside the database --------------------

def _answered_copy(study: Path, dest: Path) -> Path:
    import shutil

    shutil.copytree(study, dest)
    simulate_readers(dest, accuracy=0.5, seed=4)
    return dest


def _sql(study: Path, *statements: str) -> None:
    db = sqlite3.connect(study / DB_NAME)
    for s in statements:
        db.execute(s)
    db.commit()
    db.close()


def _problems(study: Path, anchor: str | None = None) -> list[str]:
    with Store(study / DB_NAME) as store:
        res = store.verify_integrity(anchor)
        assert res.ok == (not res.problems)
        return res.problems


def _rewrite_chain(study: Path) -> None:
    """Flip R01's first answer and rebuild every hash from that entry on (a consistent rewrite)."""
    import hashlib
    import json

    db = sqlite3.connect(study / DB_NAME)
    db.row_factory = sqlite3.Row
    db.execute("UPDATE responses SET choice = CASE choice WHEN 'left' THEN 'right' ELSE 'left' END "
               "WHERE reader_id = 'R01' AND position = 0")
    row = dict(db.execute("SELECT * FROM responses WHERE reader_id = 'R01' AND position = 0").fetchone())
    entries = [dict(r) for r in db.execute("SELECT * FROM audit_log ORDER BY seq")]
    prev = "0" * 64
    for e in entries:
        p = json.loads(e["payload"])
        if e["event"] == "answer" and e["reader_id"] == "R01" and p["position"] == 0:
            p["row"] = row
            e["payload"] = json.dumps(p, sort_keys=True, separators=(",", ":"))
        h = hashlib.sha256(f"{prev}|{e['seq']}|{e['time_ns']}|{e['event']}|{e['reader_id'] or ''}|{e['payload']}"
                           .encode()).hexdigest()
        db.execute("UPDATE audit_log SET payload = ?, prev_hash = ?, hash = ? WHERE seq = ?",
                   (e["payload"], prev, h, e["seq"]))
        prev = h
    db.commit()
    db.close()


def test_untouched_study_verifies_and_anchor_tracks_every_commit(study: Path, tmp_path: Path) -> None:
    s = _answered_copy(study, tmp_path / "s")
    with Store(s / DB_NAME) as store:
        res = store.verify_integrity()
        assert res.ok and not res.warnings, res.problems
        assert res.anchored == res.n_entries == store.query("SELECT COUNT(*) AS n FROM audit_log")[0]["n"]
        first = store.query("SELECT hash FROM audit_log WHERE seq = 1")[0]["hash"]
    assert _problems(s, anchor=first) == []  # the head printed at build is a prefix of the chain
    assert "not a head" in _problems(s, anchor="ab" * 32)[0]


@pytest.mark.parametrize(("tamper", "expect"), [
    ("flip_answer", "differs from the chained record"),
    ("flip_key", "answer key (trials) of reader R01 differs"),
    ("flip_pair", "study key"),
    ("delete_last_answer", "entries deleted"),
    ("delete_answer_row", "missing from the responses"),
    ("rewrite_chain", "the chain was rewritten"),
    ("drop_anchor", "no chain-anchor.log"),
    ("unforce", "study key"),
])
def test_tampering_is_detected(study: Path, tmp_path: Path, tamper: str, expect: str) -> None:
    s = _answered_copy(study, tmp_path / "s")
    assert _problems(s) == []
    flip = "CASE {c} WHEN 'left' THEN 'right' ELSE 'left' END"
    if tamper == "flip_answer":  # one stored answer, nothing else
        _sql(s, f"UPDATE responses SET choice = {flip.format(c='choice')} WHERE reader_id = 'R01' AND position = 2")
    elif tamper == "flip_key":  # the answer key: which side was real
        _sql(s, f"UPDATE trials SET real_side = {flip.format(c='real_side')} WHERE reader_id = 'R01' AND position = 1")
    elif tamper == "flip_pair":  # swap which image of a pair is real
        _sql(s, "UPDATE pairs SET real_image = fake_image, fake_image = real_image WHERE pair_id = 0")
    elif tamper == "delete_last_answer":  # the last answer and its log entry: the chain stays valid in the db
        last = "(SELECT {} FROM audit_log WHERE event = 'answer' ORDER BY seq DESC LIMIT 1)"
        _sql(s, f"DELETE FROM responses WHERE reader_id = {last.format('reader_id')} "
                "AND position = " + last.format("json_extract(payload, '$.position')"),
             "DELETE FROM audit_log WHERE seq = (SELECT MAX(seq) FROM audit_log)")
    elif tamper == "delete_answer_row":
        _sql(s, "DELETE FROM responses WHERE reader_id = 'R02' AND position = 3")
    elif tamper == "rewrite_chain":
        _rewrite_chain(s)
    elif tamper == "drop_anchor":
        (s / "chain-anchor.log").unlink()
    elif tamper == "unforce":
        _sql(s, "UPDATE meta SET value = 'true' WHERE key = 'audit_forced'")
    problems = _problems(s)
    assert problems and expect in problems[0], problems


def test_consistent_rewrite_passes_the_db_alone_but_not_an_external_head(study: Path, tmp_path: Path) -> None:
    s = _answered_copy(study, tmp_path / "s")
    with Store(s / DB_NAME) as store:
        head = store.verify_integrity().head_hash
    _rewrite_chain(s)
    (s / "chain-anchor.log").unlink()  # the attacker removes the anchor file too
    with Store(s / DB_NAME) as store:
        assert store.verify_integrity(require_anchor_file=False).ok  # the database alone looks fine ...
        assert not store.verify_integrity(anchor=head).ok  # ... a head kept elsewhere is not in it


def test_new_answers_extend_the_chain_and_late_key_changes_fail(study: Path, tmp_path: Path) -> None:
    import shutil

    s = tmp_path / "s"
    shutil.copytree(study, s)
    simulate_readers(s, accuracy=0.5, seed=1, readers=["R01"], max_trials=2)
    with Store(s / DB_NAME) as store:
        a = store.verify_integrity()
    simulate_readers(s, accuracy=0.5, seed=1, readers=["R01"], max_trials=2)
    with Store(s / DB_NAME) as store:
        b = store.verify_integrity(anchor=a.head_hash)  # the earlier head is a prefix of the longer chain
        assert b.ok and b.n_entries > a.n_entries and b.anchored == b.n_entries
        # re-declaring R01's key after R01 answered (to cover a flipped real_side) is caught
        with store.transaction() as db:
            db.execute("UPDATE trials SET real_side = CASE real_side WHEN 'left' THEN 'right' ELSE 'left' END "
                       "WHERE reader_id = 'R01' AND position = 0")
            store.log_key(db, 5, "R01")
        res = store.verify_integrity()
        assert not res.ok and "re-declared after their answers" in res.problems[0]
        # a reader added later (H5's `turing readers add`) is declared by a key entry before answering
        with store.transaction() as db:
            store.log_key(db, 6, "R02")
        assert "R02" not in " ".join(store.verify_integrity().problems)


def test_crash_between_commit_and_anchor_is_a_warning(study: Path, tmp_path: Path) -> None:
    s = _answered_copy(study, tmp_path / "s")
    lines = (s / "chain-anchor.log").read_text().splitlines()
    (s / "chain-anchor.log").write_text("\n".join(lines[:-1]) + "\n")
    with Store(s / DB_NAME) as store:
        res = store.verify_integrity()
        assert res.ok and res.warnings and "not in chain-anchor.log" in res.warnings[0]
    (s / "chain-anchor.log").write_text("\n".join(lines[:-2]) + "\n")  # two missing: not a crash
    assert _problems(s)


def test_restart_after_crash_between_commit_and_anchor_recovers_the_tail(study: Path, tmp_path: Path) -> None:
    """SIGKILL after COMMIT, before the anchor write, then the study goes on: the crashed
    transaction's entries are anchored as 'recovered' by the next writer and the study verifies."""
    s = _answered_copy(study, tmp_path / "s")
    lines = (s / "chain-anchor.log").read_text().splitlines()
    (s / "chain-anchor.log").write_text("\n".join(lines[:-1]) + "\n")  # the last commit never reached the anchor
    with Store(s / DB_NAME) as store:
        with store.transaction() as db:  # the restarted server writes something else first
            store.append_log(db, "zoom", "R01", {"zoom": 2}, 123)
        res = store.verify_integrity()
    assert res.ok, res.problems
    assert any("recovered" in w for w in res.warnings)
    assert res.anchored == res.n_entries
    assert (s / "chain-anchor.log").read_text().splitlines()[-2].endswith(" recovered")


def test_recovery_never_blesses_more_than_one_crashed_transaction(study: Path, tmp_path: Path) -> None:
    s = _answered_copy(study, tmp_path / "s")
    lines = (s / "chain-anchor.log").read_text().splitlines()
    (s / "chain-anchor.log").write_text("\n".join(lines[:-2]) + "\n")  # two transactions missing: not a crash
    with Store(s / DB_NAME) as store:
        with store.transaction() as db:
            store.append_log(db, "zoom", "R01", {"zoom": 2}, 123)
        res = store.verify_integrity()
    assert not res.ok and "not in chain-anchor.log" in res.problems[0]


def test_one_transaction_writes_one_timestamp(study: Path, tmp_path: Path) -> None:
    s = _answered_copy(study, tmp_path / "s")
    with Store(s / DB_NAME) as store:
        with pytest.raises(ValueError, match="same time_ns"):
            with store.transaction() as db:
                store.append_log(db, "zoom", "R01", {"zoom": 2}, 1)
                store.append_log(db, "zoom", "R01", {"zoom": 3}, 2)
        assert store.verify_integrity().ok  # rolled back: nothing written
