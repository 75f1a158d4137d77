"""Provenance of the shipped default: the docs and the config comment agree with its model card, and the
card's commands train the number of steps the card records. The numbers are read from
``ivus_sim/weights/model.json`` (replacing the weights must update the docs, not this test)."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CARD_PATH = ROOT / "ivus_sim" / "weights" / "model.json"
pytestmark = pytest.mark.skipif(not CARD_PATH.is_file(), reason="no embedded default in this checkout")

STEPS = re.compile(r"(\d[\d,]*)\s*(?:\*\*)?\s*(?:optimi[sz]ation\s+|training\s+)?steps\b")
MINUTES = re.compile(r"(\d+(?:\.\d+)?)\s*min\b")


def _card() -> dict:
    return json.loads(CARD_PATH.read_text())


def _claims(lines: list[str]) -> list[int]:
    return [int(m.replace(",", "")) for ln in lines for m in STEPS.findall(ln)]


def test_training_doc_states_the_cards_step_count() -> None:
    text = (ROOT / "docs" / "training.md").read_text()
    section = text.split("## The shipped default", 1)[1].split("\n## ", 1)[0]
    first = section.split(". ")[0]  # "was trained for **N steps**"
    assert _claims([first]) == [_card()["steps"]], first


def test_readme_states_the_cards_step_count_and_time() -> None:
    card = _card()
    lines = [ln for ln in (ROOT / "README.md").read_text().splitlines()  # prose (table rows compare other runs)
             if not ln.lstrip().startswith("|") and re.search(r"shipped (model|default)|embedded default", ln)
             and STEPS.search(ln)]
    assert lines, "README should say how many steps the shipped model was trained"
    assert set(_claims(lines)) == {card["steps"]}, lines
    wall = card.get("training_resources", {}).get("train", {}).get("wall_s")
    for ln in lines:
        for m in MINUTES.findall(ln):
            assert wall is not None and abs(float(m) - wall / 60) <= 1.0, (ln, wall)


def test_config_comment_agrees_with_the_card() -> None:
    card = _card()
    path = ROOT / "configs" / "train" / f"{card['name']}.yaml"
    comments = [ln for ln in path.read_text().splitlines() if ln.lstrip().startswith("#") or " # " in ln]
    claims = _claims([ln.split("#", 1)[1] for ln in comments])
    assert all(c == card["steps"] for c in claims), (claims, card["steps"])


def test_cards_commands_train_the_cards_steps() -> None:
    """The card's train command, run with the code its commands check out, stops at the card's step count."""
    card = _card()
    t = card["train_config"]["train"]
    commands = card["commands"]
    train = next(c for c in commands if " train " in f" {c} ")
    seed = card.get("seed", card.get("training", {}).get("seed"))
    assert f"--config {card['name']}" in train and f"--seed {seed}" in train
    if "epochs" in t:  # trained by a trainer that capped runs at epochs x batches: the commit must be pinned
        assert commands[0].startswith("git checkout "), commands
        n_pairs = card.get("corpus", {}).get("n") or card["training"]["trainer_card"]["training_data"]["n_pairs"]
        per_epoch = math.ceil(n_pairs / t["batch_size"])
        expected = min(t["epochs"] * per_epoch, t["max_steps"] or 10**12)
    else:
        expected = t["max_steps"]
    assert card["steps"] == expected, (card["steps"], expected)
