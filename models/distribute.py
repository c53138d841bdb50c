"""Data-parallel training for the fit CLIs: `--distribution data-parallel`.

    # one process, all local devices (JAX: every CPU/GPU device; TensorFlow: MirroredStrategy)
    KERAS_BACKEND=jax python -m models.tpmt.fit --distribution data-parallel ...
    # several processes (one per host, or several on one host), JAX only:
    KERAS_BACKEND=jax python -m models.tpmt.fit --distribution data-parallel \\
        --job-addresses host0:1234 --num-processes 2 --process-id 0 ...   # and 1 on the other

The engines are Keras' own. On JAX, `keras.distribution.DataParallel` replicates the weights
over every device of every process and splits each global batch along the batch axis; across
processes `keras.distribution.initialize` starts JAX's distributed runtime (on CPU with gloo
collectives), and each process feeds its own per-process batch (`--batch-size` is per process:
the global batch is num_processes times larger), read from its own shard of the training
chunks. On TensorFlow, `tf.distribute.MirroredStrategy` serves one host with several GPUs
(MultiWorkerMirroredStrategy does not work with Keras 3's `fit`, keras-team/keras#20585).

Every process must run the same number of steps with batches of one size, so a distributed
run drops each epoch's last partial batch and trains on the number of full batches that the
smallest shard has; the validation events of every process are cut to the same count as well.
The model's input standardisation comes from the first chunks of the full file list, read by
every process, so all processes build the same graph; ParTau's jet weights are learnt from the
training jets of every process (`Plan.gather`), as in one process. ParTau's PCGrad step merges
the task gradients of the whole global batch: on JAX the step is one global (jitted)
computation; on TensorFlow it all-reduces each task's gradients over the replicas first
(models/partau/pcgrad.py). Process 0 writes the run folder; process k > 0 writes its own into
`<out>/process-<k>`.
"""

import contextlib
import os
from dataclasses import dataclass, field

from data.errors import UserError

MODES = ("none", "data-parallel")


def add_arguments(parser):
    g = parser.add_argument_group("distributed training (models/distribute.py)")
    g.add_argument(
        "--distribution",
        default="none",
        choices=MODES,
        help="data-parallel: keras.distribution.DataParallel (JAX) over all devices and "
        "processes, or MirroredStrategy (TensorFlow, one host); default none",
    )
    g.add_argument(
        "--job-addresses",
        default=None,
        help="JAX multi-process: the coordinator's host:port (process 0), or every process's "
        "address comma-separated",
    )
    g.add_argument("--num-processes", type=int, default=1, help="JAX multi-process: how many")
    g.add_argument("--process-id", type=int, default=0, help="JAX multi-process: this one's rank")


def check_args(args):
    """Checks that need no backend (run before any work)."""
    n, pid = args.num_processes, args.process_id
    if n < 1 or not 0 <= pid < n:
        raise UserError(f"--process-id must be in [0, --num-processes), got {pid} of {n}")
    if n > 1 and args.distribution != "data-parallel":
        raise UserError("--num-processes > 1 needs --distribution data-parallel")
    if n > 1 and not args.job_addresses:
        raise UserError("--num-processes > 1 needs --job-addresses HOST:PORT (the coordinator)")
    if args.distribution == "data-parallel":
        backend = os.environ.get("KERAS_BACKEND", "tensorflow")
        if backend not in ("jax", "tensorflow"):
            raise UserError(
                f"--distribution data-parallel needs the JAX or TensorFlow backend, not {backend}"
            )
        if n > 1 and backend != "jax":
            raise UserError(
                "multi-process training needs KERAS_BACKEND=jax (TensorFlow's "
                "MultiWorkerMirroredStrategy does not work with Keras 3 fit)"
            )


def check_fit_args(args, model):
    """`check_args`, then the fit's run folder (`data.checks.fit_out_dir`): process 0 checks
    and claims it, the others write below it; a multi-process run needs an explicit --out."""
    from data import checks

    check_args(args)
    if args.num_processes > 1 and args.out is None:
        raise UserError("a multi-process run needs --out (the same in every process)")
    if args.process_id == 0:
        args.out = checks.fit_out_dir(args.out, model, args.overwrite)


@dataclass
class Plan:
    """Where this process stands in a (possibly) distributed run."""

    process_id: int = 0
    num_processes: int = 1
    devices: int = 1
    strategy: object = field(default=None, repr=False)  # TensorFlow MirroredStrategy

    @property
    def distributed(self):
        return self.devices > 1 or self.num_processes > 1

    def scope(self):
        """Context in which the model is built, compiled and trained."""
        return self.strategy.scope() if self.strategy is not None else contextlib.nullcontext()

    def shard(self, chunks):
        """This process's share of the training chunks (every num_processes-th)."""
        if self.num_processes == 1:
            return list(chunks)
        if len(chunks) < self.num_processes:
            raise UserError(
                f"{len(chunks)} training chunks for {self.num_processes} processes: use a "
                "smaller --chunk-events or more files"
            )
        return list(chunks)[self.process_id :: self.num_processes]

    def agree_min(self, value):
        """The smallest `value` over all processes (every process must call it)."""
        if self.num_processes == 1:
            return int(value)
        import numpy as np
        from jax.experimental import multihost_utils

        return int(np.min(multihost_utils.process_allgather(np.int64(value))))

    def gather(self, values):
        """`values` (a NumPy array) of every process, concatenated in process order (every
        process must call it): e.g. what weights are learnt from, so that all processes learn
        the same ones from all the training events."""
        if self.num_processes == 1:
            return values
        import numpy as np
        from jax.experimental import multihost_utils

        values = np.ascontiguousarray(values)
        n = multihost_utils.process_allgather(np.int32(len(values)))
        # sent as bytes: JAX (without x64) would turn float64 into float32
        rows = values.reshape(len(values), -1).view(np.uint8)
        rows = np.concatenate([rows, np.zeros((int(n.max()) - len(rows), rows.shape[1]), "u1")])
        every = multihost_utils.process_allgather(rows)
        parts = [every[k, : n[k]].view(values.dtype) for k in range(len(n))]
        return np.concatenate(parts).reshape(-1, *values.shape[1:])

    def scan(self, chunks, load_chunk, *, seed, val_fraction=0.2, subset_events=50_000, **kw):
        """`data.stream.scan` of this process's shard of `chunks`; in a multi-process run the
        statistics subset comes from the first chunks of the whole list instead, so that every
        process standardises alike (and builds the same graph)."""
        from data import stream

        scan = stream.scan(
            self.shard(chunks),
            load_chunk,
            seed=seed,
            val_fraction=val_fraction,
            subset_events=subset_events,
            **kw,
        )
        if self.num_processes > 1:
            common, n = [], 0
            for chunk in chunks:  # the first chunks that hold subset_events events
                common.append(chunk)
                n += chunk.stop - chunk.start
                if n >= subset_events:
                    break
            first = stream.scan(
                common,
                load_chunk,
                seed=seed,
                val_fraction=0.0,
                subset_events=subset_events,
                progress=False,
            )
            scan.subset = first.subset
        return scan

    def finish(self, train, val, batch_size):
        """Equal steps for every process: full batches only, as many as the smallest shard
        has, and the validation events cut to the same whole number of batches. Returns the
        validation data."""
        if not self.distributed:
            return val
        if self.num_processes == 1 and batch_size % self.devices:
            raise UserError(f"--batch-size {batch_size} does not split over {self.devices} devices")
        train.drop_last = True
        train.max_batches = self.agree_min(len(train))
        from data import stream

        n = self.agree_min(stream.length(val)) // batch_size * batch_size
        if n == 0:
            raise UserError(
                f"fewer than --batch-size {batch_size} validation events in a process's shard"
            )
        return stream.take(val, slice(0, n))

    def fit_options(self, out):
        """`models.training.fit` options of this process: no physics monitor in a distributed
        run, and TensorBoard runs of processes k > 0 under their own folder."""
        log_root = "runs" if self.process_id == 0 else os.path.join(self.out_dir(out), "runs")
        return {"distributed": self.distributed, "log_root": log_root}

    def out_dir(self, out):
        """Process 0 writes `out`; the others `out/process-<k>`."""
        return out if self.process_id == 0 else os.path.join(out, f"process-{self.process_id}")


def setup(args):
    """Start the distribution that `args` asks for; call before any model is built."""
    if args.distribution == "none":
        return Plan()
    import keras

    backend = keras.backend.backend()
    if backend == "jax":
        if args.num_processes > 1:
            import jax

            # CPU processes exchange gradients through gloo (no-op for GPU/TPU collectives)
            jax.config.update("jax_cpu_collectives_implementation", "gloo")
            keras.distribution.initialize(args.job_addresses, args.num_processes, args.process_id)
        devices = keras.distribution.list_devices()
        # each process feeds its own batches: Keras must not shard a dataset itself
        keras.distribution.set_distribution(
            keras.distribution.DataParallel(devices=devices, auto_shard_dataset=False)
        )
        return Plan(args.process_id, args.num_processes, len(devices))
    import tensorflow as tf

    strategy = tf.distribute.MirroredStrategy()
    return Plan(devices=strategy.num_replicas_in_sync, strategy=strategy)
