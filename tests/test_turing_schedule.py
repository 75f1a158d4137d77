"""Schedules are balanced, reproducible, reader-specific; catch trials are placed correctly; pairing."""

from __future__ import annotations

from pathlib import Path

import pytest

from ivus_sim.errors import IvusSimError
from ivus_sim.turing.pairing import PairingMode, case_key, make_pairs
from ivus_sim.turing.schedule import CatchItems, Side, TrialKind, make_schedule

PAIRS = [(i, 100 + i) for i in range(40)]
CATCH = CatchItems(obvious=((200, 300), (201, 301), (202, 302), (203, 303)), real_real=((204, 205), (206, 207)),
                   n_repeats=5)


@pytest.mark.parametrize("n_pairs", [2, 7, 40])
@pytest.mark.parametrize("reader", ["R01", "R02", "alice"])
def test_real_left_in_exactly_half_of_main_trials(n_pairs: int, reader: str) -> None:
    sched = make_schedule(PAIRS[:n_pairs], reader, seed=3)
    main = [t for t in sched if t.kind is TrialKind.MAIN]
    n_left = sum(t.real_side is Side.LEFT for t in main)
    assert len(main) == n_pairs
    assert n_left in (n_pairs // 2, (n_pairs + 1) // 2)
    if n_pairs % 2 == 0:
        assert n_left == n_pairs // 2
    # every pair exactly once, images on the announced sides
    assert sorted(t.item for t in main) == list(range(n_pairs))
    for t in main:
        real, fake = PAIRS[t.item]
        assert (t.left, t.right) == ((real, fake) if t.real_side is Side.LEFT else (fake, real))


def test_reproducible_and_reader_specific() -> None:
    a = make_schedule(PAIRS, "R01", seed=11, catch=CATCH, block_size=7)
    b = make_schedule(PAIRS, "R01", seed=11, catch=CATCH, block_size=7)
    c = make_schedule(PAIRS, "R02", seed=11, catch=CATCH, block_size=7)
    d = make_schedule(PAIRS, "R01", seed=12, catch=CATCH, block_size=7)
    assert a == b
    assert [(t.item, t.kind) for t in a] != [(t.item, t.kind) for t in c]
    assert [(t.item, t.kind) for t in a] != [(t.item, t.kind) for t in d]
    # different readers do not all share the same side pattern either
    assert [t.real_side for t in a if t.kind is TrialKind.MAIN] != [t.real_side for t in c if t.kind is TrialKind.MAIN]


def test_catch_trials() -> None:
    sched = make_schedule(PAIRS, "R03", seed=5, catch=CATCH, block_size=10)
    kinds = [t.kind for t in sched]
    assert kinds.count(TrialKind.OBVIOUS) == 4 and kinds.count(TrialKind.REAL_REAL) == 2
    assert kinds.count(TrialKind.REPEAT) == 5
    assert len(sched) == 40 + 4 + 2 + 5
    assert [t.position for t in sched] == list(range(len(sched)))
    assert all(t.block == t.position // 10 for t in sched)
    obvious = [t for t in sched if t.kind is TrialKind.OBVIOUS]
    assert sum(t.real_side is Side.LEFT for t in obvious) == 2  # balanced too
    assert all(t.real_side is None for t in sched if t.kind is TrialKind.REAL_REAL)
    repeated = set()
    for t in sched:
        if t.kind is not TrialKind.REPEAT:
            continue
        orig = sched[t.repeat_of]
        assert orig.kind is TrialKind.MAIN and orig.item == t.item
        assert (t.left, t.right) == (orig.right, orig.left)  # same pair, sides swapped
        assert t.real_side is orig.real_side.other
        assert t.position - orig.position >= 10 + 1  # at least the gap later
        repeated.add(t.item)
    assert len(repeated) == 5


def test_case_key_and_name_matching(tmp_path: Path) -> None:
    assert case_key("real_p003_f012.png") == case_key("sim-P003-f012.PNG") == "p003_f012"
    real = [tmp_path / f"real_p{i}_f1.png" for i in range(5)]
    fake = [tmp_path / f"simulated_p{i}_f1.png" for i in range(5)] + [tmp_path / "sim_other.png"]
    pairs = make_pairs([*real, tmp_path / "real_extra.png"], fake, mode=PairingMode.AUTO, seed=0)
    by_fake = {p.fake.name: p for p in pairs}
    for i in range(5):
        p = by_fake[f"simulated_p{i}_f1.png"]
        assert p.matched_by == "name" and p.real.name == f"real_p{i}_f1.png"
    assert by_fake["sim_other.png"].matched_by == "random"
    assert by_fake["sim_other.png"].real.name == "real_extra.png"
    with pytest.raises(IvusSimError, match="no uniquely matching"):
        make_pairs(real, fake, mode=PairingMode.NAME)
    rand = make_pairs(real, fake[:5], mode=PairingMode.RANDOM, seed=1)
    assert all(p.matched_by == "random" for p in rand)
    assert len({p.real for p in rand}) == 5  # no real image used twice
    sub = make_pairs(real, fake[:5], n_pairs=3, seed=1)
    assert len(sub) == 3 and sub == make_pairs(real, fake[:5], n_pairs=3, seed=1)
    with pytest.raises(IvusSimError, match="more pairs than available"):
        make_pairs(real, fake[:5], n_pairs=6)


def test_no_image_is_shown_with_two_partners(tmp_path: Path) -> None:
    """Catch trials must not leak: an image seen beside two different partners must be real.

    Real-vs-real and obvious-fake catch trials draw only from real images never used in a main
    pair, so across a reader's whole schedule (main, catch, repeated pairs) every image has
    exactly one partner.
    """
    import sqlite3

    from ivus_sim.turing.demo import make_demo_images
    from ivus_sim.turing.study import StudyConfig, build_study

    make_demo_images(tmp_path / "real", 21, size=24, stream="real", prefix="real")
    make_demo_images(tmp_path / "fake", 12, size=24, stream="fake", prefix="sim")
    build_study(tmp_path / "real", tmp_path / "fake", tmp_path / "study",
                StudyConfig(n_readers=3, size=24, seed=2, n_catch=3), progress=False)
    db = sqlite3.connect(tmp_path / "study" / "study.sqlite")
    trials = db.execute("SELECT reader_id, kind, left_image, right_image FROM trials").fetchall()
    main_images = {i for r in db.execute("SELECT real_image, fake_image FROM pairs") for i in r}
    db.close()
    assert {k for _, k, _, _ in trials} >= {"main", "obvious", "real_real", "repeat"}
    for reader in ("R01", "R02", "R03"):
        partners: dict[int, set[int]] = {}
        for rid, kind, a, b in trials:
            if rid == reader and kind != "practice":
                partners.setdefault(a, set()).add(b)
                partners.setdefault(b, set()).add(a)
        assert all(len(p) == 1 for p in partners.values()), {i: p for i, p in partners.items() if len(p) > 1}
    catch_images = {i for rid, k, a, b in trials if k in ("obvious", "real_real") for i in (a, b)}
    assert not catch_images & main_images
    # too few spare real images is an error, not a silent reuse of main-pair images
    with pytest.raises(IvusSimError, match="not used in main pairs"):
        build_study(tmp_path / "real", tmp_path / "fake", tmp_path / "study2",
                    StudyConfig(n_readers=1, size=24, seed=2, n_catch=4), progress=False)
