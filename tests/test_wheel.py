"""The ``ivus-sim`` console script works from a built wheel, not only from the editable install.

Builds the wheel from a copy of the sources (so the working tree gets no build/ or egg-info),
installs it with ``--no-deps`` into a fresh venv, and runs that venv's ``ivus-sim`` from a
temporary folder, so the source tree cannot be imported. The venv sees the dependencies of the
running environment through a plain path entry (not its ``.pth`` files, so the editable
install of ``ivus_sim`` stays invisible).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest

import ivus_sim

ROOT = Path(__file__).resolve().parents[1]


def _run(cmd: list[str | Path], cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    return subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.mark.slow
def test_wheel_installs_a_working_console_script(tmp_path):
    pytest.importorskip("setuptools")
    src = tmp_path / "src"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "build", "dist")
    for d in ("ivus_sim", "cli", "configs"):
        shutil.copytree(ROOT / d, src / d, ignore=ignore)
    for f in ("pyproject.toml", "README.md", "LICENSE"):
        if (ROOT / f).exists():
            shutil.copy2(ROOT / f, src / f)

    dist = tmp_path / "dist"
    build = _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-cache-dir",
                  "-q", "--wheel-dir", dist, src], cwd=tmp_path)
    assert build.returncode == 0, build.stderr[-2000:]
    wheels = list(dist.glob("ivus_sim-*.whl"))
    assert len(wheels) == 1, list(dist.iterdir())

    env_dir = tmp_path / "venv"
    venv.EnvBuilder(system_site_packages=True, with_pip=False).create(env_dir)
    py = env_dir / "bin" / "python"
    purelib = Path(_run([py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                        cwd=tmp_path).stdout.strip())
    deps = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    (purelib / "zz_outer_deps.pth").write_text("\n".join(sorted(deps)) + "\n")
    inst = _run([sys.executable, "-m", "pip", "--python", py, "install", "--no-deps", "--no-index", "-q",
                 wheels[0]], cwd=tmp_path)
    assert inst.returncode == 0, inst.stderr[-2000:]

    where = tmp_path / "elsewhere"
    where.mkdir()
    origin = _run([py, "-c", "import ivus_sim, ivus_sim.cli.main as m; print(ivus_sim.__file__); print(m.__file__)"],
                  cwd=where)
    assert origin.returncode == 0, origin.stderr[-2000:]
    for line in origin.stdout.split():
        assert Path(line).is_relative_to(env_dir), f"imported from outside the wheel install: {line}"

    exe = env_dir / "bin" / "ivus-sim"
    helped = _run([exe, "--help"], cwd=where)
    assert helped.returncode == 0, helped.stderr[-2000:]
    assert "phantom" in helped.stdout and "generate" in helped.stdout
    version = _run([exe, "--version"], cwd=where)
    assert version.returncode == 0 and version.stdout.strip() == f"ivus-sim {ivus_sim.__version__}"
    # a real command from the wheel: package code and the console script agree
    made = _run([exe, "phantom", "random", "--n", "1", "--size", "32", "--out", where / "ph", "--no-progress"],
                cwd=where)
    assert made.returncode == 0, made.stderr[-2000:]
    assert (where / "ph" / "phantom_0000.png").exists() and (where / "ph" / "phantom_0000.json").exists()
    bad = _run([exe, "phantom", "show", where / "missing.png", "--out", where / "x.png"], cwd=where)
    assert bad.returncode == 2 and bad.stderr.strip().startswith("error:") and "Traceback" not in bad.stderr
