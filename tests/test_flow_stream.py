"""Stage output reaches the Prefect log line by line, progress bars throttled, the last line kept for errors."""
from __future__ import annotations

import os
from pathlib import Path

from pipelines.dag import StageNode, topological_order
from pipelines.flow import _stream, _with_upstream


class ListLogger:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def info(self, message: str, *args: object) -> None:
        self.lines.append(message % args if args else message)


def test_progress_updates_are_throttled_and_the_last_line_is_returned(tmp_path: Path):
    log = ListLogger()
    command = "printf 'a\\rb\\rc\\nd\\n'; echo 'x.npz: corrupt' >&2; exit 3"
    code, last = _stream(command, tmp_path, dict(os.environ), log, progress_every_s=100)
    assert code == 3 and last == "x.npz: corrupt"
    assert log.lines == ["a", "c", "d", "x.npz: corrupt"]  # 'b' was a progress update within 100 s of 'a'


def test_topological_order_and_upstream_selection():
    nodes = {
        "c": StageNode("c", "c", ("a", "b@1"), ()),
        "a": StageNode("a", "a", (), ()),
        "b@1": StageNode("b@1", "b", ("a",), ()),
        "b@2": StageNode("b@2", "b", ("a",), ()),
    }
    order = [n.name for n in topological_order(nodes)]
    assert order.index("a") < order.index("b@1") < order.index("c") and order.index("a") < order.index("b@2")
    assert _with_upstream(list(nodes.values()), ["b"]) == {"a", "b@1", "b@2"}
    assert _with_upstream(list(nodes.values()), ["c"]) == {"a", "b@1", "c"}
