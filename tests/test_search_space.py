"""The search space: every sample is built and counted; nothing over the budget is trained."""

from __future__ import annotations

import collections
import dataclasses
import importlib.util
import re
import shutil
import warnings
from pathlib import Path

import optuna
import pytest

from benchmarks.harness.config import Config
from errors import UserError
from models import BUDGET, build, count_params, parse
from search import space, versions
from search.objective import Rejected, prepare
from search.publish import replay
from search.storage import open_storage
from search.study import check_warm_start, peek_study, status_of

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "results"

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
# Today's space: every training choice a Config field, asked of every trial alike.

TRAINING_CHOICES = ("scale", "shear", "erase", "ema", "div_factor", "final_div_factor",
                    "anneal", "schedule_step", "init", "augment_p", "brightness", "contrast")
CONFIG_FIELDS = {f.name for f in dataclasses.fields(Config)}


def test_space_samples_every_training_choice():
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=2))
    seen = collections.defaultdict(set)
    for _ in range(80):
        trial = study.ask()
        sampled = space.suggest_training(trial)
        Config(**sampled)  # each is a Config field, within its checks
        for k, v in sampled.items():
            seen[k].add(v)
        assert set(trial.params) - set(space.DERIVED) <= CONFIG_FIELDS
        study.tell(trial, 0.0)
    for name in TRAINING_CHOICES:
        assert len(seen[name]) >= 2, f"{name} is not searched"
    assert {0.0} < seen["ema"] and seen["batch_size"] == {32, 64, 128, 256}
    assert max(seen["label_smoothing"]) == 0.15 and min(seen["warmup"] - {0.0}) == 0.05


def test_params_of_replays_a_recipe_with_every_training_choice():
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
    assert set(TRAINING_CHOICES) <= set(replayed)


def test_todays_space_asks_every_trial_the_same_training_parameters():
    """No branch on a trial's history: which training parameters are asked depends on the
    schedule alone, and a trial sampled from an earlier version does not replay through
    today's space (it replays through its own, below)."""
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=4))
    asked = collections.defaultdict(set)
    for _ in range(40):
        trial = study.ask()
        space.suggest_training(trial)
        asked[trial.params["schedule"]].add(frozenset(trial.params))
        study.tell(trial, 0.0)
    (onecycle,), (cosine,) = asked["onecycle"], asked["cosine"]
    assert onecycle - cosine == {"warmup", "div_factor", "final_div_factor", "anneal"}
    earlier = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=4)).ask()
    versions.VERSIONS["mnist"][1](earlier)
    with pytest.raises(ValueError, match="parameter 'scale' is not found"):
        space.suggest(optuna.trial.FixedTrial(earlier.params))


def test_the_search_package_reads_no_optuna_private():
    source = "\n".join(p.read_text() for p in (ROOT / "search").glob("*.py"))
    assert not re.search(r"\b(trial|study|storage|t|src)\._[a-z]", source)


# ----------------------------------------------------------------------------------------------
# Versions: a trial replays through the version of the space that sampled it.

def test_each_task_samples_from_its_newest_version():
    for task, suggest in space.SPACES.items():
        assert versions.VERSIONS[task][space.VERSION[task]] is suggest
        assert max(versions.VERSIONS[task]) == space.VERSION[task]


@pytest.mark.parametrize("version", sorted(versions.VERSIONS["mnist"]))
def test_a_trial_replays_through_the_version_that_sampled_it(version):
    suggest = versions.VERSIONS["mnist"][version]
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=version))
    for _ in range(30):
        trial = study.ask()
        sampled = suggest(trial)
        assert versions.sampled_from(trial.params, "mnist") == version
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            assert replay(trial.params, "mnist") == sampled
        study.tell(trial, 0.0)
    with pytest.raises(UserError, match="no version of the mnist search space"):
        replay({**trial.params, "nothing": 1}, "mnist")


def load_stamp_space():
    spec = importlib.util.spec_from_file_location("stamp_space",
                                                  ROOT / "experiments" / "stamp_space.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def committed(tmp_path_factory) -> dict[str, str]:
    """Copies of the committed storages (db -> URL), stamped as experiments/stamp_space.py
    stamps them: the committed files themselves are only read."""
    folder = tmp_path_factory.mktemp("committed")
    stamp = load_stamp_space().stamp
    urls = {}
    for db in ("search.db", "demo.db"):
        shutil.copy(RESULTS / db, folder / db)
        urls[db] = f"sqlite:///{folder / db}"
        stamp(open_storage(urls[db], create=False))
        assert stamp(open_storage(urls[db], create=False)) == []  # a second run: nothing new
    return urls


# The version each committed study samples from, as the stamp records it (mnist-under6k began
# in version 1: its first trials replay through that one).
STAMPED = {"mnist-accuracy": 1, "mnist-under5k": 1, "mnist-under8k": 1, "mnist-under12k": 1,
           "mnist-under6k": 2, "mnist-under6k-b32": 2, "mnist-under4k": 2,
           "mnist-under5k-b32": 2, "mnist-under5500-b32": 2, "mnist-under4k-sep": 2,
           "mnist-pareto-demo": 1}


def _studies(url: str) -> list[optuna.Study]:
    return [optuna.load_study(study_name=name, storage=url)
            for name in optuna.get_all_study_names(url)]


def test_committed_studies_record_their_space_and_budget(committed):
    found = {s.study_name: s.user_attrs["search"] for url in committed.values()
             for s in _studies(url)}
    assert {name: found[name]["space"] for name in STAMPED} == STAMPED
    assert found["mnist-accuracy"]["budget"] == found["mnist-pareto-demo"]["budget"] == BUDGET
    assert all(s["space"] <= space.VERSION[s["task"]] for s in found.values())


@pytest.mark.parametrize("db", ["search.db", "demo.db"])
def test_committed_trials_replay_as_they_trained(committed, db):
    """Every trial of the committed studies (the champions' among them) replays through the
    version that sampled it (what `confirm` and `promote` do) to the model it trained and to
    each training choice it records."""
    count = 0
    for study in _studies(committed[db]):
        settings = study.user_attrs["search"]
        assert settings["task"] == "mnist"
        for t in study.get_trials(deepcopy=False):
            version = versions.sampled_from(t.params, "mnist")
            if version is None:
                # queued, not sampled yet; or failed part-way through sampling (mnist-under6k
                # trial 52: batch 32, off its study's grid)
                assert not t.params or (t.state == optuna.trial.TrialState.FAIL
                                        and not t.intermediate_values), t.number
                continue
            assert version <= settings["space"]
            with warnings.catch_warnings():
                warnings.simplefilter("error")  # every value on its version's grid
                replayed = replay(t.params, "mnist")
            count += 1
            assert replayed.pop("model") == t.user_attrs["arch"]
            strength = t.params["augment"]
            assert replayed.pop("rotate") == round(7.0 * strength, 4)
            assert replayed.pop("translate") == round(0.08 * strength, 4)
            if t.params["schedule"] == "cosine":
                assert replayed.pop("warmup") == 0.0
            assert replayed.keys() == CONFIG_FIELDS & t.params.keys()
            for k, value in replayed.items():
                # the stored value, or for a grid float (stored raw, as 0.15000000000000002)
                # that value rounded as the space rounds it, to 6 places
                want = t.params[k]
                allowed = (want, round(want, 6)) if isinstance(want, float) else (want,)
                assert value in allowed, (study.study_name, t.number, k)
    assert count > 10


def test_a_study_of_an_earlier_version_is_neither_resumed_nor_warm_started_from(committed):
    """Optuna refuses a categorical whose choices change within a study (the families, the
    batch sizes): a study samples from one version, and takes trials only from that one."""
    storage = open_storage(committed["search.db"], create=False)
    now = space.VERSION["mnist"]
    old = optuna.load_study(study_name="mnist-under5k", storage=storage).user_attrs["search"]
    settings = {**old, "space": now}
    with pytest.raises(UserError, match=rf"was run with space=1 \(now {now}\)"):
        peek_study(storage, "mnist-under5k", settings)
    with pytest.raises(UserError, match=rf"it ran with space=1 \(here {now}\)"):
        check_warm_start(storage, "mnist-under5k", {**settings, "budget": 12_000}, "new")


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
