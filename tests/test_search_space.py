"""The search space: every sample is built and counted; nothing over the budget is trained."""

from __future__ import annotations

import collections

import optuna
import pytest

from benchmarks.config import Config
from models import BUDGET, build, count_params, parse
from search import space
from search.objective import Rejected, prepare
from search.study import status_of

optuna.logging.set_verbosity(optuna.logging.WARNING)


def test_500_random_samples_none_trained_over_budget():
    """The objective's own gate (prepare) on 500 RandomSampler trials, without training."""
    base = Config(val_split=10_000, progress=False)
    reached_training = []

    def objective(trial):
        cfg, model = prepare(trial, base)  # the objective's path up to the first train step
        reached_training.append((cfg.model, count_params(model)))
        return 0.0

    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    study.optimize(objective, n_trials=500)
    trials = study.get_trials()
    statuses = collections.Counter(status_of(t) for t in trials)
    assert statuses["complete"] + statuses["rejected"] == 500
    assert statuses["rejected"] > 0  # the space does reach past the budget, and is caught

    assert len(reached_training) == statuses["complete"]
    assert all(n <= BUDGET for _, n in reached_training)
    for t in trials:
        a = t.user_attrs
        assert str(parse(a["arch"])) == a["arch"]  # canonical strings only
        assert a["params"] == count_params(build(a["arch"]))
        if status_of(t) == "rejected":
            assert a["params"] > BUDGET and "over the budget" in a["reason"]
            assert "macs" not in a and "val_acc_per_epoch" not in a  # never trained
        else:
            assert a["params"] <= BUDGET
    assert {t.params["family"] for t in trials} == set(space.ARCH_SPACES)


def test_rejected_is_a_pruned_trial_the_sampler_can_learn_from():
    study = optuna.create_study()
    params = {"family": "plain", "plain.stem_depth": 3, "plain.stem0": 24, "plain.stem1": 24,
              "plain.stem2": 24, "plain.trans": 20, "plain.body_depth": 4, "plain.body0": 32,
              "plain.body1": 32, "plain.body2": 32, "plain.body3": 32, "plain.fc": True}
    study.enqueue_trial(params)
    trial = study.ask()
    with pytest.raises(Rejected):
        prepare(trial, Config(progress=False))
    study.tell(trial, state=optuna.trial.TrialState.PRUNED)
    frozen = study.trials[0]
    assert status_of(frozen) == "rejected" and frozen.user_attrs["params"] > BUDGET


def test_fixed_trial_replays_a_sample_exactly():
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    for _ in range(30):
        trial = study.ask()
        sampled = space.suggest(trial)
        assert space.suggest(optuna.trial.FixedTrial(trial.params)) == sampled
        Config(**sampled)  # every sample is a valid Config
        study.tell(trial, 0.0)
