"""Checkpoints: safetensors weights plus a JSON sidecar holding the run's whole result row.

    results/checkpoints/<task>-<model>-s<seed>-<timestamp>-final.safetensors  (+ .json)
    results/checkpoints/<task>-<model>-s<seed>-<timestamp>-best.safetensors   (val_split > 0)

safetensors holds only tensors, so loading a checkpoint never executes code from the file
(unlike pickle). The network is rebuilt from the sidecar's architecture string, then the
weights must fit it key for key and shape for shape.

A checkpoint and its row are crash-consistent: a run claims <stem>.pending (an flock held while
it lives), writes its files under a PARTIAL name, appends its row, and only then renames them to
their final names (commit_run). Killed at any point, even by SIGKILL, it leaves either nothing
under a final name, or a row without weights; never weights without their row. No reader looks
at partial names; `python -m benchmarks clean` removes what dead runs left.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import re
from collections.abc import Callable
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file
from torch import nn

from errors import UserError

from . import results as results_mod

SUFFIX = ".safetensors"
PARTIAL = ".partial"  # a run's files before its row is written
PENDING = ".pending"  # a run's claim on its stem, locked while the run lives


class CheckpointError(UserError):
    """A checkpoint that is missing, truncated, or does not fit its architecture."""


def checkpoint_dir(results: Path | str | None = None) -> Path:
    """Checkpoints live next to the runs CSV they belong to: <results folder>/checkpoints."""
    if results:
        return Path(results).parent / "checkpoints"
    return results_mod.RESULTS_DIR / "checkpoints"  # read at call time: tests redirect it


def run_stem(row: dict) -> str:
    """<task>-<model>-s<seed>-<timestamp>, safe as a file name (arch strings hold '|')."""
    model = re.sub(r"[^A-Za-z0-9_.-]+", "_", str(row["model"]))[:80]
    stamp = re.sub(r"[^0-9T]", "", str(row["timestamp"]).split("+")[0])
    return f"{row['task']}-{model}-s{row['seed']}-{stamp}"


class BestWeights:
    """An on_epoch hook that keeps a CPU copy of the weights of the best val_acc epoch so far,
    then calls the caller's own hook (which may raise to stop the run)."""

    def __init__(self, model: nn.Module, then: Callable[[int, dict], None] | None = None):
        self.model, self.then = model, then
        self.acc, self.epoch, self.state = float("-inf"), None, None

    def __call__(self, epoch: int, record: dict) -> None:
        if record.get("val_acc") is not None and record["val_acc"] > self.acc:
            self.acc, self.epoch = record["val_acc"], epoch
            self.state = {k: v.detach().to("cpu", copy=True)
                          for k, v in self.model.state_dict().items()}
        if self.then is not None:
            self.then(epoch, record)


def _sidecar(row: dict, kind: str, epoch: int) -> dict:
    result = row.get("_result") or {}
    history = result.get("history", [])
    record = next((r for r in history if r["epoch"] == epoch), {})
    side = {k: v for k, v in row.items()
            if not k.startswith("_") and k not in ("checkpoint", "best_checkpoint")}
    side["checkpoint_kind"] = kind  # "final" or "best" ("weights" is a Config field)
    # What training measured with exactly these weights: evaluate must reproduce it.
    side["recorded"] = {"epoch": epoch, **{k: record.get(k) for k in
                                           ("test_acc", "test_loss", "val_acc", "val_loss")}}
    if kind == "final":
        side["recorded"]["test"] = result.get("test")
        side["recorded"]["val"] = result.get("val")
    side["history"] = history
    return side


def save(state: dict[str, torch.Tensor], sidecar: dict, path: Path) -> Path:
    """Write weights and sidecar, each through a temporary file so no half file is left; with
    `partial`, under the names commit_run later gives their final ones."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().cpu().contiguous() for k, v in state.items()}
    try:
        _write(path, lambda tmp: save_file(tensors, str(tmp), metadata=weights_metadata(sidecar)))
    except SafetensorError as e:  # how safetensors reports a full disk or an unwritable file
        raise OSError(errno.EIO, str(e)) from None
    _write(path.with_suffix(".json"),
           lambda tmp: tmp.write_text(json.dumps(sidecar, indent=1, default=str) + "\n"))
    return path


def weights_metadata(sidecar: dict) -> dict[str, str]:
    """What the weights file says of itself, so a sidecar swapped for another run's is caught."""
    return {"arch": str(sidecar.get("arch")), "task": str(sidecar.get("task")), "format": "pt"}


def _write(path: Path, write: Callable[[Path], object]) -> None:
    final = path.with_name(path.name + PARTIAL)
    tmp = path.with_name(path.name + ".tmp")
    write(tmp)
    os.chmod(tmp, 0o644)  # safetensors creates it private; checkpoints are shared results
    os.replace(tmp, final)


def save_run(row: dict, model: nn.Module, best: BestWeights | None = None,
             directory: Path | None = None) -> dict:
    """Save a finished run's final (and best-by-validation) weights under partial names; returns
    their final paths and the claim that commit_run (after the row) or remove_run releases."""
    directory = Path(directory or checkpoint_dir())
    directory.mkdir(parents=True, exist_ok=True)
    stem, n = run_stem(row), 1
    while (claim := _claim(directory, stem)) is None:  # two runs in the same second
        n += 1
        stem = f"{run_stem(row)}-{n}"
    epochs = len((row.get("_result") or {}).get("history", [])) or row.get("epochs")
    final, best_path = directory / f"{stem}-final{SUFFIX}", directory / f"{stem}-best{SUFFIX}"
    paths = {"checkpoint": str(final), "best_checkpoint": None, "_claim": claim}
    try:
        save(model.state_dict(), _sidecar(row, "final", epochs), final)
        if best is not None and best.state is not None:
            paths["best_checkpoint"] = str(save(best.state, _sidecar(row, "best", best.epoch),
                                                best_path))
    except BaseException:  # a full disk, Ctrl-C: leave no part of this run's checkpoints
        remove_run({**paths, "best_checkpoint": str(best_path)})
        raise
    return paths


def _claim(directory: Path, stem: str) -> tuple[int, Path] | None:
    """Claim `stem` for one run: create <stem>.pending exclusively and hold an flock on it, so
    of two runs with the same stem (same task, model, seed and second) exactly one gets it, and
    `clean` can tell a live run's files (locked) from a dead one's. None when taken."""
    pending = directory / f"{stem}{PENDING}"
    try:
        fd = os.open(pending, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        return None
    fcntl.flock(fd, fcntl.LOCK_EX)
    # Only now look for a finished run of this stem: commit_run gives the weights their final
    # name before it removes the claim, so a claim made after that removal sees them. Looked
    # at first, a run finishing between the look and the claim was overwritten.
    if (directory / f"{stem}-final{SUFFIX}").exists():
        _release({"_claim": (fd, pending)})
        return None
    return fd, pending


def _files(paths: dict) -> list[Path]:
    weights = [Path(w) for w in (paths.get("checkpoint"), paths.get("best_checkpoint")) if w]
    return [p for w in weights for p in (w.with_suffix(".json"), w)]  # sidecar renamed first


def commit_run(paths: dict) -> None:
    """Give a run's files their final names (its row is written), then release its claim."""
    for path in _files(paths):
        os.replace(path.with_name(path.name + PARTIAL), path)
    _release(paths)


def _release(paths: dict) -> None:
    claim = paths.pop("_claim", None)
    if claim is not None:
        fd, pending = claim
        pending.unlink(missing_ok=True)
        os.close(fd)


def remove_run(paths: dict) -> None:
    """Delete a run's checkpoints (weights, sidecars, partial and temporary files) as save_run
    returned them, and release its claim: a run whose row could not be written must not leave
    weights behind."""
    for path in _files(paths):
        for name in (path.name, path.name + PARTIAL, path.name + ".tmp",
                     path.name + PARTIAL + ".tmp"):
            path.with_name(name).unlink(missing_ok=True)
    _release(paths)


def resolve(path: Path | str) -> tuple[Path, Path]:
    """The weights and sidecar paths for a checkpoint given as .safetensors, .json or stem."""
    path = Path(path)
    if path.is_dir():
        raise CheckpointError(f"{path} is a folder; give one checkpoint's .safetensors file, "
                              f"e.g. {path}/<task>-<model>-s<seed>-<time>-final.safetensors")
    if path.suffix == ".json":
        weights = path.with_suffix(SUFFIX)
    elif path.suffix == SUFFIX:
        weights = path
    else:  # a stem such as results/checkpoints/mnist-plain_7k-s1-20250101T000000-final
        weights = path.with_name(path.name + SUFFIX)
    if not weights.is_file():
        raise CheckpointError(f"checkpoint not found: {weights}")
    sidecar = weights.with_suffix(".json")
    if not sidecar.is_file():
        raise CheckpointError(
            f"{weights}: its sidecar {sidecar.name} is missing; a checkpoint is the weights "
            "plus a .json sidecar holding the run's row (architecture string, Config)")
    return weights, sidecar


# The sidecar fields a reader uses, and the JSON types each may hold (None: absent or null).
SIDECAR_TYPES = {
    "task": (str,), "arch": (str,), "model": (str,), "family": (str,), "device": (str,),
    "device_name": (str,), "checkpoint_kind": (str,), "timestamp": (str,),
    "params": (int,), "macs": (int,), "epochs": (int,), "seed": (int,),
    "train_images": (int,), "test_images": (int,),
    "config": (str, dict), "recorded": (dict,), "history": (list,),
}
NUMBER = (int, float)


def read_sidecar(sidecar: Path) -> dict:
    """The sidecar as a dict, every field a reader uses of the type it must be."""
    try:
        side = json.loads(sidecar.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{sidecar}: not a readable JSON sidecar ({e})") from None
    if not isinstance(side, dict) or not side.get("arch") or not side.get("task"):
        raise CheckpointError(f"{sidecar}: the sidecar has no 'task' and 'arch' fields")
    for key, kinds in SIDECAR_TYPES.items():
        value = side.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, kinds)):
            raise CheckpointError(f"{sidecar}: field {key!r} holds {value!r}, not "
                                  f"{' or '.join(k.__name__ for k in kinds)}")
    for key, value in (side.get("recorded") or {}).items():
        if key not in ("test", "val") and value is not None and (
                isinstance(value, bool) or not isinstance(value, NUMBER)):
            raise CheckpointError(f"{sidecar}: recorded {key!r} holds {value!r}, not a number")
    side["config"] = sidecar_config(side.get("config"), sidecar)
    return side


def sidecar_config(saved, sidecar: Path) -> dict:
    """The run's Config fields from a sidecar: a JSON object, as text (a runs-CSV cell) or not."""
    if isinstance(saved, str):
        try:
            saved = json.loads(saved)
        except json.JSONDecodeError as e:
            raise CheckpointError(f"{sidecar}: field 'config' is not valid JSON ({e})") from None
    if not isinstance(saved, dict | None):
        raise CheckpointError(f"{sidecar}: field 'config' holds {type(saved).__name__}, not a "
                              "JSON object of Config fields")
    return saved or {}


def weights_arch(weights: Path) -> dict[str, str]:
    """The metadata the weights file was saved with (arch, task; {} for a file without)."""
    try:
        with safe_open(str(weights), framework="pt") as f:
            return dict(f.metadata() or {})
    except (SafetensorError, OSError) as e:
        raise CheckpointError(f"{weights}: cannot read the weights; the file is truncated "
                              f"or not a safetensors file ({e})") from None


def check_pair(weights: Path, sidecar: Path, side: dict) -> None:
    """The weights name their own architecture and task: a sidecar that says otherwise belongs
    to another run (a network of the same shapes would load its weights and test as the wrong
    model), so it is refused rather than believed."""
    meta = weights_arch(weights)
    for key in ("task", "arch"):
        if key in meta and meta[key] != side[key]:
            raise CheckpointError(f"{sidecar}: says {key} {side[key]!r}, but {weights.name} was "
                                  f"saved as {meta[key]!r}; the sidecar belongs to another run")


def load_weights(model: nn.Module, weights: Path, arch: str) -> None:
    """Load safetensors weights into `model`; every key and shape must match."""
    try:
        state = load_file(str(weights), device="cpu")
    except (SafetensorError, OSError) as e:
        raise CheckpointError(f"{weights}: cannot read the weights; the file is truncated "
                              f"or not a safetensors file ({e})") from None
    want = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    got = {k: tuple(v.shape) for k, v in state.items()}
    problems = [f"{k} has shape {list(got[k])}, the architecture needs {list(want[k])}"
                for k in want if k in got and got[k] != want[k]]
    problems += [f"missing {k}" for k in want if k not in got]
    problems += [f"unexpected {k}" for k in got if k not in want]
    if problems:
        more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
        raise CheckpointError(f"{weights}: the weights do not fit the architecture {arch}: "
                              f"{'; '.join(problems[:3])}{more}")
    model.load_state_dict(state)


def load(path: Path | str, build: Callable[[dict], nn.Module],
         device: torch.device | str = "cpu") -> tuple[nn.Module, dict]:
    """The model (in eval mode, on `device`) and the sidecar of a checkpoint; `build(sidecar)`
    makes the untrained network (tasks.load_checkpoint: the sidecar's task rebuilds its arch)."""
    weights, sidecar = resolve(path)
    side = read_sidecar(sidecar)
    try:
        model = build(side)
    except UserError as e:  # an unknown task or an architecture that does not parse
        raise CheckpointError(f"{sidecar}: {e}") from None
    check_pair(weights, sidecar, side)
    load_weights(model, weights, side["arch"])
    return model.to(device).eval(), side
