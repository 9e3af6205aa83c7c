"""`tunerd analyze`: importance (fANOVA, per ASHA rung, per conditional branch), best regions, bound
warnings and the next experiment file; one real experiment on Ray, the rest on hand-written summaries."""
from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest
import yaml
from click.testing import CliRunner

import tunerd
from tests.conftest import REPO, launch_from_repo
from tunerd import analysis as analysislib
from tunerd import spec as speclib
from tunerd.cli import main
from tunerd.errors import UsageError
from tunerd.nextfile import write_next

ONE_KNOB = """\
name: one-knob
trainable: tests.fixtures.toy:one_knob
metric: loss
mode: min
seed: 3
space:
  x: {uniform: [-10.0, 10.0]}
  y: {uniform: [0.0, 1.0]}
  z: {choice: [a, b]}
search: {algorithm: random, num_samples: 24, max_concurrent: 2}
scheduler: {name: fifo}
stop: {max_epochs: 1}
tensorboard: false
"""


@pytest.fixture(scope="module")
def one_knob(ray_session, tmp_path_factory):
    """A real experiment: `loss` depends on `x` and barely on `y` and `z`."""
    root = tmp_path_factory.mktemp("analyze")
    (root / "one-knob.yaml").write_text(ONE_KNOB)
    launch_from_repo(root / "one-knob.yaml", root / "results")
    return root / "results"


def test_analyze_ranks_the_knob_that_drives_the_loss_first_and_writes_a_file_that_validates(one_knob, tmp_path,
                                                                                             in_repo):
    found = analysislib.analyze("one-knob", str(one_knob))
    assert found.used == 24 and found.left_out == {}
    importance = found.importance[0]
    assert importance.objective == "loss" and list(importance.values)[0] == "x"
    assert importance.values["x"] > 0.8 and math.isclose(sum(importance.values.values()), 1.0)
    region = found.regions["x"]
    assert region.top == 5 and -10 <= region.low <= 3.0 <= region.high <= 10

    nxt = tmp_path / "next.yaml"
    done = CliRunner().invoke(main, ["analyze", "one-knob", "--storage", str(one_knob), "--write", str(nxt)])
    assert done.exit_code == 0, done.output
    assert done.output.index("  x ") < done.output.index("  y ")  # x first in the printed ranking
    experiment = tunerd.load(nxt)  # what `tunerd validate` runs, the trainable's import included
    assert experiment.name == "one-knob-2"
    written = yaml.safe_load(nxt.read_text())["space"]
    lo, hi = written["x"]["uniform"]
    assert -10 < lo <= region.low and region.high <= hi < 10 and hi - lo < 15  # narrowed around the best
    assert not isinstance(written["y"], dict) and written["z"] in ("a", "b")  # unimportant: fixed
    lines: dict[str, str] = {}
    for line in nxt.read_text().splitlines():
        lines.setdefault(line.split(":")[0].strip(), line)
    assert "# narrowed from [-10, 10]" in lines["x"] and "# fixed at the best trial's value" in lines["y"]
    assert "# was one-knob" in lines["name"]
    best = json.loads((one_knob / "one-knob" / "summary.json").read_text())["best"]["config"]
    assert experiment.spec.search.initial_points == [{"x": best["x"]}]


def test_analyze_loads_neither_ray_nor_torch(one_knob, tmp_path):
    from tests.test_cli import READ_ONLY_PROBE

    done = subprocess.run([sys.executable, "-c", READ_ONLY_PROBE, "analyze", "one-knob", "--storage",
                           str(one_knob), "--json", "--plot", str(tmp_path / "importance.png")],
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    assert json.loads(done.stderr.strip().splitlines()[-1]) == {"code": 0, "ray": False, "torch": False}, done.stderr
    shown = json.loads(done.stdout)
    assert shown["importance"][0]["values"]["x"] > 0.8 and shown["plot"].endswith("importance.png")
    assert (tmp_path / "importance.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# ----------------------------------------------------------------------------------------------------------
# Hand-written experiments: no Ray


def write_experiment(root, name: str, spec: dict, trials: list[dict], metric: str = "loss") -> None:
    folder = root / name
    folder.mkdir(parents=True)
    (folder / "spec.yaml").write_text(yaml.safe_dump({"name": name, "metric": metric, "mode": "min", **spec}))
    records = [{"trial_id": f"t{i:02d}", "index": i, "status": "finished", "epochs": 1, **trial}
               for i, trial in enumerate(trials)]
    (folder / "summary.json").write_text(json.dumps({
        "name": name, "metric": metric, "mode": "min", "state": "finished", "trial_count": len(records),
        "trials": records}))


def finished(config: dict, loss: float, **extra) -> dict:
    return {"config": config, "best": {"loss": loss}, "last": {"loss": loss}, **extra}


SPACE = {"trainable": "tests.fixtures.toy:one_knob", "seed": 0, "storage": "unused",
         "search": {"algorithm": "random", "num_samples": 12, "initial_points": [{"lr": 1.0e-4}]},
         "space": {"lr": {"loguniform": [1.0e-4, 1.0e-1]}, "width": {"randint": [1, 8]}}}


def test_best_trials_at_a_bound_warn_and_the_next_file_widens_that_bound(tmp_path):
    lrs = [10 ** (-4 + 3 * i / 19) for i in range(20)]  # 1e-4 ... 1e-1; loss falls with lr
    trials = [finished({"lr": lr, "width": 1 + (i * 5) % 8}, -math.log10(lr) + 0.001 * ((i * 5) % 8))
              for i, lr in enumerate(lrs)]
    trials.append({"config": {"lr": 0.05, "width": 3}, "status": "errored", "error": "boom"})
    trials.append({"config": {"lr": 0.07, "width": 3}, "status": "diverged", "best": {}, "last": {}})
    write_experiment(tmp_path, "bound", SPACE, trials)
    found = analysislib.analyze("bound", str(tmp_path))
    assert found.left_out == {"errored": 1, "diverged": 1} and found.used == 20
    assert [w.message for w in found.warnings] == [
        "lr: 2 of the best 3 trials are at the upper bound 0.1 (0.1, 0.0695): widen it"]
    done = write_next(found, tmp_path / "next.yaml")
    experiment = speclib.load(done)
    lo, hi = experiment.raw["space"]["lr"]["loguniform"]
    assert hi > 0.1 and 1e-4 < lo < 0.02  # widened past the crowded bound, narrowed at the other end
    assert experiment.name == "bound-2" and experiment.spec.search.initial_points == [{"lr": 0.1}]
    assert experiment.raw["space"]["width"] == 1 + (19 * 5) % 8  # 0.001 per step of width: fixed at the best's
    assert "widened from [0.0001, 0.1]: 2 of the best 3 trials are at the upper bound 0.1" in done.read_text()


def test_per_rung_importance_tells_what_matters_early_from_what_matters_late(tmp_path):
    spec = {**SPACE, "space": {"early": {"uniform": [0, 1]}, "late": {"uniform": [0, 1]}},
            "scheduler": {"name": "asha", "grace_period": 1, "reduction_factor": 3}, "stop": {"max_epochs": 9}}
    trials = []
    for i in range(12):
        early, late = ((i * 7) % 12) / 11, i / 11
        history = [{"epoch": e, "loss": early if e < 9 else late} for e in range(1, 10 if i < 6 else 4)]
        trials.append(finished({"early": early, "late": late}, min(h["loss"] for h in history),
                               history=history, epochs=len(history), status="finished" if i < 6 else "stopped"))
    write_experiment(tmp_path, "rungs", spec, trials)
    found = analysislib.analyze("rungs", str(tmp_path))
    by_epoch = {rung.epoch: rung for rung in found.rungs}
    assert sorted(by_epoch) == [1, 3, 9]
    assert by_epoch[1].trials == 12 and list(by_epoch[1].values)[0] == "early"
    assert by_epoch[9].trials == 6 and list(by_epoch[9].values)[0] == "late"
    done = CliRunner().invoke(main, ["analyze", "rungs", "--storage", str(tmp_path)])
    assert done.exit_code == 0 and "per ASHA rung" in done.output and "epoch 9" in done.output, done.output


def test_too_few_trials_is_a_clear_error_not_a_traceback(tmp_path):
    write_experiment(tmp_path, "few", SPACE, [finished({"lr": 0.01, "width": 2}, 1.0)] * 3
                     + [{"config": {"lr": 0.01, "width": 2}, "status": "errored"}])
    done = CliRunner().invoke(main, ["analyze", "few", "--storage", str(tmp_path)])
    assert done.exit_code == 2
    assert "few: 3 trials with a result, 1 errored; the analysis needs at least 5" in done.output
    assert "Traceback" not in done.output


def test_a_conditional_sub_space_is_analysed_over_the_trials_that_took_it(tmp_path):
    spec = {**SPACE, "search": {"algorithm": "random", "num_samples": 16},
            "space": {"x": {"uniform": [0, 1]},
                      "model": {"choice": [{"kind": "small", "a": {"uniform": [0, 1]}},
                                           {"kind": "big", "b": {"uniform": [0, 1]}}]}}}
    trials = []
    for i in range(16):
        x, u = i / 15, ((i * 5) % 16) / 15
        model = {"kind": "small", "a": u} if i % 2 else {"kind": "big", "b": u}
        trials.append(finished({"x": x, "model": model}, (u if i % 2 else 0.5) + 0.001 * x))
    write_experiment(tmp_path, "branches", spec, trials)
    found = analysislib.analyze("branches", str(tmp_path))
    assert set(found.importance[0].values) == {"x", "model"}  # fANOVA: the parameters every trial has
    scopes = {b.scope: b for b in found.branches}
    assert set(scopes) == {"model = option 0", "model = option 1"} and scopes["model = option 1"].trials == 8
    assert list(scopes["model = option 0"].values) == ["model.0.a"]
    assert found.regions["model"].options and found.regions["model.0.a"].top >= 1
    assert found.regions["model"].options == {"option 0": 4}  # the best 4 all took "small": it is fixed, its
    written = write_next(found, tmp_path / "next.yaml")  # sub-space left as it was
    assert speclib.load(written).raw["space"]["model"] == {"kind": "small", "a": {"uniform": [0, 1]}}
    assert "model:  # fixed: each of the best 4 trials used it" in written.read_text()


def test_a_next_file_for_a_learning_search_warm_starts_from_the_analysed_trials(tmp_path):
    """hyperopt learns from earlier trials: the next file names the experiment in `search.warm_start` (its
    trials are observations of the narrowed search, the best one among them) instead of re-running the best
    trial as an initial point; the file validates, the warm start read and mapped."""
    spec = {**SPACE, "data": {}, "storage": str(tmp_path),
            "search": {"algorithm": "hyperopt", "num_samples": 12, "warm_start": []}}
    trials = [finished({"lr": 10 ** (-4 + 3 * i / 11), "width": 1 + i % 8}, abs(i - 5) + 0.001 * (i % 8))
              for i in range(12)]
    write_experiment(tmp_path, "learnt", spec, trials)
    written = write_next(analysislib.analyze("learnt", str(tmp_path)), tmp_path / "next.yaml")
    experiment = speclib.load(written)
    assert experiment.spec.search.warm_start == ["learnt"] and experiment.spec.search.initial_points == []
    source = experiment.warm_start.sources[0]
    assert source.name == "learnt" and source.observations + source.outside == 12 and source.outside > 0
    text = written.read_text()
    assert "# the trials of learnt enter this search as observations" in text
    assert "# the best trial of learnt is in the warm start: not run again" in text


def test_several_objectives_get_one_importance_each(tmp_path):
    """With `objectives:` each objective is explained on its own: here `lr` drives the loss and `width` the
    model's size, so each ranks first for its own objective."""
    trials = []
    for i in range(16):
        lr, width = 10 ** (-4 + 3 * ((i * 7) % 16) / 15), 1 + i % 8
        trials.append({"config": {"lr": lr, "width": width}, "best": {"loss": -math.log10(lr), "params": width},
                       "last": {"loss": -math.log10(lr), "params": width}})
    write_experiment(tmp_path, "pareto", SPACE, trials)
    summary_file = tmp_path / "pareto" / "summary.json"
    summary = json.loads(summary_file.read_text())
    summary["objectives"] = [{"metric": "loss", "mode": "min"}, {"metric": "params", "mode": "min"}]
    summary_file.write_text(json.dumps(summary))
    found = analysislib.analyze("pareto", str(tmp_path))
    by_objective = {i.objective: i.values for i in found.importance}
    assert list(by_objective) == ["loss", "params"]
    assert list(by_objective["loss"])[0] == "lr" and list(by_objective["params"])[0] == "width"
    assert by_objective["loss"]["lr"] > 0.8 and by_objective["params"]["width"] > 0.8
    assert found.importance_of("width") == by_objective["params"]["width"]  # the largest over the objectives


def test_the_cli_refuses_what_it_cannot_do(tmp_path):
    write_experiment(tmp_path, "bound", SPACE, [finished({"lr": 10 ** -(1 + i / 3), "width": 2}, i)
                                                for i in range(8)])
    runner = CliRunner()
    existing = tmp_path / "next.yaml"
    existing.write_text("keep me")
    done = runner.invoke(main, ["analyze", "bound", "--storage", str(tmp_path), "--write", str(existing)])
    assert done.exit_code == 2 and "exists; pass --overwrite" in done.output and existing.read_text() == "keep me"
    done = runner.invoke(main, ["analyze", "bound", "--storage", str(tmp_path), "--write", str(existing),
                                "--overwrite"])
    assert done.exit_code == 0 and "# was bound" in existing.read_text(), done.output
    done = runner.invoke(main, ["analyze", "bound", "--storage", str(tmp_path), "--overwrite"])
    assert done.exit_code == 2 and "--overwrite goes with --write" in done.output
    done = runner.invoke(main, ["analyze", "bond", "--storage", str(tmp_path)])
    assert done.exit_code == 2 and "(did you mean 'bound'?)" in done.output
    (tmp_path / "bound" / "summary.json").write_text("{not json")
    done = runner.invoke(main, ["analyze", "bound", "--storage", str(tmp_path)])
    assert done.exit_code == 2 and "summary.json is damaged: not valid JSON" in done.output
    with pytest.raises(UsageError, match="no experiment 'nothing'"):
        analysislib.analyze("nothing", str(tmp_path))
    assert runner.invoke(main, ["analyze", "--help"]).exit_code == 0
