"""Weight averaging for training (Config.ema): the average is what each epoch evaluates."""

from __future__ import annotations

import torch
from torch import nn


class WeightAverage:
    """An exponential moving average of the model's weights (Config.ema: the decay per step;
    0: off, and every method does nothing). After each epoch the model holds the average, so
    the average is what is evaluated, snapshotted by on_epoch and, after the last epoch, saved;
    the live weights come back for the next epoch's training, which the average never changes.

    Every floating-point tensor of the state dict is averaged: weights and also BatchNorm's
    running mean and variance (as timm's ModelEma does), which track the weights' drift as
    slowly as the average does; integer buffers (num_batches_tracked) stay the live ones. The
    decay warms up as min(ema, (1 + t) / (10 + t)) at step t (TensorFlow's num_updates rule),
    so the random start has faded by the first evaluations, which the pruner compares.

    One foreach lerp per step with the decay computed on the host: no sync with the device
    (torch's AveragedModel reads a device counter every update, and would deep-copy the model
    with fast_model's training modules in it); the lerp is the one get_ema_multi_avg_fn runs.
    """

    def __init__(self, model: nn.Module, decay: float):
        self.model, self.decay, self.steps = model, decay, 0
        self.live = self._floats() if decay else []
        self.average = [t.detach().clone() for t in self.live]
        self.kept: list[torch.Tensor] | None = None  # the live ones, while set aside

    def _floats(self) -> list[torch.Tensor]:
        return [t for t in self.model.state_dict(keep_vars=True).values()
                if t.is_floating_point()]

    @torch.no_grad()
    def update(self) -> None:
        if self.decay:
            self.steps += 1
            decay = min(self.decay, (1 + self.steps) / (10 + self.steps))
            torch._foreach_lerp_(self.average, self.live, 1 - decay)

    @torch.no_grad()
    def hold_average(self) -> None:
        """The model's weights become the average; the live ones are kept aside."""
        if self.decay and self.kept is None:
            self.kept = [t.detach().clone() for t in self.live]
            for t, a in zip(self.live, self.average):
                t.copy_(a)

    @torch.no_grad()
    def hold_live(self) -> None:
        """The live weights back in the model, to train on."""
        if self.kept is not None:
            self.live = self._floats()  # evaluation may have re-laid the model out
            for t, k in zip(self.live, self.kept):
                t.copy_(k)
            self.kept = None
