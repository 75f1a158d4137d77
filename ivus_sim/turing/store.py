"""Study storage: one SQLite database (WAL) holding the answer key, the schedules, the answers
and a hash-chained audit log.

The database lives in the study folder, which is never served: the web app only reads it.
Durability: ``journal_mode=WAL`` with ``synchronous=FULL``; every answer is written together
with its audit-log entry in one ``BEGIN IMMEDIATE`` transaction that is committed *before*
the server responds, so an acknowledged answer survives a crash or ``SIGKILL``.

Answer rules (:meth:`Store.record_answer`): a reader answers their own trials strictly in
schedule order, once each. Unknown reader tokens and unknown trial tokens give 404, another
reader's trial token 403, a duplicate or out-of-order answer (or one sent while a break is
pending) 409, a malformed choice or confidence 400 - and a rejected request changes nothing.

Audit log: each entry stores ``hash = sha256(prev_hash | seq | time_ns | event | reader | payload)``
with ``prev_hash`` the previous entry's hash (64 zeros for the first), so editing, deleting or
reordering any past entry breaks :meth:`Store.verify_chain`.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ivus_sim.errors import IvusSimError

__all__ = ["AnswerError", "ReaderState", "TrialRow", "Store", "GENESIS_HASH", "DB_NAME"]

DB_NAME = "study.sqlite"
GENESIS_HASH = "0" * 64

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS images (
    image_id INTEGER PRIMARY KEY, file TEXT NOT NULL UNIQUE, role TEXT NOT NULL,
    source TEXT NOT NULL, sha256 TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS pairs (
    pair_id INTEGER PRIMARY KEY, real_image INTEGER NOT NULL REFERENCES images,
    fake_image INTEGER NOT NULL REFERENCES images, matched_by TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS readers (
    reader_id TEXT PRIMARY KEY, token TEXT NOT NULL UNIQUE, started_ns INTEGER,
    breaks_acked INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS trials (
    reader_id TEXT NOT NULL REFERENCES readers, position INTEGER NOT NULL, token TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL, item INTEGER NOT NULL, left_image INTEGER NOT NULL REFERENCES images,
    right_image INTEGER REFERENCES images, real_side TEXT, repeat_of INTEGER, block INTEGER NOT NULL,
    left_view TEXT NOT NULL UNIQUE, right_view TEXT UNIQUE,
    first_shown_ns INTEGER, last_shown_ns INTEGER, n_shown INTEGER NOT NULL DEFAULT 0,
    truth TEXT CHECK (truth IS NULL OR truth IN ('real','simulated')),
    PRIMARY KEY (reader_id, position));
CREATE TABLE IF NOT EXISTS responses (
    reader_id TEXT NOT NULL, position INTEGER NOT NULL,
    choice TEXT NOT NULL CHECK (choice IN ('left','right','real','simulated')),
    confidence INTEGER CHECK (confidence IS NULL OR confidence BETWEEN 1 AND 5),
    shown_ns INTEGER, answered_ns INTEGER NOT NULL, rt_ms REAL,
    zoom INTEGER, dpr REAL,
    PRIMARY KEY (reader_id, position), FOREIGN KEY (reader_id, position) REFERENCES trials);
CREATE TABLE IF NOT EXISTS audit_log (
    seq INTEGER PRIMARY KEY, time_ns INTEGER NOT NULL, event TEXT NOT NULL, reader_id TEXT,
    payload TEXT NOT NULL, prev_hash TEXT NOT NULL, hash TEXT NOT NULL);
"""


class AnswerError(IvusSimError):
    """A rejected reader request; ``status`` is the HTTP status the server answers with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class ReaderState:
    """Where a reader stands."""

    reader_id: str
    n_trials: int
    n_answered: int
    started: bool
    breaks_acked: int
    block_size: int
    n_practice: int = 0  # practice trials (the first positions; not part of the blocks)

    @property
    def done(self) -> bool:
        return self.n_answered >= self.n_trials

    @property
    def break_pending(self) -> bool:
        """True between blocks (of main trials) until the reader presses "continue"."""
        m = self.n_answered - self.n_practice
        return (0 < m < self.n_trials - self.n_practice and m % self.block_size == 0
                and self.breaks_acked < m // self.block_size)


@dataclass(frozen=True)
class TrialRow:
    """The public part of a trial (what the server needs to render it)."""

    reader_id: str
    position: int
    token: str
    left_view: str
    right_view: str | None  # None in single-image mode
    block: int


def _entry_hash(prev: str, seq: int, time_ns: int, event: str, reader_id: str | None, payload: str) -> str:
    return hashlib.sha256(f"{prev}|{seq}|{time_ns}|{event}|{reader_id or ''}|{payload}".encode()).hexdigest()


class Store:
    """The study database.

    Args:
        path: the SQLite file (``STUDY/study.sqlite``).
        create: create the schema (build time); otherwise the file must exist.
    """

    def __init__(self, path: str | Path, *, create: bool = False) -> None:
        self.path = Path(path)
        if not create and not self.path.is_file():
            raise IvusSimError(f"{self.path.parent} is not a reader study (no {self.path.name}); run `turing build`")
        self._lock = threading.RLock()
        self._shown: dict[tuple[str, int], tuple[int, int, int]] = {}  # (reader, position) -> first, last, count
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=30.0)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._db.execute("PRAGMA busy_timeout=30000")
        if create:
            self._db.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """An immediate (write-locking) transaction, committed on success, rolled back on error."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def query(self, sql: str, args: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        with self._lock:
            return list(self._db.execute(sql, args))

    # -- build time -------------------------------------------------------------------------
    def set_meta(self, key: str, value: Any) -> None:
        with self.transaction() as db:
            db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, json.dumps(value)))

    def meta(self, key: str, default: Any = None) -> Any:
        rows = self.query("SELECT value FROM meta WHERE key = ?", (key,))
        return json.loads(rows[0]["value"]) if rows else default

    def append_log(self, db: sqlite3.Connection, event: str, reader_id: str | None, payload: dict[str, Any],
                   time_ns: int) -> str:
        """Append one hash-chained entry inside the caller's transaction; returns its hash."""
        last = db.execute("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1").fetchone()
        seq, prev = (last["seq"] + 1, last["hash"]) if last else (1, GENESIS_HASH)
        text = json.dumps(payload, sort_keys=True, separators=(",", ":"))
        h = _entry_hash(prev, seq, time_ns, event, reader_id, text)
        db.execute("INSERT INTO audit_log VALUES (?, ?, ?, ?, ?, ?, ?)",
                   (seq, time_ns, event, reader_id, text, prev, h))
        return h

    # -- reader requests ----------------------------------------------------------------------
    def reader_for_token(self, token: str) -> str:
        """The reader id of a reader link token (404 if unknown)."""
        rows = self.query("SELECT reader_id FROM readers WHERE token = ?", (token,))
        if not rows:
            raise AnswerError(404, "unknown reader link")
        return str(rows[0]["reader_id"])

    def state(self, reader_id: str) -> ReaderState:
        with self._lock:
            r = self._db.execute("SELECT started_ns, breaks_acked FROM readers WHERE reader_id = ?",
                                 (reader_id,)).fetchone()
            n_trials = self._db.execute("SELECT COUNT(*) FROM trials WHERE reader_id = ?", (reader_id,)).fetchone()[0]
            n_ans = self._db.execute("SELECT COUNT(*) FROM responses WHERE reader_id = ?", (reader_id,)).fetchone()[0]
            n_prac = self._db.execute("SELECT COUNT(*) FROM trials WHERE reader_id = ? AND kind = 'practice'",
                                      (reader_id,)).fetchone()[0]
        return ReaderState(reader_id, int(n_trials), int(n_ans), r["started_ns"] is not None, int(r["breaks_acked"]),
                           int(self.meta("block_size", 50)), int(n_prac))

    def current_trial(self, reader_id: str) -> TrialRow | None:
        """The next unanswered trial of ``reader_id`` (``None`` when done)."""
        st = self.state(reader_id)
        if st.done:
            return None
        rows = self.query("SELECT position, token, left_view, right_view, block FROM trials "
                          "WHERE reader_id = ? AND position = ?", (reader_id, st.n_answered))
        r = rows[0]
        return TrialRow(reader_id, int(r["position"]), str(r["token"]), str(r["left_view"]),
                        None if r["right_view"] is None else str(r["right_view"]), int(r["block"]))

    def start(self, token: str, now_ns: int) -> None:
        """Mark a reader as started (idempotent)."""
        reader_id = self.reader_for_token(token)
        with self.transaction() as db:
            row = db.execute("SELECT started_ns FROM readers WHERE reader_id = ?", (reader_id,)).fetchone()
            if row["started_ns"] is None:
                db.execute("UPDATE readers SET started_ns = ? WHERE reader_id = ?", (now_ns, reader_id))
                self.append_log(db, "start", reader_id, {}, now_ns)

    def mark_shown(self, reader_id: str, position: int, now_ns: int) -> None:
        """Note that a trial page was (re)displayed; response time runs from the last display.

        Display times are kept in memory and written with the answer (one disk sync per answer,
        not per page view); after a server restart the clock restarts at the next display.
        """
        with self._lock:
            first, _, n = self._shown.get((reader_id, position), (now_ns, now_ns, 0))
            self._shown[(reader_id, position)] = (first, now_ns, n + 1)

    def continue_break(self, token: str, now_ns: int) -> None:
        """Acknowledge the pending break (409 if none is pending)."""
        reader_id = self.reader_for_token(token)
        with self.transaction() as db:
            st = self.state(reader_id)
            if not st.break_pending:
                raise AnswerError(409, "no break is pending")
            db.execute("UPDATE readers SET breaks_acked = ? WHERE reader_id = ?",
                       ((st.n_answered - st.n_practice) // st.block_size, reader_id))
            self.append_log(db, "continue", reader_id, {"after": st.n_answered}, now_ns)

    def record_answer(self, token: str, trial_token: str, choice: str, confidence: int | None,
                      now_ns: int, *, zoom: int | None = None, dpr: float | None = None) -> int:
        """Store one answer (validated, atomically, with its audit-log entry).

        Args:
            token: the reader link token. trial_token: the trial's opaque token.
            choice: ``"left"`` or ``"right"`` (the image the reader calls real); in single-image
                mode (trials with a ``truth``) ``"real"`` or ``"simulated"``.
            confidence: 1-5 or ``None`` (not given; never imputed).
            now_ns: server receive time [ns since the epoch].
            zoom: the display scale the reader had chosen (recorded, not validated here).
            dpr: the browser's ``devicePixelRatio`` (recorded).

        Returns:
            The answered trial's position.

        Raises:
            AnswerError: with the HTTP status to answer (nothing is written).
        """
        if choice not in ("left", "right", "real", "simulated"):
            raise AnswerError(400, "choice must be 'left' or 'right' ('real' or 'simulated' in single-image mode)")
        if confidence is not None and not (isinstance(confidence, int) and 1 <= confidence <= 5):
            raise AnswerError(400, "confidence must be an integer from 1 to 5")
        reader_id = self.reader_for_token(token)
        with self.transaction() as db:
            trial = db.execute("SELECT reader_id, position, truth FROM trials WHERE token = ?",
                               (trial_token,)).fetchone()
            if trial is None:
                raise AnswerError(404, "unknown trial")
            if trial["reader_id"] != reader_id:
                raise AnswerError(403, "this trial belongs to another reader")
            if (choice in ("real", "simulated")) != (trial["truth"] is not None):
                raise AnswerError(400, "choice must be 'real' or 'simulated' in single-image mode, else 'left' or "
                                  "'right'")
            st = self.state(reader_id)
            if not st.started:
                raise AnswerError(409, "the study has not been started from the instructions page")
            pos = int(trial["position"])
            if pos < st.n_answered:
                raise AnswerError(409, "this trial has already been answered")
            if pos > st.n_answered:
                raise AnswerError(409, "trials must be answered in order")
            if st.break_pending:
                raise AnswerError(409, "a break is pending")
            first, shown, n_shown = self._shown.get((reader_id, pos), (None, None, 0))
            rt = None if shown is None else (now_ns - int(shown)) / 1e6
            db.execute("INSERT INTO responses (reader_id, position, choice, confidence, shown_ns, answered_ns, rt_ms, "
                       "zoom, dpr) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                       (reader_id, pos, choice, confidence, shown, now_ns, rt, zoom, dpr))
            db.execute("UPDATE trials SET first_shown_ns = ?, last_shown_ns = ?, n_shown = ? "
                       "WHERE reader_id = ? AND position = ?", (first, shown, n_shown, reader_id, pos))
            self.append_log(db, "answer", reader_id,
                            {"position": pos, "trial": trial_token, "choice": choice, "confidence": confidence,
                             "rt_ms": rt}, now_ns)
        with self._lock:
            self._shown.pop((reader_id, pos), None)
        return pos

    def view_file(self, token: str, view: str) -> str:
        """The image file behind a view token of the reader's *current* trial (404 otherwise)."""
        reader_id = self.reader_for_token(token)
        cur = self.current_trial(reader_id)
        if cur is None or not view or view not in (cur.left_view, cur.right_view):
            raise AnswerError(404, "not found")
        col = "left_image" if view == cur.left_view else "right_image"
        rows = self.query(f"SELECT i.file FROM trials t JOIN images i ON i.image_id = t.{col} "
                          "WHERE t.reader_id = ? AND t.position = ?", (reader_id, cur.position))
        return str(rows[0]["file"])

    # -- analysis ----------------------------------------------------------------------------
    def reads(self) -> list[dict[str, Any]]:
        """Every answered trial joined with its key, in (reader, position) order."""
        rows = self.query(
            "SELECT t.reader_id, t.position, t.kind, t.item, t.block, t.real_side, t.truth, t.repeat_of, "
            "t.left_image, t.right_image, r.choice, r.confidence, r.rt_ms, r.answered_ns, t.n_shown, r.zoom, r.dpr "
            "FROM responses r JOIN trials t ON t.reader_id = r.reader_id AND t.position = r.position "
            "ORDER BY t.reader_id, t.position")
        return [dict(r) for r in rows]

    def readers(self) -> list[tuple[str, str]]:
        """``(reader_id, token)`` of every reader, sorted by id."""
        return [(str(r["reader_id"]), str(r["token"])) for r in
                self.query("SELECT reader_id, token FROM readers ORDER BY reader_id")]

    def verify_chain(self) -> tuple[bool, int, int | None]:
        """Check the audit log's hash chain.

        Returns:
            ``(ok, n_entries, first_bad_seq)``.
        """
        prev = GENESIS_HASH
        rows = self.query("SELECT * FROM audit_log ORDER BY seq")
        for k, r in enumerate(rows, start=1):
            h = _entry_hash(prev, int(r["seq"]), int(r["time_ns"]), str(r["event"]), r["reader_id"], str(r["payload"]))
            if r["seq"] != k or r["prev_hash"] != prev or r["hash"] != h:
                return False, len(rows), int(r["seq"])
            prev = h
        # every stored answer must have its log entry
        n_answers = self.query("SELECT COUNT(*) AS n FROM responses")[0]["n"]
        n_logged = self.query("SELECT COUNT(*) AS n FROM audit_log WHERE event = 'answer'")[0]["n"]
        if n_answers != n_logged:
            return False, len(rows), None
        return True, len(rows), None
