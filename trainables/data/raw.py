"""A data spec read into the whole labelled set, before splitting: the source (built-in or the user's file),
the class filter, the flip setting. No torch: `tunerd validate` reads a user's file with this to check it
before any trial starts, and every trial reads it the same way.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from trainables.data.sources import SOURCES, RawData
from trainables.data.spec import DataSpec
from trainables.validation import require


def read_raw(spec: DataSpec) -> RawData:
    """The whole labelled set a spec describes: source, class filter, flip setting. ValueErrors name the key
    (and for a user's file the file), e.g. `data.path: /x.csv: has no column 'label' ...`."""
    if spec.name is not None:
        raw = SOURCES[spec.name]()
    else:
        from trainables.data.user import load_user_data

        raw = load_user_data(spec)
    if spec.classes is not None:
        raw = select_classes(raw, spec.classes)
    if spec.flips is not None:
        if spec.flips and raw.kind != "image":
            raise ValueError(f"data.flips: only images can be flipped, and this data is {raw.kind}, got True")
        raw = replace(raw, flips=spec.flips)
    return raw


def select_classes(raw: RawData, classes: Sequence[int | str]) -> RawData:
    """Keep only `classes`, relabelled 0..k-1 in the order given.

    Each entry is matched to a class name first (user labels such as 3, 7 or "cat"), then, when an int,
    to a label 0..k-1 (the built-ins, whose names may be words like "class_0").
    """
    labels = []
    for c in classes:
        if str(c) in raw.class_names and not isinstance(c, bool):
            labels.append(raw.class_names.index(str(c)))
        elif isinstance(c, str):
            raise ValueError(f"data.classes: must name a class ({', '.join(raw.class_names)}), got {c!r}")
        else:
            require(isinstance(c, (int, np.integer)) and not isinstance(c, bool) and 0 <= c < len(raw.class_names),
                    "data.classes", c, f"must be a label in 0..{len(raw.class_names) - 1} or a class name "
                                       f"({', '.join(raw.class_names)})")
            labels.append(int(c))
    require(len(set(labels)) == len(labels), "data.classes", list(classes), "names a class twice")
    keep = np.isin(raw.y, labels)
    relabel = np.full(len(raw.class_names), -1)
    relabel[labels] = np.arange(len(labels))
    return replace(raw, x=raw.x[keep], y=relabel[raw.y[keep]], class_names=tuple(raw.class_names[i] for i in labels))
