"""Make ``docs/figures/explore_z2.png``: what the stage-2 latent code z2 does (``ivus-sim explore``).

    python docs/figures/make_explore_figure.py            # deterministic: seed 0, CPU, fp32
    python docs/figures/make_explore_figure.py --model runs/mine   # your own trained model

Runs the command a user would run, a 5 x 5 manifold sweep over the first two z2 dimensions (z1 and
the stage-2 noise fixed) of the embedded default on ``examples/calcified_plaque.png``::

    ivus-sim explore --phantom examples/calcified_plaque.png --dims D1,D1+1 --grid 5 --size 160 \
        --seed 0 --device cpu --precision fp32 --out docs/figures/explore_z2.png --overwrite

(``D1`` = the model's z1 size: z2 dimensions follow the z1 dimensions in ``--dims``). The JSON
sidecar beside the PNG records the model, the swept values and the command.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SKETCH = ROOT / "examples" / "calcified_plaque.png"
OUT = Path(__file__).with_name("explore_z2.png")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", type=Path, help="a trained run instead of the embedded default")
    ap.add_argument("--out", type=Path, default=OUT)
    a = ap.parse_args()
    from ivus_sim import Simulator

    sim = Simulator.from_run(a.model, device="cpu") if a.model else Simulator.default(device="cpu")
    d1, d2 = sim.z_dims
    if d2 < 2:
        raise SystemExit(f"the model has {d2} z2 dimension(s); need 2 to sweep")
    model = ["--model", str(a.model)] if a.model else []
    cmd = [sys.executable, "-m", "ivus_sim.cli.main", "explore", "--phantom", str(SKETCH.relative_to(ROOT)),
           "--dims", f"{d1},{d1 + 1}", "--grid", "5", "--size", "160", "--seed", "0", *model, "--device", "cpu",
           "--precision", "fp32", "--out", str(a.out), "--overwrite"]
    subprocess.run(cmd, check=True, cwd=ROOT)
    print(f"wrote {a.out} (model {sim.model_id}, z2 dimensions {d1} and {d1 + 1} of [z1 ({d1}), z2 ({d2})])")


if __name__ == "__main__":
    main()
