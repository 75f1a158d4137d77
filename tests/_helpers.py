"""Helpers shared by several test modules (tiny synthetic data, local servers)."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from ivus_sim.geometry import radius_map


def free_port() -> int:
    """A free TCP port on the loopback interface."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_turing_server(study: Path, port: int, capture: bool = False) -> subprocess.Popen:
    """Run `ivus-sim turing serve` (the installed console script, as a user runs it) until it answers."""
    import httpx

    script = Path(sys.executable).with_name("ivus-sim")
    cmd = [str(script)] if script.exists() else [sys.executable, "-m", "ivus_sim.cli.main"]
    out = subprocess.PIPE if capture else subprocess.DEVNULL
    proc = subprocess.Popen([*cmd, "turing", "serve", str(study), "--port", str(port)],
                            stdout=out, stderr=subprocess.STDOUT if capture else subprocess.DEVNULL)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: {proc.stdout.read().decode() if proc.stdout else ''}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/", timeout=2).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("server did not start")


def synthetic_frames(n: int, seed: int, size: int = 64, shift: float = 0.0) -> tuple[list[np.ndarray], np.ndarray]:
    """``n`` Cartesian frames (float, 0-255) of one label map: tissue means x Rayleigh speckle (+ shift)."""
    r = radius_map(size)
    lab = np.zeros((size, size), np.uint8)
    lab[r < 0.6] = 6
    lab[r < 0.55] = 2
    lab[r < 0.4] = 1
    _, xx = np.mgrid[:size, :size]
    lab[(r < 0.55) & (r > 0.42) & (xx > size * 0.7)] = 5
    lab[r < 0.115] = 7
    lab[r > 1] = 255
    means = np.zeros(256)
    means[[0, 1, 2, 5, 6, 7]] = [90, 15, 120, 220, 40, 5]
    g = np.random.default_rng(seed)
    return [np.clip(means[lab] * g.rayleigh(1.0, lab.shape) / 1.2533 + shift, 0, 255) for _ in range(n)], lab


def read_only(obj):  # type: ignore[no-untyped-def]
    """Make every numpy array in ``obj`` (nested tuples/lists/dicts, objects with ``.labels``) read-only.

    Module-scoped fixtures return their value through this, so a test that writes into shared data
    fails at the write instead of silently changing what later tests see.
    """
    if isinstance(obj, np.ndarray):
        obj.setflags(write=False)
    elif isinstance(obj, tuple | list):
        for x in obj:
            read_only(x)
    elif isinstance(obj, dict):
        for x in obj.values():
            read_only(x)
    elif isinstance(getattr(obj, "labels", None), np.ndarray):
        obj.labels.setflags(write=False)
    return obj
