"""Mapping (YAML/JSON) -> frozen dataclass, validated: the one config validation helper.

Every config in the toolkit (transducer presets, the tissue acoustics table, training configs,
augmentation settings, random-phantom settings) is a dataclass tree built from a mapping by
:func:`build`. The rules are the same everywhere:

* **types** from the annotations: ``bool`` (only ``true``/``false``), ``int`` (integral numbers),
  ``float`` (any finite number), ``str``, :class:`enum.Enum` subclasses (by value), ``X | None``
  (``null`` allowed), ``tuple[X, ...]`` / ``tuple[X, Y]`` / ``list[X]`` (from a YAML list),
  ``dict[str, X]``, nested dataclasses (a ``null`` section means all defaults) and ``Any``;
* **ranges** from field metadata (:func:`bounds`, or :func:`ranged` to declare a field);
* **unknown keys** are errors (a typo must not silently run something else);
* **one-line errors** that name the source and the field path, e.g.
  ``smoke.yaml: train.lr: expected a number > 0, got -0.001``.

>>> from dataclasses import dataclass
>>> @dataclass(frozen=True)
... class Opt:
...     lr: float = ranged(2e-4, lo=0, lo_open=True)
...     steps: int | None = ranged(None, lo=1)
>>> build(Opt, {"lr": 1e-3}, "cfg.yaml", "train").lr
0.001
>>> try:
...     build(Opt, {"steps": 0}, "cfg.yaml", "train")
... except Exception as e:
...     print(e)
cfg.yaml: train.steps: expected an integer >= 1 or null, got 0
"""

from __future__ import annotations

import dataclasses
import enum
import math
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

from ivus_sim.errors import IvusSimError

__all__ = ["bounds", "ranged", "build", "load_yaml", "describe"]

T = TypeVar("T")

_MAX_REPR = 60


def bounds(lo: float | None = None, hi: float | None = None, *, lo_open: bool = False,
           hi_open: bool = False) -> dict[str, Any]:
    """Field metadata declaring a numeric range (``lo``/``hi`` inclusive unless ``*_open``)."""
    return {"lo": lo, "hi": hi, "lo_open": lo_open, "hi_open": hi_open}


def ranged(default: Any = dataclasses.MISSING, lo: float | None = None, hi: float | None = None, *,
           lo_open: bool = False, hi_open: bool = False, default_factory: Any = dataclasses.MISSING) -> Any:
    """A dataclass field with a numeric range (applies to numbers, and to each number of a tuple/list)."""
    meta = bounds(lo, hi, lo_open=lo_open, hi_open=hi_open)
    if default_factory is not dataclasses.MISSING:
        return dataclasses.field(default_factory=default_factory, metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def _short(v: Any) -> str:
    r = repr(v)
    return r if len(r) <= _MAX_REPR else r[: _MAX_REPR - 3] + "..."


def _range_text(meta: Any) -> str:
    meta = meta or {}
    lo, hi = meta.get("lo"), meta.get("hi")
    parts = []
    if lo is not None:
        parts.append(f"{'>' if meta.get('lo_open') else '>='} {lo:g}")
    if hi is not None:
        parts.append(f"{'<' if meta.get('hi_open') else '<='} {hi:g}")
    return (" " + " and ".join(parts)) if parts else ""


def _in_range(x: float, meta: Any) -> bool:
    meta = meta or {}
    lo, hi = meta.get("lo"), meta.get("hi")
    if lo is not None and (x < lo or (meta.get("lo_open") and x <= lo)):
        return False
    return not (hi is not None and (x > hi or (meta.get("hi_open") and x >= hi)))


def describe(tp: Any, meta: Any = None) -> str:
    """What a value of annotation ``tp`` must look like, in words (used in error messages)."""
    origin = typing.get_origin(tp)
    if tp is bool:
        return "true or false"
    if tp is int:
        return "an integer" + _range_text(meta)
    if tp is float:
        return "a number" + _range_text(meta)
    if tp is str:
        return "a string"
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return "one of " + ", ".join(str(m.value) for m in tp)
    if dataclasses.is_dataclass(tp):
        return "a mapping"
    if origin is typing.Union or isinstance(tp, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return " or ".join(describe(a, meta) for a in args) + " or null"
    if origin in (tuple, list):
        targs = typing.get_args(tp)
        if origin is tuple and targs and targs[-1] is not Ellipsis:
            return f"a list of {len(targs)} values"
        return "a list"
    if origin is dict:
        return "a mapping"
    return "a value"


def _fail(source: str, path: str, tp: Any, meta: Any, v: Any) -> IvusSimError:
    return IvusSimError(f"{source}: {path or 'top level'}: expected {describe(tp, meta)}, got {_short(v)}")


def _join(path: str, key: Any) -> str:
    return f"{path}.{key}" if path else str(key)


def _value(tp: Any, v: Any, meta: Any, source: str, path: str) -> Any:
    origin = typing.get_origin(tp)
    if tp is Any:
        return v
    if origin is typing.Union or isinstance(tp, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if v is None and len(args) < len(typing.get_args(tp)):
            return None
        if len(args) != 1:
            raise TypeError(f"unsupported union {tp}")  # programming error
        try:
            return _value(args[0], v, meta, source, path)
        except IvusSimError:
            if dataclasses.is_dataclass(args[0]):
                raise
            raise _fail(source, path, tp, meta, v) from None
    if tp is bool:
        if not isinstance(v, bool):
            raise _fail(source, path, tp, meta, v)
        return v
    if tp is str:
        if not isinstance(v, str):
            raise _fail(source, path, tp, meta, v)
        return v
    if tp in (int, float):
        ok = isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(float(v))
        if ok and tp is int and not float(v).is_integer():
            ok = False
        if ok and not _in_range(float(v), meta):
            ok = False
        if not ok:
            raise _fail(source, path, tp, meta, v)
        return int(v) if tp is int else float(v)
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        if isinstance(v, tp):
            return v
        try:
            return tp(v)
        except ValueError:
            raise _fail(source, path, tp, meta, v) from None
    if dataclasses.is_dataclass(tp):
        return build(tp, {} if v is None else v, source, path)  # type: ignore[arg-type]
    if origin in (tuple, list):
        if not isinstance(v, list | tuple):
            raise _fail(source, path, tp, meta, v)
        targs = typing.get_args(tp)
        if origin is tuple and targs and targs[-1] is not Ellipsis:
            if len(v) != len(targs):
                raise _fail(source, path, tp, meta, v)
            items = [_value(a, x, meta, source, f"{path}[{i}]") for i, (a, x) in enumerate(zip(targs, v))]
        else:
            a = targs[0] if targs else Any
            items = [_value(a, x, meta, source, f"{path}[{i}]") for i, x in enumerate(v)]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(v, dict):
            raise _fail(source, path, tp, meta, v)
        kt, vt = typing.get_args(tp) or (Any, Any)
        return {_value(kt, k, None, source, path): _value(vt, x, meta, source, _join(path, k)) for k, x in v.items()}
    raise TypeError(f"unsupported field type {tp}")  # programming error


def build(cls: type[T], data: Any, source: str, path: str = "") -> T:
    """Build dataclass ``cls`` from ``data`` (a mapping), validating every field.

    Args:
        cls: the dataclass (frozen dataclasses of the toolkit's configs).
        data: the parsed YAML/JSON mapping.
        source: where it came from, first in every message (a file name, ``"checkpoint config"``).
        path: the field path of ``data`` inside the source (``"train"``), prefixed to field names.

    Raises:
        IvusSimError: one line ``"{source}: {path}.{field}: expected ..., got ..."``, for a wrong
            type, a value out of range, an unknown key or a missing required field. A
            ``ValueError`` raised by the dataclass itself (``__post_init__`` checks) is turned into
            the same one-line form.
    """
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"{cls!r} is not a dataclass")  # programming error
    if not isinstance(data, dict):
        raise IvusSimError(f"{source}: {path or 'top level'}: expected a mapping, got {_short(data)}")
    hints = typing.get_type_hints(cls)
    fs = {f.name: f for f in dataclasses.fields(cls) if f.init}
    for k in data:
        if k not in fs:
            raise IvusSimError(f"{source}: {_join(path, k)}: unknown field; known: {', '.join(fs)}")
    kwargs: dict[str, Any] = {}
    for name, f in fs.items():
        if name not in data:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise IvusSimError(f"{source}: {_join(path, name)}: missing required field")
            continue
        kwargs[name] = _value(hints[name], data[name], f.metadata, source, _join(path, name))
    try:
        return cls(**kwargs)
    except IvusSimError as e:
        msg = str(e)
        raise IvusSimError(msg if msg.startswith(f"{source}:") else f"{source}: {msg}") from None
    except ValueError as e:
        raise IvusSimError(f"{source}: {path or 'top level'}: {e}") from None


def load_yaml(path: str | Path) -> Any:
    """Read a YAML file; a missing file or a syntax error is an :class:`IvusSimError` (one line)."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise IvusSimError(f"config file not found: {path}")
    try:
        return yaml.safe_load(path.read_text())
    except UnicodeDecodeError:
        raise IvusSimError(f"{path.name}: not a text (YAML) file") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        at = f" (line {mark.line + 1})" if mark is not None else ""
        raise IvusSimError(f"{path.name}: not valid YAML{at}") from None
