"""The CUDA path end to end, small: `pytest -m cuda` on a machine with a GPU (../shared/device/
gpu-check runs it first). Every test here is skipped where torch sees no CUDA device, so a
CPU-only CI stays green; tests that need MNIST or the ants/bees images also skip without them
(the device kit carries one or the other per run). Under 2 minutes on an H100.
"""

from __future__ import annotations

import contextlib
import csv
import json
import warnings

import pytest
import torch
from tolerance import sum_tol

import benchmarks.harness.train as train_mod
from benchmarks.__main__ import main
from benchmarks.harness import graphs
from benchmarks.harness.config import Config
from benchmarks.harness.fast import make_optimizer
from benchmarks.harness.train import own_stream, seeded, train
from benchmarks.tasks import hymenoptera, task_config
from benchmarks.tasks.mnist import load_data, make_model
from models import create_model

pytestmark = [pytest.mark.cuda,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]

# One epoch on 10,000 training digits, evaluated on the whole 10,000-image test set, so that
# 0.05 points is 5 images. plain_7k has dropout (0.05), so its runs draw random masks.
SLICE = ["--model", "plain_7k", "--epochs", "1", "--train-subset", "10000", "--batch-size", "128",
         "--progress", "false", "--device", "cuda"]
TOLERANCE = 0.05  # accuracy points: CUDA's convolutions are not bit for bit reproducible


class Seen:
    """What the trainings started inside watching() resolved and ran with."""

    def __init__(self):
        self.fast, self.optimizers, self.forwards = [], [], []


@contextlib.contextmanager
def watching():
    """Record each training's fast-path settings, its optimizer, and what its first training
    forward pass saw (input layout, output dtype), through train()'s own calls."""
    seen = Seen()
    real_fast, real_optimizer = train_mod.fast_settings, train_mod.make_optimizer

    def fast_settings(cfg, device):
        seen.fast.append(real_fast(cfg, device))
        return seen.fast[-1]

    def optimizer(model, cfg, device):
        def hook(module, args, out):
            if module.training:
                x = args[0]
                seen.forwards.append({"device": x.device.type, "out_dtype": out.dtype,
                                      "channels_last": x.is_contiguous(
                                          memory_format=torch.channels_last)})
                handle.remove()

        handle = model.register_forward_hook(hook)
        seen.optimizers.append(real_optimizer(model, cfg, device))
        return seen.optimizers[-1]

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(train_mod, "fast_settings", fast_settings)
        mp.setattr(train_mod, "make_optimizer", optimizer)
        yield seen


def rows(path) -> list[dict]:
    with open(path) as f:
        return list(csv.DictReader(f))


def mnist(*args) -> int:
    return main(["mnist", *map(str, args)])


def assert_cuda_fast_path(seen: Seen) -> None:
    """bf16 autocast, channels_last and fused SGD, resolved and used."""
    (fast,) = seen.fast
    assert fast.channels_last and fast.amp is torch.bfloat16 and not fast.compile and fast.graphs
    assert not (fast.geometric_dropout or fast.fast_batchnorm or fast.keep_heap)  # CPU only
    (opt,) = seen.optimizers
    assert opt.defaults.get("fused") is True, opt.defaults
    assert all(p.is_cuda for group in opt.param_groups for p in group["params"])
    (fwd,) = seen.forwards
    assert fwd == {"device": "cuda", "out_dtype": torch.bfloat16, "channels_last": True}


@pytest.fixture(scope="module")
def run(mnist_root, tmp_path_factory):
    """One epoch of the slice on CUDA through the CLI, watched: (row, seen, runs CSV)."""
    results = tmp_path_factory.mktemp("cuda") / "runs.csv"
    with watching() as seen:
        assert mnist(*SLICE, "--seeds", 1, "--data-root", mnist_root,
                     "--results", results) == 0
    (row,) = rows(results)
    return row, seen, results


def test_one_epoch_on_the_cuda_fast_path_writes_its_row(run):
    row, seen, _ = run
    assert_cuda_fast_path(seen)
    assert row["device"] == "cuda"
    assert row["device_name"] == f"{torch.cuda.get_device_name()}, bf16 autocast"
    assert row["model"] == "plain_7k" and row["params"] == "6570" and row["epochs"] == "1"
    assert row["train_images"] == "10000" and row["test_images"] == "10000"
    assert 30 < float(row["final_test_acc"]) <= 100  # it learned (10% is chance)
    assert float(row["images_per_second"]) > 0


def test_evaluate_reproduces_the_recorded_accuracy(run, mnist_root, tmp_path):
    row, _, results = run
    (ckpt,) = (results.parent / "checkpoints").glob("mnist-plain_7k-s1-*-final.safetensors")
    recorded = float(row["final_test_acc"])
    figures = {}
    for device in ("cuda", "cpu"):
        out = tmp_path / f"{device}.json"
        assert main(["evaluate", "--checkpoint", str(ckpt), "--device", device,
                     "--data-root", str(mnist_root), "--json", str(out)]) == 0
        figures[device] = json.loads(out.read_text())
    # Same kind of device: exactly (cuDNN picks its algorithms by heuristics, not by timing).
    assert torch.backends.cudnn.benchmark is False
    assert figures["cuda"]["test_acc"] == recorded and figures["cuda"]["matches_recorded"]
    # The CPU computes in true fp32 (CUDA's fp32 convolutions may use TF32): near, not equal.
    assert abs(figures["cpu"]["test_acc"] - recorded) <= TOLERANCE, figures["cpu"]["test_acc"]
    assert figures["cpu"]["images"] == 10000


def test_same_seed_twice_gives_the_same_accuracy(run, mnist_root, tmp_path):
    row, _, _ = run
    again = tmp_path / "again.csv"
    assert mnist(*SLICE, "--seeds", 1, "--data-root", mnist_root, "--results", again) == 0
    (second,) = rows(again)
    assert abs(float(second["final_test_acc"]) - float(row["final_test_acc"])) <= TOLERANCE, \
        (second["final_test_acc"], row["final_test_acc"])


def test_seeds_side_by_side_match_seeds_one_by_one(run, mnist_root, tmp_path):
    """--jobs 2: two seeds in two threads on the one GPU give each seed's row alone."""
    row, _, _ = run
    both, alone = tmp_path / "jobs2.csv", tmp_path / "alone.csv"
    assert mnist(*SLICE, "--seeds", 1, 2, "--jobs", 2, "--data-root", mnist_root,
                 "--results", both) == 0
    assert mnist(*SLICE, "--seeds", 2, "--data-root", mnist_root, "--results", alone) == 0
    side = {r["seed"]: r for r in rows(both)}
    assert set(side) == {"1", "2"} and all(r["device"] == "cuda" for r in side.values())
    for seed, one in (("1", row), ("2", rows(alone)[0])):
        got, want = float(side[seed]["final_test_acc"]), float(one["final_test_acc"])
        assert abs(got - want) <= TOLERANCE, f"seed {seed}: {got} side by side, {want} alone"


def test_the_step_replays_as_a_cuda_graph_and_trains_as_eagerly(run, mnist_root, tmp_path,
                                                                monkeypatch):
    """Every full batch replays the captured step (10,000 images: 78 batches of 128, then 16
    eagerly), the capture warns of nothing, and the run's accuracy is the eager run's (same
    seed, --cuda-graphs off) within what two eager runs of one seed differ by."""
    row, _, _ = run
    replays, real = [], graphs.StepGraph.replay
    monkeypatch.setattr(graphs.StepGraph, "replay",
                        lambda self, x, y: replays.append(len(y)) or real(self, x, y))
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message="CUDA graphs off")
        assert mnist(*SLICE, "--seeds", 1, "--data-root", mnist_root,
                     "--results", tmp_path / "graphed.csv") == 0
    assert replays == [128] * (10000 // 128)
    replays.clear()
    assert mnist(*SLICE, "--seeds", 1, "--cuda-graphs", "off", "--data-root", mnist_root,
                 "--results", tmp_path / "eager.csv") == 0
    assert not replays
    (graphed,), (eager,) = rows(tmp_path / "graphed.csv"), rows(tmp_path / "eager.csv")
    got, want = float(graphed["final_test_acc"]), float(eager["final_test_acc"])
    assert abs(got - want) <= TOLERANCE, f"{got} graphed, {want} eager"


def test_speed_times_the_graphed_step_against_the_eager_one(mnist_root, tmp_path):
    out = tmp_path / "speed.json"
    assert main(["speed", "--model", "nas_plain_10k", "--steps", "20", "--rounds", "1",
                 "--device", "cuda", "--data-root", str(mnist_root), "--parallel", "2",
                 "--json", str(out)]) == 0
    r = json.loads(out.read_text())
    assert r["device"] == "cuda" and r["harness_settings"]["cuda_graphs"] is True
    assert r["others"]["cuda graphs off"]["images_per_second"] > 0
    assert r["parallel"]["jobs"]["images_per_second"] > 0


def test_a_replayed_step_gives_the_eager_gradients():
    """One replay on a batch: the eager step's gradients and batch norm statistics from the
    same weights (fp32, so only the order of cuDNN's sums may differ), and the warm-up before
    the capture changed nothing."""
    torch.manual_seed(0)
    model = create_model("plain_7k", dropout=0.0).cuda().to(memory_format=torch.channels_last)
    model.train()
    x = torch.randn(64, 1, 28, 28, device="cuda").contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (64,), device="cuda")
    loss_fn = torch.nn.CrossEntropyLoss()
    start = {k: v.clone() for k, v in model.state_dict().items()}
    with own_stream(torch.device("cuda")):
        graph = graphs.capture(model, loss_fn, None, x, y, None)
        assert graph is not None
        assert all(torch.equal(v, start[k]) for k, v in model.state_dict().items())
        loss_x, hits = (t.clone() for t in graph.replay(x, y))
        replayed = [p.grad.clone() for p in model.parameters()]
        after = {k: v.clone() for k, v in model.state_dict().items()}
        model.load_state_dict(start)  # in place: the graph's weights stay where they were
        model.zero_grad(set_to_none=False)  # and its gradients too
        eager_loss, eager_hits = graphs.eager_step(model, loss_fn, contextlib.nullcontext, x, y)
    tol = sum_tol(x.numel())
    assert int(hits) == int(eager_hits)
    torch.testing.assert_close(loss_x, eager_loss, rtol=tol, atol=0)
    for name, g, p in zip(dict(model.named_parameters()), replayed, model.parameters()):
        torch.testing.assert_close(g, p.grad, rtol=tol, atol=tol * float(p.grad.abs().max()),
                                   msg=name)
    for k, v in model.state_dict().items():
        torch.testing.assert_close(after[k], v, rtol=tol, atol=tol, msg=k)


def test_training_leaves_the_global_cuda_generator_alone(mnist_root):
    """Runs side by side (--jobs) share torch's global CUDA generator, and seeded() in one
    thread reseeds it under the others: a training that draws from it (nn.Dropout on CUDA
    does) gets masks that depend on timing. Each run must draw only from its own generators."""
    cfg = Config(model="plain_7k", epochs=1, train_subset=1000, test_subset=500, device="cuda",
                 progress=False, data_root=str(mnist_root))
    data = load_data(cfg, torch.device("cuda"))
    with seeded(cfg.seed):
        model = make_model(cfg)
    before = torch.cuda.get_rng_state()
    train(model, cfg, data)
    assert torch.equal(torch.cuda.get_rng_state(), before), (
        "training drew from torch's global CUDA generator (dropout on CUDA?): runs side by "
        "side would not repeat")


def test_search_runs_trials_side_by_side_on_cuda(mnist_root, tmp_path):
    import optuna

    from search.__main__ import main as search_main
    from search.study import status_of

    url = f"sqlite:///{tmp_path / 'search.db'}"
    # 350 images: one-cycle warm-up never ends on step 1 (see tests/test_search.py, TINY).
    assert search_main(["run", "--storage", url, "--n-trials", "4", "--seed", "0",
                        "--jobs", "2", "--device", "cuda", "--data-root", str(mnist_root),
                        "--epochs", "1", "--train-subset", "350", "--test-subset", "200",
                        "--no-live"]) == 0
    trials = optuna.load_study(study_name="mnist-accuracy", storage=url).trials
    trained = [t for t in trials if status_of(t) in ("complete", "pruned")]
    assert trained, [(t.number, t.user_attrs) for t in trials]
    assert all(t.user_attrs["device"] == "cuda" for t in trained)
    assert not [t.user_attrs.get("reason") for t in trials if status_of(t) == "failed"
                and t.user_attrs.get("status") != "diverged"]


def test_fused_sgd_steps_only_the_trained_layers():
    """fused=True takes every parameter (frozen ones have no grad and are skipped)."""
    cfg = task_config("hymenoptera", mode="layer4", weights="none")
    model = hymenoptera.make_model(cfg).cuda().to(memory_format=torch.channels_last)
    opt = make_optimizer(model, cfg, torch.device("cuda"))
    assert opt.defaults.get("fused") is True
    x = torch.randn(2, 3, 64, 64, device="cuda").contiguous(memory_format=torch.channels_last)
    with torch.autocast("cuda", dtype=torch.bfloat16):
        loss = model(x).float().logsumexp(1).sum()
    loss.backward()
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    opt.step()
    changed = {n.split(".")[0] for n, p in model.named_parameters()
               if not torch.equal(p, before[n])}
    assert changed == {"layer4", "fc"}


def test_transfer_task_one_epoch_in_bf16(hymenoptera_root, tmp_path):
    results = tmp_path / "runs.csv"
    with watching() as seen:
        assert main(["hymenoptera", "--weights", "none", "--epochs", "1", "--device", "cuda",
                     "--data-root", str(hymenoptera_root), "--results", str(results),
                     "--train-subset", "64", "--test-subset", "64", "--workers", "2",
                     "--progress", "false"]) == 0
    assert_cuda_fast_path(seen)
    (row,) = rows(results)
    assert row["task"] == "hymenoptera" and row["arch"] == "resnet18-finetune-none"
    assert row["device"] == "cuda" and row["train_images"] == "64"
    assert row["test_images"] == "64" and 0 <= float(row["final_test_acc"]) <= 100
    (ckpt,) = (tmp_path / "checkpoints").glob("hymenoptera-resnet18-s1-*-final.safetensors")
    report = tmp_path / "eval.json"
    assert main(["evaluate", "--checkpoint", str(ckpt), "--device", "cuda", "--data-root",
                 str(hymenoptera_root), "--json", str(report)]) == 0
    assert json.loads(report.read_text())["test_acc"] == float(row["final_test_acc"])
