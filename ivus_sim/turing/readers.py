"""Reader management: list readers, add readers, revoke (and re-issue) a reader's link.

Every link a reader was ever given is kept in the ``reader_links`` table (reader, serial,
token, issued/revoked time, reason); ``readers.token`` holds the reader's *active* link.

* **revoke** (a link leaked, or a reader withdraws): the active link stops working at once,
  also on a running server (every request looks the link up): it gets ``403``. The reader's
  answers stay in the study, **flagged**: each answer given while a link that is now revoked
  was active has ``link_revoked = 1`` in :func:`revoked_answers` / the analysis' reads (a link
  records the reader's answer count when it was issued and when it was revoked; answers are
  stored in schedule order, so the positions in between are exactly its answers). With
  ``reissue`` the same reader gets a fresh link that continues their schedule where they
  stopped; without it the reader has no working link (``readers.token`` is replaced by an
  unissued secret).
* **add**: a new reader with a schedule drawn exactly as the build draws it (from the stored
  :class:`ivus_sim.turing.modes.StudyPlan` and the new reader id).

Each change is a hash-chained audit-log entry (``reader_added``, ``link_revoked``,
``link_issued``; the log stores a SHA-256 of the link, never the link itself).
The table is created on first use, so studies built before it existed work too.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from ivus_sim.errors import IvusSimError
from ivus_sim.turing.modes import PLAN_META, insert_reader, load_plan
from ivus_sim.turing.store import DB_NAME, Store

__all__ = ["ReaderInfo", "ensure_links", "link_status", "list_readers", "add_readers", "revoke_reader",
           "revoked_answers", "READER_ID"]

#: reader ids: letters, digits, ``_``, ``-``, ``.`` (1-64 characters; they appear in file exports)
READER_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")

_LINKS_SCHEMA = """
CREATE TABLE IF NOT EXISTS reader_links (
    reader_id TEXT NOT NULL REFERENCES readers, serial INTEGER NOT NULL, token TEXT NOT NULL UNIQUE,
    issued_ns INTEGER NOT NULL, revoked_ns INTEGER, reason TEXT,
    first_answer INTEGER NOT NULL DEFAULT 0, end_answer INTEGER, PRIMARY KEY (reader_id, serial))
"""


@dataclass(frozen=True)
class ReaderInfo:
    """One line of ``turing readers list``."""

    reader_id: str
    status: str  # "active" | "revoked"
    token: str | None  # the active link token (None when revoked)
    n_links: int
    n_revoked_links: int
    n_answered: int
    n_trials: int


def _link_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()[:16]


def ensure_links(store: Store) -> None:
    """Create ``reader_links`` if missing and record each reader's first link (idempotent)."""
    with store.transaction() as db:
        _ensure(db)


def _ensure(db: sqlite3.Connection) -> None:
    db.execute(_LINKS_SCHEMA)
    # the reader pages look up per-reader events (consent, zoom, feedback) in the audit log
    db.execute("CREATE INDEX IF NOT EXISTS audit_log_reader_event ON audit_log (reader_id, event)")
    db.execute("INSERT INTO reader_links (reader_id, serial, token, issued_ns) "
               "SELECT r.reader_id, 1, r.token, 0 FROM readers r "
               "WHERE NOT EXISTS (SELECT 1 FROM reader_links l WHERE l.reader_id = r.reader_id)")


def link_status(store: Store, token: str) -> tuple[str, str | None]:
    """``("active", reader_id)``, ``("revoked", reader_id)`` or ``("unknown", None)`` for a link token."""
    rows = store.query("SELECT reader_id FROM readers WHERE token = ?", (token,))
    if rows:
        rid = str(rows[0]["reader_id"])
        revoked = store.query("SELECT 1 FROM reader_links WHERE token = ? AND revoked_ns IS NOT NULL", (token,)) \
            if _has_links(store) else []
        return ("revoked", rid) if revoked else ("active", rid)
    if _has_links(store):
        rows = store.query("SELECT reader_id FROM reader_links WHERE token = ?", (token,))
        if rows:
            return "revoked", str(rows[0]["reader_id"])
    return "unknown", None


def _has_links(store: Store) -> bool:
    return bool(store.query("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'reader_links'"))


def list_readers(study: str | Path) -> list[ReaderInfo]:
    """Every reader of the study with its link status and progress."""
    with Store(Path(study) / DB_NAME) as store:
        ensure_links(store)
        out = []
        for r in store.query(
                "SELECT r.reader_id, r.token, "
                "(SELECT COUNT(*) FROM trials t WHERE t.reader_id = r.reader_id) AS n_trials, "
                "(SELECT COUNT(*) FROM responses a WHERE a.reader_id = r.reader_id) AS n_answered, "
                "(SELECT COUNT(*) FROM reader_links l WHERE l.reader_id = r.reader_id) AS n_links, "
                "(SELECT COUNT(*) FROM reader_links l WHERE l.reader_id = r.reader_id AND l.revoked_ns IS NOT NULL) "
                "AS n_revoked, "
                "(SELECT COUNT(*) FROM reader_links l WHERE l.token = r.token AND l.revoked_ns IS NULL) AS active "
                "FROM readers r ORDER BY r.reader_id"):
            active = bool(r["active"])
            out.append(ReaderInfo(str(r["reader_id"]), "active" if active else "revoked",
                                  str(r["token"]) if active else None, int(r["n_links"]), int(r["n_revoked"]),
                                  int(r["n_answered"]), int(r["n_trials"])))
        return out


def add_readers(study: str | Path, reader_ids: list[str]) -> dict[str, str]:
    """Add new readers with their schedules; returns ``reader id -> link token``.

    Raises:
        IvusSimError: a malformed or existing id, or a study without a stored plan.
    """
    if not reader_ids:
        raise IvusSimError("give at least one reader id")
    if len(set(reader_ids)) != len(reader_ids):
        raise IvusSimError("reader ids must be unique")
    for rid in reader_ids:
        if not READER_ID.match(rid):
            raise IvusSimError(f"reader id {rid!r} must be 1-64 letters, digits, '_', '-' or '.' "
                               "(starting with a letter or digit)")
    with Store(Path(study) / DB_NAME) as store:
        plan = load_plan(store.meta(PLAN_META))
        now = time.time_ns()
        out: dict[str, str] = {}
        with store.transaction() as db:
            _ensure(db)
            existing = {str(r[0]) for r in db.execute("SELECT reader_id FROM readers")}
            clash = [r for r in reader_ids if r in existing]
            if clash:
                raise IvusSimError(f"reader {clash[0]} exists already (to give a reader a new link use "
                                   "`turing readers revoke --reissue`)")
            for rid in reader_ids:
                token, n = insert_reader(db, rid, plan)
                db.execute("INSERT INTO reader_links (reader_id, serial, token, issued_ns) VALUES (?, 1, ?, ?)",
                           (rid, token, now))
                store.append_log(db, "reader_added", rid, {"n_trials": n, "link": _link_hash(token)}, now)
                log_key = getattr(store, "log_key", None)
                if log_key is not None:  # chain the answer-key digest of the new reader's trials
                    log_key(db, now, rid)
                out[rid] = token
        return out


def revoke_reader(study: str | Path, reader_id: str, *, reissue: bool = False, reason: str = "") -> str | None:
    """Revoke the active link of ``reader_id``; with ``reissue`` give the reader a new one.

    Returns:
        The new link token (``reissue``), else ``None``.

    Raises:
        IvusSimError: unknown reader, or (without ``reissue``) a reader with no active link.
    """
    with Store(Path(study) / DB_NAME) as store:
        now = time.time_ns()
        with store.transaction() as db:
            _ensure(db)
            row = db.execute("SELECT token FROM readers WHERE reader_id = ?", (reader_id,)).fetchone()
            if row is None:
                raise IvusSimError(f"unknown reader id {reader_id!r}")
            link = db.execute("SELECT serial, revoked_ns FROM reader_links WHERE token = ?",
                              (row["token"],)).fetchone()
            active = link is not None and link["revoked_ns"] is None
            if not active and not reissue:
                raise IvusSimError(f"reader {reader_id} has no active link (pass --reissue to give them a new one)")
            n_answered = int(db.execute("SELECT COUNT(*) FROM responses WHERE reader_id = ?",
                                        (reader_id,)).fetchone()[0])
            if active:
                db.execute("UPDATE reader_links SET revoked_ns = ?, reason = ?, end_answer = ? WHERE token = ?",
                           (now, reason or None, n_answered, row["token"]))
                store.append_log(db, "link_revoked", reader_id,
                                 {"serial": int(link["serial"]), "link": _link_hash(row["token"]), "reason": reason},
                                 now)
            if not reissue:
                # the readers row keeps an unissued secret: the revoked link no longer matches any reader
                db.execute("UPDATE readers SET token = ? WHERE reader_id = ?",
                           (f"revoked-{secrets.token_urlsafe(24)}", reader_id))
                return None
            serial = int(db.execute("SELECT COALESCE(MAX(serial), 0) FROM reader_links WHERE reader_id = ?",
                                    (reader_id,)).fetchone()[0]) + 1
            token = secrets.token_urlsafe(24)
            db.execute("UPDATE readers SET token = ? WHERE reader_id = ?", (token, reader_id))
            db.execute("INSERT INTO reader_links (reader_id, serial, token, issued_ns, first_answer) "
                       "VALUES (?, ?, ?, ?, ?)", (reader_id, serial, token, now, n_answered))
            store.append_log(db, "link_issued", reader_id, {"serial": serial, "link": _link_hash(token)}, now)
            return token


def revoked_answers(store: Store) -> set[tuple[str, int]]:
    """``(reader_id, position)`` of every answer given while a now-revoked link was the reader's active link."""
    if not _has_links(store):
        return set()
    rows = store.query(
        "SELECT a.reader_id, a.position FROM responses a JOIN reader_links l ON l.reader_id = a.reader_id "
        "WHERE l.revoked_ns IS NOT NULL AND a.position >= l.first_answer AND a.position < l.end_answer")
    return {(str(r["reader_id"]), int(r["position"])) for r in rows}
