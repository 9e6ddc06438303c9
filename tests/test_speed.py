"""The fast path (train.py) and the speed benchmark. Tiny runs; speed is never asserted here."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from tolerance import rounded_tol, sum_tol
from torch import nn

import benchmarks.harness.train as train_mod
from benchmarks.__main__ import main as bench_main
from benchmarks.commands import stepprofile
from benchmarks.harness import data as data_mod
from benchmarks.harness import device as device_mod
from benchmarks.harness import fast as fast_mod
from benchmarks.harness.config import Config
from benchmarks.harness.fast import RunDropout, fast_settings, geometric_mask
from benchmarks.harness.runs import for_jobs, side_by_side
from benchmarks.harness.train import evaluate, seeded, train
from benchmarks.tasks.mnist_files import load_mnist
from errors import UserError
from models import create_model

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def tiny(mnist_root):
    cfg = Config(model="plain_4k", epochs=1, train_subset=512, test_subset=256, progress=False,
                 device="cpu", data_root=str(mnist_root))
    return cfg, load_mnist(cfg, torch.device("cpu"))


def test_speed_command_writes_every_figure(mnist_root, tmp_path):
    out = tmp_path / "speed.json"
    rc = bench_main(["speed", "--model", "plain_4k", "--steps", "2", "--rounds", "1",
                     "--device", "cpu", "--data-root", str(mnist_root), "--ablate",
                     "channels_last", "optimizer", "chunks", "--parallel", "2", "--json",
                     str(out)])
    assert rc == 0
    r = json.loads(out.read_text())
    assert r["ratio"] > 0 and r["model"] == "plain_4k" and r["device"] == "cpu"
    for side in ("baseline", "harness"):
        assert r[side]["images_per_second"] > 0 and len(r[side]["runs"]) == 1
    assert r["harness"]["gflops"] > 0 and r["peak"]["gflops"] > 0
    assert 0 < r["harness_fraction_of_peak"]
    assert len(r["loadavg"]["start"]) == 3 and len(r["loadavg"]["rounds"]) == 1
    assert any(name.startswith("channels_last") for name in r["others"])
    assert "augmentation one batch at a time" in r["others"]
    assert "fused SGD off (per-tensor loop)" in r["others"] or not fast_mod.fused_sgd(
        torch.device("cpu"))
    assert r["trials_per_hour"]["harness"] > 0 and r["params"] == 3690
    assert r["parallel"]["jobs"]["trials_per_hour"] > 0 and r["parallel"]["k"] == 2


def test_speed_command_times_the_champion_recipe_first(mnist_root, tmp_path):
    """The default workloads: nas_plain_5k with its whole recipe (the headline), then resnet_8k
    at batch 128; every figure names the CPU and the precision it ran in."""
    out = tmp_path / "speed.json"
    assert bench_main(["speed", "--steps", "2", "--rounds", "1", "--device", "cpu",
                       "--threads", "1", "--data-root", str(mnist_root), "--json",
                       str(out)]) == 0
    r = json.loads(out.read_text())
    assert r["headline"] == "nas_plain_5k" == r["model"]
    head, ref = r["workloads"]
    assert (head["model"], head["batch_size"], ref["model"], ref["batch_size"]) == \
        ("nas_plain_5k", 32, "resnet_8k", 128)
    recipe = head["harness_settings"]
    assert recipe["ema"] == 0.999 and recipe["augment"]["shear"] == 10.0
    assert recipe["augment"]["scale"] == 0.1
    for w in (head, ref):
        assert w["cpu"] == device_mod.cpu_model() and w["threads"] == 1
        assert w["device_name"].startswith(device_mod.cpu_model())
        assert w["device_name"].endswith(", 1 threads")
        assert w["baseline"]["precision"] == "fp32"
        assert w["harness"]["precision"] in ("fp32", "bf16 autocast")
        assert w["precision"]["harness"] in w["device_name"]
        assert w["cpu_ratio"] > 0 and w["harness"]["cpu_images_per_second"] > 0
    # the step's parts, each timed the harness's way and the plain way (headline only)
    parts = head["parts"]
    assert set(parts) == {"optimizer step", "weight average", "augmentation, per batch"}
    assert all(us > 0 for e in parts.values() for us in e["us"].values())
    assert parts["weight average"]["speedup"]["per-tensor lerp_ loop"] == 1.0
    assert "parts" not in ref


def test_the_classic_loop_augments_by_the_same_amounts():
    from torchvision import transforms

    from benchmarks.commands.contenders import classic_transform

    cfg = Config(rotate=7.0, translate=0.08, scale=0.1, shear=10.0, erase=0.25)
    steps = classic_transform(cfg).transforms
    affine = next(t for t in steps if isinstance(t, transforms.RandomAffine))
    assert affine.degrees == [-7.0, 7.0] and affine.translate == (0.08, 0.08)
    assert affine.scale == (0.9, 1.1) and affine.shear == [-10.0, 10.0]
    assert any(isinstance(t, transforms.RandomErasing) and t.p == 0.25 for t in steps)
    plain = classic_transform(Config(rotate=0.0, translate=0.0)).transforms
    assert not any(isinstance(t, (transforms.RandomAffine, transforms.RandomErasing))
                   for t in plain)


@pytest.mark.parametrize("recipe", [{}, {"scale": 0.1, "shear": 10.0},
                                    {"scale": 0.1, "shear": 10.0, "erase": 0.5},
                                    {"rotate": 0.0, "translate": 0.0},
                                    {"scale": 0.09, "augment_p": 0.5, "brightness": 0.2,
                                     "contrast": 0.2, "erase": 0.1}])
def test_augmenting_in_chunks_gives_exactly_the_batches_one_at_a_time(mnist_root, recipe,
                                                                      monkeypatch):
    """CPU training augments CHUNK_IMAGES at once, each batch drawing its own numbers: the
    same images, bit for bit, as one batch at a time (an epoch of 1,000 ends in a short one)."""
    cfg = Config(data_root=str(mnist_root), train_subset=1000, batch_size=32, **recipe)
    split = load_mnist(cfg, torch.device("cpu"), with_test=False).train
    epochs = []
    for chunk in (1, 256):
        monkeypatch.setattr(data_mod, "CHUNK_IMAGES", chunk)
        epochs.append(list(split.train_batches(cfg, torch.Generator().manual_seed(3))))
    one, chunked = epochs
    assert [len(y) for _, y in one] == [len(y) for _, y in chunked] == [32] * 31 + [8]
    for (xa, ya), (xb, yb) in zip(one, chunked):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)


def test_fused_sgd_makes_the_per_tensor_update(tiny):
    """The CPU step's fused SGD against torch's per-tensor loop, same gradients, 100 steps
    with a changing learning rate: the same update but for rounding, a unit or two per step
    (a fused multiply-add rounds once where the loop rounds twice), so the weights stay
    within sum_tol(steps) of each other (tests/tolerance.py)."""
    device = torch.device("cpu")
    if not fast_mod.fused_sgd(device):
        pytest.skip("this torch has no fused SGD on CPU")
    cfg = Config(model="nas_plain_5k", device="cpu")
    models = []
    for _ in range(2):
        torch.manual_seed(0)
        models.append(create_model(cfg.model))
    fused = fast_mod.make_optimizer(models[0], cfg, device)
    assert fused.defaults["fused"]
    loop = torch.optim.SGD(models[1].parameters(), lr=cfg.lr, momentum=cfg.momentum,
                           nesterov=True, weight_decay=cfg.weight_decay, foreach=False)
    gen, steps = torch.Generator().manual_seed(1), 100
    for step in range(steps):
        grads = [torch.randn(p.shape, generator=gen) for p in models[0].parameters()]
        for model, opt in zip(models, (fused, loop)):
            for p, g in zip(model.parameters(), grads):
                p.grad = g.clone()
            opt.param_groups[0]["lr"] = cfg.lr * (1 + step % 7) / 7
            opt.step()
    for a, b in zip(*(m.parameters() for m in models)):
        scale = b.abs().max().item()
        assert (a - b).abs().max().item() <= sum_tol(steps) * scale


@pytest.mark.parametrize("threads, batch", [(1, 32), (1, 128), (2, 32), (2, 64), (2, 128)])
def test_the_cpu_batch_norm_follows_threads_and_batch_and_precision_is_fp32(threads, batch):
    """On CPU "auto" trains in fp32, and uses the wide-row batch norm only with several
    threads and batches of 128 or more, where it measured faster. Asked for, either is what
    it says at any thread count and batch."""
    cpu = torch.device("cpu")
    auto = fast_settings(Config(threads=threads, batch_size=batch), cpu)
    assert auto.fast_batchnorm == (threads > 1 and batch >= 128)
    assert auto.amp is None
    forced = fast_settings(Config(threads=threads, batch_size=batch, amp="bf16",
                                  fast_batchnorm="on"), cpu)
    assert forced.amp == torch.bfloat16 and forced.fast_batchnorm


def test_profile_splits_one_step_into_its_parts(mnist_root, tmp_path):
    out = tmp_path / "profile.json"
    assert bench_main(["speed", "--profile", "--steps", "3", "--device", "cpu", "--threads",
                       "1", "--data-root", str(mnist_root), "--json", str(out)]) == 0
    r = json.loads(out.read_text())
    assert r["model"] == "nas_plain_5k" and r["batch_size"] == 32 and r["steps"] == 3
    assert list(r["parts_us"]) == [*stepprofile.PARTS, stepprofile.BETWEEN]
    for part in ("augmentation", "forward", "backward", "optimizer", "weight average"):
        assert r["parts_us"][part] > 0, part
    # the parts' ops and what lies between them make up the whole step
    assert sum(r["parts_us"].values()) == pytest.approx(r["step_us"], rel=1e-3, abs=1)
    assert r["precision"] in r["device_name"] and r["device_name"].startswith(r["cpu"])


def test_speed_command_refuses_bad_options(mnist_root, capsys):
    assert bench_main(["speed", "--steps", "0", "--data-root", str(mnist_root)]) == 2
    assert "at least 1" in capsys.readouterr().err


def test_config_checks_the_fast_path_switches():
    for field, bad in (("amp", "fp16"), ("compile", "yes"), ("channels_last", "true"),
                       ("fast_dropout", "fast"), ("fast_batchnorm", "1"), ("cuda_graphs", "y")):
        with pytest.raises(UserError, match=field):
            Config(**{field: bad})


def test_auto_settings_per_device():
    cpu = fast_settings(Config(), torch.device("cpu"))
    assert cpu.channels_last and not cpu.compile and cpu.threads is None  # every core
    assert cpu.geometric_dropout and cpu.keep_heap
    two = fast_settings(Config(threads=2, batch_size=128), torch.device("cpu"))
    assert two.fast_batchnorm and two.amp is None
    assert not fast_settings(Config(cuda_graphs="on"), torch.device("cpu")).graphs  # CUDA only
    off = fast_settings(Config(channels_last="off", amp="off", threads=2), torch.device("cpu"))
    assert not off.channels_last and off.amp is None and off.threads == 2
    assert fast_settings(Config(amp="bf16"), torch.device("cpu")).amp == torch.bfloat16
    # ResNet18's millisecond convs use every core (torch's default) unless --threads says so
    ants = Config(task="hymenoptera", model="resnet18")
    assert fast_settings(ants, torch.device("cpu")).threads is None
    assert fast_settings(dataclasses.replace(ants, threads=1), torch.device("cpu")).threads == 1


def test_runs_side_by_side_get_one_thread_each_unless_told():
    ants = Config(task="hymenoptera", model="resnet18", progress=True)
    alone, two = for_jobs(ants, 1), for_jobs(ants, 2)
    assert (alone.threads, alone.progress) == (0, True)
    assert (two.threads, two.progress) == (1, False)
    assert fast_settings(two, torch.device("cpu")).threads == 1
    assert for_jobs(dataclasses.replace(ants, threads=2), 2).threads == 2


@pytest.mark.parametrize("geometric", [False, True])
@pytest.mark.parametrize("channels_last", [False, True])
def test_run_dropout_keeps_p_layout_and_gradient(channels_last, geometric):
    x = torch.ones(64, 8, 12, 12, requires_grad=True)
    if channels_last:
        x = x.detach().contiguous(memory_format=torch.channels_last).requires_grad_()
    drop = RunDropout(0.25)
    drop.generator, drop.geometric = torch.Generator().manual_seed(0), geometric
    before = torch.random.get_rng_state()
    y = drop(x)
    assert torch.equal(torch.random.get_rng_state(), before)  # the run's generator only
    dropped = (y == 0).float().mean().item()
    assert abs(dropped - 0.25) < 0.01  # 6 standard deviations of a mean of 73,728 Bernoullis
    # 1/(1-p) rounded once to fp32 either way: equal to fp32's unit, allclose's rtol 1e-5
    assert torch.allclose(y[y != 0], torch.tensor(1 / 0.75))
    assert y.is_contiguous(memory_format=torch.channels_last) == channels_last
    y.sum().backward()
    assert torch.equal(x.grad, y.detach())  # d(x * mask)/dx = mask
    drop.eval()
    assert drop(x) is x


@pytest.mark.parametrize("p", [0.05, 0.15, 0.6])
def test_geometric_mask_is_iid_bernoulli(p):
    """The oracle is the definition: each element dropped independently with probability p, so
    the drop rate is p, and a drop is as likely right after a drop as anywhere (memoryless)."""
    n = 2_000_000
    mask = geometric_mask(n, p, torch.Generator().manual_seed(3), torch.float32)
    scale = torch.tensor(1 / (1 - p)).item()  # in float32, as the mask holds it
    assert mask.shape == (n,) and set(mask.unique().tolist()) == {0.0, scale}
    drops = mask == 0
    sd = (p * (1 - p) / n) ** 0.5
    assert abs(drops.float().mean().item() - p) < 5 * sd
    after_drop = drops[1:][drops[:-1]].float()  # P(drop | previous dropped) = p
    assert abs(after_drop.mean().item() - p) < 5 * (p * (1 - p) / len(after_drop)) ** 0.5
    assert drops[-1000:].any() and drops[:1000].any()  # both ends of the mask are covered


def test_train_leaves_model_threads_and_dropout_as_they_were(tiny):
    cfg, data = tiny
    threads = torch.get_num_threads()
    model = create_model("plain_7k")  # has dropout
    result = train(model, dataclasses.replace(cfg, model="plain_7k"), data)
    assert torch.get_num_threads() == threads
    assert all(type(m) is nn.Dropout for m in model.modules() if isinstance(m, nn.Dropout))
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    assert bns and all(type(m) is nn.BatchNorm2d for m in bns)
    assert all(p.is_contiguous() for p in model.parameters())
    assert result["device_name"].endswith(f"{threads} threads")


@pytest.mark.parametrize("overrides", [{}, {"channels_last": "off", "amp": "off"}])
def test_recorded_accuracy_is_what_the_weights_give(tiny, overrides):
    cfg, data = tiny
    torch.manual_seed(1)
    model = create_model(cfg.model)
    result = train(model, dataclasses.replace(cfg, **overrides), data)
    assert evaluate(model, data.test)["acc"] == result["test"]["acc"]
    assert result["history"][-1]["test_acc"] == result["test"]["acc"]
    loss = result["history"][-1]["train_loss"]
    assert loss == loss and loss < 10  # finite


@pytest.mark.parametrize("amp, named", [("off", ", fp32, "), ("bf16", ", bf16 autocast, ")])
def test_a_run_names_the_cpu_and_the_precision_it_trained_in(tiny, amp, named):
    """amp "auto" is bf16 on a CPU with native bf16 and fp32 elsewhere: the row must say."""
    cfg, data = tiny
    result = train(create_model(cfg.model), dataclasses.replace(cfg, amp=amp), data)
    assert named in result["device_name"], result["device_name"]
    assert result["device_name"].startswith(device_mod.cpu_model())


def test_evaluate_leaves_training_usable(tiny):
    """evaluate() may re-lay the weights out; that must not make them inference tensors."""
    cfg, data = tiny
    model = create_model(cfg.model)
    evaluate(model, data.test)
    assert all(p.is_contiguous() and not p.is_inference() for p in model.parameters())
    model.train()
    model(torch.zeros(2, 1, 28, 28)).sum().backward()


def test_threads_while_sets_each_training_thread():
    """OpenMP's thread count is per OS thread: a training in a worker thread (--jobs) must set
    its own, or it runs with every core while another training holds one of them."""
    import threading

    seen, ready = {}, threading.Barrier(2)

    def worker(name: str) -> None:
        torch.ones(256, 256).sum()  # the thread's OpenMP settings now exist
        ready.wait()
        with fast_mod.threads_while(1):
            ready.wait()  # both inside at once
            seen[name] = torch.get_num_threads()
            ready.wait()

    threads = [threading.Thread(target=worker, args=(n,)) for n in "ab"]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert seen == {"a": 1, "b": 1}


def test_trainings_in_threads_match_the_same_trainings_one_by_one(tiny):
    """Each training draws from its own generators (dropout included), so two running side by
    side in threads (search run --jobs) end with exactly the weights each gets alone."""
    cfg, data = tiny
    cfgs = [dataclasses.replace(cfg, model="plain_7k", seed=s, test_subset=0) for s in (1, 2)]

    def run(c: Config) -> dict:
        with seeded(c.seed):
            model = create_model(c.model)
        train(model, c, data)
        return model.state_dict()

    alone = [run(c) for c in cfgs]
    together = side_by_side(2, lambda c, stop: run(c), cfgs)  # as --jobs 2 runs them
    for a, b in zip(alone, together):
        assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(alone[0]["0.0.weight"], together[1]["0.0.weight"])


FAULTS = """
import resource, sys, torch
from benchmarks.harness import fast
from benchmarks.harness.config import Config
from benchmarks.tasks.mnist_files import load_mnist
from benchmarks.harness.train import train
from models import create_model
if sys.argv[1] != "kept":  # glibc's defaults: the setting is process-wide, so one per process
    fast.keep_heap = lambda: False
cfg = Config(model="resnet_8k", epochs=1, train_subset=128 * 10, progress=False, device="cpu",
             threads=2, data_root=sys.argv[2])
data = load_mnist(cfg, torch.device("cpu"), with_test=False)
train(create_model(cfg.model), cfg, data)  # the first training's allocations fault anyway
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
train(create_model(cfg.model), cfg, data)
print((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 10)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt only")
def test_keep_heap_stops_page_faults_in_training(mnist_root):
    """The reason keep_heap exists: by default glibc gives freed blocks back and each step
    faults them in again. Each setting runs in its own process (mallopt is process-wide), the
    two at once: faults are counted per process, so one does not move the other's count."""
    procs = [subprocess.Popen([sys.executable, "-c", FAULTS, heap, str(mnist_root)], cwd=REPO,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for heap in ("default", "kept")]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [err for _, err in outs]
    default, kept = (float(out.split()[-1]) for out, _ in outs)
    # A ratio, not a count: how many faults a step takes depends on the machine and its load.
    assert kept < default / 10, (default, kept)


@pytest.mark.slow
def test_compile_on_trains_with_the_whole_cpu_fast_path(mnist_root, tmp_path):
    """--compile on with bf16, channels_last, wide-row batch norm and geometric dropout: the
    running statistics once came back from the compiled batch norm in bf16 and lerp_ refused
    them (issue 17). Slow: compiling takes ~30-90 s on 2 cores."""
    rc = bench_main(["mnist", "--model", "plain_7k", "--compile", "on", "--amp", "bf16",
                     "--epochs", "1", "--train-subset", "512", "--test-subset", "200",
                     "--device", "cpu", "--progress", "false", "--data-root", str(mnist_root),
                     "--results", str(tmp_path / "runs.csv")])
    assert rc == 0 and (tmp_path / "runs.csv").is_file()


def test_a_failed_cuda_graph_capture_trains_on_eagerly_and_loses_nothing(tiny, monkeypatch):
    """Where capturing the step fails (here: no GPU at all), train() warns once and goes on
    eagerly; the warm-up steps before the capture leave no trace (batch norm statistics, dropout
    draws, gradients), so the run is exactly the run that never tried."""
    cfg, data = tiny
    cfg = dataclasses.replace(cfg, model="plain_7k")  # has dropout: its draws count
    real = train_mod.fast_settings

    def runs(graphs_on: bool) -> tuple[dict, dict]:
        with monkeypatch.context() as m:
            m.setattr(train_mod, "fast_settings",
                      lambda c, d: dataclasses.replace(real(c, d), graphs=graphs_on))
            torch.manual_seed(1)
            model = create_model(cfg.model)
            return train(model, cfg, data), model.state_dict()

    with pytest.warns(RuntimeWarning, match="CUDA graphs off") as caught:
        tried, tried_weights = runs(True)
    assert len([w for w in caught if "CUDA graphs" in str(w.message)]) == 1  # not per batch
    plain, plain_weights = runs(False)
    assert tried["history"] == [dict(r, seconds=p["seconds"])
                                for r, p in zip(plain["history"], tried["history"])]
    assert all(torch.equal(tried_weights[k], v) for k, v in plain_weights.items())


def test_one_thread_fp32_trains_as_the_bf16_path(mnist_root):
    """On CPU "auto" trains nas_plain_5k's recipe in fp32 with torch's batch norm, where it
    once was bf16 autocast with the wide-row batch norm (on a CPU with native bf16): a change
    of precision, not of the recipe. An epoch of 16 steps both ways ends at the same
    training loss and accuracy up to bf16's rounding through the net's 7 conv layers
    (rounded_tol, one rounding per layer forward and one backward)."""
    from models import recipe_of

    cfg = Config(**{**recipe_of("nas_plain_5k"), "model": "nas_plain_5k"}, epochs=1,
                 train_subset=512, test_subset=256, threads=1, device="cpu",
                 progress=False, data_root=str(mnist_root))
    data = load_mnist(cfg, torch.device("cpu"))
    assert fast_settings(cfg, torch.device("cpu")).amp is None
    results = []
    for c in (cfg, dataclasses.replace(cfg, amp="bf16", fast_batchnorm="on")):
        torch.manual_seed(cfg.seed)
        results.append(train(create_model(cfg.model), c, data)["history"][-1])
    fp32, bf16 = results
    tol = rounded_tol(torch.bfloat16, roundings=2 * 7)
    assert abs(fp32["train_loss"] - bf16["train_loss"]) <= tol * fp32["train_loss"]
    assert abs(fp32["train_acc"] - bf16["train_acc"]) <= 100 * tol
