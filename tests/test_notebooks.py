"""The tutorial notebooks execute end to end on CPU, and are committed without outputs.

Each notebook runs in a fresh kernel of *this* interpreter (a kernelspec written to a temporary
folder whose argv is ``sys.executable -m ipykernel_launcher``: no user-level kernel install, no
reliance on ``python`` on PATH), with its working directory in ``tmp_path`` so whatever it writes
lands there. Any cell error fails the test with the cell's traceback. The kernel is shut down when
its notebook ends (pass or fail): nbclient leaves kernels it did not start running.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

ROOT = Path(__file__).resolve().parents[1]
NB_DIR = ROOT / "notebooks"
NOTEBOOKS = sorted(NB_DIR.glob("*.ipynb"))
KERNEL = "ivus-sim-test"
#: seconds any one cell may run (the notebooks aim at < 60 s each in total on 2 CPU cores)
CELL_TIMEOUT_S = 480


def test_notebooks_exist() -> None:
    names = [p.name for p in NOTEBOOKS]
    assert names == ["01_phantom_to_image.ipynb", "02_adversarial_autoencoder.ipynb",
                     "03_augment_and_segment.ipynb", "04_reader_study.ipynb"]
    readme = (NB_DIR / "README.md").read_text(encoding="utf-8")
    for name in names:
        assert name in readme, f"{name} is not listed in notebooks/README.md"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_committed_without_outputs(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            assert cell.outputs == [], f"{path.name} cell {i} has outputs (run notebooks/strip_outputs.py)"
            assert cell.execution_count is None, f"{path.name} cell {i} has an execution count"
    first = nb.cells[0]
    assert first.cell_type == "markdown" and "minute" in first.source.lower(), \
        f"{path.name} must open with a markdown cell saying what it teaches and how long it takes"


def test_strip_script_strips(tmp_path: Path) -> None:
    sys.path.insert(0, str(NB_DIR))
    try:
        import strip_outputs
    finally:
        sys.path.remove(str(NB_DIR))
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1 + 1")])
    nb.cells[0].outputs = [nbformat.v4.new_output("execute_result", data={"text/plain": "2"}, execution_count=1)]
    nb.cells[0].execution_count = 1
    nb.metadata["widgets"] = {"state": {}}
    path = tmp_path / "x.ipynb"
    nbformat.write(nb, path)
    assert strip_outputs.main(["--check", str(path)]) == 1
    assert strip_outputs.main([str(path)]) == 0
    clean = nbformat.read(path, as_version=4)
    assert clean.cells[0].outputs == [] and clean.cells[0].execution_count is None
    assert "widgets" not in clean.metadata
    assert strip_outputs.main(["--check", str(path)]) == 0


@pytest.fixture(scope="module")
def kernel_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A kernelspec folder for the running interpreter (headless matplotlib, few threads)."""
    root = tmp_path_factory.mktemp("kernels")
    spec = root / KERNEL
    spec.mkdir()
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-Xfrozen_modules=off", "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "ivus-sim tests",
        "language": "python",
        "env": {"MPLBACKEND": "Agg", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
                "PYDEVD_DISABLE_FILE_VALIDATION": "1"},
    }))
    return root


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_executes(path: Path, tmp_path: Path, kernel_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import KernelManager
    from nbclient.exceptions import CellExecutionError

    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / ".jupyter-runtime"))  # connection files
    monkeypatch.setenv("IPYTHONDIR", str(tmp_path / ".ipython"))  # no writes to the user's home
    nb = nbformat.read(path, as_version=4)
    ksm = KernelSpecManager(kernel_dirs=[str(kernel_dir)], ensure_native_kernel=False)
    km = KernelManager(kernel_name=KERNEL, kernel_spec_manager=ksm)
    client = nbclient.NotebookClient(nb, km=km, kernel_name=KERNEL, timeout=CELL_TIMEOUT_S,
                                     resources={"metadata": {"path": str(tmp_path)}})
    try:
        client.execute()
    except CellExecutionError as e:  # the message holds the failing cell and its traceback
        pytest.fail(f"{path.name} failed:\n{e}", pytrace=False)
    finally:
        # nbclient shuts down only kernels it created itself; this one is ours (hundreds of MB once the
        # notebook has run), so stop it now rather than when the interpreter exits
        if km.has_kernel:
            km.shutdown_kernel(now=True)
        km.cleanup_resources()
    assert not km.is_alive(), f"{path.name}: kernel still running after the test"
    n_code = sum(c.cell_type == "code" for c in nb.cells)
    assert n_code and all(c.execution_count is not None for c in nb.cells if c.cell_type == "code")
