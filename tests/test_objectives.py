"""Several objectives and constraints without Ray: Pareto ranks, crowding, MO-ASHA's promotion, the
Pareto median rule, and the one ranking of trials."""
from __future__ import annotations

import itertools
import math
import random

import pytest

from tunerd.objectives import Constraint, Goal, Objective, crowding_distances, pareto_ranks, survivors
from tunerd.summary import TrialRecord, best_trial, pareto_front, rank_trials

TWO = Goal((Objective("acc", "max"), Objective("ms", "min")))


def dominates(a, b) -> bool:
    return all(x <= y for x, y in zip(a, b)) and any(x < y for x, y in zip(a, b))


def test_pareto_ranks_peel_fronts_as_the_definition_says():
    rng = random.Random(0)
    points = [(rng.random(), rng.random(), rng.random()) for _ in range(60)] + [(0.5, 0.5, 0.5)] * 2
    ranks = pareto_ranks(points)
    for i, j in itertools.permutations(range(len(points)), 2):
        if dominates(points[i], points[j]):
            assert ranks[i] < ranks[j]
    for i, rank in enumerate(ranks):  # a point of rank r > 0 is dominated by one of rank r - 1
        if rank:
            assert any(ranks[j] == rank - 1 and dominates(points[j], points[i]) for j in range(len(points)))
    assert ranks[-1] == ranks[-2]  # equal points share a rank


def test_crowding_keeps_the_extremes_and_prefers_isolated_points():
    distances = crowding_distances([(0, 4), (1, 3), (1.1, 2.9), (4, 0)])
    assert distances[0] == distances[3] == math.inf
    assert distances[1] > 0 and distances[2] > 0
    assert crowding_distances([(0, 1), (1, 0)]) == [math.inf, math.inf]


def test_survivors_put_feasible_fronts_first_then_least_violation():
    points = [(1, 1), (0, 2), (2, 0), (2, 2), (0, 0)]
    violations = [0, 0, 0, 0, 0.5]  # the best point breaks a constraint
    assert set(survivors(points, violations, 3)) == {0, 1, 2}  # the feasible front
    assert survivors(points, violations, 5)[-1] == 4  # the infeasible one last
    assert survivors(points, [0, 0, 0, 0, 0], 1) == [4]


def test_a_trials_best_report_is_feasible_first_then_the_select_objective():
    goal = Goal((Objective("acc", "max"), Objective("ms", "min")), (Constraint("ms", max=10.0),))
    fast_but_worse = {"acc": 0.8, "ms": 5.0}
    better_but_slow = {"acc": 0.9, "ms": 20.0}
    assert goal.better_report(fast_but_worse, better_but_slow)
    assert not goal.better_report(better_but_slow, fast_but_worse)
    assert goal.better_report({"acc": 0.85, "ms": 5.0}, fast_but_worse)
    assert not goal.better_report({"acc": float("nan"), "ms": 1.0}, fast_but_worse)
    # ties in the select objective: the other objectives decide
    assert goal.better_report({"acc": 0.8, "ms": 4.0}, fast_but_worse)
    assert Goal((Objective("acc", "max"),), select="acc").better_report({"acc": 1.0}, None)


def test_select_must_be_an_objective():
    with pytest.raises(ValueError, match="select"):
        Goal((Objective("acc", "max"),), select="ms")


def record(trial_id: str, index: int, **best) -> TrialRecord:
    return TrialRecord(trial_id=trial_id, config={}, index=index, best=best)


def test_trials_rank_by_feasibility_then_pareto_rank_then_the_select_objective():
    goal = Goal((Objective("acc", "max"), Objective("ms", "min")), (Constraint("ms", max=10.0),))
    trials = [record("slow", 0, acc=0.99, ms=50.0),       # infeasible
              record("front_a", 1, acc=0.9, ms=8.0),
              record("front_b", 2, acc=0.8, ms=2.0),
              record("dominated", 3, acc=0.7, ms=9.0),
              record("none", 4),
              record("slower", 5, acc=0.99, ms=80.0)]     # more infeasible
    ranked = [t.trial_id for t in rank_trials(trials, goal)]
    assert ranked == ["front_a", "front_b", "dominated", "slow", "slower", "none"]
    assert best_trial(trials, goal).trial_id == "front_a"
    assert [t.trial_id for t in pareto_front(trials, goal)] == ["front_a", "front_b"]
    select_ms = Goal(goal.objectives, goal.constraints, select="ms")
    assert best_trial(trials, select_ms).trial_id == "front_b"
    assert [t.trial_id for t in rank_trials(trials, select_ms)][:2] == ["front_b", "front_a"]


def test_no_feasible_trial_the_least_violation_is_best():
    goal = Goal((Objective("acc", "max"),), (Constraint("ms", max=1.0),))
    trials = [record("a", 0, acc=0.9, ms=3.0), record("b", 1, acc=0.5, ms=1.5)]
    assert best_trial(trials, goal).trial_id == "b"
    assert [t.trial_id for t in rank_trials(trials, goal)] == ["b", "a"]


def test_mo_asha_promotes_the_non_dominated_at_a_rung():
    from ray.tune.schedulers import TrialScheduler

    from tunerd.schedulers._pareto import ParetoASHA, rung_levels

    assert rung_levels(1, 3, 10) == [1, 3, 9]
    assert rung_levels(2, 2, 9) == [2, 4, 8]
    asha = ParetoASHA(TWO, time_attr="epoch", max_t=9, grace_period=1, reduction_factor=2)
    go, stop = TrialScheduler.CONTINUE, TrialScheduler.STOP
    assert asha.decide("a", {"epoch": 1, "acc": 0.5, "ms": 5}) == go      # alone at the rung
    assert asha.decide("b", {"epoch": 1, "acc": 0.4, "ms": 6}) == stop    # dominated by a
    assert asha.decide("c", {"epoch": 1, "acc": 0.9, "ms": 9}) == go      # on the front, the spread kept
    assert asha.decide("d", {"epoch": 1, "acc": 0.3, "ms": 1}) == go      # on the front: an extreme
    assert asha.decide("a", {"epoch": 2, "acc": 0.6, "ms": 5}) == go      # between rungs
    assert asha.decide("e", {"epoch": 1, "ms": 1}) == stop                # no accuracy: worst
    assert asha.decide("a", {"epoch": 9, "acc": 0.7, "ms": 5}) == stop    # max_t


def test_mo_asha_with_one_objective_keeps_the_top_fraction():
    from ray.tune.schedulers import TrialScheduler

    from tunerd.schedulers._pareto import ParetoASHA

    goal = Goal((Objective("loss", "min"),), (Constraint("ms", max=10.0),))
    asha = ParetoASHA(goal, time_attr="epoch", max_t=5, grace_period=1, reduction_factor=2)
    decisions = [asha.decide(str(i), {"epoch": 1, "loss": loss, "ms": ms})
                 for i, (loss, ms) in enumerate([(3, 1), (2, 1), (4, 1), (1, 50)])]
    # the last has the lowest loss but breaks the constraint
    assert decisions == [TrialScheduler.CONTINUE, TrialScheduler.CONTINUE, TrialScheduler.STOP, TrialScheduler.STOP]


def test_pareto_median_stops_a_trial_the_median_dominates():
    from ray.tune.schedulers import TrialScheduler

    from tunerd.schedulers._pareto import ParetoMedian

    median = ParetoMedian(TWO, time_attr="epoch", grace_period=1, min_samples=3)
    for i, (acc, ms) in enumerate([(0.8, 2), (0.9, 3), (0.85, 1)]):
        assert median.decide(str(i), {"epoch": 1, "acc": acc, "ms": ms}) == TrialScheduler.CONTINUE
    assert median.decide("worse", {"epoch": 1, "acc": 0.5, "ms": 9}) == TrialScheduler.STOP
    assert median.decide("trade", {"epoch": 1, "acc": 0.5, "ms": 0.5}) == TrialScheduler.CONTINUE
