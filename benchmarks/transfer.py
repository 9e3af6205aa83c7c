"""Does fine-tuning from an earlier experiment beat training from scratch? The transfer example, 5 samples.

Runs `search_spaces/transfer_digits_pretrain.yaml` once (a cnn on the MNIST digits 0-4), then, for each
seed, `search_spaces/transfer_digits.yaml` twice on the same 30 images of 5-9 (the seed picks the images
and the initial weights): once starting from `mnist-0-4`, once from scratch (`init_from: null`). Both
runs search the same grid, so each side gets its best learning rate. Writes
`benchmarks/results/transfer.json` and prints a table.

    python benchmarks/transfer.py [--seeds 5] [--storage /tmp/tunerd-transfer]
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
from pathlib import Path

from trainables.files import write_atomic
from tunerd import api, runner
from tunerd.session import ray_session

ROOT = Path(__file__).resolve().parent.parent
PRETRAIN = ROOT / "search_spaces" / "transfer_digits_pretrain.yaml"
FINE_TUNE = ROOT / "search_spaces" / "transfer_digits.yaml"
OUTPUT = ROOT / "benchmarks" / "results" / "transfer.json"


def winner(outcome: runner.Outcome) -> dict[str, float]:
    summary = outcome.summary
    return {"val_accuracy": summary["best"]["metric"], "test_accuracy": summary["test"]["test_accuracy"],
            "freeze_features": summary["best"]["config"].get("freeze_features"),
            "lr": summary["best"]["config"]["lr"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--storage", default=None, help="where the experiments go (default: a temporary folder)")
    args = parser.parse_args()
    storage = args.storage or tempfile.mkdtemp(prefix="tunerd-transfer-")
    rows = []
    with ray_session(None, None):  # one Ray for every run
        pretrained = api.launch(api.load(PRETRAIN, storage=storage), overwrite=True, quiet=True)
        source = winner(pretrained)
        for seed in range(args.seeds):
            row: dict[str, object] = {"seed": seed}
            for side, overrides in (("fine_tuned", []), ("scratch", ["space.init_from=null"])):
                experiment = api.load(FINE_TUNE, [f"seed={seed}", *overrides], name=f"mnist-5-9-{side}-{seed}",
                                      storage=storage)
                row[side] = winner(api.launch(experiment, overwrite=True, quiet=True))
            rows.append(row)
            print(f"seed {seed}: fine-tuned val {row['fine_tuned']['val_accuracy']:.3f} "  # type: ignore[index]
                  f"test {row['fine_tuned']['test_accuracy']:.3f} | scratch val "  # type: ignore[index]
                  f"{row['scratch']['val_accuracy']:.3f} test {row['scratch']['test_accuracy']:.3f}",  # type: ignore[index]
                  flush=True)
    means = {side: {key: statistics.mean(row[side][key] for row in rows)  # type: ignore[index]
                    for key in ("val_accuracy", "test_accuracy")} for side in ("fine_tuned", "scratch")}
    wins = sum(row["fine_tuned"]["test_accuracy"] > row["scratch"]["test_accuracy"] for row in rows)  # type: ignore[index]
    report = {"machine": f"{platform.machine()}, {platform.processor() or platform.system()}",
              "source": source, "runs": rows, "mean": means, "fine_tuned_wins_on_test": wins, "seeds": len(rows)}
    OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(OUTPUT, json.dumps(report, indent=2) + "\n")
    print(f"mean over {len(rows)} samples: fine-tuned val {means['fine_tuned']['val_accuracy']:.3f} "
          f"test {means['fine_tuned']['test_accuracy']:.3f} | scratch val {means['scratch']['val_accuracy']:.3f} "
          f"test {means['scratch']['test_accuracy']:.3f}; fine-tuning wins on test {wins}/{len(rows)}")
    print(f"written: {OUTPUT}")


if __name__ == "__main__":
    main()
