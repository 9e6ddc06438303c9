"""The search space: every sample is built and counted; nothing over the budget is trained."""

from __future__ import annotations

import collections
import dataclasses
import warnings
from pathlib import Path

import optuna
import pytest

from benchmarks.harness.config import Config
from models import BUDGET, build, count_params, parse
from search import space
from search.objective import Rejected, prepare
from search.publish import replay
from search.study import status_of

RESULTS = Path(__file__).resolve().parents[1] / "results"

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


# ----------------------------------------------------------------------------------------------
# The recipe for tiny models (issue 19): new training choices, old trials replayed unchanged.

NEW_FIELDS = ("scale", "shear", "erase", "ema", "div_factor", "final_div_factor", "anneal",
              "schedule_step", "init", "augment_p", "brightness", "contrast")


def test_space_samples_every_new_training_choice():
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=2))
    seen = collections.defaultdict(set)
    for _ in range(80):
        trial = study.ask()
        sampled = space.suggest_training(trial)
        Config(**sampled)  # each is a Config field, within its checks
        for k, v in sampled.items():
            seen[k].add(v)
        assert set(trial.params) - set(space.DERIVED) <= {f.name for f in
                                                         dataclasses.fields(Config)}
        study.tell(trial, 0.0)
    for name in NEW_FIELDS:
        assert len(seen[name]) >= 2, f"{name} is not searched"
    assert {0.0} < seen["ema"] and seen["batch_size"] == {32, 64, 128, 256}
    assert max(seen["label_smoothing"]) == 0.15 and min(seen["warmup"] - {0.0}) == 0.05


def test_params_of_replays_a_recipe_with_the_new_fields():
    recipe = dataclasses.asdict(Config(batch_size=32, label_smoothing=0.15, warmup=0.05,
                                       scale=0.1, shear=5.0, erase=0.2, ema=0.995,
                                       div_factor=10.0, final_div_factor=1000.0,
                                       anneal="cos", rotate=3.5, translate=0.04))
    params = space.params_of({"family": "plain", "stem": (8, 16), "trans": 8,
                              "body": (12, 16, 16), "fc": False, "dropout": 0.05}, recipe)
    assert params["augment"] == 0.5 and params["ema"] == 0.995
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # FixedTrial warns about values off the grid
        replayed = space.suggest_training(optuna.trial.FixedTrial(params))
    assert replayed == {k: recipe[k] for k in replayed}
    assert set(NEW_FIELDS) <= set(replayed)


def test_a_study_from_before_batch_32_keeps_its_grid():
    """Optuna refuses a categorical whose choices change within a study: a study begun (or
    warm-started from one) before batch 32 was searched samples from its own grid."""
    old = optuna.distributions.CategoricalDistribution([64, 128, 256])
    study = optuna.create_study()
    study.add_trial(optuna.trial.create_trial(params={"batch_size": 64}, value=0.0,
                                              distributions={"batch_size": old}))
    trial = study.ask()
    assert space.suggest_training(trial)["batch_size"] in (64, 128, 256)
    assert trial.distributions["batch_size"] == old
    fresh = optuna.create_study().ask()
    space.suggest_training(fresh)
    assert fresh.distributions["batch_size"].choices == (32, 64, 128, 256)


def _training_before_issue_19(trial) -> dict:
    """suggest_training as it was before the tiny-model recipe (commit c7213cd), frozen here:
    what every trial recorded until then trained with."""
    schedule = trial.suggest_categorical("schedule", ["onecycle", "cosine"])
    strength = round(trial.suggest_float("augment", 0.0, 1.5, step=0.25), 6)
    return {
        "lr": trial.suggest_float("lr", 0.01, 0.4, log=True),
        "momentum": round(trial.suggest_float("momentum", 0.8, 0.95, step=0.05), 6),
        "weight_decay": trial.suggest_float("weight_decay", 1e-5, 1e-3, log=True),
        "batch_size": trial.suggest_categorical("batch_size", [64, 128, 256]),
        "schedule": schedule,
        "warmup": round(trial.suggest_float("warmup", 0.1, 0.4, step=0.05), 6)
        if schedule == "onecycle" else 0.0,
        "label_smoothing": round(trial.suggest_float("label_smoothing", 0.0, 0.1, step=0.05), 6),
        "rotate": round(7.0 * strength, 4),
        "translate": round(0.08 * strength, 4),
    }


# The parameters the tiny-model recipe added; a trial holding any was sampled by today's space.
NEW_PARAMS = {"scale", "shear", "erase", "ema", "div_factor", "final_div_factor", "anneal"}


@pytest.mark.parametrize("db", ["search.db", "demo.db"])
def test_committed_trials_replay_as_they_trained(db):
    """Every trial in the committed studies (the champions' among them) replays through today's
    space (what `confirm` and `promote` do) to exactly the overrides it trained with."""
    storage = f"sqlite:///{RESULTS / db}"
    count = 0
    for summary in optuna.get_all_study_summaries(storage):
        study = optuna.load_study(study_name=summary.study_name, storage=storage)
        assert study.user_attrs["search"]["task"] == "mnist"
        for t in study.get_trials(deepcopy=False):
            if not t.params or (t.state == optuna.trial.TrialState.FAIL
                                and not t.intermediate_values):
                # queued, not sampled yet; or failed before training, possibly part-way
                # through sampling (mnist-under6k trial 52: batch 32, off its study's grid)
                continue
            with warnings.catch_warnings():
                warnings.simplefilter("error")  # no recorded value off today's grid
                replayed = replay(t.params, "mnist")
            count += 1
            new = NEW_PARAMS & set(t.params)
            if new:  # sampled by today's space: each of its parameters is its Config field
                # exactly the stored value, or for a grid float (stored raw, as
                # 0.15000000000000002) that value rounded as _stepped rounds it, to 6 places
                for k in new:
                    want = t.params[k]
                    allowed = (want, round(want, 6)) if isinstance(want, float) else (want,)
                    assert replayed[k] in allowed, (k, t.number)
                continue
            then = optuna.trial.FixedTrial(t.params)
            assert replayed == {"model": space.suggest_architecture(then),
                                **_training_before_issue_19(then)}, (summary.study_name, t.number)
    assert count > 10


def test_the_staged_family_is_sampled_under_a_small_budget_and_replays():
    from models import build, count_params

    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=3))
    small = []
    for _ in range(300):
        trial = study.ask()
        spec = space.suggest_member(trial)
        if spec["family"] == "staged":
            arch = space.member_arch(spec)
            assert arch.count("-p-") == len(spec["widths"]) - 1 and arch.endswith("|do0")
            if count_params(build(arch)) <= 3_700:
                small.append(spec)
        study.tell(trial, 0.0)
    assert len(small) >= 3
    recipe = dataclasses.asdict(Config())
    for spec in small:
        params = space.replay_params(spec, recipe)
        assert params is not None and params["family"] == "staged"
