"""python -m benchmarks plots: PNG pictures of the committed runs, checkpoints and studies.

Headless (matplotlib's Agg backend). Everything is regenerated from results/runs.csv,
results/checkpoints/*.json + .safetensors and results/*.db, into results/plots/:

    runs/<run>/curves.png         loss and accuracy per epoch (train, val, test)
    runs/<run>/confusion.png      test confusion matrix      (runs with a checkpoint)
    runs/<run>/misclassified.png  the test digits it gets wrong (runs with a checkpoint)
    zoo-curves.png                test accuracy per epoch, one seed per architecture
    mnist-params-vs-accuracy.png  parameters vs mean test accuracy (20 epochs), 99.4% line
    mnist-certificates.png        every run of each promoted member: seeds 1-10, fresh 11-20
    mnist-augmentation.png        training digits as the model sees them after augmentation
    <db>-<study>-history.png, -importances.png, -pareto.png   Optuna's matplotlib plots
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display on CI and servers; must precede pyplot (Optuna uses it)

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402
from matplotlib.colors import LogNorm  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import FuncFormatter, MaxNLocator  # noqa: E402

from ..harness.data import MEAN, STD, Split  # noqa: E402
from ..harness.results import found_by  # noqa: E402
from .labels import label_points  # noqa: E402
from .leaderboard import describe  # noqa: E402

DPI = 100  # the PNGs are committed: keep them small


def save(fig: Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI, bbox_inches="tight")
    plt.close(fig)  # only pyplot-made figures are registered; harmless for the others
    return path


def _title(run: dict) -> str:
    acc = run.get("final_test_acc")
    acc = "" if acc is None or pd.isna(acc) else f", final test {float(acc):.2f}%"
    return (f"{run['model']} ({int(run['params']):,} params), seed {run['seed']}, "
            f"{run['epochs']} epochs{acc}\n{run['arch']}")


def history_of(run: dict) -> list[dict]:
    """Per-epoch records: the sidecar's full history, else rebuilt from the CSV columns."""
    if run.get("history"):
        return run["history"]
    cols = {"test_acc": "test_acc_per_epoch", "val_acc": "val_acc_per_epoch",
            "train_loss": "train_loss_per_epoch"}
    series = {k: json.loads(run[c]) if isinstance(run.get(c), str) else []
              for k, c in cols.items()}
    n = max(len(v) for v in series.values())
    return [{"epoch": i + 1, **{k: v[i] for k, v in series.items() if len(v) == n}}
            for i in range(n)]


def plot_curves(run: dict, path: Path) -> Path:
    """Loss (left) and accuracy (right) per epoch, for every split the run measured."""
    hist = history_of(run)
    epochs = [r["epoch"] for r in hist]
    fig = Figure(figsize=(11, 4))
    loss_ax, acc_ax = fig.subplots(1, 2)
    for split, style, color in (("train", "-", "tab:blue"), ("val", "--", "tab:orange"),
                                ("test", "-.", "tab:green")):
        for ax, key in ((loss_ax, f"{split}_loss"), (acc_ax, f"{split}_acc")):
            ys = [r.get(key) for r in hist]
            if any(y is not None for y in ys):
                ax.plot(epochs, ys, style, color=color, marker=".", label=split)
    target = run.get("target")  # a Config field: in sidecars, else in the CSV's config JSON
    if target is None and isinstance(run.get("config"), str):
        target = json.loads(run["config"]).get("target")
    if target and acc_ax.lines and max(max(ln.get_ydata()) for ln in acc_ax.lines) > target - 2:
        acc_ax.axhline(float(target), color="grey", lw=0.8, ls=":", label=f"{target}%")
    for ax, name in ((loss_ax, "loss (cross-entropy)"), (acc_ax, "accuracy (%)")):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("epoch")
        ax.set_ylabel(name)
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend()
    if len(hist) >= 5:  # the first epochs would squash the interesting end of the curves
        late = [r[k] for r in hist[1:] for k in ("train_acc", "val_acc", "test_acc") if k in r]
        if late:
            acc_ax.set_ylim(min(late) - 0.5, min(100.0, max(late) + 0.3))
    fig.suptitle(_title(run), fontsize=10)
    return save(fig, path)


def plot_confusion(confusion: list[list[int]], path: Path, title: str = "",
                   classes: list[str] | None = None) -> Path:
    """Counts per (true, predicted) pair; errors in red on a log scale, the diagonal in grey."""
    cm = torch.tensor(confusion, dtype=torch.float64)
    k = len(cm)
    classes = classes or [str(i) for i in range(k)]
    errors = cm.clone().fill_diagonal_(float("nan"))
    fig = Figure(figsize=(6.5, 5.5))
    ax = fig.subplots()
    top = max(float(errors.nan_to_num(0).max()), 1.0)
    ax.imshow(errors.masked_fill(errors == 0, float("nan")).numpy(), cmap="Reds",
              norm=LogNorm(vmin=0.5, vmax=max(top, 2)))
    diagonal = torch.where(torch.eye(k, dtype=torch.bool), 1.0, float("nan"))
    ax.imshow(diagonal.numpy(), cmap="Greys", vmin=0, vmax=4)
    for i in range(k):
        for j in range(k):
            v = int(cm[i, j])
            if v or i == j:
                ax.text(j, i, str(v), ha="center", va="center", fontsize=8,
                        color="white" if i != j and v > top / 3 else "black")
    ax.set_xticks(range(k), classes)
    ax.set_yticks(range(k), classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    acc = 100 * float(cm.diag().sum() / cm.sum())
    ax.set_title(f"{title}\naccuracy {acc:.2f}% of {int(cm.sum()):,} images; errors in red "
                 "(darker: more)".strip(), fontsize=9)
    return save(fig, path)


@torch.no_grad()
def predictions(model: torch.nn.Module, split, batch_size: int = 2000) -> torch.Tensor:
    """Predicted class of every image of the split, in split order."""
    model.eval()
    return torch.cat([model(x).argmax(1).cpu() for x, _ in split.eval_batches(batch_size)])


def _grid(n: int, cols: int, size: float = 1.1) -> tuple[Figure, list]:
    rows = max(1, math.ceil(n / cols))
    fig = Figure(figsize=(cols * size, rows * size * 1.15))
    axes = fig.subplots(rows, cols, squeeze=False).ravel().tolist()
    for ax in axes:
        ax.axis("off")
    return fig, axes


def plot_misclassified(model: torch.nn.Module, split: Split, path: Path, title: str = "",
                       limit: int = 60, batch_size: int = 2000) -> Path:
    """The first `limit` test digits the model gets wrong, with true and predicted labels."""
    pred = predictions(model, split, batch_size)
    truth = split.y.cpu()
    wrong = (pred != truth).nonzero().flatten()
    fig, axes = _grid(min(len(wrong), limit), cols=10)
    for ax, i in zip(axes, wrong[:limit].tolist()):
        ax.imshow(split.x[i, 0].cpu().numpy(), cmap="gray_r")
        ax.set_title(f"{int(truth[i])} → {int(pred[i])}", fontsize=9, color="crimson")
    fig.suptitle(f"{title}\n{len(wrong)} of {len(split):,} test digits misclassified "
                 f"(true → predicted; first {min(len(wrong), limit)} shown)", fontsize=10)
    return save(fig, path)


def plot_augmentation(train: Split, cfg, path: Path, digits: int = 6, variants: int = 9,
                      seed: int = 0) -> Path:
    """Each row: one training digit, then `variants` draws from the real training pipeline
    (Split.train_batches: augment + normalize), un-normalized for display."""
    fig, axes = _grid(digits * (variants + 1), cols=variants + 1)
    gen = torch.Generator(device=train.y.device).manual_seed(seed)
    for row in range(digits):
        # A split of one digit repeated, so the batch's shuffle cannot mix digits up.
        one = Split(train.x[row:row + 1].repeat(variants, 1, 1, 1), train.y[row].repeat(variants))
        x, _ = next(one.train_batches(dataclasses.replace(cfg, batch_size=variants), gen))
        shown = [train.x[row, 0].float() / 255] + [(v[0] * STD + MEAN) for v in x]
        for col, img in enumerate(shown):
            ax = axes[row * (variants + 1) + col]
            ax.imshow(img.cpu().clamp(0, 1).numpy(), cmap="gray_r", vmin=0, vmax=1)
            ax.set_title("original" if col == 0 else "", fontsize=8)
    fig.suptitle(f"Training digits as the model sees them: rotation ±{cfg.rotate:g}°, "
                 f"shift ±{100 * cfg.translate:g}% (first column: unaugmented)", fontsize=10)
    return save(fig, path)


def plot_zoo_curves(runs: list[dict], path: Path) -> Path:
    """Test accuracy per epoch of many runs on one chart, labelled by model and params."""
    fig = Figure(figsize=(9, 5))
    ax = fig.subplots()
    for run in sorted(runs, key=lambda r: int(r["params"])):
        hist = [r for r in history_of(run) if r.get("test_acc") is not None]
        ax.plot([r["epoch"] for r in hist], [r["test_acc"] for r in hist], marker=".",
                label=f"{run['model']} ({int(run['params']):,}), seed {run['seed']}")
    late = [y for ln in ax.lines for y in ln.get_ydata()[2:]]
    if late:
        ax.set_ylim(min(late) - 0.3, min(100.0, max(late) + 0.2))
    ax.axhline(99.4, color="grey", lw=0.8, ls=":", label="99.4% target")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel("test accuracy (%)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title("MNIST test accuracy per epoch, benchmark runs")
    return save(fig, path)


def accuracy_front(board: pd.DataFrame) -> pd.DataFrame:
    """The rows no smaller-or-equal row matches in mean accuracy: each is more accurate than
    every row with fewer parameters (the params-vs-accuracy Pareto front), smallest first."""
    board = board.sort_values(["params", "mean_test_acc"], ascending=[True, False])
    return board[board.mean_test_acc > board.mean_test_acc.cummax().shift(fill_value=-1.0)]


def _worst_to_best(rows: pd.DataFrame) -> tuple:
    """errorbar's x, y and yerr: the mean, its bar from the worst seed to the best. As arrays:
    matplotlib 3.8 calls float() on a one-row Series, which pandas deprecates."""
    mean = rows.mean_test_acc.to_numpy()
    return (rows.params.to_numpy(), mean,
            [mean - rows.min_test_acc.to_numpy(), rows.max_test_acc.to_numpy() - mean])


def plot_params_vs_accuracy(board: pd.DataFrame, path: Path, target: float = 99.4,
                            peers: frozenset[str] = frozenset()) -> Path:
    """Leaderboard rows (one task and training set, 20 epochs; `peers` at their own epochs):
    parameters against mean test accuracy, bars from the worst to the best seed, the front of
    this suite's 5-seed rows, the target line. Published peers are marked apart."""
    fig = Figure(figsize=(9, 5.5))
    ax = fig.subplots()
    board = board.sort_values("params")
    is_peer = board.model.isin(peers)
    for proven, style in ((False, dict(mfc="white")), (True, {})):
        ax.errorbar(*_worst_to_best(board[((board.seeds >= 5) == proven) & ~is_peer]),
                    ls="none", marker="o", capsize=3, color="tab:blue", **style,
                    label="mean of 5+ seeds (bar: worst to best)" if proven
                    else "fewer than 5 seeds")
    if is_peer.any():
        ax.errorbar(*_worst_to_best(board[is_peer]), ls="none", marker="D", capsize=3,
                    color="tab:orange",
                    label="published peers: their recipe and epochs, measured here")
    front = accuracy_front(board[(board.seeds >= 5) & ~is_peer])
    if len(front):
        ax.step(front.params, front.mean_test_acc, where="post", color="tab:green", lw=1,
                label="front (5+ seeds)")
    ax.axhline(target, color="grey", lw=0.8, ls=":", label=f"{target}% target")
    ax.set_xscale("log")
    for axis in (ax.xaxis.set_major_formatter, ax.xaxis.set_minor_formatter):
        axis(FuncFormatter(lambda x, _: f"{x:,.0f}"))
    ax.tick_params(axis="x", which="both", labelsize=7)
    ax.set_xlabel("parameters (log scale)")
    ax.set_ylabel("final test accuracy (%), mean over seeds")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8, loc="lower left")
    ax.set_title("MNIST, full training set: parameters vs final test accuracy (20 epochs; "
                 "peers at their own)", fontsize=10)
    # Names only: the size is the x axis, and a hollow marker says fewer than 5 seeds.
    label_points(fig, ax, [(r.params, r.mean_test_acc, _point_name(r))
                            for r in board.itertuples()])
    return save(fig, path)


def _point_name(row) -> str:
    """A zoo member's name; else the study trial that found the architecture, or the member
    whose layout it is, with whose recipe."""
    if "|" not in str(row.model):
        return str(row.model)
    if hasattr(row, "recipe"):  # a leaderboard row: describe() tries the study trial first
        return describe(row)
    return found_by(getattr(row, "source", "")) or "unnamed"


@torch.no_grad()
def plot_image_predictions(model: torch.nn.Module, split, path: Path, title: str = "",
                           limit: int = 12, batch_size: int = 16) -> Path:
    """Validation images with the model's predictions, as in PyTorch's transfer-learning
    tutorial (visualize_model); wrong predictions in red."""
    from ..tasks.images import IMAGENET_MEAN, IMAGENET_STD

    model.eval()
    mean = torch.tensor(IMAGENET_MEAN)[:, None, None]
    std = torch.tensor(IMAGENET_STD)[:, None, None]
    shown = []
    for x, y in split.eval_batches(batch_size):
        pred = model(x).argmax(1)
        shown += list(zip(x.cpu(), y.tolist(), pred.tolist()))
        if len(shown) >= limit:
            break
    fig, axes = _grid(min(len(shown), limit), cols=4, size=1.9)  # photos make big PNGs
    names = split.classes
    for ax, (img, true, pred) in zip(axes, shown[:limit]):
        ax.imshow((img * std + mean).clamp(0, 1).permute(1, 2, 0).numpy())
        wrong = "" if pred == true else f"\n(is {names[true]})"
        ax.set_title(f"predicted: {names[pred]}{wrong}", fontsize=9,
                     color="black" if pred == true else "crimson")
    right = sum(t == p for _, t, p in shown[:limit])
    fig.suptitle(f"{title}\n{right} of {len(shown[:limit])} shown validation images right",
                 fontsize=10)
    return save(fig, path)
