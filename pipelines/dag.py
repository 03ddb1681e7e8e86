"""The DVC pipeline as data: stage instances, their commands and upstream stages, read from dvc.yaml."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class StageNode:
    """One DVC stage instance (``train_tmr@left_arm`` for a foreach item)."""

    name: str
    cmd: str
    upstream: tuple[str, ...]
    outs: tuple[str, ...]
    gpu: bool = False  # dvc.yaml `meta: {gpu: true}` marks stages that use a GPU when there is one
    meta: dict = field(default_factory=dict, hash=False, compare=False)


def load_dag(repo_root: str | Path = ".") -> list[StageNode]:
    """Read dvc.yaml through DVC itself and return its stage instances in a topological order."""
    from dvc.repo import Repo

    with Repo(str(repo_root)) as repo:
        graph = repo.index.graph  # edges point from a stage to the stages it depends on
        stages = [s for s in repo.index.stages if getattr(s, "cmd", None)]
        nodes: dict[str, StageNode] = {}
        for stage in stages:
            upstream = sorted({dep.name for dep in graph.successors(stage) if getattr(dep, "cmd", None)})
            meta = dict(stage.meta or {})
            cmd = stage.cmd if isinstance(stage.cmd, str) else " && ".join(stage.cmd)
            nodes[stage.name] = StageNode(
                name=stage.name,
                cmd=cmd,
                upstream=tuple(upstream),
                outs=tuple(str(o.def_path) for o in stage.outs),
                gpu=bool(meta.get("gpu", False)),
                meta=meta,
            )
    return topological_order(nodes)


def topological_order(nodes: dict[str, StageNode]) -> list[StageNode]:
    """Stages sorted so that every stage comes after its upstream stages (ties broken by name)."""
    done: list[StageNode] = []
    placed: set[str] = set()
    remaining = dict(sorted(nodes.items()))
    while remaining:
        ready = [n for n in remaining.values() if all(u in placed or u not in nodes for u in n.upstream)]
        if not ready:
            raise ValueError(f"dvc.yaml has a cycle among stages: {sorted(remaining)}")
        for node in ready:
            done.append(node)
            placed.add(node.name)
            del remaining[node.name]
    return done
