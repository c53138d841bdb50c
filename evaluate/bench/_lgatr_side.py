"""Timed sides of evaluate.bench.lgatr_reference_speed: lgatr's `LGATr` (PyTorch) and the loop.

The reference side runs in the benchmark environment (torch + lgatr 2.0.0), never in the
toolkit's: at module level this file imports the standard library only, so that the Keras side
(`_lgatr_keras_side.py`) can reuse `serve`. The harness starts it as a script
(`python -I evaluate/bench/_lgatr_side.py --inputs TOKENS.npz --config JSON ...`) and drives it
over stdin / stdout, one JSON line per answer (the protocol of `_weaver_side.py`):

    train NAME N | infer NAME N                      N timed steps of path NAME
    warmup-train NAME N | warmup-infer NAME N        N untimed steps
    quit

The model is `lgatr.nets.LGATr` with lgatr's default `PrimitivesConfig` (SO+(1,3), sparse
geometric product, dense linear maps) at the harness's configuration, fed the toolkit's tokens
(the output of `TopEventEmbedding`: multivectors (B, T, 1, 16), scalars (B, T, S + 2), a token
mask as lgatr's boolean `attn_mask` (B, 1, 1, T)). Training: Adam, mean squared error of the
grade-1 components of the global token's two output channels against the targets, one step per
batch; inference: `model.eval()` under `torch.no_grad()`.
"""

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _weaver_side import Stepper  # noqa: E402  (standard library only)


def serve(info, paths, answers):
    """Answer `info`, then the harness's commands on stdin until "quit" or EOF.

    paths: {name: {"train": Stepper, "infer": Stepper}}; answers: a text file (stdout).
    """

    def answer(obj):
        answers.write(json.dumps(obj) + "\n")
        answers.flush()

    answer(info)
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


def private_stdout():
    """The real stdout for answers; anything else printed goes to stderr."""
    answers = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return answers


def build_lgatr(config):
    """lgatr's `LGATr` at the harness's config dict (see lgatr_reference_speed.side_config)."""
    from lgatr.nets import LGATr

    return LGATr(
        num_blocks=config["num_blocks"],
        in_mv_channels=config["in_mv_channels"],
        out_mv_channels=config["out_mv_channels"],
        hidden_mv_channels=config["hidden_mv_channels"],
        in_s_channels=config["in_s_channels"],
        out_s_channels=config["out_s_channels"],
        hidden_s_channels=config["hidden_s_channels"],
        attention={"num_heads": config["num_heads"], "attn_ratio": config["attn_ratio"]},
        mlp={"mlp_ratio": config["mlp_ratio"]},
    )


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--inputs", required=True, help=".npz of mv, s, mask, targets")
    p.add_argument("--config", required=True, help="network configuration (JSON)")
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    answers = private_stdout()

    from importlib.metadata import version

    import numpy as np
    import torch

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    config = json.loads(args.config)
    model = build_lgatr(config)
    opt = torch.optim.Adam(model.parameters(), lr=config["learning_rate"])
    d = np.load(args.inputs)
    n = len(d["mask"]) // args.batch * args.batch
    batches = []
    for i in range(0, n, args.batch):
        sl = slice(i, i + args.batch)
        batches.append(
            (
                torch.from_numpy(d["mv"][sl]),
                torch.from_numpy(d["s"][sl]),
                torch.from_numpy(d["token_mask"][sl])[:, None, None, :],
                torch.from_numpy(d["targets"][sl]),
            )
        )

    def train_step(mv, s, mask, y):
        model.train()
        opt.zero_grad()
        out_mv, _ = model(mv, s, attn_mask=mask)
        loss = torch.mean((out_mv[:, 0, :2, 1:5] - y) ** 2)
        loss.backward()
        opt.step()
        return loss.item()

    def infer_step(mv, s, mask, y):
        model.eval()
        with torch.no_grad():
            return model(mv, s, attn_mask=mask)[0].numpy()

    info = dict(
        torch=torch.__version__,
        lgatr=version("lgatr"),
        threads=torch.get_num_threads(),
        parameters=sum(t.numel() for t in model.parameters() if t.requires_grad),
    )
    paths = {"lgatr": dict(train=Stepper(train_step, batches), infer=Stepper(infer_step, batches))}
    serve(info, paths, answers)


if __name__ == "__main__":
    main()
