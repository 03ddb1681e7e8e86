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

and writes ``<out>/lgtm`` (what ``load_lgtm`` reads), ``<out>/tmr/<slot>`` (what ``load_tmr`` reads),
``<out>/tmr/part_stats.npz`` and ``<out>/manifest.json`` (see models/official/release.py). Errors are one line
naming the file and the fix.

In dvc.yaml it runs on every ``dvc repro``: while ``models.source`` is ``trained`` and no checkpoint is set it
only writes ``<out>/manifest.json`` saying so (``{"configured": false}``), in well under a second; with
``models.source: official`` the four files must be set.
"""
from __future__ import annotations

from pathlib import Path

from motion.core.errors import DataError
from motion.core.io import atomic_dir, write_json
from stages.entry import stage_main
from stages.settings import Settings

REQUIRED = ("checkpoint", "tmr_dir", "mean", "std")
NOT_CONFIGURED = {"configured": False,
                  "note": "no released weights imported: params official.checkpoint is empty and models.source is "
                          "trained (set official.* and models.source: official to import them; docs/official.md)"}


def write_not_configured(out: str | Path) -> None:
    """The stage's output while nothing is configured: ``<out>/manifest.json`` alone, saying so."""
    with atomic_dir(out) as tmp:
        write_json(Path(tmp) / "manifest.json", NOT_CONFIGURED)


def run(settings: Settings) -> None:
    """Import the release named by params ``official`` (or record that none is configured)."""
    section = settings.official
    if settings.models.source == "trained" and not section.checkpoint:
        write_not_configured(section.out)
        print(f"import_official: not configured (models.source trained, no official.checkpoint) -> {section.out}")
        return
    missing = [k for k in REQUIRED if not getattr(section, k)]
    if missing:
        raise DataError("params.yaml", f"official.{missing[0]} is not set",
                        f"set official.{', official.'.join(missing)} to the released files")
    from models.official.release import import_release

    manifest = import_release(section.checkpoint, section.tmr_dir, section.mean, section.std, section.out,
                              section.tmr_folders, section.text_model or None, section.tmr_stats or None)
    lgtm = manifest["lgtm"]
    print(f"import_official: LGTM {lgtm['parameters']:,} parameters ({lgtm['keys']} keys) and "
          f"{len(manifest['tmr'])} TMRs verified -> {section.out}")


def main() -> None:
    """Run the stage with the settings of params.yaml."""
    stage_main("import_official", run)


if __name__ == "__main__":
    main()
