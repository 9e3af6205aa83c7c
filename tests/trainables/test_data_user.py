"""A user's own data (`data.path`): every format round-trips, and every bad file says what is wrong."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from trainables.data import DataSpec, load_dataset, read_raw

SPLIT = {"val_fraction": 0.25, "test_fraction": 0.25}


def pooled(data) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.cat([data.x_train, data.x_val, data.x_test]), torch.cat([data.y_train, data.y_val, data.y_test])


def test_npz_images_round_trip_with_sorted_string_labels(tmp_path: Path) -> None:
    n = 40
    x = np.zeros((n, 6, 5), dtype=np.uint8)
    x[:, 0, 0] = np.arange(n)  # pixel (0, 0) tells which sample it is
    x[:, 3, 3] = 255
    names = np.array(["zebra", "ant", "moth", "ant"] * 10)
    np.savez(tmp_path / "pics.npz", x=x, y=names)
    data = load_dataset({"path": str(tmp_path / "pics.npz"), **SPLIT}, seed=0)
    assert data.kind == "image" and data.input_shape == (1, 6, 5) and data.class_names == ("ant", "moth", "zebra")
    assert data.x_train.dtype == torch.float32 and data.x_train.max() == 1.0
    xs, ys = pooled(data)
    sample = torch.round(xs[:, 0, 0, 0] * 255).long()
    assert sorted(sample.tolist()) == list(range(n))
    assert [data.class_names[label] for label in ys.tolist()] == names[sample.numpy()].tolist()


def test_npz_tabular_and_channel_images(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "table.npz", x=rng.normal(size=(30, 4)), y=np.array([7, 3, 5] * 10))
    data = load_dataset({"path": str(tmp_path / "table.npz"), **SPLIT}, seed=0)
    assert data.kind == "tabular" and data.input_shape == (4,) and data.class_names == ("3", "5", "7")
    assert torch.allclose(data.x_train.mean(0), torch.zeros(4), atol=1e-5)
    np.savez(tmp_path / "rgb.npz", x=rng.uniform(size=(20, 3, 4, 4)).astype(np.float32), y=np.arange(20) % 2)
    data = load_dataset({"path": str(tmp_path / "rgb.npz"), **SPLIT}, seed=0)
    assert data.kind == "image" and data.input_shape == (3, 4, 4) and data.n_classes == 2


def test_relative_paths_resolve_against_the_current_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    np.savez(tmp_path / "mine.npz", x=np.arange(40.0).reshape(20, 2), y=np.arange(20) % 2)
    monkeypatch.chdir(tmp_path)
    assert load_dataset({"path": "mine.npz", **SPLIT}, seed=0).n_classes == 2


def test_csv_tabular_uses_every_other_column_as_a_feature(tmp_path: Path) -> None:
    frame = pd.DataFrame({"a": np.arange(24.0), "kind": ["b", "a"] * 12, "c": np.arange(24) % 5, "d": [True] * 24})
    frame.to_csv(tmp_path / "t.csv", index=False)
    raw = read_raw(DataSpec(path=str(tmp_path / "t.csv"), label_column="kind"))
    assert raw.kind == "tabular" and raw.x.shape == (24, 3) and raw.class_names == ("a", "b")
    assert np.array_equal(raw.x[:, 0], frame["a"]) and raw.y.tolist() == [1, 0] * 12
    data = load_dataset({"path": str(tmp_path / "t.csv"), "label_column": "kind", **SPLIT}, seed=0)
    assert data.input_shape == (3,) and len(data.y_train) == 12


def test_csv_text(tmp_path: Path) -> None:
    rows = [("great fun film", "pos"), ("awful boring film", "neg"), (None, "neg"), ("fun fun", "pos")] * 5
    pd.DataFrame(rows, columns=["review", "label"]).to_csv(tmp_path / "reviews.csv", index=False)
    data = load_dataset({"path": str(tmp_path / "reviews.csv"), "text_column": "review", "label_column": "label",
                         **SPLIT}, seed=0, max_len=4)
    assert data.kind == "text" and data.class_names == ("neg", "pos") and data.input_shape == (4,)
    assert data.vocab[:2] == ("<pad>", "<unk>") and data.x_train.dtype == torch.int64
    assert set(data.vocab[2:]) == {"great", "fun", "film", "awful", "boring"}
    assert [1, 0, 0, 0] in data.x_train.tolist() + data.x_val.tolist() + data.x_test.tolist()  # the empty review


def write_image(path: Path, size: tuple[int, int], mode: str = "L", value: int = 128) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, value if mode == "L" else (value, 0, 255 - value)).save(path)


def test_image_folder_grayscale_resized_to_the_most_common_size(tmp_path: Path) -> None:
    for i in range(6):
        write_image(tmp_path / "dogs" / f"{i}.png", (12, 10), value=200)
        write_image(tmp_path / "cats" / f"{i}.png", (12, 10) if i else (30, 20), value=50)
    (tmp_path / "README.txt").write_text("top-level files are not classes")
    data = load_dataset({"path": str(tmp_path), **SPLIT}, seed=0)
    assert data.kind == "image" and data.class_names == ("cats", "dogs") and data.input_shape == (1, 10, 12)
    xs, ys = pooled(data)
    assert torch.allclose(xs.mean(dim=(1, 2, 3)), torch.where(ys == 0, 50 / 255, 200 / 255), atol=1e-3)
    assert not data.flips and load_dataset({"path": str(tmp_path), "flips": True}, seed=0).flips


def test_image_folder_with_any_colour_image_is_rgb(tmp_path: Path) -> None:
    for i in range(4):
        write_image(tmp_path / "a" / f"{i}.png", (8, 8))
        write_image(tmp_path / "b" / f"{i}.jpg", (8, 8), mode="RGB" if i == 0 else "L")
    data = load_dataset({"path": str(tmp_path), "val_fraction": 0.25, "test_fraction": 0.25}, seed=0)
    assert data.input_shape == (3, 8, 8) and len(data.y_test) == 2


def save_csv(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def bad_files(tmp_path: Path) -> dict[str, tuple[dict, list[str]]]:
    """case -> (data spec, substrings the error must hold), the files written into `tmp_path`."""
    def npz(name: str, **arrays: np.ndarray) -> str:
        np.savez(tmp_path / name, **arrays)
        return str(tmp_path / name)

    (tmp_path / "empty.npz").write_bytes(b"")
    (tmp_path / "empty.csv").write_bytes(b"")
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "garbage.npz").write_bytes(b"not a zip archive")
    save_csv(tmp_path / "header.csv", "a,b,label\n")
    save_csv(tmp_path / "cols.csv", "a,b\n1,2\n3,4\n")
    save_csv(tmp_path / "colour.csv", "size,colour,label\n1,red,x\n2,blue,y\n")
    save_csv(tmp_path / "holes.csv", "size,weight,label\n1,,x\n2,3,y\n")
    save_csv(tmp_path / "nolabel.csv", "size,label\n1,x\n2,\n")
    folder_one = tmp_path / "one"
    write_image(folder_one / "only" / "0.png", (4, 4))
    folder_bad = tmp_path / "pics"
    write_image(folder_bad / "a" / "0.png", (4, 4))
    (folder_bad / "b").mkdir()
    (folder_bad / "b" / "broken.png").write_bytes(b"\x89PNG not really")
    folder_empty = tmp_path / "hollow"
    write_image(folder_empty / "a" / "0.png", (4, 4))
    (folder_empty / "b").mkdir()
    nan = np.ones((4, 2))
    nan[2, 1] = np.nan
    return {
        "missing": ({"path": str(tmp_path / "nowhere.npz")}, ["nowhere.npz", "no such file"]),
        "extension": ({"path": str(tmp_path / "notes.txt")}, ["notes.txt", "unknown file type '.txt'", ".npz"]),
        "empty npz": ({"path": str(tmp_path / "empty.npz")}, ["empty.npz", "empty"]),
        "empty csv": ({"path": str(tmp_path / "empty.csv"), "label_column": "y"}, ["empty.csv", "empty"]),
        "not an npz": ({"path": str(tmp_path / "garbage.npz")}, ["garbage.npz", "is not a .npz archive"]),
        "no y": ({"path": npz("noy.npz", x=np.ones((4, 2)), z=np.ones(4))}, ["noy.npz", "no array 'y'",
                                                                             "arrays present: x, z"]),
        "one class": ({"path": npz("same.npz", x=np.ones((4, 2)), y=np.zeros(4))}, ["same.npz", "only one class"]),
        "lengths": ({"path": npz("short.npz", x=np.ones((5, 2)), y=np.arange(4))},
                    ["short.npz", "x has 5 samples but y has 4"]),
        "nan": ({"path": npz("nan.npz", x=nan, y=np.arange(4) % 2)}, ["nan.npz", "NaN", "sample 2"]),
        "inf image": ({"path": npz("inf.npz", x=np.full((4, 3, 3), np.inf), y=np.arange(4) % 2)},
                      ["inf.npz", "NaN or infinite"]),
        "image range": ({"path": npz("bright.npz", x=np.full((4, 3, 3), 7.5), y=np.arange(4) % 2)},
                        ["bright.npz", "[0, 1]"]),
        "shape": ({"path": npz("deep.npz", x=np.ones((4, 1, 2, 2, 2)), y=np.arange(4) % 2)}, ["deep.npz", "shape"]),
        "strings": ({"path": npz("words.npz", x=np.array([["a"], ["b"]]), y=np.arange(2))}, ["words.npz", "numbers"]),
        "columns on npz": ({"path": npz("col.npz", x=np.ones((4, 2)), y=np.arange(4) % 2), "label_column": "y"},
                           ["col.npz", "only applies to a .csv"]),
        "no label column": ({"path": str(tmp_path / "cols.csv")}, ["cols.csv", "data.label_column",
                                                                    "columns present: a, b"]),
        "label column": ({"path": str(tmp_path / "cols.csv"), "label_column": "label"},
                         ["cols.csv", "no column 'label'", "columns present: a, b"]),
        "text column": ({"path": str(tmp_path / "cols.csv"), "label_column": "a", "text_column": "body"},
                        ["cols.csv", "no column 'body'", "columns present: a, b"]),
        "header only": ({"path": str(tmp_path / "header.csv"), "label_column": "label"}, ["header.csv", "no rows"]),
        "non-numeric": ({"path": str(tmp_path / "colour.csv"), "label_column": "label"},
                        ["colour.csv", "feature column 'colour' is not numeric", "red"]),
        "missing features": ({"path": str(tmp_path / "holes.csv"), "label_column": "label"},
                             ["holes.csv", "'weight'", "NaN"]),
        "missing labels": ({"path": str(tmp_path / "nolabel.csv"), "label_column": "label"},
                           ["nolabel.csv", "missing values"]),
        "one folder": ({"path": str(folder_one)}, ["one", "only one class", "'only'"]),
        "unreadable image": ({"path": str(folder_bad)}, ["broken.png", "unreadable image"]),
        "empty class": ({"path": str(folder_empty)}, ["hollow", "holds no images"]),
    }


CASE_NAMES = ["missing", "extension", "empty npz", "empty csv", "not an npz", "no y", "one class", "lengths", "nan",
              "inf image", "image range", "shape", "strings", "columns on npz", "no label column", "label column",
              "text column", "header only", "non-numeric", "missing features", "missing labels", "one folder",
              "unreadable image", "empty class"]


@pytest.mark.parametrize("case", CASE_NAMES)
def test_bad_user_data_is_a_value_error_naming_file_and_problem(tmp_path: Path, case: str) -> None:
    data, expected = bad_files(tmp_path)[case]
    with pytest.raises(ValueError) as error:
        load_dataset(data, seed=0)
    message = str(error.value)
    assert message.startswith("data.")
    for part in expected:
        assert part in message, f"{part!r} not in {message!r}"


def test_every_bad_case_is_tested(tmp_path: Path) -> None:
    assert sorted(bad_files(tmp_path)) == sorted(CASE_NAMES)


def test_too_few_samples_to_split_is_a_clear_error(tmp_path: Path) -> None:
    np.savez(tmp_path / "tiny.npz", x=np.ones((5, 2)), y=np.array([0, 0, 0, 0, 1]))
    with pytest.raises(ValueError, match="cannot split 5 samples"):
        load_dataset({"path": str(tmp_path / "tiny.npz")}, seed=0)
