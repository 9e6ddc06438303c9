"""python -m benchmarks export --checkpoint FILE --onnx OUT: the network as an ONNX file, checked.

The checkpoint loads as `evaluate` loads it; the ONNX file takes the normalized images the
harness feeds the network (N, C, H, W float32, any N) and returns its logits. Before the file
gets its name, onnxruntime runs it on the run's own test images: every logit must match
torch's within what fp32 rounding allows, and its test accuracy must be the evaluated one.
With --int8 PATH, a statically quantized copy (calibrated on training images, never test
ones) is written and measured too: its accuracy and size are reported, not checked.
"""

from __future__ import annotations

import argparse
import logging
import os
import warnings
from pathlib import Path

from errors import UserError

from ..tasks import get_task
from .evaluate import check_out

OPSET = 17  # what torch 2.4's exporter writes by default and onnxruntime 1.16 runs
CALIBRATION_IMAGES = 512  # training images that set the int8 activation ranges


def onnxruntime():
    try:
        import onnxruntime as ort
    except ImportError:
        raise UserError("export needs onnx and onnxruntime: pip install -e '.[onnx]'") from None
    return ort


def summation_depth(model, x) -> int:
    """How many roundings can reach one logit, counted layer by layer: every term of each
    conv, linear or average (its fan-in), plus two for each other layer (a folded batchnorm's
    multiply and add, an activation). Residual adds are covered by those two."""
    import torch
    from torch import nn

    depth, hooks = 0, []

    def count(module, inputs, output):
        nonlocal depth
        if isinstance(module, nn.Conv2d):
            k = module.kernel_size[0] * module.kernel_size[1]
            depth += module.in_channels // module.groups * k
        elif isinstance(module, nn.Linear):
            depth += module.in_features
        elif isinstance(module, nn.AdaptiveAvgPool2d | nn.AvgPool2d):
            depth += max(1, inputs[0][0, 0].numel() // max(1, output[0, 0].numel()))
        else:
            depth += 2

    for m in model.modules():
        if not list(m.children()):
            hooks.append(m.register_forward_hook(count))
    with torch.inference_mode():
        model(x)
    for h in hooks:
        h.remove()
    return depth


def logit_tolerance(model, x) -> float:
    """The largest |torch - onnxruntime| a logit may show, relative to the largest logit:
    fp32's unit roundoff times the summation depth, i.e. every term of every sum rounded the
    worst way (the two runtimes sum in different orders and fold batchnorm differently)."""
    import torch

    return torch.finfo(torch.float32).eps * summation_depth(model, x)


def export_onnx(model, sample, out: Path) -> None:
    """The TorchScript exporter: torch 2.4 has only it, the newest keeps it under dynamo=False,
    and it needs neither onnxscript nor torch.export's tracing."""
    import inspect

    import torch

    legacy = {"dynamo": False} if "dynamo" in inspect.signature(torch.onnx.export).parameters \
        else {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # newer torch warns that this exporter is the old one
        torch.onnx.export(model, (sample,), str(out), opset_version=OPSET,
                          input_names=["images"], output_names=["logits"],
                          dynamic_axes={"images": {0: "batch"}, "logits": {0: "batch"}},
                          **legacy)


def compare(session, model, split, batch_size: int, tol: float) -> dict:
    """Run both on every image of `split`: the largest logit difference, the largest logit,
    onnxruntime's metrics, and how many images are ties at fp32 precision (their two highest
    logits closer than twice the allowed difference, so either may come out first)."""
    import torch

    from ..harness.train import Tally

    ours, theirs, labels = [], [], []
    with torch.inference_mode():
        for x, y in split.eval_batches(batch_size):
            x = x.float().contiguous().cpu()
            ours.append(model(x))
            theirs.append(torch.from_numpy(session.run(None, {"images": x.numpy()})[0]))
            labels.append(y.cpu())
    ours, theirs, labels = torch.cat(ours), torch.cat(theirs), torch.cat(labels)
    scale = ours.abs().max().item()
    top2 = ours.topk(2, dim=1).values
    tie = (top2[:, 0] - top2[:, 1]) <= 2 * tol * scale
    tally = Tally(split.num_classes)
    tally.add(theirs, labels)
    return {**tally.metrics(len(split)), "max_diff": (ours - theirs).abs().max().item(),
            "max_logit": scale, "ties": int(tie.sum()),
            "flips": int((ours.argmax(1) != theirs.argmax(1))[~tie].sum())}


def quantize_int8(fp32: Path, out: Path, train_split, batch_size: int) -> None:
    """Static post-training quantization (int8 weights and activations, QDQ), calibrated on
    the first CALIBRATION_IMAGES training images without augmentation."""
    from onnxruntime.quantization import CalibrationDataReader, QuantType, quantize_static

    class Reader(CalibrationDataReader):
        def __init__(self):
            n = min(CALIBRATION_IMAGES, len(train_split))
            batches = (x for x, _ in train_split.eval_batches(batch_size))
            self.feeds, seen = [], 0
            for x in batches:
                take = x[:n - seen].float().contiguous().cpu().numpy()
                self.feeds.append({"images": take})
                seen += len(take)
                if seen >= n:
                    break
            self.it = iter(self.feeds)

        def get_next(self):
            return next(self.it, None)

    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # it logs advice to pre-process the model, at WARNING
    try:
        quantize_static(str(fp32), str(out), Reader(), activation_type=QuantType.QInt8,
                        weight_type=QuantType.QInt8, per_channel=True)
    finally:
        root.setLevel(level)


def export_checkpoint(path: Path, out: Path, data_root: str = "", int8: Path | None = None,
                      say=print) -> dict:
    """Export, check against torch on the run's test split, then name the file `out`."""
    import torch

    from ..harness.train import evaluate
    from ..tasks.run import load_checkpoint
    from .evaluate import config_of

    ort = onnxruntime()
    model, side = load_checkpoint(path, "cpu")
    cfg = config_of(side, device="cpu", data_root=data_root, progress=False)
    data = get_task(cfg.task).load_data(cfg, torch.device("cpu"), with_test=True)
    evaluated = evaluate(model, data.test, cfg.eval_batch_size)["acc"]
    sample = next(iter(data.test.eval_batches(1)))[0].float().contiguous()
    tol = logit_tolerance(model, sample)

    tmp = out.with_name(out.name + ".tmp")
    try:
        export_onnx(model, sample, tmp)
        session = ort.InferenceSession(str(tmp), providers=["CPUExecutionProvider"])
        r = compare(session, model, data.test, cfg.eval_batch_size, tol)
        r.update(checkpoint=str(path), onnx=str(out), model=side["model"], arch=side["arch"],
                 images=len(data.test), evaluated_acc=evaluated, tolerance=tol,
                 recorded_acc=(side.get("recorded") or {}).get("test_acc"),
                 bytes=tmp.stat().st_size)
        # An image may change class between the runtimes only when it is an fp32 tie.
        r["ok"] = (r["max_diff"] <= tol * r["max_logit"] and r["flips"] == 0
                   and abs(r["acc"] - evaluated) * len(data.test) / 100 <= r["ties"] + 1e-6)
        if r["ok"]:
            out.parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    if r["ok"] and int8 is not None:
        int8.parent.mkdir(parents=True, exist_ok=True)
        quantize_int8(out, int8, data.train, cfg.eval_batch_size)
        q = ort.InferenceSession(str(int8), providers=["CPUExecutionProvider"])
        qr = compare(q, model, data.test, cfg.eval_batch_size, tol)
        r["int8"] = {"onnx": str(int8), "acc": qr["acc"], "bytes": int8.stat().st_size}
    return r


def report(r: dict, say=print) -> None:
    say(f"{r['model']} ({r['arch']}), {r['images']:,} test images")
    say(f"  torch (evaluated)  accuracy {r['evaluated_acc']:.2f}%"
        + ("" if r["recorded_acc"] is None else f"  (recorded {r['recorded_acc']:.2f}%)"))
    say(f"  onnxruntime        accuracy {r['acc']:.2f}%  {r['bytes']:,} bytes")
    say(f"  logits: largest difference {r['max_diff']:.2e}, allowed {r['tolerance']:.2e} x "
        f"largest logit {r['max_logit']:.2f} = {r['tolerance'] * r['max_logit']:.2e}; "
        f"{r['ties']} fp32 tie(s), {r['flips']} other image(s) classed differently")
    if "int8" in r:
        q = r["int8"]
        say(f"  int8 (static)      accuracy {q['acc']:.2f}%  {q['bytes']:,} bytes (not checked)")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="write a checkpoint's network as ONNX, checked with "
                                      "onnxruntime", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", type=Path, required=True,
                   help="the .safetensors file (its .json sidecar must sit beside it)")
    p.add_argument("--onnx", type=Path, required=True, help="the .onnx file to write")
    p.add_argument("--int8", type=Path, default=None, metavar="PATH",
                   help="also write an int8 (static post-training quantization) copy here")
    p.add_argument("--data-root", default="",
                   help="data folder (default: $MNIST_ROOT, else ./data)")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from ..harness.checkpoint import resolve

    check_out(args.onnx, "--onnx", "model.onnx")
    if args.int8 is not None:
        check_out(args.int8, "--int8", "model-int8.onnx")
    resolve(args.checkpoint)  # a missing checkpoint or a folder, before onnxruntime loads
    onnxruntime()
    r = export_checkpoint(args.checkpoint, args.onnx, args.data_root, args.int8)
    report(r)
    if not r["ok"]:
        print(f"error: onnxruntime's results differ from torch's beyond fp32 rounding; "
              f"{args.onnx} not written")
        return 1
    print(f"wrote {args.onnx}" + (f" and {args.int8}" if args.int8 else ""))
    return 0
