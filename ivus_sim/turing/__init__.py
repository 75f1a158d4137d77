"""Visual Turing test (reader study): build, serve, analyse.

Data flow: two image folders -> :mod:`pairing` -> :mod:`encode` (leakage neutralisation) ->
:mod:`audit` (leakage audit gate) -> :mod:`schedule` (per-reader balanced schedules) ->
:mod:`store` (SQLite: key, schedules, answers, hash-chained log) -> :mod:`server` (web app) ->
:mod:`analysis` / :mod:`stats` -> :mod:`report`. :mod:`power` sizes a study; :mod:`simulate`
answers a study with simulated readers through the same storage path (demos, tests).

>>> # from ivus_sim.turing import StudyConfig, build_study, simulate_readers, analyze_study, write_report
>>> # build_study("real/", "sim/", "study", StudyConfig(n_readers=3, size=128))
>>> # simulate_readers("study", accuracy=0.55, seed=0)
>>> # write_report(analyze_study("study"), "report")
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "StudyConfig",
    "build_study",
    "reader_links",
    "simulate_readers",
    "analyze_study",
    "write_report",
    "plan_study",
    "audit_files",
    "create_app",
    "make_demo_images",
    "analyze_single_image",
    "SingleRead",
    "StudyMode",
    "list_readers",
    "add_readers",
    "revoke_reader",
]

_WHERE = {
    "StudyConfig": "ivus_sim.turing.study",
    "build_study": "ivus_sim.turing.study",
    "reader_links": "ivus_sim.turing.study",
    "simulate_readers": "ivus_sim.turing.simulate",
    "analyze_study": "ivus_sim.turing.analysis",
    "write_report": "ivus_sim.turing.report",
    "plan_study": "ivus_sim.turing.power",
    "audit_files": "ivus_sim.turing.audit",
    "create_app": "ivus_sim.turing.server",
    "make_demo_images": "ivus_sim.turing.demo",
    "analyze_single_image": "ivus_sim.turing.single_analysis",
    "SingleRead": "ivus_sim.turing.single_analysis",
    "StudyMode": "ivus_sim.turing.modes",
    "list_readers": "ivus_sim.turing.readers",
    "add_readers": "ivus_sim.turing.readers",
    "revoke_reader": "ivus_sim.turing.readers",
}


def __getattr__(name: str) -> Any:  # lazy: importing the package stays light
    if name in _WHERE:
        import importlib

        return getattr(importlib.import_module(_WHERE[name]), name)
    raise AttributeError(name)
