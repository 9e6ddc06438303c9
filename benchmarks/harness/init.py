"""Initial weights other than torch's own, as some published recipes use (Config.init)."""

from __future__ import annotations

import torch
from torch import nn

# Conv and linear weights (the layers that carry the network's weights); biases start at 0.
SCHEMES = {
    "xavier": nn.init.xavier_uniform_,  # Glorot's uniform, gain 1
    "kaiming": lambda w, generator: nn.init.kaiming_normal_(w, nonlinearity="relu",
                                                            generator=generator),  # He, fan in
}


@torch.no_grad()
def init_weights(model: nn.Module, scheme: str, seed: int) -> None:
    """Redraw the conv and linear weights of `model` per `scheme` ("default": leave torch's).
    Drawn on the CPU from a generator of the run's seed, so every device starts the same."""
    if scheme == "default":
        return
    draw, gen = SCHEMES[scheme], torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            w = torch.empty(m.weight.shape)
            draw(w, generator=gen)
            m.weight.copy_(w)
            if m.bias is not None:
                m.bias.zero_()
