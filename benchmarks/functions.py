"""Test functions with known optima for the search benchmark (benchmarks/search_peers.py): each is a tunerd
space, a budget, the optimum and the function itself, so that tunerd (through the trainable
`benchmarks.workloads:test_function`) and Optuna run directly search exactly the same problem.

Kept free of Ray and PyTorch. Every function is minimised; regret = best value found - optimum.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

_HARTMANN_A = np.array([[10, 3, 17, 3.5, 1.7, 8], [0.05, 10, 17, 0.1, 8, 14], [3, 3.5, 1.7, 10, 17, 8],
                        [17, 8, 0.05, 10, 0.1, 14]])
_HARTMANN_P = 1e-4 * np.array([[1312, 1696, 5569, 124, 8283, 5886], [2329, 4135, 8307, 3736, 1004, 9991],
                               [2348, 1451, 3522, 2883, 3047, 6650], [4047, 8828, 8732, 5743, 1091, 381]])
_HARTMANN_ALPHA = np.array([1.0, 1.2, 3.0, 3.2])
#: the mixed problem's penalty per activation (relu is the best)
_ACTIVATION = {"relu": 0.0, "gelu": 0.15, "tanh": 0.4, "sigmoid": 0.9}


def branin(config: dict[str, Any]) -> float:
    x1, x2 = config["x1"], config["x2"]
    b, c, t = 5.1 / (4 * math.pi ** 2), 5 / math.pi, 1 / (8 * math.pi)
    return (x2 - b * x1 ** 2 + c * x1 - 6) ** 2 + 10 * (1 - t) * math.cos(x1) + 10


def hartmann6(config: dict[str, Any]) -> float:
    x = np.array([config[f"x{i}"] for i in range(6)])
    return float(-np.sum(_HARTMANN_ALPHA * np.exp(-np.sum(_HARTMANN_A * (x - _HARTMANN_P) ** 2, axis=1))))


def mixed(config: dict[str, Any]) -> float:
    """A learning rate over three decades (best 10^-2.5), a layer count 1..8 (best 5), an activation (best
    relu) and a dropout whose best value grows with the layers (0.05 per layer): minimum 0."""
    lr, layers, dropout = math.log10(config["lr"]), config["layers"], config["dropout"]
    return ((lr + 2.5) / 1.5) ** 2 + ((layers - 5) / 3.5) ** 2 + _ACTIVATION[config["activation"]] + \
        16 * (dropout - 0.05 * layers) ** 2


def conditional(config: dict[str, Any]) -> float:
    """Two model families with their own parameters, and a shared one: family a bottoms out at 0.2, family b
    at 0 (x, y, z its own; w shared): minimum 0."""
    model, w = config["model"], config["w"]
    shared = 4 * (w - 0.5) ** 2
    if model["kind"] == "a":
        return 0.2 + (model["x"] - 1.0) ** 2 / 4 + shared
    return 4 * (model["y"] - 0.3) ** 2 + (model["z"] - 3) ** 2 / 4 + shared


def levy10(config: dict[str, Any]) -> float:
    """The Levy function in 10 dimensions over [-10, 10]: many local minima, the global one 0 at (1, ..., 1)."""
    w = 1 + (np.array([config[f"x{i}"] for i in range(10)]) - 1) / 4
    head = math.sin(math.pi * w[0]) ** 2
    body = np.sum((w[:-1] - 1) ** 2 * (1 + 10 * np.sin(math.pi * w[:-1] + 1) ** 2))
    tail = (w[-1] - 1) ** 2 * (1 + math.sin(2 * math.pi * w[-1]) ** 2)
    return float(head + body + tail)


@dataclass(frozen=True)
class Problem:
    name: str
    space: dict[str, Any]  # tunerd's `space:` (the problem's name is added as a constant)
    budget: int
    optimum: float
    function: Callable[[dict[str, Any]], float]
    #: only numbers: cmaes can search it
    numeric: bool = True


PROBLEMS: dict[str, Problem] = {p.name: p for p in (
    Problem("branin", {"x1": {"uniform": [-5, 10]}, "x2": {"uniform": [0, 15]}}, 40, 0.397887, branin),
    Problem("hartmann6", {f"x{i}": {"uniform": [0, 1]} for i in range(6)}, 80, -3.32237, hartmann6),
    Problem("mixed", {"lr": {"loguniform": [1.0e-4, 1.0e-1]}, "layers": {"randint": [1, 8]},
                      "activation": {"choice": ["relu", "tanh", "sigmoid", "gelu"]},
                      "dropout": {"uniform": [0.0, 0.5]}}, 40, 0.0, mixed, numeric=False),
    Problem("conditional", {"model": {"choice": [{"kind": "a", "x": {"uniform": [-2, 2]}},
                                                 {"kind": "b", "y": {"uniform": [0, 1]}, "z": {"randint": [1, 5]}}]},
                            "w": {"uniform": [0, 1]}}, 40, 0.0, conditional, numeric=False),
    Problem("levy10", {f"x{i}": {"uniform": [-10, 10]} for i in range(10)}, 100, 0.0, levy10),
)}


def evaluate(config: dict[str, Any]) -> float:
    """The value of the problem the config names (`problem`, a constant of its space)."""
    return PROBLEMS[config["problem"]].function(config)
