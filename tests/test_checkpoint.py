"""Checkpoints: safetensors weights + JSON sidecar; loading checks everything, runs no code."""

from __future__ import annotations

import json

import pytest
import torch

from benchmarks.harness.checkpoint import (
    BestWeights,
    CheckpointError,
    commit_run,
    read_sidecar,
    run_stem,
)
from benchmarks.harness.checkpoint import save_run as save_partial
from benchmarks.tasks.run import load_checkpoint as load
from errors import UserError
from models import build

ARCH = "v8-v16-p-t8-v12-v16-v16-t10-gap|do0.05"
OTHER = "v8-v8-p-t8-v8-v12-v12-t10-gap|do0.05"  # same layers, other widths


def _model(arch: str = ARCH) -> torch.nn.Module:
    torch.manual_seed(0)
    model = build(arch)
    for m in model.modules():  # non-default BatchNorm statistics, so buffers must round-trip
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-1, 1)
            m.running_var.uniform_(0.5, 2)
            m.num_batches_tracked.fill_(7)
    return model


def _row(arch: str = ARCH) -> dict:
    """The shape of a run_one row: Config fields, measured columns, the private extras."""
    history = [{"epoch": 1, "train_loss": 1.0, "val_acc": 50.0, "test_acc": 51.0},
               {"epoch": 2, "train_loss": 0.5, "val_acc": 60.0, "test_acc": 59.0}]
    return {"task": "mnist", "model": arch, "seed": 3, "epochs": 2, "arch": arch,
            "params": 6570, "timestamp": "2025-01-02T03:04:05+00:00", "final_test_acc": 59.0,
            "config": json.dumps({"task": "mnist", "model": arch, "epochs": 2}),
            "_result": {"history": history, "test": {"acc": 59.0}}, "_model": object()}


def save_run(*args, **kwargs) -> dict:
    """A run's save as it ends when its row is written: saved, then given its final names."""
    paths = save_partial(*args, **kwargs)
    commit_run(paths)
    return paths


def test_roundtrip_is_exact_and_sidecar_holds_the_row(tmp_path):
    model = _model()
    paths = save_run(_row(), model, directory=tmp_path)
    weights = tmp_path / f"{run_stem(_row())}-final.safetensors"
    assert paths == {"checkpoint": str(weights), "best_checkpoint": None}
    assert weights.name == "mnist-v8-v16-p-t8-v12-v16-v16-t10-gap_do0.05-s3-20250102T030405" \
                           "-final.safetensors"
    assert weights.stat().st_size < 40_000  # kilobytes: small enough to commit
    # safetensors: an 8-byte header length, then a JSON header; no pickle anywhere.
    head = weights.read_bytes()
    n = int.from_bytes(head[:8], "little")
    assert json.loads(head[8:8 + n])["__metadata__"]["arch"] == ARCH

    loaded, side = load(weights)
    assert not loaded.training
    want = model.state_dict()
    assert loaded.state_dict().keys() == want.keys()
    for k, v in loaded.state_dict().items():
        assert torch.equal(v, want[k]), k
    assert side["arch"] == ARCH and side["seed"] == 3 and side["params"] == 6570
    assert side["checkpoint_kind"] == "final" and side["recorded"]["test_acc"] == 59.0
    assert len(side["history"]) == 2
    assert not any(k.startswith("_") for k in side)


def test_same_second_runs_get_distinct_files(tmp_path):
    first = save_run(_row(), _model(), directory=tmp_path)["checkpoint"]
    second = save_run(_row(), _model(), directory=tmp_path)["checkpoint"]
    assert first != second and second.endswith("-2-final.safetensors")


def test_concurrent_same_second_runs_never_share_or_delete_each_others_files(tmp_path):
    # Eight savers race for one stem: each must get its own file (the old exists() check let
    # two claim the same one), and a saver that fails removes only what it claimed.
    from concurrent.futures import ThreadPoolExecutor

    from benchmarks.harness.checkpoint import remove_run
    with ThreadPoolExecutor(8) as pool:
        paths = list(pool.map(lambda _: save_run(_row(), _model(), directory=tmp_path),
                              range(8)))
    finals = [p["checkpoint"] for p in paths]
    assert len(set(finals)) == 8
    remove_run(paths[3])
    left = sorted(str(p) for p in tmp_path.glob("*-final.safetensors"))
    assert left == sorted(finals[:3] + finals[4:])
    for final in left:
        load(final)  # each one whole and loadable


def test_a_run_ending_while_another_claims_its_stem_keeps_its_weights(tmp_path, monkeypatch):
    """The interleaving behind a rare failure of the race above: run 1 commits (its weights take
    their final name, its claim goes) just as run 2, same stem, claims it. Run 2 must see run
    1's weights and take the next stem, not overwrite them."""
    import os

    from benchmarks.harness import checkpoint

    first = save_partial(_row(), _model(), directory=tmp_path)  # saved, row not yet written
    real_open = os.open

    def open_as_the_first_run_ends(path, *args, **kwargs):
        if str(path).endswith(checkpoint.PENDING) and "_claim" in first:
            commit_run(first)
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(checkpoint.os, "open", open_as_the_first_run_ends)
    second = save_run(_row(), _model(), directory=tmp_path)
    assert second["checkpoint"] != first["checkpoint"]
    assert second["checkpoint"].endswith("-2-final.safetensors")


def test_best_weights_keeps_the_best_val_epoch(tmp_path):
    model = _model()
    calls = []
    keeper = BestWeights(model, lambda epoch, record: calls.append(epoch))
    keeper(1, {"val_acc": 50.0})
    best_state = {k: v.clone() for k, v in model.state_dict().items()}
    with torch.no_grad():
        next(model.parameters()).add_(1.0)  # the next epoch changes the weights ...
    keeper(2, {"val_acc": 40.0})  # ... but validates worse: the snapshot stays
    keeper(3, {"test_acc": 99.0})  # no validation split: nothing to compare
    assert calls == [1, 2, 3] and keeper.epoch == 1 and keeper.acc == 50.0
    assert all(torch.equal(keeper.state[k], best_state[k]) for k in best_state)

    paths = save_run(_row(), model, keeper, tmp_path)
    assert paths["best_checkpoint"].endswith("-best.safetensors")
    best, side = load(paths["best_checkpoint"])
    assert side["checkpoint_kind"] == "best" and side["recorded"]["epoch"] == 1
    assert side["recorded"]["val_acc"] == 50.0 and side["recorded"]["test_acc"] == 51.0
    assert torch.equal(next(best.parameters()), best_state[next(iter(best_state))])


def test_truncated_weights_name_the_file(tmp_path):
    path = save_run(_row(), _model(), directory=tmp_path)["checkpoint"]
    data = open(path, "rb").read()
    for cut in (len(data) // 2, 4):
        open(path, "wb").write(data[:cut])
        with pytest.raises(CheckpointError, match="truncated") as e:
            load(path)
        assert path in str(e.value)


def test_weights_of_another_architecture_are_refused(tmp_path):
    path = save_run(_row(), _model(), directory=tmp_path)["checkpoint"]
    sidecar = tmp_path / (path.rsplit("/", 1)[1].replace(".safetensors", ".json"))
    side = json.loads(sidecar.read_text())
    sidecar.write_text(json.dumps({**side, "arch": OTHER}))
    # The weights name their architecture: the sidecar's other one is refused before loading.
    with pytest.raises(UserError, match="belongs to another run") as e:
        load(path)
    assert str(sidecar) in str(e.value) and OTHER in str(e.value) and ARCH in str(e.value)
    # Weights without that metadata are refused by their shapes.
    from safetensors.torch import load_file, save_file
    save_file(load_file(path), path)
    with pytest.raises(UserError, match="do not fit the architecture") as e:
        load(path)
    assert path in str(e.value) and OTHER in str(e.value) and "shape" in str(e.value)


def test_missing_or_broken_sidecar_names_the_file(tmp_path):
    path = save_run(_row(), _model(), directory=tmp_path)["checkpoint"]
    sidecar = tmp_path / path.rsplit("/", 1)[1].replace(".safetensors", ".json")
    sidecar.write_text("{not json")
    with pytest.raises(CheckpointError, match="not a readable JSON sidecar") as e:
        read_sidecar(sidecar)
    assert str(sidecar) in str(e.value)
    sidecar.write_text(json.dumps({"task": "mnist", "arch": "v8-nonsense"}))
    with pytest.raises(CheckpointError, match="invalid architecture"):
        load(path)
    sidecar.unlink()
    with pytest.raises(CheckpointError, match="sidecar .* is missing") as e:
        load(path)
    assert path in str(e.value)
    with pytest.raises(CheckpointError, match="not found"):
        load(tmp_path / "nothing.safetensors")
