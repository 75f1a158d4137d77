"""The README's promises: its commands exist with the options it shows, its tissue table is the
library's, CI runs its test command, and its first command runs the main job."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ivus_sim.cli.main import app
from ivus_sim.tissues import TISSUES

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
runner = CliRunner()


def _code_blocks(text: str) -> list[str]:
    return re.findall(r"```(?:bash|sh)?\n(.*?)```", text, flags=re.S)


def _readme_commands() -> list[str]:
    """Every `ivus-sim ...` invocation in the README's shell blocks and CLI table."""
    cmds: list[str] = []
    for block in _code_blocks(README):
        for line in block.replace("\\\n", " ").splitlines():
            for part in re.split(r"&&|;", line):
                part = part.split("#")[0].strip()
                m = re.search(r"(?:^|\s)(?:-m ivus_sim\.cli\.main|ivus-sim)\s+(.*)$", part)
                if m:
                    cmds.append(m.group(1))
    for cell in re.findall(r"^\| `ivus-sim ([^`]+)`", README, flags=re.M):
        cmds.append(cell)
    return cmds


def _command_path(args: list[str]) -> list[str]:
    path = []
    for a in args:
        if a.startswith("-") or "/" in a or "." in a or a.isupper():
            break
        path.append(a)
    return path


def test_readme_starts_with_the_two_commands():
    blocks = _code_blocks(README)
    assert "ivus-sim generate --phantom examples/calcified_plaque.png" in blocks[0]
    assert "pip install -c constraints.txt" in blocks[0]
    assert "pytest" in blocks[1] and '".[test]"' in blocks[1]
    assert (ROOT / "examples" / "calcified_plaque.png").exists()


def test_ci_runs_the_readme_test_command():
    test_cmd = _code_blocks(README)[1].strip().split("&& ", 2)[-1]  # after venv creation + activation
    assert test_cmd in (ROOT / ".ci" / "run").read_text()


@pytest.mark.parametrize("cmd", sorted(set(_readme_commands())))
def test_readme_command_exists_with_its_options(cmd):
    # table cells use `a|b` alternatives and [optional] brackets: keep the option names only
    norm = cmd.replace("[", " ").replace("]", " ").replace("\\|", "|")
    args = shlex.split(norm)
    path = _command_path(args)
    if path and "|" in path[-1]:  # sub-command alternatives: `turing build|serve|...`
        paths = [[*path[:-1], sub] for sub in path[-1].split("|")]
    else:
        paths = [path]
    for p in paths:
        res = runner.invoke(app, [*p, "--help"], terminal_width=200)
        assert res.exit_code == 0, f"`ivus-sim {' '.join(p)}` is not a command: {res.output}"
        opts = [a.split("=")[0] for a in args if a.startswith("--")]
        help_text = re.sub(r"\s+", " ", res.output)
        for o in opts:
            assert o in help_text, f"README shows {o} for `ivus-sim {' '.join(p)}`, which has no such option"


def test_readme_tissue_table_is_the_library_table():
    rows = re.findall(r"^\| (\d+) \| (\w+) \| \((\d+), (\d+), (\d+)\) \|", README, flags=re.M)
    table = {int(i): (name, (int(r), int(g), int(b))) for i, name, r, g, b in rows}
    assert table == {int(t): (info.name, info.colour) for t, info in TISSUES.items()}


def test_readme_first_command_runs_the_main_job_twice_in_a_row(tmp_path, monkeypatch):
    """The README's first command, exactly as written (out/ relative), run twice: the second run completes
    (nothing to redo) without loading the model."""
    from ivus_sim.modelio import has_default_model

    if not has_default_model():
        pytest.skip("no embedded default model in ivus_sim/weights")
    first = _code_blocks(README)[0]
    args = shlex.split(first[first.index("ivus-sim generate"):].split("&&")[0])[1:]
    (tmp_path / "examples").mkdir()
    sketch = "examples/calcified_plaque.png"
    (tmp_path / sketch).write_bytes((ROOT / sketch).read_bytes())
    monkeypatch.chdir(tmp_path)
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    out = tmp_path / "out"
    pngs = sorted(out.glob("*.png"))
    assert len(pngs) == 4 and len(sorted(out.glob("*.json"))) == 4
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    import ivus_sim.simulator.api as api

    monkeypatch.setattr(api, "load_default", lambda *a, **k: (_ for _ in ()).throw(AssertionError("model loaded")))
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    assert "nothing to do" in res.output
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
