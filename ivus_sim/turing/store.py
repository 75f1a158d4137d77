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
reordering any past entry breaks the chain.

Integrity model (what :meth:`Store.verify_integrity` checks; docs/reader-study.md section 5):

* **the answer key** - the ``build`` entry's payload carries SHA-256 digests of canonical JSON
  rows of the key: every ``trials`` row of each reader (all columns except the display
  bookkeeping ``first_shown_ns``, ``last_shown_ns``, ``n_shown``), ``pairs``, ``images`` and the
  build facts in ``meta`` (config, leakage audit, forced flag). A reader added later is
  declared by a ``reader_key`` entry (:meth:`Store.log_reader_key`). Editing
  ``trials.real_side`` (or any key column) no longer matches its digest.
* **the answers** - every ``answer`` entry carries the complete ``responses`` row as stored
  (canonical JSON, all columns); every stored row must equal its entry and every entry must
  have its row, so flipping, inserting or deleting an answer is detected.
* **the anchor** - the chain head after every committed transaction is appended (``seq hash``,
  fsync'd) to ``chain-anchor.log`` beside the database: a file outside SQLite, so a chain
  rewritten consistently inside the database (new hashes from the edited entry on) or cut
  short (the last answer deleted with its entry) no longer matches it. The head is also
  printed by ``turing build`` and ``turing analyze`` and exported with the results: a head
  kept elsewhere (``turing analyze --anchor HASH``) protects even against someone who can
  rewrite both files. A crash between the database commit and the anchor write leaves the
  entries of that one transaction unanchored (one transaction's entries share one ``time_ns``):
  as the chain's tail they are reported, not failed; the next writer (e.g. the restarted server)
  appends them to the anchor marked ``recovered`` before it writes anything else
  (:meth:`Store.recover_anchor`), and they stay reported as recovered. Any other unanchored entry
  is a failure.
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

__all__ = ["AnswerError", "ReaderState", "TrialRow", "Store", "Integrity", "GENESIS_HASH", "DB_NAME", "ANCHOR_NAME",
           "canonical"]

DB_NAME = "study.sqlite"
ANCHOR_NAME = "chain-anchor.log"
GENESIS_HASH = "0" * 64
#: trials columns that change while a study runs (display bookkeeping): not part of the key digest
MUTABLE_TRIAL_COLUMNS = frozenset({"first_shown_ns", "last_shown_ns", "n_shown"})
#: meta keys written at build time that belong to the key digest
KEY_META = ("study_id", "seed", "block_size", "config", "leakage_audit", "audit_forced", "schedule_plan",
            "consent_text", "debrief_text")

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


def canonical(value: Any) -> str:
    """The canonical JSON text of a row/record (sorted keys, no spaces) that digests are taken of."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False)


def _digest(rows: Any) -> str:
    return hashlib.sha256(canonical(rows).encode()).hexdigest()


@dataclass
class Integrity:
    """The result of :meth:`Store.verify_integrity`.

    Attributes:
        ok: nothing failed (``problems`` empty).
        problems: one line per failed check (the first is what ``turing analyze`` prints).
        warnings: findings that do not fail the check (an unanchored last entry after a crash).
        n_entries: entries in the chain. head_seq / head_hash: the last entry.
        anchor_file: the anchor file checked (``None`` when absent). anchored: entries matched
            against the anchor file. external_anchor: the head given by the caller, if any.
    """

    ok: bool
    problems: list[str]
    warnings: list[str]
    n_entries: int
    head_seq: int
    head_hash: str
    anchor_file: str | None
    anchored: int
    external_anchor: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "problems": list(self.problems), "warnings": list(self.warnings),
                "n_entries": self.n_entries, "head_seq": self.head_seq, "head_hash": self.head_hash,
                "anchor_file": self.anchor_file, "anchored_entries": self.anchored,
                "external_anchor": self.external_anchor}


def _span(seqs: list[int]) -> str:
    return str(seqs[0]) if len(seqs) == 1 else f"{min(seqs)}-{max(seqs)}"


def _walk_chain(log: list[dict[str, Any]]) -> tuple[dict[int, str], int | None]:
    """Recompute the hash chain of audit-log rows: ``({seq: hash} of the intact prefix, first bad seq or None)``."""
    prev = GENESIS_HASH
    hashes: dict[int, str] = {}
    for k, r in enumerate(log, start=1):
        h = _entry_hash(prev, int(r["seq"]), int(r["time_ns"]), str(r["event"]), r["reader_id"], str(r["payload"]))
        if r["seq"] != k or r["prev_hash"] != prev or r["hash"] != h:
            return hashes, int(r["seq"])
        hashes[k] = h
        prev = h
    return hashes, None


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
        self.anchor_path = self.path.parent / ANCHOR_NAME
        self._pending: list[tuple[int, str]] = []  # chain heads of the open transaction (anchored on commit)
        self._first_bad: int | None = None
        self._pending_time: int | None = None  # time_ns of the open transaction's entries
        self._recovered = False  # recover_anchor() ran (once, before this instance's first write)
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
            if not self._recovered:
                self.recover_anchor()
            self._db.execute("BEGIN IMMEDIATE")
            self._pending = []
            self._pending_time = None
            try:
                yield self._db
            except BaseException:
                self._pending = []
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
            pending, self._pending = self._pending, []
            if pending:
                self._anchor(pending)

    def _highest_anchored(self) -> int:
        """The highest ``seq`` in the anchor file (0 when there is none or it is empty)."""
        if not self.anchor_path.is_file():
            return 0
        top = 0
        for line in self.anchor_path.read_text().splitlines():
            parts = line.split()
            if parts and parts[0].isdigit():
                top = max(top, int(parts[0]))
        return top

    def recover_anchor(self) -> list[int]:
        """Anchor the chain's tail committed just before a crash (before this writer's first write).

        A ``SIGKILL`` between a transaction's ``COMMIT`` and its anchor write leaves that
        transaction's entries in the database but not in ``chain-anchor.log``. They are appended,
        marked ``recovered``, only if they are the chain's tail after the highest anchored entry and
        the chain through them is intact; anything else is left for :meth:`verify_integrity` to
        report. Only studies that already have an anchor file are touched.

        Returns:
            The recovered ``seq`` numbers (empty when nothing was missing).
        """
        with self._lock:
            self._recovered = True
            if not self.anchor_path.is_file():
                return []
            top = self._highest_anchored()
            log = self._rows(self._db, "SELECT * FROM audit_log ORDER BY seq")
            if _walk_chain(log)[1] is not None:
                return []  # a broken chain is never blessed: verify_integrity reports it
            tail = [(int(r["seq"]), str(r["hash"])) for r in log if int(r["seq"]) > top]
            if tail and any(r["time_ns"] != log[-1]["time_ns"] for r in log[top:]):
                return []  # more than the last transaction is unanchored: not a crash, leave it to verify
            if tail:
                self._anchor(tail, note="recovered")
            return [seq for seq, _ in tail]

    def _anchor(self, heads: list[tuple[int, str]], note: str = "") -> None:
        """Append committed chain heads to the anchor file (one ``seq hash`` line each, fsync'd)."""
        import os

        suffix = f" {note}" if note else ""
        data = "".join(f"{seq} {h}{suffix}\n" for seq, h in heads).encode()
        fd = os.open(self.anchor_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)

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
        """Append one hash-chained entry inside the caller's transaction; returns its hash.

        All entries of one transaction carry the same ``time_ns`` (the transaction's time): that is
        how :meth:`verify_integrity` knows which unanchored tail one crashed transaction can leave.
        """
        if self._pending_time is not None and time_ns != self._pending_time:
            raise ValueError("all audit-log entries of one transaction must carry the same time_ns")
        self._pending_time = time_ns
        last = db.execute("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1").fetchone()
        seq, prev = (last["seq"] + 1, last["hash"]) if last else (1, GENESIS_HASH)
        text = json.dumps(payload, sort_keys=True, separators=(",", ":"))
        h = _entry_hash(prev, seq, time_ns, event, reader_id, text)
        db.execute("INSERT INTO audit_log VALUES (?, ?, ?, ?, ?, ?, ?)",
                   (seq, time_ns, event, reader_id, text, prev, h))
        self._pending.append((int(seq), h))
        return h

    # -- integrity: digests of the key, answer rows ---------------------------------------------
    @staticmethod
    def _rows(db: sqlite3.Connection, sql: str, args: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        cur = db.execute(sql, args)
        names = [d[0] for d in cur.description]
        return [dict(zip(names, tuple(r), strict=True)) for r in cur.fetchall()]

    def reader_key_digest(self, db: sqlite3.Connection, reader_id: str) -> str:
        """SHA-256 of the canonical key rows of one reader (their trials minus display bookkeeping)."""
        rows = self._rows(db, "SELECT * FROM trials WHERE reader_id = ? ORDER BY position", (reader_id,))
        return _digest([{k: v for k, v in r.items() if k not in MUTABLE_TRIAL_COLUMNS} for r in rows])

    def study_key_digest(self, db: sqlite3.Connection) -> str:
        """SHA-256 of the canonical study-level key: pairs, images and the build facts in meta."""
        meta = {r["key"]: r["value"] for r in self._rows(db, "SELECT key, value FROM meta") if r["key"] in KEY_META}
        return _digest([self._rows(db, "SELECT * FROM pairs ORDER BY pair_id"),
                        self._rows(db, "SELECT * FROM images ORDER BY image_id"), meta])

    def key_digests(self, db: sqlite3.Connection) -> dict[str, Any]:
        """``{"study": digest, "readers": {reader_id: digest}}`` of the current key (the build payload)."""
        rids = [str(r[0]) for r in db.execute("SELECT DISTINCT reader_id FROM trials ORDER BY reader_id")]
        return {"study": self.study_key_digest(db), "readers": {rid: self.reader_key_digest(db, rid) for rid in rids}}

    def log_key(self, db: sqlite3.Connection, time_ns: int, reader_id: str | None = None) -> str:
        """Declare (chain) the key of a reader added after the build, or the study key if ``reader_id`` is None.

        Call inside the transaction that wrote the key rows. Declaring a key for a reader who
        has already answered (or the study key once anyone has answered) fails verification.
        """
        payload: dict[str, Any] = ({"study": self.study_key_digest(db)} if reader_id is None
                                   else {"readers": {reader_id: self.reader_key_digest(db, reader_id)}})
        return self.append_log(db, "key", reader_id, payload, time_ns)

    def log_answer(self, db: sqlite3.Connection, reader_id: str, position: int, time_ns: int,
                   extra: dict[str, Any] | None = None) -> str:
        """Chain the stored ``responses`` row of ``(reader_id, position)`` (call after inserting it)."""
        rows = self._rows(db, "SELECT * FROM responses WHERE reader_id = ? AND position = ?", (reader_id, position))
        payload = {"position": position, **(extra or {}), "row": rows[0]}
        return self.append_log(db, "answer", reader_id, payload, time_ns)

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
            self.log_answer(db, reader_id, pos, now_ns, {"trial": trial_token})
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
        """Short form of :meth:`verify_integrity`: ``(ok, n_entries, first_bad_seq or None)``."""
        res = self.verify_integrity()
        return res.ok, res.n_entries, self._first_bad

    def verify_integrity(self, anchor: str | None = None, *, require_anchor_file: bool = True) -> Integrity:
        """Verify the chain, the answer key, every stored answer and the anchor(s).

        Args:
            anchor: a chain head kept outside the study (printed by ``turing build`` or a previous
                ``turing analyze``); it must be the hash of one of the chain's entries.
            require_anchor_file: a missing anchor file is a problem (unless ``anchor`` is given).

        Returns:
            :class:`Integrity` (``ok`` False with one line per problem when anything fails).
        """
        problems: list[str] = []
        warnings: list[str] = []
        self._first_bad = None
        with self._lock:
            db = self._db
            log = self._rows(db, "SELECT * FROM audit_log ORDER BY seq")
            # 1. the chain itself
            hashes, self._first_bad = _walk_chain(log)
            if self._first_bad is not None:
                problems.append(f"audit log entry {self._first_bad} does not match the hash chain (edited, inserted "
                                "or deleted entries)")
            # 2. the key: declared digests (build entry, later key entries) against the tables now
            declared_study: str | None = None
            declared: dict[str, str] = {}
            answered: set[str] = set()
            logged: dict[tuple[str, int], dict[str, Any]] = {}
            for r in log:
                try:
                    payload = json.loads(r["payload"])
                except ValueError:
                    problems.append(f"audit log entry {r['seq']} has an unreadable payload")
                    continue
                if r["event"] in ("build", "key"):
                    key = payload.get("key", payload) if r["event"] == "build" else payload
                    if "study" in key:
                        if answered and r["event"] == "key":
                            problems.append(f"the study key was re-declared after answers (entry {r['seq']})")
                        declared_study = str(key["study"])
                    for rid, dg in dict(key.get("readers", {})).items():
                        if rid in answered:
                            problems.append(f"the key of reader {rid} was re-declared after their answers "
                                            f"(entry {r['seq']})")
                        declared[str(rid)] = str(dg)
                elif r["event"] == "answer":
                    rid = str(r["reader_id"])
                    answered.add(rid)
                    pos = int(payload.get("position", -1))
                    if (rid, pos) in logged:
                        problems.append(f"answer of reader {rid} at trial {pos} is logged twice")
                    logged[(rid, pos)] = payload.get("row") or {}
            if declared_study is None:
                problems.append("the audit log declares no answer key (no build entry with key digests)")
            elif declared_study != self.study_key_digest(db):
                problems.append("the study key (pairs, images or build facts) differs from the one chained at build")
            current = {str(r[0]) for r in db.execute("SELECT DISTINCT reader_id FROM trials")}
            for rid in sorted(current | set(declared)):
                if rid not in declared:
                    problems.append(f"reader {rid} has trials that were never declared in the audit log")
                elif rid not in current:
                    problems.append(f"the trials of reader {rid} were deleted")
                elif declared[rid] != self.reader_key_digest(db, rid):
                    problems.append(f"the answer key (trials) of reader {rid} differs from the one chained at build")
            # 3. every stored answer equals its chained row, and vice versa
            stored = {(str(r["reader_id"]), int(r["position"])): r
                      for r in self._rows(db, "SELECT * FROM responses ORDER BY reader_id, position")}
            for key in sorted(set(stored) | set(logged)):
                if key not in logged:
                    problems.append(f"stored answer of reader {key[0]} at trial {key[1]} is not in the audit log")
                elif key not in stored:
                    problems.append(f"logged answer of reader {key[0]} at trial {key[1]} is missing from the "
                                    "responses (deleted)")
                elif canonical(stored[key]) != canonical(logged[key]):
                    problems.append(f"stored answer of reader {key[0]} at trial {key[1]} differs from the chained "
                                    "record (edited)")
        # 4. the anchor file outside the database
        n = len(log)
        head_seq, head_hash = (int(log[-1]["seq"]), str(log[-1]["hash"])) if log else (0, GENESIS_HASH)
        anchored = 0
        anchor_file: str | None = None
        if self.anchor_path.is_file():
            anchor_file = str(self.anchor_path)
            seen: set[int] = set()
            recovered: list[int] = []
            for line_no, line in enumerate(self.anchor_path.read_text().splitlines(), start=1):
                parts = line.split()
                if not parts:
                    continue
                if len(parts) == 3 and parts[2] == "recovered" and parts[0].isdigit():
                    recovered.append(int(parts[0]))
                    parts = parts[:2]
                if len(parts) != 2 or not parts[0].isdigit():
                    problems.append(f"{ANCHOR_NAME} line {line_no} is malformed")
                    continue
                seq, h = int(parts[0]), parts[1]
                if seq > n:
                    problems.append(f"the audit log ends at entry {n} but {ANCHOR_NAME} records entry {seq} "
                                    "(entries deleted)")
                    break
                if hashes.get(seq, log[seq - 1]["hash"] if 0 < seq <= n else None) != h:
                    problems.append(f"audit log entry {seq} differs from {ANCHOR_NAME} (the chain was rewritten)")
                    break
                seen.add(seq)
            anchored = len(seen)
            if recovered:
                warnings.append(f"audit log entries {_span(recovered)} were committed just before a crash and "
                                f"anchored at restart (marked recovered in {ANCHOR_NAME})")
            missing = [s for s in range(1, n + 1) if s not in seen]
            last_txn = {s for s in range(1, n + 1) if log[s - 1]["time_ns"] == log[-1]["time_ns"]} if log else set()
            if missing and set(missing) <= last_txn and missing == list(range(missing[0], n + 1)):
                warnings.append(f"the last audit log entries ({_span(missing)}) are not in {ANCHOR_NAME} (a crash "
                                "between commit and anchor write?)")
            elif missing:
                problems.append(f"{len(missing)} audit log entries are not in {ANCHOR_NAME} (first: {missing[0]})")
        elif require_anchor_file and anchor is None:
            problems.append(f"no {ANCHOR_NAME} next to the database; pass the chain head printed at build "
                            "(--anchor) to verify")
        # 5. an externally kept head
        if anchor is not None and anchor.strip().lower() not in {str(r["hash"]) for r in log}:
            problems.append("the given anchor is not a head of this study's audit log (rewritten or another study)")
        return Integrity(not problems, problems, warnings, n, head_seq, head_hash, anchor_file, anchored,
                         anchor)
