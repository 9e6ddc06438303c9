"""create_model(NAME, pretrained=True): a zoo member with its saved weights, as recorded."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from conftest import REPO
from safetensors.torch import load_file

import models
from benchmarks.harness.config import Config
from benchmarks.harness.train import evaluate
from benchmarks.tasks.mnist import load_data
from errors import UserError
from models.create import list_pretrained, pretrained_weights

PLAIN_7K = sorted((REPO / "results" / "checkpoints").glob("mnist-plain_7k-*-final.json"))


@pytest.fixture
def committed(monkeypatch):
    """The repository's own results folder, whatever NAS_RESULTS the caller has."""
    monkeypatch.setenv("NAS_RESULTS", str(REPO / "results"))


def test_plain_7k_loads_its_weights_and_tests_as_recorded(committed, mnist_root):
    model = models.create_model("plain_7k", pretrained=True)
    assert not model.training  # ready to predict
    side = json.loads(pretrained_weights("plain_7k").with_suffix(".json").read_text())
    cfg = Config(device="cpu", test_subset=0, data_root=str(mnist_root), progress=False)
    test = load_data(cfg, torch.device("cpu"), with_test=True).test
    acc = evaluate(model, test)["acc"]
    # As tests/test_evaluate.py allows: on another CPU kind one near-tie logit may round the
    # other way, so one image of the 10,000 (0.01 points) may differ, no more.
    assert len(test) == 10_000 and abs(acc - side["recorded"]["test_acc"]) <= 0.01 + 1e-9
    untrained = evaluate(models.create_model("plain_7k"), test)["acc"]
    assert untrained < 50 < acc  # the weights are what makes it accurate


def test_members_with_weights_are_listed_and_others_refused(committed):
    have = list_pretrained()
    assert {"plain_7k", "resnet_8k"} <= set(have)
    without = next(n for n in models.list_models() if n not in have)
    with pytest.raises(UserError, match=f"{without} has no saved weights.*plain_7k"):
        models.create_model(without, pretrained=True)
    with pytest.raises(UserError, match="drop the overrides"):
        models.create_model("plain_7k", pretrained=True, dropout=0.1)
    with pytest.raises(models.UnknownModelError, match="did you mean plain_7k"):
        models.create_model("plain_7kk", pretrained=True)


def test_nas_results_chooses_the_folder_and_only_full_runs_count(tmp_path, monkeypatch):
    monkeypatch.setenv("NAS_RESULTS", str(tmp_path))
    with pytest.raises(UserError, match="members with weights: none"):
        models.create_model("plain_7k", pretrained=True)
    folder = tmp_path / "checkpoints"
    folder.mkdir()
    sidecar = PLAIN_7K[0]
    side = json.loads(sidecar.read_text())
    shutil.copy(sidecar.with_suffix(".safetensors"), folder / "a-final.safetensors")
    tiny = {**json.loads(side["config"]), "train_subset": 512}
    (folder / "a-final.json").write_text(json.dumps({**side, "config": json.dumps(tiny)}))
    assert list_pretrained() == []  # a trial run on 512 images is not the member's weights
    (folder / "a-final.json").write_text(json.dumps(side))
    assert list_pretrained() == ["plain_7k"]
    assert pretrained_weights("plain_7k") == folder / "a-final.safetensors"
    saved = load_file(str(sidecar.with_suffix(".safetensors")))
    loaded = models.create_model("plain_7k", pretrained=True).state_dict()
    assert loaded.keys() == saved.keys() and all(torch.equal(v, loaded[k])
                                                 for k, v in saved.items())


def test_every_champion_has_weights_that_test_as_recorded_and_its_pictures(committed,
                                                                             mnist_root):
    """The leaderboard's champions can be loaded and used, not only read about: their weights
    test as their run recorded, and a run of each has its curves and misclassified digits."""
    import pandas as pd

    from benchmarks.commands.leaderboard import champions

    board = pd.read_csv(REPO / "results" / "leaderboard.csv")
    # A smaller model still waiting for its fresh seeds is named too, but is no champion yet.
    named = {r.model for role, r in champions(board).items()
             if r is not None and not role.endswith("pending")}
    assert named and named <= set(list_pretrained())
    cfg = Config(device="cpu", test_subset=0, data_root=str(mnist_root), progress=False)
    test = load_data(cfg, torch.device("cpu"), with_test=True).test
    for name in sorted(named):
        side = json.loads(pretrained_weights(name).with_suffix(".json").read_text())
        acc = evaluate(models.create_model(name, pretrained=True), test)["acc"]
        assert abs(acc - side["recorded"]["test_acc"]) <= 0.01 + 1e-9, name  # one image, as above
        folders = (REPO / "results" / "plots" / "runs").glob(f"mnist-{name}-s*")
        assert any((f / "curves.png").is_file() and (f / "misclassified.png").is_file()
                   for f in folders), name
