"""Wall time of the evaluate stage's CPU default on the pipeline's data, with untrained models of the CPU configs.

    python -m benchmarks.bench_evaluate [--profile cpu] [--threads 1]

Needs the outputs of features, split_texts and embed_texts (paths in params.yaml). The TMRs and the LGTM are
randomly initialised with the sizes of ``tmr.model`` and ``lgtm.model`` (of the profile) and
saved in a temporary folder: the metric values are meaningless, the timings are those of trained models.
Prints the seconds spent in generation, in evaluator encoding + metrics, and in total.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import tempfile
import time
from pathlib import Path

import torch


def main() -> None:
    """Run the evaluation once cold (sampling) and once warm (cache hits only) and print the timings."""
    p = argparse.ArgumentParser()
    p.add_argument("--profile", default=None, help="settings profile (default: params.yaml's profile)")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    from benchmarks import settings_for
    from models.checkpoint import save_model
    from models.inference import LGTMGenerator, TrainedLGTM
    from models.lgtm import LGTM, LGTMConfig
    from models.tmr import TMR, TMRConfig, load_tmr, save_tmr
    from motion.core.io import write_json
    from motion.core.parts import FEATURE_DIM, TEXT_SLOTS
    from motion.core.settings import to_dict
    from motion.datasets import feature_dims
    from motion.eval.evaluation import TMREvaluator
    from motion.text.embeddings import TextEmbeddings
    from stages import evaluate as stage

    torch.set_num_threads(args.threads)
    settings = settings_for(args.profile)
    paths = settings.paths
    token_dim = TextEmbeddings.load(paths.embeddings).token_dim
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        torch.manual_seed(0)
        tmr_model = to_dict(settings.tmr.model)
        for name in TEXT_SLOTS:
            dims = feature_dims(name)
            cfg = TMRConfig.from_dict({**tmr_model, "motion_dim": FEATURE_DIM if dims is None else len(dims),
                                       "token_dim": token_dim})
            save_tmr(TMR(cfg), root / "tmr" / name)
            save_tmr(TMR(cfg), root / "evaluator" / name)
        lgtm_cfg = LGTMConfig.from_dict({**to_dict(settings.lgtm.model),
                                         "text_dim": settings.tmr.model.latent_dim})  # as train_lgtm sets it
        run = root / "lgtm" / "lgtm"  # one training run of the lgtm variant: the other rows are the same cost each
        save_model(LGTM(lgtm_cfg).eval(), run / "model.safetensors")
        write_json(run / "config.json", {"model": lgtm_cfg.to_dict(), "train": {"cond_drop_prob": 0.0}})
        settings = dataclasses.replace(
            settings, paths=dataclasses.replace(paths, tmr=str(root / "tmr"), lgtm=str(root / "lgtm"),
                                                evaluator=str(root / "evaluator"), cache=str(root / "cache")),
            models=dataclasses.replace(settings.models, tmr=str(root / "tmr"), lgtm=str(run),
                                       runs=str(root / "lgtm"), evaluator=str(root / "evaluator")),
            lgtm=dataclasses.replace(settings.lgtm, runs={"lgtm": settings.lgtm.runs["lgtm"]}),
            evaluate=dataclasses.replace(settings.evaluate, variants=["lgtm"]))
        timings = {}
        for label in ("cold", "warm"):
            start = time.perf_counter()
            stats = Path(paths.features) / "part_stats.npz"
            spaces = {name: TMREvaluator.from_folders(load_tmr, root / name, paths.embeddings, stats)
                      for name in ("evaluator", "tmr")}
            trained = TrainedLGTM(run, Path(paths.features), root / "tmr", Path(paths.embeddings),
                                  settings.lgtm.text_latents, settings.seed)
            generator = LGTMGenerator.load(trained, "cpu", settings.evaluate.batch_size)
            results = stage.run(settings, spaces, {"lgtm": generator}, lgtm_cfg.window)
            stage.write_outputs(results, root / "evaluate", root / "metrics" / "evaluate.json")
            timings[label] = round(time.perf_counter() - start, 1)
        counts = results["counts"]
    print(json.dumps({"profile": settings.profile, "threads": args.threads, "captions": counts["captions"],
                      "motions": counts["motions"], "seconds_cold": timings["cold"],
                      "seconds_warm_cache": timings["warm"],
                      "seconds_generation": round(timings["cold"] - timings["warm"], 1)}, indent=2))


if __name__ == "__main__":
    main()
