"""The test suite's own habits, checked on its source (docs/DEVELOPING.md "Tests").

* the one-thread fixture lives in ``tests/conftest.py`` (no copies in test modules);
* no test writes into the value of a module- or session-scoped fixture (later tests would see it);
* no process is killed after a fixed sleep: a ``time.sleep`` in a test that kills or signals a process
  must sit inside a loop that polls a condition.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
FILES = sorted(p for p in TESTS.glob("test_*.py"))
#: in-place methods of lists, dicts, arrays, tensors and modules
MUTATORS = {"append", "extend", "insert", "update", "pop", "popitem", "clear", "remove", "setdefault", "sort",
            "reverse", "fill", "fill_", "zero_", "add_", "sub_", "mul_", "div_", "copy_", "clamp_", "uniform_",
            "normal_", "resize", "put", "itemset", "load_state_dict", "requires_grad_", "setflags"}
KILLERS = {"kill", "terminate", "send_signal"}


def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(), filename=str(path))


def _is_fixture(fn: ast.FunctionDef, scopes: tuple[str, ...] | None = None) -> bool:
    for d in fn.decorator_list:
        text = ast.unparse(d)
        if "fixture" in text and (scopes is None or any(f'"{s}"' in text or f"'{s}'" in text for s in scopes)):
            return True
    return False


def _root(node: ast.AST) -> ast.AST:
    while isinstance(node, ast.Subscript | ast.Attribute | ast.Starred):
        node = node.value
    return node


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_no_thread_fixture_copies(path: Path) -> None:
    for fn in ast.walk(_tree(path)):
        if isinstance(fn, ast.FunctionDef) and _is_fixture(fn):
            calls = {ast.unparse(c.func) for c in ast.walk(fn) if isinstance(c, ast.Call)}
            assert "torch.set_num_threads" not in calls, \
                f"{path.name}:{fn.lineno} {fn.name}: use the `one_thread` fixture of tests/conftest.py"


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_module_scoped_fixtures_are_not_mutated(path: Path) -> None:
    tree = _tree(path)
    shared = {fn.name for fn in tree.body if isinstance(fn, ast.FunctionDef) and _is_fixture(fn, ("module", "session"))}
    if not shared:
        return
    problems = []
    for fn in ast.walk(tree):
        if not (isinstance(fn, ast.FunctionDef) and fn.name.startswith("test")):
            continue
        names = {a.arg for a in fn.args.args} & shared
        # names bound to (parts of) fixture values: `labels, images = toy`, `model = trained["aae"][0]`
        changed = True
        while changed:
            changed = False
            for st in ast.walk(fn):
                if isinstance(st, ast.Assign):
                    root = _root(st.value.elts[0] if isinstance(st.value, ast.Tuple) and st.value.elts else st.value)
                    if isinstance(root, ast.Name) and root.id in names:
                        for t in st.targets:
                            for n in ast.walk(t):
                                if isinstance(n, ast.Name) and n.id not in names:
                                    names.add(n.id)
                                    changed = True
        for st in ast.walk(fn):
            targets: list[ast.AST] = []
            if isinstance(st, ast.Assign):
                targets = [t for t in st.targets if isinstance(t, ast.Subscript | ast.Attribute)]
            elif isinstance(st, ast.AugAssign):
                targets = [st.target]
            for t in targets:
                root = _root(t)
                if isinstance(root, ast.Name) and root.id in names:
                    problems.append(f"{fn.name}:{st.lineno} writes {ast.unparse(t)}")
            if isinstance(st, ast.Call) and isinstance(st.func, ast.Attribute) and st.func.attr in MUTATORS:
                root = _root(st.func.value)
                if isinstance(root, ast.Name) and root.id in names:
                    problems.append(f"{fn.name}:{st.lineno} calls {ast.unparse(st.func)}")
    assert not problems, f"{path.name}: tests change shared fixture values (copy them first): {problems}"


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_no_sleep_timed_kills(path: Path) -> None:
    problems = []
    for fn in ast.walk(_tree(path)):
        if not isinstance(fn, ast.FunctionDef):
            continue
        calls = [c for c in ast.walk(fn) if isinstance(c, ast.Call)]
        kills = any((isinstance(c.func, ast.Attribute) and c.func.attr in KILLERS) or ast.unparse(c.func) == "os.kill"
                    for c in calls)
        if not kills:
            continue
        in_loops = {id(c) for loop in ast.walk(fn) if isinstance(loop, ast.While | ast.For)
                    for c in ast.walk(loop) if isinstance(c, ast.Call)}
        for c in calls:
            if ast.unparse(c.func) == "time.sleep" and id(c) not in in_loops:
                problems.append(f"{fn.name}:{c.lineno}")
    assert not problems, f"{path.name}: a fixed sleep before killing a process (poll a condition): {problems}"


BAD_EXAMPLE = '''
import os, time, pytest, torch

@pytest.fixture(scope="module", autouse=True)
def threads():
    torch.set_num_threads(1)
    yield

@pytest.fixture(scope="module")
def data():
    return [1, 2], {"a": 1}

def test_a(data):
    xs, d = data
    xs.append(3)
    d["b"] = 2

def test_b(proc):
    time.sleep(0.5)
    os.kill(proc.pid, 9)
'''


def test_the_checks_catch_a_bad_example(tmp_path: Path) -> None:
    path = tmp_path / "test_bad_example.py"
    path.write_text(BAD_EXAMPLE)
    for check in (test_no_thread_fixture_copies, test_module_scoped_fixtures_are_not_mutated,
                  test_no_sleep_timed_kills):
        with pytest.raises(AssertionError):
            check(path)
