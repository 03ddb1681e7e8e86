"""Parity of the official-compatible loaders against goldens made by the published LGTM, TMR and T2M code.

    python -m tools.official_parity GOLDEN_DIR [--skip-ddim] [--skip-fake]

GOLDEN_DIR is laid out like ``lgtm_official/``: ``<stem>_io.npz`` with ``<stem>/**/*.ckpt`` (LGTM
denoiser), ``<stem>_ddim.npz`` (DDIM sampling, every ``steps<N>_x0_263`` found), ``tmr_<x>_io.npz``
with ``tmr_<x>/<name>/`` (official TMR folders), ``t2m_<x>_io.npz`` with ``t2m_evaluator_<x>.tar``,
and the paper key lists ``lgtm_paper_keys.tsv`` / ``tmr_paper_keys.tsv`` (full-size fakes). Configs,
sizes, lengths, timesteps and step counts are read from the files. Every check goes through the
real import path (``models.official``) and prints one line: name, max |error|, tolerance, verdict.
The exit status is 1 when any check fails or no golden is found.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from models.diffusion import pack_parts, sample, sampling_scheduler
from models.official.lgtm_ckpt import load_official_lgtm
from models.official.tmr import WHOLE_BODY, load_official_tmr
from motion.core.parts import PART_INDICES, PART_NAMES, TEXT_SLOTS, merge_parts
from motion.core.sampling import SamplingConfig

LGTM_TOL = 1e-4   # official 1-vs-2-thread noise: 1.3e-6
TMR_TOL = 1e-5
T2M_TOL = 1e-5


@dataclass(frozen=True)
class Check:
    """One parity check: its name, the measured max |error|, and the tolerance it must stay within."""

    name: str
    error: float
    tolerance: float

    @property
    def ok(self) -> bool:
        return bool(np.isfinite(self.error)) and self.error <= self.tolerance

    def line(self) -> str:
        return f"{'PASS' if self.ok else 'FAIL'}  {self.name:<48} max|err| {self.error:.3e}  tol {self.tolerance:.0e}"


def max_error(a: np.ndarray | torch.Tensor, b: np.ndarray) -> float:
    """Max absolute difference (inf on a shape mismatch)."""
    a = a.detach().cpu().numpy() if isinstance(a, torch.Tensor) else np.asarray(a)
    if a.shape != b.shape:
        return float("inf")
    return float(np.abs(a.astype(np.float64) - b.astype(np.float64)).max())


def text_latents_in_our_order(golden: np.lib.npyio.NpzFile) -> torch.Tensor:
    """(B, 7, D) text latents reordered from the golden's ``text_latent_slots`` to TEXT_SLOTS."""
    slots = [str(s) for s in golden["text_latent_slots"]]
    return torch.from_numpy(golden["text_latents"][:, [slots.index(s) for s in TEXT_SLOTS]])


def packed_from_263(x: np.ndarray, golden: np.lib.npyio.NpzFile) -> torch.Tensor:
    """Our packed part layout from 263-d golden features split with the golden's ``part_index_<part>``."""
    t = torch.from_numpy(x)
    return pack_parts({p: t[..., golden[f"part_index_{p}"].tolist()] for p in PART_NAMES})


def find_checkpoint(folder: Path, stem: str) -> Path:
    """The LGTM .ckpt of ``<stem>_io.npz``: under ``<stem>/``, else the only .ckpt in the folder."""
    found = sorted((folder / stem).rglob("*.ckpt")) or sorted(folder.rglob("*.ckpt"))
    if len(found) != 1:
        raise FileNotFoundError(f"{folder}: expected one LGTM .ckpt for {stem}_io.npz, found {len(found)}")
    return found[0]


def lgtm_checks(folder: Path, stem: str, ddim: bool = True,
                ddim_steps: tuple[int, ...] | None = None) -> Iterator[Check]:
    """Denoiser forward on every frame (and the DDIM goldens: all step counts found, or ``ddim_steps``)."""
    model = load_official_lgtm(find_checkpoint(folder, stem))
    io = np.load(folder / f"{stem}_io.npz")
    for p in PART_NAMES:
        if not np.array_equal(io[f"part_index_{p}"], PART_INDICES[p]):
            yield Check(f"{stem} part_index_{p} == PART_INDICES", float("inf"), 0.0)
    x_t = {p: torch.from_numpy(io[f"x_t_{p}"]) for p in PART_NAMES}
    with torch.no_grad():
        out = model(x_t, torch.from_numpy(io["timesteps"]), text_latents_in_our_order(io), torch.from_numpy(io["mask"]))
    yield Check(f"{stem} denoiser x0, all frames", max(max_error(out[p], io[f"x0_{p}"]) for p in PART_NAMES), LGTM_TOL)
    yield Check(f"{stem} denoiser x0_263 (packed)", max_error(merge_parts(out), io["x0_263"]), LGTM_TOL)
    ddim_path = folder / f"{stem}_ddim.npz"
    if not ddim or not ddim_path.is_file():
        return
    golden = np.load(ddim_path)
    recorded = json.loads(str(golden["scheduler_config"]))
    ours = dict(sampling_scheduler("ddim", "leading").config)  # the official code's DDIM spacing
    differing = [k for k, v in recorded.items() if not k.startswith("_") and ours.get(k) != v]
    yield Check(f"{stem} DDIM scheduler config ({len(differing)} keys differ)", float(len(differing)), 0.0)
    noise = packed_from_263(golden["x_T_263"], golden)
    latents = text_latents_in_our_order(golden)
    lengths = torch.from_numpy(golden["lengths"])
    counts = sorted(int(k[len("steps"):-len("_x0_263")]) for k in golden.files
                    if k.startswith("steps") and k.endswith("_x0_263") and "first" not in k)
    for steps in counts if ddim_steps is None else [n for n in counts if n in ddim_steps]:
        scheduler = sampling_scheduler("ddim", "leading")
        scheduler.set_timesteps(steps)
        yield Check(f"{stem} DDIM {steps} steps: timesteps", max_error(scheduler.timesteps.numpy(),
                                                                      golden[f"steps{steps}_timesteps"]), 0.0)
        eta = float(golden["eta"]) if "eta" in golden.files else 0.0  # the published goldens use eta = 0
        parts = sample(model, latents, lengths, SamplingConfig("ddim", steps, eta, 1.0, "leading"), initial_noise=noise,
                       zero_padding=False)
        yield Check(f"{stem} DDIM {steps} steps: final x, all frames",
                    max_error(merge_parts(parts), golden[f"steps{steps}_x0_263"]), LGTM_TOL)


def tmr_checks(folder: Path, stem: str) -> Iterator[Check]:
    """Text/motion latents (mu, logvar) and decoder output of every official TMR named in ``<stem>_io.npz``."""
    io = np.load(folder / f"{stem}_io.npz")
    names = sorted(k[: -len("_text_mu")] for k in io.files if k.endswith("_text_mu"))
    tokens, token_mask = torch.from_numpy(io["text_tokens"]), torch.from_numpy(io["text_mask"])
    for name in names:
        model = load_official_tmr(folder / stem / name, part=name if name in (WHOLE_BODY, *PART_NAMES) else None)
        motion, mask = torch.from_numpy(io[f"{name}_motion"]), torch.from_numpy(io[f"{name}_motion_mask"])
        with torch.no_grad():
            text_mu, text_logvar = model.text_encoder(tokens, token_mask)
            motion_mu, motion_logvar = model.motion_encoder(motion, mask)
            decoded = model.motion_decoder(motion_mu, mask)
        for what, value in (("text_mu", text_mu), ("text_logvar", text_logvar), ("motion_mu", motion_mu),
                            ("motion_logvar", motion_logvar), ("decoded_motion", decoded)):
            yield Check(f"{stem} {name} {what}", max_error(value, io[f"{name}_{what}"]), TMR_TOL)


def t2m_checks(folder: Path, stem: str) -> Iterator[Check]:
    """Text and motion embeddings of the T2M evaluator through the evaluation's embedding path."""
    from models.t2m_evaluator import T2MEvaluator, read_t2m_checkpoint

    suffix = stem[len("t2m_"):-len("_io")]
    tars = sorted(folder.glob(f"t2m_evaluator_{suffix}.tar")) or sorted(folder.glob("*.tar"))
    if len(tars) != 1:
        raise FileNotFoundError(f"{folder}: expected one finest.tar-format file for {stem}.npz, found {len(tars)}")
    io = np.load(folder / f"{stem}.npz")
    motions = io["motions"]
    # Identity statistics: the golden motions are already normalised with the evaluator's mean/std.
    evaluator = T2MEvaluator(read_t2m_checkpoint(tars[0]), None, np.zeros(motions.shape[-1]),
                             np.ones(motions.shape[-1]))
    text = evaluator.embed_word_vectors(torch.from_numpy(io["word_embeddings"]), torch.from_numpy(io["pos_one_hots"]),
                                        torch.from_numpy(io["cap_lens"]))
    motion = evaluator.embed_normalised_motions(torch.from_numpy(motions), torch.from_numpy(io["m_lens"]))
    yield Check(f"{stem} text embedding (input order)", max_error(text, io["text_embedding"]), T2M_TOL)
    yield Check(f"{stem} motion embedding (input order)", max_error(motion, io["motion_embedding"]), T2M_TOL)
    align = io["align_idx"]
    yield Check(f"{stem} wrapper order (align_idx)", max(max_error(text[align], io["wrapper_text_embedding"]),
                                                         max_error(motion[align], io["wrapper_motion_embedding"])),
                T2M_TOL)


def fake_checks(folder: Path) -> Iterator[Check]:
    """Full-size fakes from the paper key lists: they load, convert to our format, reload and run a forward pass."""
    from models.official.convert import (
        convert_lgtm,
        convert_tmr,
        verify_lgtm_folder,
        verify_tmr_folder,
    )
    from models.official.fakes import write_fake_lgtm_checkpoint, write_fake_tmr_folder

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        if (folder / "lgtm_paper_keys.tsv").is_file():
            ckpt = write_fake_lgtm_checkpoint(folder / "lgtm_paper_keys.tsv", root / "fake.ckpt")
            mean, std = np.zeros(263, np.float32), np.ones(263, np.float32)
            np.save(root / "Mean.npy", mean)
            np.save(root / "Std.npy", std)
            report = convert_lgtm(ckpt, root / "lgtm", root / "Mean.npy", root / "Std.npy")
            error = verify_lgtm_folder(root / "lgtm", ckpt)
            yield Check(f"paper-size fake LGTM ({report['parameters']:,} params) convert+forward", error, 0.0)
        if (folder / "tmr_paper_keys.tsv").is_file():
            source, part = write_fake_tmr_folder(folder / "tmr_paper_keys.tsv", root / "tmr_fake")
            convert_tmr(source, root / "tmr", part)
            yield Check(f"paper-size fake TMR ({part}) convert+forward", verify_tmr_folder(root / "tmr", source), 0.0)


def all_checks(folder: str | Path, ddim: bool = True, fakes: bool = True) -> Iterator[Check]:
    """Every check the files in ``folder`` allow, in a fixed order (yielded as they finish)."""
    folder = Path(folder)
    runs: list[Callable[[], Iterator[Check]]] = []
    for io in sorted(folder.glob("*_io.npz")):
        stem = io.name[: -len("_io.npz")]
        keys = set(np.load(io).files)
        if "x_t_263" in keys:
            runs.append(lambda s=stem: lgtm_checks(folder, s, ddim))
        elif "text_tokens" in keys:
            runs.append(lambda s=stem: tmr_checks(folder, s))
        elif "word_embeddings" in keys:
            runs.append(lambda s=stem: t2m_checks(folder, f"{s}_io"))
    if fakes:
        runs.append(lambda: fake_checks(folder))
    for run in runs:
        yield from run()


def main(argv: list[str] | None = None) -> int:
    """Run all checks, print one line each; exit 1 on any failure or when nothing was checked."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("golden_dir", type=Path)
    parser.add_argument("--skip-ddim", action="store_true", help="skip the DDIM sampling goldens (slow on CPU)")
    parser.add_argument("--skip-fake", action="store_true", help="skip the paper-size fakes")
    args = parser.parse_args(argv)
    if not args.golden_dir.is_dir():
        print(f"{args.golden_dir}: golden folder is missing", file=sys.stderr)
        return 1
    torch.manual_seed(0)
    failed = 0
    checks = 0
    for check in all_checks(args.golden_dir, ddim=not args.skip_ddim, fakes=not args.skip_fake):
        print(check.line(), flush=True)
        checks += 1
        failed += not check.ok
    print(f"{checks - failed}/{checks} checks passed")
    return 1 if failed or checks == 0 else 0


if __name__ == "__main__":
    raise SystemExit(main())
