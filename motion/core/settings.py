"""A strict reader of typed, frozen settings: YAML mappings -> dataclasses, every key checked.

``params.yaml`` is the one place where settings have values. This module turns a mapping into a tree of
frozen dataclasses (the schema) and refuses anything the schema does not describe, with a one-line
error naming the file, the dotted key and the expected type:

    params.yaml: lgtm.model.conformer_block: unknown key (lgtm.model has: attention_layers, ...)
    params.yaml: lgtm.train.max_steps: expected int >= 0, got -1

Supported field types: ``bool``, ``int``, ``float`` (an int is accepted), ``str``, ``Literal[...]``,
``X | None``, ``list[X]``, ``tuple[X, ...]``, ``dict[str, X]``, nested dataclasses, and
``Annotated[int | float, Range(lo, hi)]`` for bounds. A field with a default may be omitted; the
pipeline's schema gives none, so every key must be present in the file.

Profiles: a top-level ``profile: NAME`` selects ``profiles.NAME``, a partial copy of the settings tree
whose values replace the base values (lists as a whole) before the tree is checked. Overlay keys must
exist in the base. The base values are the default profile, so ``-S section.key=value`` sweeps them
directly; ``-S profile=paper`` switches every stage at once.

Stage views: :func:`stage_view` replaces every setting a stage did not declare in ``dvc.yaml`` by an
:class:`Undeclared` marker that raises on use, so a stage can only read what DVC tracks for it.
"""
from __future__ import annotations

import collections.abc
import dataclasses
import types
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar, Union, get_args, get_origin, get_type_hints

import yaml

from motion.core.errors import DataError

T = TypeVar("T")


class SettingsError(DataError):
    """A settings file does not match the schema: names the file, the dotted key and what is expected."""

    def __init__(self, file: str | Path, key: str, problem: str, fix: str = "") -> None:
        self.key = key
        super().__init__(file, f"{key}: {problem}" if key else problem, fix)


@dataclass(frozen=True)
class Range:
    """Inclusive bounds of a number, used as ``Annotated[int, Range(1, None)]`` (None: unbounded)."""

    lo: float | None = None
    hi: float | None = None

    def describe(self) -> str:
        """E.g. ``>= 1``, ``in [0, 1]``."""
        if self.lo is not None and self.hi is not None:
            return f"in [{self.lo:g}, {self.hi:g}]"
        return f">= {self.lo:g}" if self.lo is not None else f"<= {self.hi:g}"

    def holds(self, value: float) -> bool:
        """Whether ``value`` lies inside the bounds (NaN never does)."""
        if value != value:  # NaN
            return False
        return (self.lo is None or value >= self.lo) and (self.hi is None or value <= self.hi)


Positive = Range(1, None)
NonNegative = Range(0, None)
Probability = Range(0, 1)


def read_yaml(path: str | Path) -> dict[str, Any]:
    """A YAML mapping from ``path`` (safe loader); a one-line error when it is absent or not a mapping."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SettingsError(path, "", "file not found", "run from the project root or set $LGTM_PARAMS") from None
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise SettingsError(path, "", f"not valid YAML ({first})", "fix the syntax (UTF-8, spaces not tabs)") from None
    if not isinstance(data, dict):
        raise SettingsError(path, "", "the file must hold a mapping of sections")
    return data


# ----------------------------------------------------------------------------- checking values


def _type_name(tp: Any) -> str:
    """A short, readable name of a schema type for error messages."""
    origin, args = get_origin(tp), get_args(tp)
    if origin is Annotated:
        extra = [a.describe() for a in args[1:] if isinstance(a, Range)]
        return " ".join([_type_name(args[0]), *extra])
    if origin is Literal:
        return "one of " + " | ".join(repr(a) for a in args)
    if origin in (Union, types.UnionType):
        return " or ".join(_type_name(a) for a in args)
    if origin in (list, tuple):
        return f"list of {_type_name(args[0])}" if args else "list"
    if origin in (dict, collections.abc.Mapping):
        return f"mapping of {_type_name(args[1])}"
    if tp is type(None):
        return "null"
    if dataclasses.is_dataclass(tp):
        return "mapping"
    return getattr(tp, "__name__", str(tp))


def _fail(ctx: tuple[Path, str], tp: Any, value: Any) -> SettingsError:
    shown = repr(value) if not isinstance(value, (dict, list)) else type(value).__name__
    return SettingsError(ctx[0], ctx[1], f"expected {_type_name(tp)}, got {shown}")


def _convert(tp: Any, value: Any, file: Path, key: str) -> Any:
    """``value`` checked against and converted to the schema type ``tp`` (raises SettingsError)."""
    ctx = (file, key)
    origin, args = get_origin(tp), get_args(tp)
    if origin is Annotated:
        out = _convert(args[0], value, file, key)
        for bound in (a for a in args[1:] if isinstance(a, Range)):
            if out is not None and not bound.holds(out):
                raise SettingsError(file, key, f"expected {_type_name(tp)}, got {value!r}")
        return out
    if tp is Any:
        return value
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, Mapping):
            raise _fail(ctx, tp, value)
        return build(tp, value, file, key)
    if origin is Literal:
        if value in args and type(value) is type(next(a for a in args if a == value)):
            return value
        raise _fail(ctx, tp, value)
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        for option in (a for a in args if a is not type(None)):
            try:
                return _convert(option, value, file, key)
            except SettingsError:
                continue  # try the next alternative; the error names the whole union
        raise _fail(ctx, tp, value)
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise _fail(ctx, tp, value)
        item = args[0] if args else Any
        items = [_convert(item, v, file, f"{key}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin in (dict, collections.abc.Mapping):
        if not isinstance(value, Mapping):
            raise _fail(ctx, tp, value)
        return {str(k): _convert(args[1], v, file, f"{key}.{k}") for k, v in value.items()}
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise _fail(ctx, tp, value)
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise _fail(ctx, tp, value)
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise _fail(ctx, tp, value)
    if tp is str:
        if isinstance(value, str):
            return value
        raise _fail(ctx, tp, value)
    raise TypeError(f"settings schema: unsupported field type {tp!r} at {key}")


def build(cls: type[T], values: Mapping[str, Any], file: str | Path = "params.yaml", key: str = "") -> T:
    """An instance of the dataclass ``cls`` from ``values``: unknown, missing or mistyped keys are errors."""
    file = Path(file)
    hints = get_type_hints(cls, include_extras=True)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    dotted = (lambda name: f"{key}.{name}" if key else name)
    unknown = sorted(set(map(str, values)) - set(fields))
    if unknown:
        raise SettingsError(file, dotted(unknown[0]), "unknown key",
                            f"{key or 'the top level'} has: {', '.join(sorted(fields))}")
    out = {}
    for name, f in fields.items():
        if name not in values:
            if f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING:
                continue
            raise SettingsError(file, dotted(name), f"missing ({_type_name(hints[name])})",
                                "add it; every setting is spelled out in params.yaml")
        out[name] = _convert(hints[name], values[name], file, dotted(name))
    try:
        return cls(**out)
    except (ValueError, TypeError) as e:  # __post_init__ checks that span several fields
        raise SettingsError(file, key, str(e)) from None


def to_dict(settings: Any) -> Any:
    """The plain (YAML/JSON-ready) form of a settings tree."""
    if dataclasses.is_dataclass(settings) and not isinstance(settings, type):
        return {f.name: to_dict(getattr(settings, f.name)) for f in dataclasses.fields(settings)}
    if isinstance(settings, (list, tuple)):
        return [to_dict(v) for v in settings]
    if isinstance(settings, dict):
        return {k: to_dict(v) for k, v in settings.items()}
    return settings


def convert(cls: type[T], section: Any, **extra: Any) -> T:
    """The library dataclass ``cls`` holding a settings section's values (plus ``extra`` fields).

    Checked like the file itself, so a schema section and the library class it feeds cannot drift apart:
    a field one has and the other lacks is an error naming it.
    """
    return build(cls, {**to_dict(section), **extra}, f"settings -> {cls.__name__}")


# ----------------------------------------------------------------------------- profiles


def apply_profile(raw: Mapping[str, Any], file: str | Path = "params.yaml") -> dict[str, Any]:
    """``raw`` with ``profiles[raw['profile']]`` laid over it; the result keeps ``profile`` and ``profiles``."""
    file = Path(file)
    profiles = raw.get("profiles")
    name = raw.get("profile")
    if not isinstance(profiles, Mapping):
        raise SettingsError(file, "profiles", "missing (mapping of profile name -> overrides)")
    if name not in profiles:
        raise SettingsError(file, "profile", f"{name!r} is not a profile",
                            f"use one of: {', '.join(map(str, profiles))}")
    overlay = profiles[name] or {}
    if not isinstance(overlay, Mapping):
        raise SettingsError(file, f"profiles.{name}", "expected a mapping of overrides")
    return {**_overlay(raw, overlay, file, f"profiles.{name}"), "profile": name, "profiles": profiles}


def _overlay(base: Mapping[str, Any], over: Mapping[str, Any], file: Path, key: str) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        if k not in base:
            raise SettingsError(file, f"{key}.{k}", "overrides a key the base settings do not have")
        if isinstance(v, Mapping) and isinstance(base[k], Mapping):
            out[k] = _overlay(base[k], v, file, f"{key}.{k}")
        else:
            out[k] = v
    return out


def overlaid_keys(profiles: Mapping[str, Any]) -> dict[str, set[str]]:
    """For each profile, the dotted keys its overlay replaces (leaves and lists)."""
    def leaves(tree: Mapping[str, Any], prefix: str) -> set[str]:
        found: set[str] = set()
        for k, v in tree.items():
            path = f"{prefix}.{k}" if prefix else str(k)
            found |= leaves(v, path) if isinstance(v, Mapping) and v else {path}
        return found
    return {str(name): leaves(over or {}, "") for name, over in profiles.items()}


# ----------------------------------------------------------------------------- stage views


class Undeclared:
    """A setting the running stage does not declare in dvc.yaml: any use raises with the fix."""

    __slots__ = ("_key", "_stage")

    def __init__(self, key: str, stage: str) -> None:
        object.__setattr__(self, "_key", key)
        object.__setattr__(self, "_stage", stage)

    def _refuse(self, *_: Any, **__: Any) -> Any:
        raise UndeclaredSettingError(self._key, self._stage)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        self._refuse()

    def __repr__(self) -> str:
        return f"<undeclared {self._key}>"

    __bool__ = __int__ = __float__ = __index__ = __str__ = __format__ = __iter__ = __len__ = _refuse
    __eq__ = __lt__ = __le__ = __gt__ = __ge__ = __getitem__ = __contains__ = __add__ = __mul__ = _refuse
    __truediv__ = __sub__ = __radd__ = __rmul__ = __fspath__ = __hash__ = _refuse


class UndeclaredSettingError(RuntimeError):
    """A stage read a setting that its dvc.yaml ``params`` do not list (DVC would not rerun it on a change)."""

    def __init__(self, key: str, stage: str) -> None:
        self.key, self.stage = key, stage
        super().__init__(f"stage {stage} reads params.yaml key {key!r}, which its dvc.yaml params do not declare: "
                         f"add {key} to the stage's params in dvc.yaml")


def covers(declared: set[str], key: str) -> bool:
    """Whether a declared dotted key (or a prefix of it) covers ``key``."""
    return any(key == d or key.startswith(d + ".") for d in declared)


def stage_view(settings: T, declared: set[str], stage: str, prefix: str = "") -> T:
    """``settings`` with every field outside ``declared`` (dotted keys) replaced by :class:`Undeclared`."""
    if not dataclasses.is_dataclass(settings):
        return settings
    changes = {}
    for f in dataclasses.fields(settings):
        key = f"{prefix}.{f.name}" if prefix else f.name
        value = getattr(settings, f.name)
        if covers(declared, key):
            continue
        if any(d.startswith(key + ".") for d in declared):
            if dataclasses.is_dataclass(value):
                changes[f.name] = stage_view(value, declared, stage, key)
            elif isinstance(value, dict):
                changes[f.name] = {k: v for k, v in value.items() if covers(declared, f"{key}.{k}")
                                   or any(d.startswith(f"{key}.{k}.") for d in declared)}
            continue
        changes[f.name] = Undeclared(key, stage)
    return _replace_unchecked(settings, changes)


def _replace_unchecked(obj: T, changes: dict[str, Any]) -> T:
    """A copy of the frozen dataclass ``obj`` with ``changes``, bypassing ``__post_init__`` checks."""
    copy = object.__new__(type(obj))
    for f in dataclasses.fields(obj):
        object.__setattr__(copy, f.name, changes.get(f.name, getattr(obj, f.name)))
    return copy
