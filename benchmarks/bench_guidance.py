"""Cost of constraint guidance: seconds per sample, guided vs unguided, on the CPU model of the default profile.

A randomly initialised LGTM of the params profile (speed does not depend on the weights), random text latents,
full-window motions, DDIM; guided runs enforce three constraints (a touch, a foot lift, a torso pitch) with 1 and
5 guidance steps per denoising step (``models.guidance``). Each setting is timed ``--repeats`` times, the settings
taking turns, and the fastest run is kept (the machine is shared). Writes a bar chart when ``--figure`` is given.

``--effect STATS_DIR`` (a folder with HumanML3D's Mean.npy / Std.npy) also prints, per constraint set, the mean
violation of 4 motions unguided and guided from the same noise, the mean joint displacement between them and the
largest change of a bone length (the plausibility cost of moving joints directly), for DDIM and DPM-Solver++.

    python -m benchmarks.bench_guidance --batch 1 8 --steps 50 --figure docs/guidance_cost.png
    python -m benchmarks.bench_guidance --batch 1 --repeats 1 --effect ../shared/reference/humanml3d
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from benchmarks import settings_for
from models.diffusion import pack_parts, sample
from models.guidance import MotionGuidance, parse_constraints, satisfaction
from models.kinematics import packed_to_joints
from models.lgtm import LGTM, LGTMConfig
from motion.core.parts import FEATURE_DIM
from motion.core.sampling import SamplingConfig
from motion.core.settings import convert

EFFECT_GOALS = ("near right_wrist left_shoulder 0.05 frames 30-50",
                "above right_foot 0.2 frames 20-40; planted left_foot frames 20-40",
                "planted left_foot; planted right_foot; near right_wrist pelvis 0.05 frames 30-50",
                "pitch 45 frames 30-50", "near left_wrist head 0.1 frames end")
GOAL = "near right_wrist left_shoulder 0.05 frames 20-40; above right_foot 0.2 frames 30-end; pitch 30 frames 10-end"


def guidance_for(batch: int, iterations: int | None) -> MotionGuidance | None:
    """The guidance of a timed run (None: unguided), on a Mean/Std of the size of HumanML3D's."""
    if iterations is None:
        return None
    rng = np.random.default_rng(0)
    mean, std = torch.from_numpy(rng.normal(0, 0.1, FEATURE_DIM)).float(), torch.full((FEATURE_DIM,), 0.1)
    return MotionGuidance([parse_constraints(GOAL)] * batch, mean, std, 1.0, iterations)


def seconds_per_sample(model: LGTM, batch: int, steps: int, settings: dict[str, int | None],
                       repeats: int) -> dict[str, float]:
    """Per setting, the fastest of ``repeats`` runs of one batch divided by the batch; the settings take turns
    within each repeat (after one warm-up run) so a change of load on the shared machine hits them alike."""
    text = torch.randn(batch, 7, model.cfg.text_dim, generator=torch.Generator().manual_seed(0))
    lengths = torch.full((batch,), model.cfg.window)
    cfg = SamplingConfig("ddim", steps, 0.0, 1.0)
    sample(model, text, lengths, SamplingConfig("ddim", 2, 0.0, 1.0), guidance=guidance_for(batch, 1))  # warm-up
    best = {name: float("inf") for name in settings}
    for _ in range(repeats):
        for name, iterations in settings.items():
            guidance = guidance_for(batch, iterations)
            start = time.perf_counter()
            sample(model, text, lengths, cfg, generator=torch.Generator().manual_seed(1), guidance=guidance)
            best[name] = min(best[name], time.perf_counter() - start)
    return {name: seconds / batch for name, seconds in best.items()}


def bone_lengths(joints: np.ndarray) -> np.ndarray:
    """Bone lengths (..., T, 21) of joints (..., T, 22, 3)."""
    from motion.core.skeleton import PARENTS

    return np.linalg.norm(joints[..., 1:, :] - joints[..., list(PARENTS[1:]), :], axis=-1)


def effect(model: LGTM, stats: Path, batch: int = 4) -> None:
    """Print violation unguided -> guided, displacement and bone-length change per constraint set and sampler."""
    mean = torch.from_numpy(np.load(stats / "Mean.npy")).float()
    std = torch.from_numpy(np.load(stats / "Std.npy")).float()
    text = torch.randn(batch, 7, model.cfg.text_dim, generator=torch.Generator().manual_seed(0))
    lengths = torch.full((batch,), model.cfg.window)
    print(f"effect on {batch} motions of {model.cfg.window} frames (mean violation: m, pitch in degrees)")
    for goal in EFFECT_GOALS:
        constraints = parse_constraints(goal)
        for sampler, steps in (("ddim", 50), ("dpmsolver++", 20)):
            cfg = SamplingConfig(sampler, steps, 0.0, 1.0)
            runs = []
            for guidance in (None, MotionGuidance([constraints] * batch, mean, std)):
                parts = sample(model, text, lengths, cfg, generator=torch.Generator().manual_seed(1), guidance=guidance)
                runs.append(packed_to_joints(pack_parts(parts), mean, std).double().numpy())
            rows = [[[r["violation"] for r in satisfaction(constraints, j)] for j in run] for run in runs]
            before, after = np.mean(rows[0], 0), np.mean(rows[1], 0)
            moved = np.linalg.norm(runs[1] - runs[0], axis=-1).mean()
            bones = np.abs(bone_lengths(runs[1]) - bone_lengths(runs[0])).max()
            print(f"  {goal:80s} {sampler:11s} violation {np.round(before, 3)} -> {np.round(after, 3)}, "
                  f"joints moved {moved:.3f} m on average, bone length change up to {bones:.3f} m")


def main() -> None:
    """Print seconds per sample for each batch size and guidance setting; optionally draw them."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default=None)
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--figure", default=None, help="write a bar chart (PNG) here")
    parser.add_argument("--effect", default=None, metavar="STATS_DIR", help="also measure the effect (Mean/Std here)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    settings = settings_for(args.profile)
    cfg = convert(LGTMConfig, settings.lgtm.model)
    torch.manual_seed(0)
    model = LGTM(cfg).eval()
    settings_run = {"unguided": None, "guided, 1 step": 1, "guided, 5 steps": 5}
    print(f"LGTM {settings.profile} profile (dim {cfg.dim}, window {cfg.window}), DDIM {args.steps} steps, CPU "
          f"{args.threads} thread(s); seconds per sample (fastest of {args.repeats})")
    results: dict[int, dict[str, float]] = {}
    for batch in args.batch:
        results[batch] = seconds_per_sample(model, batch, args.steps, settings_run, args.repeats)
        row = results[batch]
        cells = [f"{k} {v:.3f} s (x{v / row['unguided']:.2f})" for k, v in row.items()]
        print(f"  batch {batch:3d}: " + ", ".join(cells))
    if args.figure:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(6, 3.2))
        width = 0.8 / len(settings_run)
        for i, name in enumerate(settings_run):
            ax.bar(np.arange(len(results)) + i * width, [results[b][name] for b in results], width, label=name)
        ax.set_xticks(np.arange(len(results)) + width * (len(settings_run) - 1) / 2, [f"batch {b}" for b in results])
        ax.set_ylabel("seconds per sample")
        ax.set_title(f"Constraint guidance cost: {settings.profile} LGTM, DDIM {args.steps} steps, CPU")
        ax.legend(fontsize=8)
        fig.tight_layout()
        Path(args.figure).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(args.figure, dpi=110)
        print(f"figure: {args.figure}")
    if args.effect:
        effect(model, Path(args.effect))


if __name__ == "__main__":
    main()
