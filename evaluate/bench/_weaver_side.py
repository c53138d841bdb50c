"""PyTorch side of evaluate.bench.partau_speed: weaver-core's ParticleTransformer, timed.

Runs in the benchmark environment (cache/bench-venv: torch + weaver-core), never in the
toolkit's: at module level it imports the standard library only (the harness reuses `Stepper`),
and its functions import numpy, torch and weaver. The harness starts it as a script
(`python -I evaluate/bench/_weaver_side.py --inputs JETS.npz --config JSON ...`) and drives it
over stdin / stdout, one JSON line per answer, so that the two sides' timed steps can be
interleaved on a shared machine:

    train NAME N | infer NAME N      N timed steps of the model NAME (--model)
    warmup-train NAME N | warmup-infer NAME N      N untimed steps
    quit

The model is `weaver.nn.model.ParticleTransformer.ParticleTransformer` as a weaver user builds
it (its defaults: trim=True, pair embedding of the real pairs only, dropout 0.1 in the
particle blocks). Inputs in weaver's (N, C, P) layout: features (N, F, P), four-vectors
(N, 4, P), mask (N, 1, P). Training: AdamW + CrossEntropyLoss, one step per batch; inference:
`model.eval()` under `torch.no_grad()`. `--model compile` serves `torch.compile` of the model
built with weaver's `compile_model=True` (dense pair embedding in training, length rounded up
to 32) instead, compiled at its first warm-up step. Each process serves one model, so that
no variant's state (compiled kernels, caches, thread pools) is shared with another's.
`--flush-denormal` sets `torch.set_flush_denormal(True)` (flush-to-zero, which TensorFlow sets
in its own threads by default; PyTorch does not).
"""

import argparse
import json
import logging
import os
import sys
import time


class Stepper:
    """Steps of fn(*batch) over cycled batches; `run` times each step (wall and process CPU)."""

    def __init__(self, fn, batches):
        self.fn, self.batches, self.cursor = fn, batches, 0

    def _next(self):
        b = self.batches[self.cursor % len(self.batches)]
        self.cursor += 1
        return b

    def warm(self, n):
        """n untimed steps; returns the wall time of the first (tracing, compilation)."""
        first = None
        for _ in range(n):
            t = time.perf_counter()
            self.fn(*self._next())
            first = time.perf_counter() - t if first is None else first
        return first

    def run(self, n):
        wall, cpu = [], []
        for _ in range(n):
            b = self._next()
            w, c = time.perf_counter(), time.process_time()
            self.fn(*b)
            wall.append(time.perf_counter() - w)
            cpu.append(time.process_time() - c)
        return dict(step_s=wall, cpu_s=cpu)


def build(config, compile_model=False):
    """weaver's ParticleTransformer at `config` (the harness's CONFIG)."""
    from weaver.nn.model.ParticleTransformer import ParticleTransformer

    model = ParticleTransformer(
        input_dim=config["num_features"],
        num_classes=config["num_classes"],
        pair_input_dim=4,
        use_pre_activation_pair=config["use_pre_activation_pair"],
        embed_dims=list(config["embed_dims"]),
        pair_embed_dims=list(config["pair_embed_dims"]),
        num_heads=config["num_heads"],
        num_layers=config["num_layers"],
        num_cls_layers=config["num_cls_layers"],
        fc_params=list(config["fc_params"]),
        activation=config["activation"],
        compile_model=compile_model,
    )
    # The trimmer leaves the first 5 forward calls untrimmed (its own warm-up): skip that, so
    # that every timed step does what the steps of a real training do.
    model.trimmer._counter.fill_(model.trimmer.warmup_steps)
    return model


def steppers(model, forward, batches, config):
    """{"train": Stepper, "infer": Stepper} of `model`, called through `forward`."""
    import torch

    opt = torch.optim.AdamW(
        model.parameters(), lr=config["learning_rate"], weight_decay=config["weight_decay"]
    )
    loss_fn = torch.nn.CrossEntropyLoss()

    def train_step(x, v, mask, y):
        model.train()
        opt.zero_grad()
        loss = loss_fn(forward(x, v, mask), y)
        loss.backward()
        opt.step()
        return loss.item()

    def infer_step(x, v, mask, y):
        model.eval()
        with torch.no_grad():
            return forward(x, v, mask).numpy()

    return dict(train=Stepper(train_step, batches), infer=Stepper(infer_step, batches))


def load_batches(path, batch):
    """The harness's jets (N, P, C) as weaver's (N, C, P) torch batches (x, v, mask, y)."""
    import numpy as np
    import torch

    d = np.load(path)
    n = len(d["labels"]) // batch * batch

    def ncp(a):  # contiguous, as weaver's loader gives them
        return torch.from_numpy(np.ascontiguousarray(a[:n].transpose(0, 2, 1)))

    x, v, mask = ncp(d["features"]), ncp(d["fourvectors"]), ncp(d["mask"][..., None])
    y = torch.from_numpy(d["labels"][:n].astype(np.int64))
    return [tuple(t[i : i + batch] for t in (x, v, mask, y)) for i in range(0, n, batch)]


def _dist_version(name):
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return None


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--inputs", required=True, help=".npz of features, fourvectors, mask, labels")
    p.add_argument("--config", required=True, help="model configuration (JSON)")
    p.add_argument("--batch", type=int, default=512)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--model", choices=("eager", "compile"), default="eager")
    p.add_argument(
        "--flush-denormal",
        action="store_true",
        help="torch.set_flush_denormal(True), as TensorFlow does in its threads by default",
    )
    args = p.parse_args(argv)

    # answers go to the real stdout; anything else printed (weaver's logger) to stderr
    answers = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    sys.stdout = sys.stderr

    def answer(obj):
        answers.write(json.dumps(obj) + "\n")
        answers.flush()

    import torch

    logging.disable(logging.INFO)  # weaver logs its whole configuration at construction
    torch.set_num_threads(args.threads)
    flush = torch.set_flush_denormal(True) if args.flush_denormal else False
    torch.manual_seed(0)
    config = json.loads(args.config)
    batches = load_batches(args.inputs, args.batch)
    if args.model == "compile":
        model = build(config, compile_model=True)
        paths = {"compile": steppers(model, torch.compile(model), batches, config)}
    else:
        model = build(config)
        paths = {"eager": steppers(model, model, batches, config)}
    answer(
        dict(
            torch=torch.__version__,
            weaver=_dist_version("weaver-core"),
            threads=torch.get_num_threads(),
            flush_denormal=flush,
            parameters=sum(t.numel() for t in model.parameters() if t.requires_grad),
            bn_statistics=sum(
                t.numel()
                for k, t in model.named_buffers()
                if k.endswith(("running_mean", "running_var"))
            ),
        )
    )
    for line in sys.stdin:
        words = line.split()
        if not words or words[0] == "quit":
            break
        op, name, n = words[0], words[1], int(words[2])
        try:
            stepper = paths[name][op.removeprefix("warmup-")]
            res = dict(first_step_s=stepper.warm(n)) if op.startswith("warmup") else stepper.run(n)
        except Exception as err:  # report it; the harness drops this path
            res = dict(error=f"{type(err).__name__}: {err}".splitlines()[0][:300])
        answer(res)


if __name__ == "__main__":
    main()
