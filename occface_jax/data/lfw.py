"""LFW verification pairs in the published layout.

Layout (Huang et al. 2007)::

    ROOT/pairs.txt                         header "<folds> <pairs per fold>" (or "<pairs>" in
                                           pairsDevTrain/Test.txt), then per fold the matched pairs
                                           "name n1 n2" followed by the mismatched "name1 n1 name2 n2"
    ROOT/lfw/<Name>/<Name>_<nnnn>.jpg      (or the person folders directly under ROOT)
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import numpy as np

from occface_jax.data.errors import DatasetLayoutError
from occface_jax.data.records import read_image, resize_image


@dataclasses.dataclass(frozen=True)
class Pair:
    """One verification pair: two (name, image number) and whether they show the same person."""

    name_a: str
    number_a: int
    name_b: str
    number_b: int
    same: bool
    fold: int


def parse_pairs(text: str) -> list[Pair]:
    """Pairs of a ``pairs.txt``; matched lines have 3 fields, mismatched 4; the fold of a pair is its
    position over the header's pairs-per-fold (matched + mismatched)."""
    lines = [line.split() for line in text.splitlines() if line.strip()]
    if not lines:
        raise DatasetLayoutError("pairs file is empty")
    header = lines[0]
    if not all(tok.isdigit() for tok in header) or len(header) not in (1, 2):
        raise DatasetLayoutError(
            f"pairs file header should be '<folds> <n>' or '<n>', got {header}"
        )
    per_fold = 2 * int(header[-1]) if len(header) == 2 else len(lines) - 1
    pairs = []
    for i, fields in enumerate(lines[1:]):
        fold = i // max(per_fold, 1)
        if len(fields) == 3:
            pairs.append(Pair(fields[0], int(fields[1]), fields[0], int(fields[2]), True, fold))
        elif len(fields) == 4:
            pairs.append(Pair(fields[0], int(fields[1]), fields[2], int(fields[3]), False, fold))
        else:
            raise DatasetLayoutError(
                f"pairs file line {i + 2} has {len(fields)} fields, expected 3 or 4"
            )
    return pairs


class LFWPairs:
    """LFW pairs as records: ``image_a``, ``image_b`` float32 (S, S, 3) (resized to ``image_size`` when
    given, LFW images are 250 x 250), ``same`` bool, ``fold`` int, ``names`` str "A|B"."""

    def __init__(
        self,
        root: str | os.PathLike[str],
        pairs_file: str | os.PathLike[str] | None = None,
        image_size: int | None = None,
    ) -> None:
        self.root = Path(root)
        pairs_path = Path(pairs_file) if pairs_file else self.root / "pairs.txt"
        if not pairs_path.is_file():
            raise DatasetLayoutError(f"{pairs_path}: no LFW pairs file (pairs.txt)")
        self.image_dir = self.root / "lfw" if (self.root / "lfw").is_dir() else self.root
        self.pairs = parse_pairs(pairs_path.read_text())
        self.image_size = image_size

    def image_path(self, name: str, number: int) -> Path:
        """The published path of image ``number`` of person ``name``."""
        return self.image_dir / name / f"{name}_{number:04d}.jpg"

    def _image(self, name: str, number: int) -> np.ndarray:
        image = read_image(self.image_path(name, number))
        if self.image_size is not None:
            image = resize_image(image, (self.image_size, self.image_size))
        return image

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> dict[str, Any]:
        pair = self.pairs[index]
        return {
            "image_a": self._image(pair.name_a, pair.number_a),
            "image_b": self._image(pair.name_b, pair.number_b),
            "same": pair.same,
            "fold": pair.fold,
            "names": f"{pair.name_a}|{pair.name_b}",
        }
