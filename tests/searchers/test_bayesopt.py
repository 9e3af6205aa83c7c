"""BayesOptSearcher driven directly by ask/tell (no Ray cluster): decoding, branches, convergence, state."""
from __future__ import annotations

import json
import math
import statistics

import numpy as np
import pytest

from tunerd.searchers._bayesopt import BayesOptSearcher
from tunerd.space import Choice, Distribution, Grid

BRANIN_MIN = 0.397887
#: Branin's minimum with x2 restricted to the integers 0..15 (x2 = 12, x1 ~ -2.87; brute force)
BRANIN_INT_MIN = 0.432336


def D(kind: str, *args: float) -> Distribution:
    return Distribution(kind, tuple(args), f"space.{kind}")


def branin(x1: float, x2: float) -> float:
    b, c, t = 5.1 / (4 * math.pi**2), 5 / math.pi, 1 / (8 * math.pi)
    return (x2 - b * x1**2 + c * x1 - 6) ** 2 + 10 * (1 - t) * math.cos(x1) + 10


def ask_tell(searcher: BayesOptSearcher, f, n: int, start: int = 0) -> list[tuple[dict, float]]:
    """n sequential trials; returns (config, value) pairs."""
    out = []
    for i in range(start, start + n):
        config = searcher.suggest(f"t{i}")
        value = f(config)
        searcher.on_trial_complete(f"t{i}", {"loss": value})
        out.append((config, value))
    return out


def state(searcher: BayesOptSearcher, tmp_path) -> dict:
    path = tmp_path / "state.json"
    searcher.save(str(path))
    return json.loads(path.read_text())


def is_multiple(value: float, q: float) -> bool:
    return abs(value / q - round(value / q)) < 1e-9


ALL_KINDS = {
    "u": D("uniform", -1.0, 2.0),
    "qu": D("quniform", 0.0, 1.0, 0.25),
    "lu": D("loguniform", 1e-4, 1e-1),
    "qlu": D("qloguniform", 1.0, 1000.0, 5.0),
    "ri": D("randint", 1, 4),
    "qri": D("qrandint", 0, 20, 5),
    "lri": D("lograndint", 1, 8),
    "n": D("normal", 10.0, 2.0),
    "fixed": D("randint", 3, 3),
}


def check_kinds(c: dict) -> None:
    assert type(c["u"]) is float and -1.0 <= c["u"] <= 2.0
    assert type(c["qu"]) is float and 0.0 <= c["qu"] <= 1.0 and is_multiple(c["qu"], 0.25)
    assert type(c["lu"]) is float and 1e-4 <= c["lu"] <= 1e-1
    assert type(c["qlu"]) is float and 5.0 <= c["qlu"] <= 1000.0 and is_multiple(c["qlu"], 5.0)
    assert type(c["ri"]) is int and 1 <= c["ri"] <= 4
    assert type(c["qri"]) is int and c["qri"] in (0, 5, 10, 15, 20)
    assert type(c["lri"]) is int and 1 <= c["lri"] <= 8
    assert type(c["n"]) is float and 4.0 <= c["n"] <= 16.0
    assert c["fixed"] == 3 and type(c["fixed"]) is int


def test_random_phase_decodes_every_kind_in_range_with_the_right_types():
    s = BayesOptSearcher(ALL_KINDS, metric="loss", mode="min", seed=1, random_initial=400)
    configs = [s.suggest(f"t{i}") for i in range(400)]
    for c in configs:
        check_kinds(c)
    values = {k: [c[k] for c in configs] for k in ALL_KINDS}
    assert set(values["ri"]) == {1, 2, 3, 4}  # inclusive bounds are reached
    assert set(values["qri"]) == {0, 5, 10, 15, 20}
    assert set(values["qu"]) == {0.0, 0.25, 0.5, 0.75, 1.0}
    assert set(values["lri"]) == set(range(1, 9))
    # log space: the median of loguniform[1e-4, 1e-1] is 10**-2.5 ~ 0.0032, not the linear midpoint 0.05
    assert -2.8 < math.log10(statistics.median(values["lu"])) < -2.2
    assert statistics.median(values["lri"]) <= 3  # log-int: small values dominate
    assert abs(statistics.mean(values["n"]) - 10.0) < 0.4 and 1.6 < statistics.stdev(values["n"]) < 2.4


def test_gp_phase_decodes_every_kind_in_range():
    s = BayesOptSearcher(ALL_KINDS, metric="loss", mode="min", seed=2, random_initial=4)
    results = ask_tell(s, lambda c: (c["u"] - 1) ** 2 + c["ri"] + math.log10(c["lu"]) ** 2, 9)
    for c, _ in results:
        check_kinds(c)


CONDITIONAL = {
    "opt": Choice(("sgd", "adam", "rmsprop"), "space.opt.choice"),
    "flag": Choice((True, False), "space.flag.choice"),
    "mixed": Choice((1, 1.5, "x", None, True), "space.mixed.choice"),
    "model": Choice((
        {"type": "mlp", "layers": D("randint", 1, 4)},
        {"type": "cnn", "kernel": Choice((3, 5), "k"), "lr": D("loguniform", 1e-4, 1e-1)},
        "linear",
    ), "space.model.choice"),
    "const": 7,
    "group": {"a": "fixed", "b": D("uniform", 0.0, 1.0), "only": Choice((42,), "one")},
}


def check_conditional(c: dict) -> None:
    assert set(c) == {"opt", "flag", "mixed", "model", "const", "group"}
    assert c["opt"] in ("sgd", "adam", "rmsprop")
    assert type(c["flag"]) is bool
    assert any(c["mixed"] == o and type(c["mixed"]) is type(o) for o in (1, 1.5, "x", None, True))
    assert c["const"] == 7 and c["group"]["a"] == "fixed" and c["group"]["only"] == 42
    assert 0.0 <= c["group"]["b"] <= 1.0
    model = c["model"]
    if model == "linear":
        return
    if model["type"] == "mlp":
        assert set(model) == {"type", "layers"} and type(model["layers"]) is int and 1 <= model["layers"] <= 4
    else:
        assert set(model) == {"type", "kernel", "lr"} and model["kernel"] in (3, 5)
        assert 1e-4 <= model["lr"] <= 1e-1


def test_choices_of_values_and_of_sub_spaces_give_valid_configs():
    s = BayesOptSearcher(CONDITIONAL, metric="loss", mode="min", seed=3, random_initial=60)
    configs = [s.suggest(f"t{i}") for i in range(60)]
    for c in configs:
        check_conditional(c)
    kinds = {c["model"] if isinstance(c["model"], str) else c["model"]["type"] for c in configs}
    assert kinds == {"mlp", "cnn", "linear"}
    assert {repr(c["mixed"]) for c in configs} == {"1", "1.5", "'x'", "None", "True"}


def test_conditional_space_through_the_gp_finds_the_good_branch():
    def loss(c):
        m = c["model"]
        if isinstance(m, dict) and m["type"] == "cnn":
            return abs(math.log10(m["lr"]) + 2) + (c["opt"] != "adam")
        return 5.0 + c["group"]["b"]

    s = BayesOptSearcher(CONDITIONAL, metric="loss", mode="min", seed=4, random_initial=5)
    results = ask_tell(s, loss, 16)
    for c, _ in results:
        check_conditional(c)
    gp = [c for c, _ in results[5:]]
    assert sum(isinstance(c["model"], dict) and c["model"]["type"] == "cnn" for c in gp) >= 8  # found the branch
    assert min(v for _, v in results) < 1.1  # and tuned its lr (1 is the penalty for opt != adam)


def test_minimises_a_quadratic_better_than_random_sampling():
    space = {"x": D("uniform", -2.0, 2.0)}
    f = lambda c: (c["x"] - 0.3) ** 2  # noqa: E731
    bo = ask_tell(BayesOptSearcher(space, metric="loss", mode="min", seed=0, random_initial=3), f, 12)
    rand = ask_tell(BayesOptSearcher(space, metric="loss", mode="min", seed=0, random_initial=12), f, 12)
    assert min(v for _, v in bo) < 1e-4 < min(v for _, v in rand)


def test_branin_gets_within_0_05_of_the_minimum_in_60_evaluations():
    space = {"x1": D("uniform", -5.0, 10.0), "x2": D("uniform", 0.0, 15.0)}
    results = ask_tell(BayesOptSearcher(space, metric="loss", mode="min", seed=0),
                       lambda c: branin(c["x1"], c["x2"]), 60)
    best = min(v for _, v in results)
    assert best - BRANIN_MIN < 0.05
    rng = np.random.RandomState(0)  # random sampling with the same budget is far off
    assert min(branin(rng.uniform(-5, 10), rng.uniform(0, 15)) for _ in range(60)) > best + 0.1


def test_branin_with_an_integer_parameter():
    space = {"x1": D("uniform", -5.0, 10.0), "x2": D("randint", 0, 15)}
    results = ask_tell(BayesOptSearcher(space, metric="loss", mode="min", seed=0),
                       lambda c: branin(c["x1"], c["x2"]), 60)
    assert all(type(c["x2"]) is int for c, _ in results)
    assert min(v for _, v in results) - BRANIN_INT_MIN < 0.05


def test_mode_max_is_mode_min_of_the_negated_metric():
    space = {"x": D("uniform", 0.0, 1.0), "k": D("randint", 0, 3)}
    f = lambda c: (c["x"] - 0.7) ** 2 + c["k"]  # noqa: E731
    lo = ask_tell(BayesOptSearcher(space, metric="loss", mode="min", seed=5, random_initial=3), f, 10)
    hi = ask_tell(BayesOptSearcher(space, metric="loss", mode="max", seed=5, random_initial=3),
                  lambda c: -f(c), 10)
    assert [c for c, _ in lo] == [c for c, _ in hi]
    assert min(v for _, v in lo) < 0.01  # and min really minimises
    up = ask_tell(BayesOptSearcher(space, metric="loss", mode="max", seed=5, random_initial=3), f, 10)
    assert max(v for _, v in up) > 3.4  # while max maximises the same metric (k = 3, x = 0)


def test_initial_points_come_first_and_partial_ones_are_filled(tmp_path):
    space = {"x": D("uniform", 0.0, 1.0), "n": D("randint", 1, 9), "act": Choice(("relu", "tanh"), "a"),
             "g": {"lr": D("loguniform", 1e-4, 1e-1), "keep": "yes"}}
    points = [{"x": 0.5, "n": 9, "act": "tanh", "g": {"lr": 0.01, "keep": "yes"}}, {"x": 0.25}, {"g": {"lr": 1e-4}}]
    s = BayesOptSearcher(space, metric="loss", mode="min", seed=0, initial_points=points, random_initial=2)
    first, second, third, fourth = (s.suggest(f"t{i}") for i in range(4))
    assert first == {"x": 0.5, "n": 9, "act": "tanh", "g": {"lr": pytest.approx(0.01), "keep": "yes"}}
    assert second["x"] == 0.25 and 1 <= second["n"] <= 9 and second["act"] in ("relu", "tanh")
    assert third["g"]["lr"] == pytest.approx(1e-4) and 0 <= third["x"] <= 1
    for i in range(4):
        s.on_trial_complete(f"t{i}", {"loss": 1.0})
    first_point = state(s, tmp_path)["observed"][0][0]  # registered in the internal (log10) space
    assert first_point["g/lr"] == pytest.approx(-2.0) and first_point["n"] == 9 and first_point["act"] == "1"


@pytest.mark.parametrize("point, where", [
    ({"y": 1.0}, "unknown keys"), ({"x": 2.0}, "outside"), ({"act": "gelu"}, "none of the choice"),
    ({"n": 2.5}, "not an integer"), ({"g": {"keep": "no"}}, "constant"), ({"x": "a"}, "expected a number"),
])
def test_bad_initial_points_are_rejected(point, where):
    space = {"x": D("uniform", 0.0, 1.0), "n": D("randint", 1, 9), "act": Choice(("relu", "tanh"), "a"),
             "g": {"keep": "yes"}}
    with pytest.raises(ValueError, match=where):
        BayesOptSearcher(space, metric="loss", mode="min", initial_points=[point])


def test_initial_point_picks_the_matching_sub_space():
    s = BayesOptSearcher(CONDITIONAL, metric="loss", mode="min", initial_points=[
        {"model": {"type": "cnn", "lr": 0.001}, "flag": True, "mixed": True}, {"model": "linear", "mixed": 1}])
    a, b = s.suggest("a"), s.suggest("b")
    assert a["model"]["type"] == "cnn" and a["model"]["lr"] == pytest.approx(0.001) and a["model"]["kernel"] in (3, 5)
    assert a["flag"] is True and a["mixed"] is True
    assert b["model"] == "linear" and b["mixed"] == 1 and type(b["mixed"]) is int


def test_concurrent_suggestions_without_completions_are_distinct():
    space = {"x": D("uniform", -2.0, 2.0), "y": D("uniform", -2.0, 2.0)}
    s = BayesOptSearcher(space, metric="loss", mode="min", seed=0, random_initial=3)
    ask_tell(s, lambda c: c["x"] ** 2 + c["y"] ** 2, 4)
    configs = [s.suggest(f"p{i}") for i in range(5)]
    xs = [(c["x"], c["y"]) for c in configs]
    assert min(math.dist(a, b) for i, a in enumerate(xs) for b in xs[i + 1:]) > 1e-3


def test_a_small_discrete_space_never_repeats_a_running_or_finished_config():
    space = {"n": D("randint", 0, 3), "act": Choice(("relu", "tanh"), "a")}  # 8 configs in all
    s = BayesOptSearcher(space, metric="loss", mode="min", seed=0, random_initial=2)
    done = ask_tell(s, lambda c: c["n"], 3)
    running = [s.suggest(f"p{i}") for i in range(5)]
    keys = [(c["n"], c["act"]) for c in [*(c for c, _ in done), *running]]
    assert len(set(keys)) == 8


def test_errored_missing_and_non_finite_results_only_leave_pending(tmp_path):
    s = BayesOptSearcher({"x": D("uniform", 0.0, 1.0)}, metric="loss", mode="min", random_initial=0)
    for i in range(5):
        s.suggest(f"t{i}")
    s.on_trial_complete("t0", error=True)
    s.on_trial_complete("t1", {"other": 1.0})
    s.on_trial_complete("t2", {"loss": float("nan")})
    s.on_trial_complete("t3", None)
    s.on_trial_complete("t4", {"loss": 0.5})
    s.on_trial_complete("never-suggested", {"loss": 0.1})
    saved = state(s, tmp_path)
    assert saved["pending"] == {} and [v for _, v in saved["observed"]] == [0.5]


def test_save_restore_continues_the_same_sequence_without_repeats(tmp_path):
    space = {"x": D("uniform", -2.0, 2.0), "n": D("randint", 0, 5)}
    f = lambda c: (c["x"] - 1) ** 2 + c["n"]  # noqa: E731
    make = lambda: BayesOptSearcher(space, metric="loss", mode="min", seed=7, random_initial=3)  # noqa: E731
    s = make()
    before = ask_tell(s, f, 4)
    running = s.suggest("running")
    path = tmp_path / "ckpt" / "searcher.json"
    path.parent.mkdir()
    s.save(str(path))
    assert [p.name for p in path.parent.iterdir()] == ["searcher.json"]  # the temp file was renamed
    restored = make()
    restored.restore(str(path))
    s.on_trial_complete("running", {"loss": f(running)})
    restored.on_trial_complete("running", {"loss": f(running)})
    after_original = ask_tell(s, f, 3, start=10)
    after_restored = ask_tell(restored, f, 3, start=10)
    assert [c for c, _ in after_restored] == [c for c, _ in after_original]
    seen = [(c["x"], c["n"]) for c, _ in before] + [(running["x"], running["n"])]
    assert not {(c["x"], c["n"]) for c, _ in after_restored} & set(seen)
    other = BayesOptSearcher({"z": D("uniform", 0.0, 1.0)}, metric="loss", mode="min")
    with pytest.raises(ValueError, match="different search space"):
        other.restore(str(path))


def test_same_seed_same_sequence_other_seed_other_sequence():
    space = {"x": D("uniform", -2.0, 2.0), "act": Choice(("relu", "tanh"), "a")}
    f = lambda c: c["x"] ** 2 + (c["act"] == "relu")  # noqa: E731
    run = lambda seed: [c for c, _ in ask_tell(  # noqa: E731
        BayesOptSearcher(space, metric="loss", mode="min", seed=seed, random_initial=3), f, 6)]
    assert run(11) == run(11)
    assert run(11) != run(12)


@pytest.mark.parametrize("kwargs, message", [
    ({"metric": ""}, "metric=''"), ({"mode": "minimize"}, "mode='minimize'"), ({"seed": -1}, "seed=-1"),
    ({"random_initial": -1}, "random_initial=-1"), ({"acquisition": "pi"}, "acquisition='pi'"),
    ({"initial_points": [1]}, "initial_points=\\[1\\]"),
])
def test_bad_arguments_are_rejected_naming_them(kwargs, message):
    args = {"metric": "loss", "mode": "min", **kwargs}
    with pytest.raises(ValueError, match=message):
        BayesOptSearcher({"x": D("uniform", 0.0, 1.0)}, **args)


def test_grid_nodes_are_rejected():
    with pytest.raises(ValueError, match="grid"):
        BayesOptSearcher({"x": Grid((1, 2), "space.x.grid")}, metric="loss", mode="min")


def test_set_search_properties_takes_metric_and_mode_and_ignores_config():
    s = BayesOptSearcher({"x": D("uniform", 0.0, 1.0)}, metric="loss", mode="min")
    assert s.set_search_properties("acc", "max", {}) is True
    assert (s.metric, s.mode) == ("acc", "max")
    assert s.set_search_properties(None, None, {"ignored": 1}) is True
    assert (s.metric, s.mode) == ("acc", "max")
    with pytest.raises(ValueError, match="mode='up'"):
        s.set_search_properties(None, "up", {})


@pytest.mark.parametrize("acquisition", ["ucb", "poi"])
def test_other_acquisitions_work(acquisition):
    space = {"x": D("uniform", -2.0, 2.0), "c": Choice(("a", "b"), "c")}
    results = ask_tell(BayesOptSearcher(space, metric="loss", mode="min", seed=0, acquisition=acquisition,
                                        random_initial=3), lambda c: (c["x"] - 0.3) ** 2 + (c["c"] == "a"), 8)
    assert min(v for _, v in results) < 0.05


def test_a_space_of_constants_only():
    s = BayesOptSearcher({"a": 1, "g": {"b": "x"}, "c": Choice(("only",), "c")}, metric="loss", mode="min",
                         random_initial=0)
    ask_tell(s, lambda c: 1.0, 2)
    assert s.suggest("t9") == {"a": 1, "g": {"b": "x"}, "c": "only"}


@pytest.mark.parametrize("mode, values, learned", [("max", [0.5, 0.9, 0.7], 0.9), ("min", [0.5, 0.2, 0.4], 0.2)])
def test_the_model_learns_a_trials_best_epoch_not_its_last(tmp_path, mode, values, learned):
    """tunerd ranks a trial by its best epoch (ASHA may stop it after a worse one): the GP learns the same."""
    s = BayesOptSearcher({"x": D("uniform", 0.0, 1.0)}, metric="acc", mode=mode)
    s.suggest("t0")
    for epoch, value in enumerate(values[:2], start=1):
        s.on_trial_result("t0", {"acc": value, "epoch": epoch})
    s.on_trial_result("t0", {"acc": float("nan"), "epoch": 3})  # a diverged epoch is not a best
    path = tmp_path / "state.json"
    s.save(str(path))  # a restore while the trial runs keeps its best so far
    restored = BayesOptSearcher({"x": D("uniform", 0.0, 1.0)}, metric="acc", mode=mode)
    restored.restore(str(path))
    restored.on_trial_complete("t0", {"acc": values[2], "epoch": 4})
    assert [v for _, v in state(restored, tmp_path)["observed"]] == [learned]
    assert state(restored, tmp_path)["best_seen"] == {}


def test_each_parameter_gets_its_own_length_scale():
    """A learning rate over five decades and a parameter that does not matter: the fitted kernel is short
    along the first and long along the second (one shared scale would be fitted to both)."""
    from tunerd.searchers import _bayesopt as bayesopt

    space = {"lr": D("loguniform", 1e-5, 1.0), "noise": D("uniform", 0.0, 0.7)}
    s = BayesOptSearcher(space, metric="loss", mode="min", seed=3, random_initial=30)
    ask_tell(s, lambda c: (math.log10(c["lr"]) + 3) ** 2, 30)
    opt = bayesopt.BayesianOptimization(f=None, pbounds=s._pbounds, verbose=0)
    for point, value in s._observed:
        opt.space.register(point, -value)
    bayesopt._fit_noise(opt)
    lr_scale, noise_scale = opt._gp.kernel.length_scale
    assert lr_scale / 5 < noise_scale / 0.7 / 10  # relative to their widths, lr's is 10x shorter at least
