"""No Config field is silently ignored: every field is classified below, and each training field
changes what the one train() produces, each speed field changes the fast path it resolves to.

A new Config field fails `test_every_field_is_classified` until it is put in one class here:
that is the point, since a field nobody reads is a setting users trust in vain.
"""

from __future__ import annotations

import argparse
import dataclasses

import pytest
import torch

from benchmarks.harness.config import Config, add_config_args, field_help, names
from benchmarks.harness.fast import fast_settings
from benchmarks.harness.train import train
from benchmarks.tasks import TASKS, get_task
from benchmarks.tasks.mnist_files import load_mnist
from models import create_model

ARCH = "v8-v16-p-t8-v12-v16-v16-t10-gap|do0.05"  # has dropout, batch norm and a pool
# A training field -> (another value, settings under which that field is read at all).
TRAINING = {
    "model": ("v8-v16-p-t8-v12-v16-v12-t10-gap|do0.05", {}),
    "epochs": (2, {}),
    "batch_size": (32, {}),
    "lr": (0.1, {}),
    "momentum": (0.5, {}),
    "nesterov": (False, {}),
    "weight_decay": (0.01, {}),
    "schedule": ("cosine", {}),
    "warmup": (0.5, {}),
    "label_smoothing": (0.1, {}),
    "rotate": (20.0, {}),
    "translate": (0.2, {}),
    "scale": (0.2, {}),
    "shear": (15.0, {}),
    "erase": (0.5, {}),
    "ema": (0.9, {}),
    "val_split": (128, {}),
    "train_subset": (192, {}),
    "seed": (2, {}),
    "optimizer": ("adam", {"lr": 0.01}),
    "step_size": (1, {"schedule": "step", "epochs": 2}),
    "gamma": (0.5, {"schedule": "step", "step_size": 1, "epochs": 2}),
    "div_factor": (5.0, {}),
    "final_div_factor": (20.0, {}),
    "anneal": ("cos", {}),
    "cycle_momentum": (True, {}),
    "schedule_step": ("epoch", {"epochs": 2}),
    "init": ("xavier", {}),
    "augment_p": (0.5, {}),
    "brightness": (0.2, {}),
    "contrast": (0.2, {}),
}
# Speed fields change how train() computes, not what it means: two values of each must resolve
# to two different fast paths on CPU.
SPEED = {"channels_last": ("on", "off"), "amp": ("bf16", "off"), "compile": ("on", "off"),
         "threads": (1, 2), "fast_dropout": ("on", "off"), "fast_batchnorm": ("on", "off")}
# Fields that choose what is run, measured or shown, not how weights are trained (reason each).
OTHER = {
    "task": "picks the task module (tests/test_harness.py, test_hymenoptera.py)",
    "test_subset": "which test images are evaluated",
    "eval_batch_size": "evaluation batch only; fp32 and no gradients",
    "device": "where it runs (resolve_device; tests/test_cuda.py on a GPU)",
    "cuda_graphs": "how CUDA runs the step (graphs.py); no CPU path reads it: tests/test_cuda.py "
                   "checks a graphed run against --cuda-graphs off",
    "data_root": "where MNIST is read from",
    "target": "which epoch is recorded as first at target",
    "progress": "the progress bar",
    "mode": "image task: which ResNet18 layers train (tests/test_hymenoptera.py)",
    "weights": "image task: the starting weights (tests/test_hymenoptera.py)",
    "image_size": "image task: the crop side (tests/test_hymenoptera.py)",
    "workers": "image task: decoding processes",
}


def test_every_field_has_its_flags_help():
    """--help says what each flag does, from the field's metadata."""
    for task in map(get_task, TASKS):
        assert all(field_help(task.CONFIG).values()), f"{task.NAME}: a field without help"
    p = argparse.ArgumentParser()
    add_config_args(p, names())
    helps = {a.dest: a.help for a in p._actions if a.dest in field_help()}
    assert helps["target"] == "accuracy (%%) whose first epoch is recorded; default: 99.4"
    p.format_help()  # a lone % in a comment would make argparse raise here


def test_every_field_is_classified():
    names = sorted({f.name for t in TASKS for f in dataclasses.fields(get_task(t).CONFIG)})
    classes = [set(TRAINING), set(SPEED), set(OTHER)]
    unclassified = [n for n in names if not any(n in c for c in classes)]
    assert not unclassified, f"classify these Config fields in this test: {unclassified}"
    assert sum(map(len, classes)) == len(names)  # each in one class only, none left over


@pytest.fixture(scope="module")
def base(mnist_root):
    return Config(model=ARCH, epochs=1, train_subset=256, test_subset=200, batch_size=64,
                  device="cpu", threads=1, progress=False, data_root=str(mnist_root))


def trained(cfg: Config) -> dict:
    torch.manual_seed(cfg.seed)
    model = create_model(cfg.model)
    train(model, cfg, load_mnist(cfg, torch.device("cpu")))
    return {k: v.clone() for k, v in model.state_dict().items()}


def same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("name", sorted(TRAINING))
def test_training_field_changes_the_trained_weights(name, base):
    value, setting = TRAINING[name]
    cfg = dataclasses.replace(base, **setting)
    assert getattr(cfg, name) != value
    before = trained(cfg)
    # One process, one thread, same seed: the same Config trains bit for bit the same weights,
    # so any difference below comes from the field alone.
    assert same(before, trained(cfg))
    assert not same(before, trained(dataclasses.replace(cfg, **{name: value}))), \
        f"Config.{name} = {value!r} trained exactly the weights of {getattr(cfg, name)!r}"


@pytest.mark.parametrize("name", sorted(SPEED))
def test_speed_field_changes_the_fast_path(name, base):
    a, b = (fast_settings(dataclasses.replace(base, **{name: v}), torch.device("cpu"))
            for v in SPEED[name])
    assert a != b, f"Config.{name} = {SPEED[name]} resolved to the same CPU fast path"
