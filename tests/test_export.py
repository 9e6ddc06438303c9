"""`benchmarks export`: the ONNX file gives torch's logits (to fp32 rounding) and accuracy."""

from __future__ import annotations

import copy

import pytest
import torch
from tolerance import unit

from benchmarks.__main__ import main
from benchmarks.commands import export
from benchmarks.commands.evaluate import evaluate_checkpoint, load_split
from benchmarks.harness.config import Config
from benchmarks.tasks import mnist
from benchmarks.tasks.mnist import load_data
from benchmarks.tasks.run import load_checkpoint, run_one

ort = pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def trained(mnist_root, tmp_path_factory):
    """Two epochs on 1,024 digits, tested on 500: a checkpoint that tells digits apart."""
    cfg = Config(model="plain_7k", epochs=2, train_subset=1024, batch_size=32, test_subset=500,
                 seed=3, device="cpu", threads=1, progress=False, data_root=str(mnist_root))
    results = tmp_path_factory.mktemp("results") / "runs.csv"
    row = run_one(mnist, cfg, load_data(cfg, torch.device("cpu")), results=results)
    return row["checkpoint"]


def _out(capsys) -> tuple[str, str]:
    out = capsys.readouterr()
    return out.out, out.err.replace("\n", "")


def test_onnx_logits_match_torch_within_fp32_rounding(trained, mnist_root, tmp_path, capsys):
    onnx_file = tmp_path / "net.onnx"
    assert main(["export", "--checkpoint", trained, "--onnx", str(onnx_file),
                 "--data-root", str(mnist_root)]) == 0
    model, side = load_checkpoint(trained)
    test, _ = load_split(side, "test", torch.device("cpu"), str(mnist_root))
    x = torch.cat([x for x, _ in test.eval_batches(500)]).float().contiguous()
    session = ort.InferenceSession(str(onnx_file), providers=["CPUExecutionProvider"])
    theirs = torch.from_numpy(session.run(None, {"images": x.numpy()})[0])
    with torch.inference_mode():
        ours = model(x)
    assert theirs.shape == ours.shape == (500, 10)
    # Worst case: every term of every sum on the way to a logit rounded once, the wrong way.
    depth = export.summation_depth(model, x[:1])
    assert 500 < depth < 5000  # the convs' fan-ins (9 + 72 + ...) and the 7x7 average
    assert (ours - theirs).abs().max() <= unit(torch.float32) * depth * ours.abs().max()
    assert (ours.argmax(1) == theirs.argmax(1)).float().mean() > 0.99


def test_onnx_accuracy_is_the_evaluated_one_and_both_are_printed(trained, mnist_root, tmp_path,
                                                                 capsys):
    evaluated = evaluate_checkpoint(trained, device="cpu", data_root=str(mnist_root))["acc"]
    assert 20 < evaluated < 100  # it learned something: accuracy can tell models apart
    capsys.readouterr()
    r = export.export_checkpoint(trained, tmp_path / "net.onnx", str(mnist_root),
                                 int8=tmp_path / "net.int8.onnx")
    assert r["ok"] and r["flips"] == 0 and r["evaluated_acc"] == evaluated
    assert r["acc"] == evaluated or abs(r["acc"] - evaluated) * 5 <= r["ties"]  # 500 images
    assert 0 < r["int8"]["acc"] <= 100
    assert r["int8"]["bytes"] == (tmp_path / "net.int8.onnx").stat().st_size
    export.report(r)
    out, _ = _out(capsys)
    assert f"torch (evaluated)  accuracy {evaluated:.2f}%" in out
    assert f"onnxruntime        accuracy {r['acc']:.2f}%" in out
    assert "int8 (static)" in out and f"{r['int8']['bytes']:,} bytes" in out


def test_an_export_that_differs_from_torch_is_not_written(trained, mnist_root, tmp_path,
                                                          monkeypatch, capsys):
    real = export.export_onnx

    def off_by_a_little(model, sample, out):  # a bias moved by 1% of the largest logit
        bad = copy.deepcopy(model)
        with torch.no_grad():
            bad[-3].bias[0] += 0.01 * model(sample).abs().max()
        real(bad, sample, out)

    monkeypatch.setattr(export, "export_onnx", off_by_a_little)
    onnx_file = tmp_path / "net.onnx"
    assert main(["export", "--checkpoint", trained, "--onnx", str(onnx_file),
                 "--data-root", str(mnist_root)]) == 1
    out, _ = _out(capsys)
    assert "differ from torch's" in out and not onnx_file.exists()
    assert list(tmp_path.iterdir()) == []  # nor its temporary file


def test_bad_paths_exit_2_with_one_line(trained, tmp_path, capsys):
    cases = [
        (["--checkpoint", str(tmp_path / "none.safetensors"), "--onnx", str(tmp_path / "a")],
         "checkpoint not found"),
        (["--checkpoint", str(tmp_path), "--onnx", str(tmp_path / "a.onnx")], "is a folder"),
        (["--checkpoint", trained, "--onnx", str(tmp_path)], "--onnx"),
    ]
    blocker = tmp_path / "file"
    blocker.write_text("")
    cases.append((["--checkpoint", trained, "--onnx", str(blocker / "a.onnx")],
                  "cannot write there"))
    cases.append((["--checkpoint", trained, "--onnx", str(tmp_path / "a.onnx"),
                   "--int8", str(tmp_path)], "--int8"))
    for args, says in cases:
        assert main(["export", *args]) == 2, args
        _, err = _out(capsys)
        assert says in err and "Traceback" not in err and err.count("error:") == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]
