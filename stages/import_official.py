"""Stage import_official: the released LGTM checkpoint and its seven TMRs, converted and verified.

Reads the top-level ``official`` section of params.yaml (only here)::

    official:
      checkpoint: <lgtm.zip>/checkpoints/epoch=196-val_loss=0.3769.ckpt
      tmr_dir: <TMR models folder>      # <slot>/, or tmr_humanml3d_guoh3dfeats/ + body_part_tmr/<part>/
      tmr_folders: {}                   # optional {slot: run folder} overrides
      mean: <HumanML3D>/Mean.npy        # HumanML3D's published normalisation
      std: <HumanML3D>/Std.npy
      text_model: distilbert-base-uncased   # must be in the local Hugging Face cache ('' skips the check)
      out: data/official

and writes ``<out>/lgtm`` (what ``load_lgtm`` reads), ``<out>/tmr/<slot>`` (what ``load_tmr`` reads) and
``<out>/manifest.json`` (see models/official/release.py). Errors are one line naming the file and the fix.
"""
from __future__ import annotations

import sys

from models.official.release import import_release
from motion.core.errors import DataError
from stages.settings import settings_or_exit

REQUIRED = ("checkpoint", "tmr_dir", "mean", "std")


def main() -> None:
    """Import the release named by params ``official``."""
    section = settings_or_exit("import_official", view=False).official
    try:
        missing = [k for k in REQUIRED if not getattr(section, k)]
        if missing:
            raise DataError("params.yaml", f"official.{missing[0]} is not set",
                            f"set official.{', official.'.join(missing)} to the released files")
        manifest = import_release(section.checkpoint, section.tmr_dir, section.mean, section.std, section.out,
                                  section.tmr_folders, section.text_model or None)
    except DataError as error:
        sys.exit(f"import_official: {error}")
    lgtm = manifest["lgtm"]
    print(f"import_official: LGTM {lgtm['parameters']:,} parameters ({lgtm['keys']} keys) and "
          f"{len(manifest['tmr'])} TMRs verified -> {section.out}")


if __name__ == "__main__":
    main()
