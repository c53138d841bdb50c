"""ParTau optimiser and learning-rate schedule (reference note sections 2.5 and 3.5).

`OneCycle` reproduces torch `OneCycleLR(anneal_strategy="cos", three_phase=False)`, stepped every
batch; `make_optimizer` builds AdamW (torch default weight decay 0.01) with the class tokens
excluded from weight decay. Keras cannot cycle Adam's beta_1 (torch `cycle_momentum=True`), so
beta_1 stays fixed.
"""

import math

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="hepformers")
class OneCycle(keras.optimizers.schedules.LearningRateSchedule):
    """torch OneCycleLR with cosine annealing.

    The learning rate rises from max_lr / div_factor (step 0) to max_lr (step
    pct_start * total_steps - 1), then falls to max_lr / (div_factor * final_div_factor)
    (step total_steps - 1), each phase a half cosine:
    lr = end + (start - end) / 2 * (1 + cos(pi * pct)). Steps past the end keep the final value
    (torch raises there).

    Args:
        max_lr: peak learning rate.
        total_steps: number of optimiser steps of the whole training.
        pct_start: fraction of the steps spent warming up.
        div_factor: initial lr = max_lr / div_factor.
        final_div_factor: final lr = initial lr / final_div_factor.
    """

    def __init__(self, max_lr, total_steps, pct_start=0.3, div_factor=25.0, final_div_factor=1e4):
        if max_lr <= 0:
            raise ValueError(f"max_lr must be > 0, got {max_lr}")
        if int(total_steps) < 1:
            raise ValueError(f"total_steps must be >= 1, got {total_steps}")
        if not 0.0 < pct_start < 1.0:
            raise ValueError(f"pct_start must be in (0, 1), got {pct_start}")
        self.max_lr = max_lr
        self.total_steps = total_steps
        self.pct_start = pct_start
        self.div_factor = div_factor
        self.final_div_factor = final_div_factor

    @property
    def initial_lr(self):
        return self.max_lr / self.div_factor

    @property
    def min_lr(self):
        return self.initial_lr / self.final_div_factor

    def __call__(self, step):
        step = ops.cast(step, "float32")
        end_up = float(self.pct_start * self.total_steps) - 1.0  # torch phase-1 end_step
        end_down = float(self.total_steps) - 1.0

        def anneal(start, end, pct):
            return end + (start - end) / 2.0 * (ops.cos(math.pi * pct) + 1.0)

        pct_up = ops.clip(step / max(end_up, 1e-8), 0.0, 1.0)
        pct_down = ops.clip((step - end_up) / max(end_down - end_up, 1e-8), 0.0, 1.0)
        up = anneal(self.initial_lr, self.max_lr, pct_up)
        down = anneal(self.max_lr, self.min_lr, pct_down)
        return ops.where(step <= end_up, up, down)

    def get_config(self):
        return {
            "max_lr": self.max_lr,
            "total_steps": self.total_steps,
            "pct_start": self.pct_start,
            "div_factor": self.div_factor,
            "final_div_factor": self.final_div_factor,
        }


@keras.saving.register_keras_serializable(package="hepformers")
class AdamWExclude(keras.optimizers.AdamW):
    """keras AdamW that keeps its weight-decay exclusions in its config, so a model loaded from
    `.keras` and trained further still does not decay them.

    Args:
        exclude: substrings (regular expressions) of variable names not to decay.
        **kwargs: `keras.optimizers.AdamW` arguments.
    """

    def __init__(self, *args, exclude=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.exclude = tuple(exclude)
        if self.exclude:
            self.exclude_from_weight_decay(var_names=list(self.exclude))

    def get_config(self):
        return {**super().get_config(), "exclude": list(self.exclude)}


def make_optimizer(schedule_or_lr, weight_decay=1e-2, clipnorm=None, exclude=("class_token",)):
    """AdamW for ParTau.

    Args:
        schedule_or_lr: a float or a LearningRateSchedule (e.g. `OneCycle`).
        weight_decay: decoupled weight decay (torch AdamW default 0.01).
        clipnorm: clip of the global gradient norm, as torch `clip_grad_norm_` (passed as
            Keras `global_clipnorm`; None: none). Use it with `PCGradModel(pcgrad=False)`;
            with PCGrad the model clips the merged gradient itself (`clip_norm`).
        exclude: variable-name substrings kept out of weight decay (the class tokens).
    Returns:
        a `keras.optimizers.AdamW` (`AdamWExclude`).
    """
    return AdamWExclude(
        learning_rate=schedule_or_lr,
        weight_decay=weight_decay,
        global_clipnorm=clipnorm,
        exclude=exclude or (),
    )
