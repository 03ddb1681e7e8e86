"""HumanML3D's annotations (index.csv, caption texts, train/val/test splits) brought into the CONTRACT layout."""
from __future__ import annotations

import re
import shutil
import zipfile
from pathlib import Path, PurePosixPath
from typing import Any

from motion.core.conventions import SPLITS
from motion.core.errors import DataError
from motion.data.amass import read_index

_TEXT_NAME = re.compile(r"^M?\d+\.txt$")


def first_existing(candidates: list[Path]) -> Path | None:
    """The first of ``candidates`` that exists, None when none does."""
    return next((p for p in candidates if p.exists()), None)


def _copy_texts(texts: Path, out: Path) -> set[str]:
    """Copy HumanML3D caption files (from a texts/ folder or texts.zip) into ``out``; return their ids."""
    out.mkdir(parents=True, exist_ok=True)
    ids: set[str] = set()
    if texts.is_dir():
        for path in sorted(texts.iterdir()):
            if _TEXT_NAME.match(path.name):
                shutil.copyfile(path, out / path.name)
                ids.add(path.stem)
        return ids
    try:
        with zipfile.ZipFile(texts) as zf:
            for info in zf.infolist():
                name = PurePosixPath(info.filename).name
                if info.is_dir() or not _TEXT_NAME.match(name) or "__MACOSX" in info.filename:
                    continue
                with zf.open(info) as source, open(out / name, "wb") as dest:
                    shutil.copyfileobj(source, dest)
                ids.add(Path(name).stem)
    except zipfile.BadZipFile as err:
        raise DataError(texts, f"is not a readable zip ({err})", "download texts.zip from HumanML3D again") from None
    return ids


def prepare_annotations(humanml3d_dir: str | Path, out: str | Path) -> dict[str, Any]:
    """Bring HumanML3D's index.csv, caption texts and train/val/test splits into ``out`` (CONTRACT layout).

    Looks in ``humanml3d_dir`` and its ``HumanML3D/`` subfolder (the repository's layout). Splits
    keep original ids only (mirrored ``M`` ids are added by later stages).
    """
    root, out = Path(humanml3d_dir), Path(out)
    if not str(humanml3d_dir) or not root.is_dir():
        raise DataError(root, "HumanML3D folder does not exist",
                        "clone github.com/EricGuo5513/HumanML3D and set download.humanml3d_dir to it")
    places = [root, root / "HumanML3D"]
    index = first_existing([p / "index.csv" for p in places])
    texts = first_existing([p / "texts" for p in places] + [p / "texts.zip" for p in places])
    if index is None:
        raise DataError(root, "has no index.csv", "point download.humanml3d_dir at a HumanML3D checkout")
    if texts is None:
        raise DataError(root, "has neither texts/ nor texts.zip",
                        "point download.humanml3d_dir at a HumanML3D checkout")
    index_ids = [clip.clip_id for clip in read_index(index)]
    out.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(index, out / "index.csv")
    text_ids = _copy_texts(texts, out / "texts")
    known = set(index_ids)
    counts: dict[str, int] = {}
    (out / "splits").mkdir(exist_ok=True)
    for split in SPLITS:
        path = first_existing([p / f"{split}.txt" for p in places] + [p / "splits" / f"{split}.txt" for p in places])
        if path is None:
            raise DataError(root, f"has no {split}.txt", "point download.humanml3d_dir at a HumanML3D checkout")
        ids = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
        ids = [i for i in ids if i and not i.startswith("M")]
        unknown = [i for i in ids if i not in known]
        if unknown:
            raise DataError(path, f"{len(unknown)} ids are not in index.csv (first: {unknown[0]})",
                            "use index.csv and the split files of the same HumanML3D version")
        uncaptioned = [i for i in ids if i not in text_ids]
        if uncaptioned:
            raise DataError(texts, f"{len(uncaptioned)} {split} ids have no caption file (first: {uncaptioned[0]})",
                            "use the complete texts.zip of HumanML3D")
        (out / "splits" / f"{split}.txt").write_text("".join(f"{i}\n" for i in ids), encoding="utf-8")
        counts[split] = len(ids)
    return {"index_rows": len(index_ids), "texts": len(text_ids), "splits": counts}
