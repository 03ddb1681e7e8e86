"""Switch the models that evaluate, prompt_study and tools.generate use, in one command.

    python -m tools.switch_source official     # the released LGTM and TMRs (import_official)
    python -m tools.switch_source trained      # the pipeline's own (train_tmr, train_lgtm): the default
    dvc exp run $(python -m tools.switch_source official --set-args) evaluate prompt_study   # as an experiment

Writes params ``sources.<name>`` (``models.source``/``lgtm``/``tmr``, ``embed_texts.encoder``/``token_dtype`` and
``lgtm.sampling.timestep_spacing``: the official code samples DDIM with "leading" timesteps)
into params.yaml in place, keeping every other line and comment as it is, and checks the result with the strict
settings reader before replacing the file (atomically). It is a switch written into the file, not a profile laid
over it at read time, because dvc.yaml interpolates ``models.lgtm``/``models.tmr`` into the consumers' deps and
DVC reads params.yaml as it is: only then does ``dvc repro evaluate`` depend on import_official instead of the
training stages. ``--set-args`` prints the same values as ``dvc exp run -S`` options instead of writing them.
On a bad file the command prints one line naming it and the fix and exits with status 2, changing nothing.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from motion.core.errors import DataError
from motion.core.io import write_text
from motion.core.settings import read_yaml
from stages.settings import SOURCES, params_file, parse_settings

PLAIN = re.compile(r"[A-Za-z0-9_./+-]+")


def switch_values(raw: Mapping[str, Any], name: str, file: Path) -> dict[str, Any]:
    """The dotted keys and values that params ``sources.<name>`` sets (its leaves, in file order)."""
    sources = raw.get("sources")
    if not isinstance(sources, Mapping) or not isinstance(sources.get(name), Mapping):
        raise DataError(file, f"sources.{name} is missing", f"add sources.{name} (see this project's params.yaml)")

    def leaves(tree: Mapping[str, Any], prefix: str) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in tree.items():
            dotted = f"{prefix}.{key}" if prefix else str(key)
            out.update(leaves(value, dotted) if isinstance(value, Mapping) else {dotted: value})
        return out

    return leaves(sources[name], "")


def with_values(raw: Mapping[str, Any], values: Mapping[str, Any], file: Path) -> dict[str, Any]:
    """A copy of the params tree with the dotted ``values`` set; each key must already exist."""
    import copy

    out = copy.deepcopy(dict(raw))
    for dotted, value in values.items():
        *head, last = dotted.split(".")
        node = out
        for part in head:
            node = node.get(part) if isinstance(node, dict) else None
        if not isinstance(node, dict) or last not in node:
            raise DataError(file, f"{dotted} is not a setting of the file", "fix the key in the sources section")
        node[last] = copy.deepcopy(value)
    return out


def scalar(value: Any) -> str:
    """``value`` as a YAML scalar: plain where that reads back as the same string, else JSON (which YAML reads)."""
    if isinstance(value, str) and PLAIN.fullmatch(value) and yaml.safe_load(value) == value:
        return value
    return json.dumps(value)


KEY_LINE = re.compile(r"^(?P<indent> *)(?P<key>[A-Za-z_][\w.+-]*):(?P<rest>.*)$")
VALUE = re.compile(r"^(?P<space> +)(?P<value>\"[^\"]*\"|'[^']*'|[^#\s](?:[^#]*[^#\s])?)(?P<gap>\s*)(?P<comment>#.*)?$")


def set_block_scalars(text: str, values: Mapping[str, Any], file: Path) -> str:
    """``text`` with the block-style scalar line of every dotted key in ``values`` given its new value.

    Indentation, the comment and its column are kept; a key not written as ``key: value`` on a line of its own
    (flow style, a multi-line value) is a one-line error naming it.
    """
    lines = text.splitlines(keepends=True)
    stack: list[tuple[int, str]] = []  # (indent, key) of the mappings that enclose the current line
    found: set[str] = set()
    for i, line in enumerate(lines):
        match = KEY_LINE.match(line.rstrip("\n"))
        if not match:
            continue
        indent = len(match["indent"])
        while stack and stack[-1][0] >= indent:
            stack.pop()
        dotted = ".".join([k for _, k in stack] + [match["key"]])
        stack.append((indent, match["key"]))
        if dotted not in values:
            continue
        value = VALUE.match(match["rest"])
        if not value:
            raise DataError(file, f"{dotted} is not a one-line `key: value`", f"write {dotted} in block style")
        new, eol = scalar(values[dotted]), "\n" if line.endswith("\n") else ""
        if value["comment"]:  # the comment stays in its column where the new value leaves room
            gap = " " * max(1, len(value["gap"]) + len(value["value"]) - len(new))
            lines[i] = f"{match['indent']}{match['key']}:{value['space']}{new}{gap}{value['comment']}{eol}"
        else:
            lines[i] = f"{match['indent']}{match['key']}:{value['space']}{new}{eol}"
        found.add(dotted)
    missing = [k for k in values if k not in found]
    if missing:
        raise DataError(file, f"{missing[0]} is not a one-line `key: value`", f"write {missing[0]} in block style")
    return "".join(lines)


def switch(file: Path, name: str) -> dict[str, Any]:
    """Write ``sources.<name>`` into ``file`` (checked, atomic); returns the values set."""
    raw = read_yaml(file)
    values = switch_values(raw, name, file)
    wanted = with_values(raw, values, file)
    parse_settings(wanted, file)  # the switched file must be valid settings before it replaces the old one
    text = set_block_scalars(file.read_text(encoding="utf-8"), values, file)
    if yaml.safe_load(text) != wanted:  # the line edit must mean exactly the switch
        raise DataError(file, "the edited file does not read back as the switch", "set the keys by hand")
    write_text(file, text)
    return values


def set_args(file: Path, name: str) -> list[str]:
    """``dvc exp run`` options (``-S key=value``) that make the same switch in an experiment."""
    raw = read_yaml(file)
    values = switch_values(raw, name, file)
    parse_settings(with_values(raw, values, file), file)
    return [arg for key, value in values.items() for arg in ("-S", f"{key}={scalar(value)}")]


def build_parser() -> argparse.ArgumentParser:
    """The command line."""
    parser = argparse.ArgumentParser(prog="python -m tools.switch_source", description=__doc__.splitlines()[0])
    parser.add_argument("source", choices=SOURCES, help="official: the released models; trained: the pipeline's own")
    parser.add_argument("--params", type=Path, default=None, help="params file (default: $LGTM_PARAMS or params.yaml)")
    parser.add_argument("--set-args", action="store_true", help="print `dvc exp run -S` options, write nothing")
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    """Switch params.yaml to the named source (or print the experiment options)."""
    args = build_parser().parse_args(argv)
    file = args.params or params_file()
    try:
        if args.set_args:
            print(" ".join(set_args(file, args.source)))
            return
        values = switch(file, args.source)
    except DataError as error:
        print(f"switch_source: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    print(f"{file}: " + ", ".join(f"{k}: {v}" for k, v in values.items()))
    if args.source == "official":
        print("next: set official.* to the released files (docs/official.md), then dvc repro evaluate prompt_study")


if __name__ == "__main__":
    main()
