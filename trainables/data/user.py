"""A user's own data (`data.path`): a .npz, a .csv or a folder of images, read into the same `RawData`
as the built-ins.

Everything that can be wrong with a file is caught here and reported as a `ValueError` naming the file and
the problem, so a bad file never surfaces later as a tensor-shape traceback.
"""
from __future__ import annotations

import zipfile
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd

from trainables.data.sources import RawData, token_array
from trainables.data.spec import DataSpec

FORMATS = "a .npz (arrays x and y), a .csv, or a folder of images with one sub-folder per class"
#: PIL modes that hold one grey channel; a folder whose images are all of these is loaded as grayscale
GRAY_MODES = frozenset({"1", "L", "LA", "I", "I;16", "F"})


def problem(path: Path | str, message: str) -> ValueError:
    """The one shape of every user-data error: `data.path: <file>: <problem>`."""
    return ValueError(f"data.path: {path}: {message}")


def load_user_data(spec: DataSpec) -> RawData:
    """The labelled set at `spec.path` (relative paths resolve against the current folder)."""
    if spec.path is None:
        raise ValueError("data.path: is required for a user's data set")
    path = Path(spec.path).expanduser()
    if not path.exists():
        where = f" (relative to {Path.cwd()})" if not path.is_absolute() else ""
        raise problem(path, f"no such file or folder{where}")
    if path.is_dir():
        _no_columns(spec, path)
        return _image_folder(path)
    suffix = path.suffix.lower()
    if suffix not in (".npz", ".csv"):
        raise problem(path, f"unknown file type {suffix or '(no extension)'!r}; use {FORMATS}")
    if path.stat().st_size == 0:
        raise problem(path, "the file is empty")
    if suffix == ".npz":
        _no_columns(spec, path)
        return _npz(path)
    return _csv(path, spec)


def encode_labels(values: np.ndarray, path: Path) -> tuple[np.ndarray, tuple[str, ...]]:
    """Labels 0..k-1 in the sorted order of the distinct `values`; class names are their `str`."""
    try:
        classes, y = np.unique(values, return_inverse=True)
    except TypeError as error:
        raise problem(path, f"labels of mixed types cannot be sorted into classes ({error})") from error
    if len(classes) < 2:
        raise problem(path, f"has only one class ({str(classes[0])!r}); a classifier needs at least 2")
    return y.reshape(-1).astype(np.int64), tuple(str(c) for c in classes)


def _no_columns(spec: DataSpec, path: Path) -> None:
    for key in ("text_column", "label_column"):
        if getattr(spec, key) is not None:
            raise problem(path, f"data.{key} only applies to a .csv file")


def _npz(path: Path) -> RawData:
    """Arrays `x` (N, F): tabular, (N, H, W) or (N, C, H, W): images; `y` (N,): labels of any kind."""
    if not zipfile.is_zipfile(path):
        raise problem(path, "is not a .npz archive (write one with numpy.savez(path, x=..., y=...))")
    try:
        with np.load(path, allow_pickle=False) as archive:
            present = list(archive.files)
            x, y = (archive[key] if key in present else None for key in ("x", "y"))
    except (OSError, EOFError, ValueError, zipfile.BadZipFile) as error:
        # numpy refuses pickled (object) arrays without allow_pickle: unpickling would run code from the file
        hint = "; save x as numbers and y as numbers or strings" if "pickle" in str(error) else ""
        raise problem(path, f"cannot be read as a .npz archive ({error}){hint}") from error
    if x is None or y is None:
        missing = " or ".join(repr(key) for key, array in (("x", x), ("y", y)) if array is None)
        raise problem(path, f"has no array {missing} (arrays present: {', '.join(present) or 'none'})")
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise problem(path, f"y must be one label per sample, shape (N,), got {y.shape}")
    if x.ndim not in (2, 3, 4):
        raise problem(path, f"x must be (N, F) features or (N, H, W) / (N, C, H, W) images, got shape {x.shape}")
    if len(x) != len(y):
        raise problem(path, f"x has {len(x)} samples but y has {len(y)} labels")
    if len(y) == 0:
        raise problem(path, "holds no samples (x and y are empty)")
    if x.dtype.kind not in "biuf":
        raise problem(path, f"x must hold numbers, got dtype {x.dtype}")
    if y.dtype.kind == "f" and not np.isfinite(y).all():
        raise problem(path, f"y has NaN or infinite labels (the first is sample {int(np.argmin(np.isfinite(y)))})")
    _finite(x, path, "x")
    labels, names = encode_labels(y, path)
    if x.ndim == 2:
        return RawData(x.astype(np.float64), labels, "tabular", names)
    return RawData(_unit_range(x[:, None] if x.ndim == 3 else x, path), labels, "image", names)


def _unit_range(images: np.ndarray, path: Path) -> np.ndarray:
    """Images as `RawData` holds them: integers 0..255 as uint8 (scaled later), floats in [0, 1] as float32.
    Other ranges are refused: augmentation clips noise to [0, 1]."""
    low, high = images.min(), images.max()
    if images.dtype.kind in "biu" and high > 1:
        if low < 0 or high > 255:
            raise problem(path, f"integer image values must be 0..255, got {low}..{high}")
        return images.astype(np.uint8)
    if low < 0 or high > 1:
        raise problem(path, f"image values must be in [0, 1] (or integers 0..255), got {low:g}..{high:g}")
    return images.astype(np.float32)


def _finite(x: np.ndarray, path: Path, what: str) -> None:
    if x.dtype.kind == "f":
        bad = ~np.isfinite(x.reshape(len(x), -1)).all(axis=1)
        if bad.any():
            raise problem(path, f"{what} holds NaN or infinite values in {int(bad.sum())} of {len(x)} samples "
                                f"(the first is sample {int(np.argmax(bad))})")


def _csv(path: Path, spec: DataSpec) -> RawData:
    """With `text_column`: one document per row (text); else every column but `label_column` is a numeric
    feature (tabular). A missing text is an empty document."""
    try:
        frame = pd.read_csv(path)
    except pd.errors.EmptyDataError as error:
        raise problem(path, "the file is empty") from error
    except UnicodeDecodeError as error:
        raise problem(path, f"is not UTF-8 text ({error}); save it as UTF-8") from error
    except (pd.errors.ParserError, OSError) as error:
        raise problem(path, f"cannot be parsed as CSV ({error})") from error
    columns = [str(c) for c in frame.columns]
    frame.columns = columns
    listing = f"columns present: {', '.join(columns)}"
    if spec.label_column is None:
        raise problem(path, f"a .csv needs data.label_column, the column holding the labels ({listing})")
    for key in ("text_column", "label_column"):
        column = getattr(spec, key)
        if column is not None and column not in columns:
            raise problem(path, f"has no column {column!r} (data.{key}); {listing}")
    if frame.empty:
        raise problem(path, "has a header but no rows")
    labels = frame[spec.label_column]
    if labels.isna().any():
        raise problem(path, f"label column {spec.label_column!r} has missing values in {int(labels.isna().sum())} "
                            f"of {len(labels)} rows (the first is data row {int(np.argmax(labels.isna())) + 1})")
    if spec.text_column is not None:
        texts = frame[spec.text_column].fillna("").astype(str).tolist()
        y, names = encode_labels(labels.to_numpy(), path)
        return RawData(token_array(texts), y, "text", names)
    features = frame.drop(columns=[spec.label_column])
    if features.shape[1] == 0:
        raise problem(path, f"has no feature columns besides the label column {spec.label_column!r}")
    for column in features.columns:
        if not pd.api.types.is_numeric_dtype(features[column]):
            example = features[column].dropna().iloc[0] if features[column].notna().any() else None
            raise problem(path, f"feature column {column!r} is not numeric (e.g. {example!r}); features must be "
                                "numbers (set data.text_column for a text column)")
    x = features.to_numpy(dtype=np.float64)
    bad = [str(c) for c, ok in zip(features.columns, np.isfinite(x).all(axis=0)) if not ok]
    if bad:
        raise problem(path, f"feature columns {', '.join(map(repr, bad))} hold missing (NaN) or infinite values")
    y, names = encode_labels(labels.to_numpy(), path)
    return RawData(x, y, "tabular", names)


def _image_folder(root: Path) -> RawData:
    """One sub-folder per class (names sorted), every non-hidden file in it an image. All images become
    grayscale if every one is, else RGB, and are resized (bilinear) to the most common width x height
    (ties: the larger area, then the wider), so the set stacks into one (N, C, H, W) uint8 array."""
    from PIL import Image

    classes = sorted(d.name for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    if not classes:
        raise problem(root, "holds no class sub-folders; put each class's images in a sub-folder named after it")
    if len(classes) < 2:
        raise problem(root, f"has only one class ({classes[0]!r}); a classifier needs at least 2 sub-folders")
    images: list[Image.Image] = []
    labels: list[int] = []
    for label, name in enumerate(classes):
        files = sorted(f for f in (root / name).iterdir() if f.is_file() and not f.name.startswith("."))
        if not files:
            raise problem(root / name, "the class folder holds no images")
        for file in files:
            try:
                with Image.open(file) as image:
                    image.load()
                    images.append(image.copy())
            except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as error:
                raise problem(file, f"unreadable image ({error})") from error
            labels.append(label)
    mode = "L" if all(image.mode in GRAY_MODES for image in images) else "RGB"
    sizes = Counter(image.size for image in images)
    width, height = max(sizes, key=lambda s: (sizes[s], s[0] * s[1], s[0]))
    pixels = np.empty((len(images), 1 if mode == "L" else 3, height, width), dtype=np.uint8)
    for i, image in enumerate(images):
        image = image.convert(mode)
        if image.size != (width, height):
            image = image.resize((width, height), Image.Resampling.BILINEAR)
        array = np.asarray(image, dtype=np.uint8)
        pixels[i] = array[None] if mode == "L" else array.transpose(2, 0, 1)
    return RawData(pixels, np.array(labels, dtype=np.int64), "image", tuple(classes))
