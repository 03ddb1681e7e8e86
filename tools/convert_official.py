"""Convert the released LGTM checkpoint and official TMR folders to the project's format (verified, atomic).

    python -m tools.convert_official lgtm CKPT --mean HumanML3D/Mean.npy --std HumanML3D/Std.npy --out DIR
    python -m tools.convert_official tmr RUN_DIR --part left_arm --out DIR [--text-model distilbert-base-uncased]

The output folders are what ``models.lgtm.load_lgtm`` / ``models.tmr.load_tmr`` read
(``model.safetensors`` + ``config.json``; LGTM also ``Mean.npy``/``Std.npy``); ``config.json`` records
the official compatibility options and the source file's sha256. Each conversion is verified (key
coverage, shapes, a forward pass of the reloaded model on a fixed input) before its folder appears;
on any error nothing is written and a one-line message names the file and the fix (exit status 2).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from models.official.tmr import WHOLE_BODY
from motion.core.errors import DataError
from motion.core.parts import PART_NAMES


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface (sub-commands ``lgtm`` and ``tmr``)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="kind", required=True)
    lgtm = sub.add_parser("lgtm", help="official LGTM Lightning .ckpt -> model.safetensors + config.json")
    lgtm.add_argument("checkpoint", type=Path)
    lgtm.add_argument("--mean", type=Path, required=True, help="HumanML3D's published Mean.npy")
    lgtm.add_argument("--std", type=Path, required=True, help="HumanML3D's published Std.npy")
    lgtm.add_argument("--out", type=Path, required=True)
    tmr = sub.add_parser("tmr", help="official TMR run folder (config.json + last_weights/) -> our TMR folder")
    tmr.add_argument("folder", type=Path)
    tmr.add_argument("--part", required=True, choices=(WHOLE_BODY, *PART_NAMES))
    tmr.add_argument("--out", type=Path, required=True)
    tmr.add_argument("--text-model", default="distilbert-base-uncased",
                     help="text model that must be in the local Hugging Face cache ('' to skip the check)")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one conversion and print its verification report as JSON."""
    from models.official.convert import convert_lgtm, convert_tmr

    args = build_parser().parse_args(argv)
    try:
        if args.kind == "lgtm":
            report = convert_lgtm(args.checkpoint, args.out, args.mean, args.std)
        else:
            report = convert_tmr(args.folder, args.out, args.part, args.text_model or None)
    except DataError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(json.dumps({"out": str(args.out), **report}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
