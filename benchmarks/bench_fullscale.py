"""HumanML3D at full size on this machine: download (amass_local) + poses + features (+ texts) on a stand-in.

Run: ``python -m benchmarks.bench_fullscale WORKDIR [--fraction 1.0] [--texts] [--keep]``.

Generates the full-size stand-in (``benchmarks.fullsize``: AMASS-format tree matching HumanML3D's
real index.csv, captions, official splits) in WORKDIR, then runs each pipeline stage as its own
process (``python -m stages.<name>`` with a params file pointing every path into WORKDIR; the
built-in skeleton) and prints wall time and peak RSS per stage, the poses preflight's cost, the
clip counts per split against the official split files, and the Mean/Std of the features next to
HumanML3D's published ones. ``--texts`` adds split_texts (rules) and embed_texts (MiniLM) on all
captions. ``--dvc`` times ``dvc add``/``dvc status`` on the outputs; ``--dvc-repro`` runs the data stages
through ``dvc repro`` in a copy of the project and times a no-op ``dvc repro`` and ``dvc status`` there.
WORKDIR is deleted afterwards unless ``--keep``.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from benchmarks.fullsize import REFERENCE, write_standin
from motion.core.io import sha256_file
from motion.core.parts import FEATURE_GROUPS
from tests.support.params import with_overrides

REPO_ROOT = Path(__file__).resolve().parents[1]


def stage_params(work: Path, standin: Path, body_model: str = "builtin") -> dict[str, Any]:
    """The repository's params with every path in ``work`` and the download stage on the stand-in; with
    ``body_model="smplh"``, generated SMPL-H model files (the tests' format) in ``work/smplh`` on the CPU."""
    data = work / "data"
    smplh: dict[str, Any] = {}
    if body_model == "smplh":
        from tests.support.body_model import write_smplh_model

        for seed, gender in enumerate(("male", "female", "neutral")):
            write_smplh_model(work / "smplh" / gender / "model.npz", seed=seed)
        smplh = {"poses.smplh_dir": str(work / "smplh"), "compute.device": "cpu"}
    return with_overrides({**smplh,
        "paths.amass": str(data / "raw" / "amass"), "paths.annotations": str(data / "raw" / "annotations"),
        "paths.assets": str(data / "raw" / "assets"), "paths.poses": str(data / "poses"),
        "paths.features": str(data / "features"), "paths.texts": str(data / "texts"),
        "paths.embeddings": str(data / "embeddings"), "paths.metrics": str(work / "metrics"),
        "paths.cache": str(data / "cache"),
        "download.source": "amass_local", "download.humanml3d_dir": str(standin / "humanml3d"),
        "download.amass_local.archive_dir": str(standin / "amass"), "download.amass_local.link": True,
        "poses.body_model": body_model,
    })


def run_stage(name: str, params_file: Path) -> tuple[float, float, str]:
    """Run ``python -m stages.<name>`` with ``params_file``; returns (wall s, peak RSS GB, last output line)."""
    env = {**os.environ, "LGTM_PARAMS": str(params_file), "TQDM_DISABLE": "1"}
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", f"stages.{name}"], cwd=REPO_ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    output = proc.stdout.read() if proc.stdout else ""
    _, status, usage = os.wait4(proc.pid, 0)  # reaped here, so its own peak RSS is known
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - start
    if proc.returncode:
        raise SystemExit(f"stage {name} failed ({proc.returncode}):\n{output[-3000:]}")
    lines = [line for line in output.splitlines() if line.strip()]
    return wall, usage.ru_maxrss / 1e6, lines[-1] if lines else ""


def preflight_cost(params: dict[str, Any]) -> tuple[float, int, int]:
    """Seconds the poses preflight takes on the downloaded tree; (seconds, source files, clips)."""
    from motion.core.settings import build
    from motion.data.amass import read_index
    from motion.data.body_model import make_body_model
    from motion.data.poses import PoseSettings, preflight

    paths, section = params["paths"], params["poses"]
    settings = build(PoseSettings, section)
    start = time.perf_counter()
    rows = read_index(Path(paths["annotations"]) / "index.csv")
    with contextlib.redirect_stderr(io.StringIO()):  # no progress bar
        plan = preflight(rows, paths["amass"], Path(paths["annotations"]) / "texts",
                         make_body_model("builtin", "", "cpu", settings.batch_frames), settings)
    return time.perf_counter() - start, len(plan.sources), sum(len(s.clips) for s in plan.sources)


def split_counts(features: Path, official: Path) -> list[tuple[str, int, int]]:
    """(split, clips written, ids in the official split file) per split."""
    out = []
    for split in ("train", "val", "test", "all"):
        written = len((features / "splits" / f"{split}.txt").read_text().split())
        listed = len((official / f"{split}.txt").read_text().split())
        out.append((split, written, listed))
    return out


def mean_std_summary(features: Path) -> list[str]:
    """Per feature group: mean of Mean and of Std, ours vs HumanML3D's published Mean.npy / Std.npy."""
    mean, std = np.load(features / "Mean.npy"), np.load(features / "Std.npy")
    ref_mean, ref_std = np.load(REFERENCE / "Mean.npy"), np.load(REFERENCE / "Std.npy")
    lines = []
    names = ("root_rot_vel", "root_lin_vel", "root_height", "ric", "rot6d", "local_vel", "foot_contact")
    for name, group in zip(names, FEATURE_GROUPS):
        lines.append(f"  {name:13s} mean {mean[group].mean():+8.4f} (HumanML3D {ref_mean[group].mean():+8.4f})  "
                     f"std {std[group].mean():7.4f} (HumanML3D {ref_std[group].mean():7.4f})")
    return lines


def poses_worker(params_file: Path, cache: Path) -> None:
    """The poses stage with the content-keyed pose cache (missing sources skipped), writing its folder
    whole or not at all; prints the cache's hits and misses as the last line."""
    from motion.core.io import atomic_dir
    from motion.core.settings import build, read_yaml
    from motion.data.body_model import make_body_model
    from motion.data.poses import PoseSettings, extract_poses

    params = read_yaml(params_file)
    paths = params["paths"]
    settings = build(PoseSettings, {**params["poses"], "on_missing": "skip"})
    annotations = Path(paths["annotations"])
    with atomic_dir(paths["poses"]) as tmp:
        report = extract_poses(annotations / "index.csv", paths["amass"], annotations, tmp,
                               make_body_model("builtin", "", "cpu", settings.batch_frames), settings, cache)
    print(json.dumps(report["pose_cache"]))


def _cached_poses(params_file: Path, cache: Path) -> tuple[float, dict[str, int]]:
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "benchmarks.bench_fullscale", "--poses-worker", str(params_file),
                          str(cache)], cwd=REPO_ROOT, capture_output=True, text=True,
                         env={**os.environ, "TQDM_DISABLE": "1"})
    if out.returncode:
        raise SystemExit(f"cached poses failed:\n{out.stderr[-3000:]}")
    return time.perf_counter() - start, json.loads(out.stdout.strip().splitlines()[-1])


def incremental_rerun(work: Path, params_file: Path, dataset_folder: str) -> None:
    """Cached poses and features without one dataset folder, then again after adding it back: only its
    sources and clips are computed, and the features are the same bytes as the first run's from nothing."""
    archive = work / "standin" / "amass" / dataset_folder
    aside = work / "standin" / f"aside-{dataset_folder}"
    cache = work / "pose_cache"
    paths = yaml.safe_load(params_file.read_text())["paths"]
    features, feature_cache = Path(paths["features"]), Path(paths["cache"]) / "features"
    from_nothing = {name: sha256_file(features / name) for name in ("new_joint_vecs.npy", "new_joints.npy", "Mean.npy")}
    shutil.rmtree(feature_cache, ignore_errors=True)
    archive.rename(aside)
    run_stage("download", params_file)
    wall, counts = _cached_poses(params_file, cache)
    wall_f, _, last = run_stage("features", params_file)
    print(f"without {dataset_folder}: poses {wall:6.1f} s {counts}; "
          f"features {wall_f:.1f} s ({last.rsplit('; ', 1)[-1]})")
    aside.rename(archive)
    wall_dl, _, _ = run_stage("download", params_file)
    wall, counts = _cached_poses(params_file, cache)
    wall_f, _, last = run_stage("features", params_file)
    print(f"after adding {dataset_folder} back: download {wall_dl:.1f} s + poses {wall:.1f} s {counts} + "
          f"features {wall_f:.1f} s ({last.rsplit('; ', 1)[-1]}): only the new folder's sources and clips computed")
    same = all(sha256_file(features / name) == digest for name, digest in from_nothing.items())
    print(f"features after the incremental run are the bytes of the run from nothing: {same}")
    shutil.rmtree(cache)


def killed_and_resumed(work: Path, params_file: Path, sources: int) -> None:
    """SIGKILL the cached poses run at 50% of its sources; the rerun recomputes only the rest."""
    cache = work / "pose_cache"
    poses = Path(yaml.safe_load(params_file.read_text())["paths"]["poses"])
    if poses.exists():
        shutil.rmtree(poses)
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "benchmarks.bench_fullscale", "--poses-worker", str(params_file),
                             str(cache)], cwd=REPO_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ, "TQDM_DISABLE": "1"})
    done = 0
    while proc.poll() is None and done < sources // 2:
        time.sleep(0.2)
        done = sum(1 for _ in cache.rglob("*.npy")) if cache.exists() else 0
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    leftovers = [p.name for p in poses.parent.iterdir()  # not the output's lock file, .poses.lock
                 if p.is_dir() and p.name.startswith(f".{poses.name}.") and p.name.endswith(".tmp")]
    print(f"SIGKILL after {time.perf_counter() - start:.1f} s with {done} of {sources} sources cached; "
          f"{poses} exists: {poses.exists()}; temporary folders left: {len(leftovers)}")
    for name in leftovers:  # mkdtemp folders a SIGKILL cannot clean up; the next run writes a fresh one
        shutil.rmtree(poses.parent / name)
    wall, counts = _cached_poses(params_file, cache)
    print(f"resumed run: {wall:.1f} s, {counts} (hits = sources finished before the kill)")
    shutil.rmtree(cache)


def dvc_hashing(work: Path, outputs: list[Path], inputs: list[Path]) -> None:
    """How long DVC takes to track the full-size outputs as whole folders (``dvc add``, hard-linked into
    its cache) and to check them unchanged (``dvc status``, which a no-op ``dvc repro`` also does); then
    the same with the download stage's folders (the AMASS tree and HumanML3D's caption files) tracked too."""
    dvc = [sys.executable, "-m", "dvc"]
    subprocess.run(dvc + ["init", "--no-scm", "-q"], cwd=work, check=True)
    subprocess.run(dvc + ["config", "core.analytics", "false"], cwd=work, check=True)
    subprocess.run(dvc + ["config", "cache.type", "hardlink,symlink"], cwd=work, check=True)
    for group in (outputs, inputs):
        targets = [str(p.relative_to(work)) for p in group]
        files = sum(1 for p in group for f in p.rglob("*") if f.is_file())
        print(f"tracking {', '.join(targets)}: {files} files")
        for label, args in (("dvc add (first hashing)", ["add", "-q", *targets]),
                            ("dvc status (unchanged)", ["status"]), ("dvc status (again)", ["status"])):
            start = time.perf_counter()
            subprocess.run(dvc + args, cwd=work, check=True, capture_output=True)
            print(f"{label:24s} {time.perf_counter() - start:6.1f} s")


def dvc_pipeline(work: Path, standin: Path) -> None:
    """The data stages through DVC itself on the stand-in: a fresh copy of the project (``dvc.yaml``, the
    repository's params with the download stage on the stand-in), ``dvc repro features`` from nothing (the
    stages plus DVC's hashing and caching of their outputs, hard-linked), then a no-op ``dvc repro`` of the
    same target and ``dvc status`` on the full-size outputs."""
    from tests.support.workspace import dvc, make_workspace

    project = make_workspace(work / "project", tiny=False, overrides={
        "download.source": "amass_local", "download.humanml3d_dir": str(standin / "humanml3d"),
        "download.amass_local.archive_dir": str(standin / "amass"), "download.amass_local.link": True,
        "poses.body_model": "builtin"})
    dvc("config", "core.analytics", "false", cwd=project)
    dvc("config", "cache.type", "hardlink,symlink", cwd=project)
    for label, args in (("dvc repro features (from nothing)", ["repro", "features"]),
                        ("dvc repro features (no-op)", ["repro", "features"]),
                        ("dvc status features", ["status", "features"]),
                        ("dvc status features (again)", ["status", "features"])):
        start = time.perf_counter()
        out = dvc(*args, cwd=project, timeout=3600)
        tail = [line for line in out.splitlines() if line.strip()][-1:] or [""]
        print(f"{label:36s} {time.perf_counter() - start:7.1f} s   | {tail[0][:110]}")
    files = sum(1 for folder in ("data/poses", "data/features") for f in (project / folder).rglob("*") if f.is_file())
    print(f"  (DVC tracks data/raw and data/poses, data/features as folders: {files} files in the last two)")


def main() -> None:
    """Generate the stand-in, run the stages, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("work", type=Path, nargs="?")
    parser.add_argument("--fraction", type=float, default=1.0)
    parser.add_argument("--texts", action="store_true", help="also run split_texts (rules) and embed_texts (MiniLM)")
    parser.add_argument("--keep", action="store_true", help="keep WORKDIR")
    parser.add_argument("--no-resume", action="store_true", help="skip the incremental and SIGKILL reruns")
    parser.add_argument("--dvc", action="store_true", help="time dvc add / dvc status on the poses and features")
    parser.add_argument("--dvc-repro", action="store_true",
                        help="also run the data stages through dvc repro in a copy of the project, then a no-op "
                             "dvc repro and dvc status")
    parser.add_argument("--body-model", default="builtin", choices=("builtin", "smplh"),
                        help="smplh: smplx with generated SMPL-H model files, on the CPU")
    parser.add_argument("--poses-worker", nargs=2, type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.poses_worker:
        poses_worker(*args.poses_worker)
        return
    work = args.work.resolve()
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"machine: {os.cpu_count()} CPUs (load {load}); stages run one at a time as separate processes")

    summary = write_standin(work / "standin", args.fraction, progress=False)
    size = sum(p.stat().st_size for p in (work / "standin").rglob("*") if p.is_file())
    print(f"stand-in: {summary['sources']} source files, {summary['clips']} clips, {summary['captions']} captions, "
          f"{size / 1e9:.2f} GB on disk, generated in {summary['seconds']:.0f} s")

    params = stage_params(work, work / "standin", args.body_model)
    params_file = work / "params.yaml"
    params_file.write_text(yaml.safe_dump(params, sort_keys=False))
    stages = ["download", "poses", "features"] + (["split_texts", "embed_texts"] if args.texts else [])
    total = 0.0
    for name in stages:
        wall, rss, last = run_stage(name, params_file)
        total += wall if name in ("download", "poses", "features") else 0.0
        print(f"{name:12s} {wall:8.1f} s   peak RSS {rss:5.2f} GB   | {last[:150]}")
        if name == "download":
            seconds, files, clips = preflight_cost(params)
            print(f"{'preflight':12s} {seconds:8.1f} s   ({files} source files, {clips} clips checked)")
    print(f"download + poses + features: {total:.1f} s")

    features = Path(params["paths"]["features"])
    print("clips per split (features, with mirrors) vs the official split files:")
    for split, written, listed in split_counts(features, work / "standin" / "humanml3d" / "HumanML3D"):
        print(f"  {split:6s} {written:6d} written / {listed:6d} listed")
    print("Mean/Std per feature group (stand-in motion vs HumanML3D's published statistics):")
    print("\n".join(mean_std_summary(features)))
    if args.dvc:
        paths = params["paths"]
        dvc_hashing(work, [Path(paths["poses"]), features], [Path(paths["amass"]), Path(paths["annotations"])])
    if args.dvc_repro:
        dvc_pipeline(work, work / "standin")
    if not args.no_resume:
        incremental_rerun(work, params_file, "SSM")
        killed_and_resumed(work, params_file, summary["sources"])
    if not args.keep:
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
