"""`python -m benchmarks plots` writes real PNGs from a results folder: runs and a study."""

from __future__ import annotations

import warnings
from pathlib import Path

import optuna
import pandas as pd
import pytest
import torch
from PIL import Image

from benchmarks.__main__ import main
from benchmarks.commands.drawing import (
    accuracy_front,
    plot_image_predictions,
    plot_params_vs_accuracy,
    plot_zoo_curves,
)
from benchmarks.harness.config import Config
from benchmarks.tasks import mnist, task_config
from benchmarks.tasks.mnist import load_data
from benchmarks.tasks.run import run_one
from models import arch_of


def _png(path) -> tuple[int, int]:
    assert path.is_file(), path
    with Image.open(path) as img:
        assert img.format == "PNG"
        return img.size


@pytest.fixture
def tiny_results(results_dir, mnist_root, monkeypatch):
    """A results folder holding one tiny real run (row + checkpoints) and a two-objective
    study with a few trials, as the search would leave them."""
    monkeypatch.setenv("MNIST_ROOT", str(mnist_root))
    cfg = Config(model="plain_7k", epochs=2, train_subset=1000, batch_size=32, val_split=500,
                 test_subset=500, device="cpu", threads=1, progress=False)
    row = run_one(mnist, cfg, load_data(cfg, torch.device("cpu")))
    study = optuna.create_study(study_name="tiny", directions=["maximize", "minimize"],
                                storage=f"sqlite:///{results_dir / 'search.db'}")
    with warnings.catch_warnings():  # set_metric_names is "experimental" since Optuna 3.2
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study.set_metric_names(["val_acc", "params"])
    sampler_rng = torch.Generator().manual_seed(0)

    def objective(trial):  # cheap stand-in objectives: these plots test drawing, not search
        w = trial.suggest_int("width", 4, 16)
        lr = trial.suggest_float("lr", 0.01, 0.1, log=True)
        return 90 + w / 2 + lr + float(torch.rand(1, generator=sampler_rng)), 500 * w

    study.optimize(objective, n_trials=6)
    return results_dir, row


def test_plots_command_writes_every_picture(tiny_results, capsys):
    results_dir, row = tiny_results
    assert main(["plots"]) == 0
    out = results_dir / "plots"
    run = out / "runs" / row["checkpoint"].rsplit("/", 1)[1].removesuffix("-final.safetensors")
    for name in ("curves", "confusion", "misclassified"):
        width, height = _png(run / f"{name}.png")
        assert width > 300 and height > 200
    _png(out / "mnist-augmentation.png")
    for kind in ("history", "importances", "pareto"):
        _png(out / f"search-tiny-{kind}.png")
    printed = capsys.readouterr().out
    assert "PNG files written" in printed and "misclassified.png" in printed
    assert not (out / "zoo-curves.png").exists()  # 2-epoch smoke runs stay off the zoo chart
    _png(plot_zoo_curves([row], results_dir / "zoo.png"))


def test_run_folders_are_kept_only_for_runs_with_weights(tiny_results):
    results_dir, row = tiny_results
    stale = results_dir / "plots" / "runs" / "mnist-plain_4k-s3-20250101T000000"
    stale.mkdir(parents=True)
    (stale / "curves.png").write_bytes(b"old picture")
    mine = results_dir / "plots" / "runs" / "notes"  # not a run's folder: left alone
    mine.mkdir()
    assert main(["plots"]) == 0
    folders = sorted(p.name for p in (results_dir / "plots" / "runs").iterdir())
    assert folders == sorted(["notes", Path(row["checkpoint"]).name.removesuffix(
        "-final.safetensors")])


def test_zoo_curves_name_members_of_their_own_recipe(tmp_path, monkeypatch):
    from benchmarks.commands import drawing, plots

    drawn = []
    monkeypatch.setattr(drawing, "plot_zoo_curves", lambda runs, path: drawn.extend(runs))
    monkeypatch.setattr(plots, "benchmark_runs", lambda _: [
        {"task": "mnist", "epochs": 20, "seed": 2, "arch": arch_of("plain_7k"), "model": "x",
         "config": "{}", "stem": "a"},
        {"task": "mnist", "epochs": 20, "seed": 1, "arch": arch_of("nas_plain_5k"),
         "model": "v8-raw-string", "config": "{}", "stem": "b"}])  # not its own recipe
    plots.regenerate(tmp_path, tmp_path / "plots", summary=False)
    assert [r["model"] for r in drawn] == ["plain_7k"]


def test_plots_without_data_skip_only_the_pictures_that_need_it(tiny_results, tmp_path,
                                                                 monkeypatch, capsys):
    results_dir, _ = tiny_results
    monkeypatch.setenv("MNIST_ROOT", str(tmp_path))  # no MNIST/raw there
    assert main(["plots"]) == 0
    printed = capsys.readouterr().out
    assert "skipped" in printed and "MNIST file missing" in printed
    assert list((results_dir / "plots" / "runs").glob("*/curves.png"))
    assert not list((results_dir / "plots" / "runs").glob("*/confusion.png"))
    _png(results_dir / "plots" / "search-tiny-pareto.png")


def test_params_vs_accuracy_front_and_picture(tmp_path):
    board = pd.DataFrame({
        "model": ["a", "b", "c", "d", "e"], "arch": ["a|do0", "b|do0", "c|do0", "d|do0", "e|do0"],
        "params": [3000, 5000, 5000, 9000, 16000], "seeds": [5, 5, 5, 1, 5],
        "mean_test_acc": [99.30, 99.25, 99.45, 99.60, 99.44],
        "min_test_acc": [99.2, 99.1, 99.4, 99.6, 99.3],
        "max_test_acc": [99.4, 99.3, 99.5, 99.6, 99.5]})
    # b is beaten by the smaller a, e by the smaller c; d is the most accurate of all
    assert list(accuracy_front(board).model) == ["a", "c", "d"]
    assert list(accuracy_front(board[board.seeds >= 5]).model) == ["a", "c"]
    width, height = _png(plot_params_vs_accuracy(board, tmp_path / "pva.png"))
    assert width > 600 and height > 400


def test_labels_of_crowded_points_do_not_overlap():
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from benchmarks.commands.labels import label_points, text_box

    fig = Figure(figsize=(6, 4))
    ax = fig.subplots()
    points = [(5946, 99.49, "nas_plain_6k"), (5946, 99.44, "mnist-under6k:46"),
              (5946, 99.41, "mnist-under6k:42"), (6570, 99.44, "plain_7k"),
              (6866, 99.44, "squeeze_7k"), (3882, 99.39, "a-long-trial-name:0")]
    ax.plot([p[0] for p in points], [p[1] for p in points], "o")
    ax.set_xscale("log")
    label_points(fig, ax, points)
    renderer = FigureCanvasAgg(fig).get_renderer()
    boxes = [text_box(t, renderer) for t in ax.texts]
    assert sorted(t.get_text() for t in ax.texts) == sorted(p[2] for p in points)
    assert not any(a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1:])


def test_committed_leaderboard_plot_prints_no_name_over_another(tmp_path, monkeypatch):
    """The README's picture, from the committed runs: where every spot near a point is taken,
    a name may cross a bar, never another name (two at 5,946 params once printed as one)."""
    from conftest import REPO
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from benchmarks.commands import drawing, labels
    from benchmarks.commands.leaderboard import leaderboard
    from benchmarks.commands.plots import params_vs_accuracy
    from benchmarks.harness.results import read_runs

    drawn = []

    def spy(fig, ax, points):
        labels.label_points(fig, ax, points)
        drawn.append(ax)

    monkeypatch.setattr(drawing, "label_points", spy)
    assert params_vs_accuracy(leaderboard(read_runs(REPO / "results" / "runs.csv")), tmp_path)
    (ax,) = drawn
    renderer = FigureCanvasAgg(ax.figure).get_renderer()
    boxes = [(t.get_text(), labels.text_box(t, renderer)) for t in ax.texts]
    assert len(boxes) >= 10
    assert not [(a, b) for i, (a, box) in enumerate(boxes) for b, other in boxes[i + 1:]
                if box.overlaps(other)]


def test_ants_bees_predictions_grid(hymenoptera_root, tmp_path):
    from benchmarks.tasks.hymenoptera import model_from_arch
    from benchmarks.tasks.images import load_image_splits

    cfg = task_config("hymenoptera", image_size=64, train_subset=2, test_subset=6, workers=0,
                      data_root=str(hymenoptera_root), device="cpu")
    _, val = load_image_splits(cfg, torch.device("cpu"))
    torch.manual_seed(0)
    model = model_from_arch("resnet18-finetune-none")  # untrained: this tests the drawing
    path = plot_image_predictions(model, val, tmp_path / "predictions.png", "untrained")
    width, height = _png(path)
    assert width > 300 and height > 300


def test_labels_cover_no_marker_and_no_error_bar():
    """A name printed over another point's bar reads as that point's name: none may touch one."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.collections import LineCollection
    from matplotlib.figure import Figure
    from matplotlib.transforms import Bbox

    from benchmarks.commands.labels import label_points, text_box

    fig = Figure(figsize=(6, 4))
    ax = fig.subplots()
    points = [(4746, 99.43, "mnist-under5k-b32:0"), (5074, 99.46, "nas_plain_5k"),
              (5194, 99.49, "mnist-under5500-b32:1"), (5946, 99.49, "nas_plain_6k")]
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    ax.errorbar(xs, ys, yerr=0.1, ls="none", marker="o")
    ax.set_xscale("log")
    label_points(fig, ax, points)
    renderer = FigureCanvasAgg(fig).get_renderer()
    px = ax.transData.transform
    marks = [Bbox.from_bounds(x - 3, y - 3, 6, 6) for x, y in px(list(zip(xs, ys)))]
    (bars,) = [c for c in ax.collections if isinstance(c, LineCollection)]
    marks += [Bbox([p.min(0), p.max(0)]) for p in map(px, bars.get_segments())]
    for label in ax.texts:
        box = text_box(label, renderer)
        assert not any(box.overlaps(m) for m in marks), label.get_text()


def test_certificate_picture_has_a_row_and_a_verdict_per_promoted_member(tmp_path, monkeypatch):
    """From the committed runs: one row per member promoted from the search that has runs of
    its own recipe, smallest first, each with the leaderboard's verdict and counts; the smallest
    champion's row says it stands."""
    from conftest import REPO

    from benchmarks.commands import drawing, seedplot
    from benchmarks.commands.leaderboard import champions, leaderboard, on_protocol, verdict
    from benchmarks.commands.plots import summary_plots
    from benchmarks.harness.results import read_runs
    from models.registry import FOUND_BY

    drawn = []
    monkeypatch.setattr(drawing, "save", lambda fig, path: drawn.append(fig) or path)
    runs = read_runs(REPO / "results" / "runs.csv")
    board = leaderboard(runs)
    assert seedplot.plot_certificates(runs, board, tmp_path) == [
        tmp_path / "mnist-certificates.png"]
    (ax,) = drawn[0].axes
    names = [t.get_text().split(" (")[0] for t in ax.get_yticklabels()]
    assert sorted(names) == sorted(FOUND_BY) and "nas_plain_5k" == names[0]
    verdicts = dict(zip(names, (t.get_text() for t in ax.texts), strict=True))
    rows = on_protocol(board).set_index("model")
    for name, said in verdicts.items():
        r = rows.loc[name]
        assert said == (f"{verdict(r)}: {r.chosen_at_target}/{r.chosen_seeds}, "
                        f"fresh {r.fresh_at_target}/{r.fresh_seeds}")
    assert verdicts[champions(board)["smallest"]["model"]].startswith("stands: 10/10")
    assert summary_plots(tmp_path, tmp_path) == []  # no runs.csv: no picture
