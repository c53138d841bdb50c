"""PCGrad (Yu et al. 2020, arXiv:2001.06782) and a functional Keras model that trains with it.

`pcgrad` merges per-task gradients with `keras.ops` only (reference note section 3.3).
`PCGradModel` is a `keras.Model` subclass built like a functional model,

    model = PCGradModel(inputs=..., outputs={"tau_id": ..., ...}, pcgrad=True)
    model.compile(optimizer=..., loss=task_losses(), loss_weights=TASK_WEIGHTS, ...)

whose `train_step` takes one gradient per compiled output loss, merges them with
PCGrad (the `protected_task`, kinematics in ParTau, is never projected), clips the merged
gradient to `clip_norm` and applies it. Logs are the standard ones (`loss`, `<output>_loss`,
compiled metrics); evaluation and prediction are the standard Keras steps.

The per-task gradients need the backend's autodiff, so the training step has one short path per
backend (TensorFlow: a persistent GradientTape; JAX: one `jax.vjp` of the stateless forward pass
pulled back once per task; PyTorch: `torch.autograd.grad` per task on one graph). This module is
the only place in `models/` that imports a backend, and only inside those steps.

Data-parallel training (models/distribute.py) merges the gradients of the global batch, as one
device would: under `keras.distribution.DataParallel` the JAX step is jitted as one global
computation; under `tf.distribute.MirroredStrategy` the TensorFlow step sums each task's
gradients over the replicas (each replica's loss is already its 1/replicas share) before the
merge. There a replica's tau-only losses are means over its own taus (as in Keras' own step),
so the replicas average them rather than take the mean over the global batch's taus.
"""

import warnings

import keras
from keras import ops


def _dot(a, b):
    """Sum over the variables of sum(a_k * b_k), in float32; None entries count as zero."""
    total = ops.zeros((), "float32")
    for x, y in zip(a, b):
        if x is not None and y is not None:
            total = total + ops.sum(ops.cast(x, "float32") * ops.cast(y, "float32"))
    return total


def _vdot(x, y):
    if x is None or y is None:
        return ops.zeros((), "float32")
    return ops.sum(ops.cast(x, "float32") * ops.cast(y, "float32"))


def pcgrad(task_grads, protect=None, per_variable=False, eps=1e-12, order=None):
    """Project conflicting task gradients (PCGrad) and sum them.

    For each task i that is not protected, and each other task j (in `order`), when
    g_i . g_j < 0: g_i <- g_i - (g_i . g_j / (|g_j|^2 + eps)) g_j, always with the ORIGINAL g_j
    and the current (already projected) g_i. The result is sum_i g_i per variable.

    Args:
        task_grads: list over T tasks of lists over K variables of tensors (None = zero).
        protect: index (or collection of indices) of tasks that are never projected
            (ParTau: the kinematics task). None protects nothing.
        per_variable: compute the dot products per variable tensor (ML-Tau) instead of over
            the flattened vector of all variables (the paper).
        eps: guard in the denominator; a task with an all-zero gradient (a batch without
            taus for a tau-only task) then projects nothing and gives no NaN.
        order: the order (task indices) in which the other tasks are projected out;
            default 0..T-1. Pass a shuffled order to reproduce the paper's random order.
    Returns:
        list over K variables of the merged gradients (None where every task has None).
    """
    n_tasks = len(task_grads)
    if n_tasks == 0:
        return []
    n_vars = len(task_grads[0])
    if any(len(g) != n_vars for g in task_grads):
        raise ValueError("every task needs one gradient per variable")
    if protect is None:
        protected = set()
    elif isinstance(protect, int):
        protected = {protect}
    else:
        protected = set(protect)
    order = list(range(n_tasks)) if order is None else list(order)

    # Squared norms of the original gradients, global (scalar) or per variable (list).
    if per_variable:
        norms = [[_vdot(g, g) for g in task] for task in task_grads]
    else:
        norms = [_dot(task, task) for task in task_grads]

    merged = [None] * n_vars
    for i in range(n_tasks):
        g_i = list(task_grads[i])
        if i not in protected:
            for j in order:
                if j == i:
                    continue
                g_j = task_grads[j]
                if per_variable:
                    for k in range(n_vars):
                        if g_i[k] is None or g_j[k] is None:
                            continue
                        c = ops.minimum(_vdot(g_i[k], g_j[k]), 0.0) / (norms[j][k] + eps)
                        g_i[k] = g_i[k] - ops.cast(c, g_i[k].dtype) * g_j[k]
                else:
                    c = ops.minimum(_dot(g_i, g_j), 0.0) / (norms[j] + eps)
                    g_i = [
                        g if g is None or h is None else g - ops.cast(c, g.dtype) * h
                        for g, h in zip(g_i, g_j)
                    ]
        for k in range(n_vars):
            if g_i[k] is not None:
                merged[k] = g_i[k] if merged[k] is None else merged[k] + g_i[k]
    return merged


def clip_by_global_norm(grads, clip_norm):
    """Scale `grads` so that their global norm is at most `clip_norm` (torch clip_grad_norm_).

    Args:
        grads: list of tensors (None kept).
        clip_norm: scalar (float or tensor) > 0.
    Returns:
        the clipped list.
    """
    sq = _dot(grads, grads)
    norm = ops.sqrt(sq)
    clip_norm = ops.cast(clip_norm, "float32")
    factor = clip_norm / ops.maximum(norm, clip_norm)
    return [None if g is None else g * ops.cast(factor, g.dtype) for g in grads]


PCGRAD_BACKENDS = ("tensorflow", "jax", "torch")


def _require_pcgrad_backend():
    backend = keras.backend.backend()
    if backend not in PCGRAD_BACKENDS:
        raise RuntimeError(
            f"PCGrad needs the TensorFlow, JAX or PyTorch backend, not {backend}; train with "
            "--no-pcgrad (or build the model with pcgrad=False)"
        )


def _by_name(struct, names):
    """A dict output name -> value from a dict, a list/tuple ordered like `names`, or a single
    value (single output)."""
    if isinstance(struct, dict):
        return struct
    if isinstance(struct, (list, tuple)):
        return dict(zip(names, struct))
    return {names[0]: struct}


def _resolve_loss(name, identifier):
    loss = keras.losses.get(identifier)
    if loss is None:
        return None
    if not isinstance(loss, keras.losses.Loss):
        loss = keras.losses.LossFunctionWrapper(loss, name=f"{name}_loss")
    return loss


@keras.saving.register_keras_serializable(package="hepformers")
class PCGradModel(keras.Model):
    """A functional multi-task model whose training step merges task gradients with PCGrad.

    Build it like a functional model and compile it with one loss per output, as a dict (or
    a list ordered like `output_names`) with optional `loss_weights` of the same shape; each
    compiled output loss, times its weight, is one task. Sample weights (a shared array or a
    dict per output) multiply every task loss, exactly as in the standard Keras step.

    Args:
        *args, **kwargs: functional-model arguments (`inputs`, `outputs`, `name`, ...).
        pcgrad: merge the task gradients with PCGrad (TensorFlow, JAX or PyTorch). False trains
            with the standard Keras `train_step` (clip there with the optimizer's clipnorm).
        protected_task: the output whose gradient is never projected (None: none). An output
            without a compiled loss is ignored.
        per_variable: PCGrad dot products per variable tensor (ML-Tau) or global (paper).
        clip_norm: global-norm clip of the merged gradient (None or 0: no clipping).
    """

    def __init__(
        self,
        *args,
        pcgrad=True,
        protected_task="kinematics",
        per_variable=False,
        clip_norm=1.0,
        **kwargs,
    ):
        super().__init__(*args, **kwargs)
        self.pcgrad = bool(pcgrad)
        self.protected_task = protected_task
        self.per_variable = bool(per_variable)
        self.clip_norm = clip_norm
        self._task_losses = None  # list of (output name, Loss, weight), set by compile()

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "pcgrad": self.pcgrad,
                "protected_task": self.protected_task,
                "per_variable": self.per_variable,
                "clip_norm": self.clip_norm,
            }
        )
        return config

    # ------------------------------------------------------------ compile

    def compile(self, optimizer="rmsprop", loss=None, loss_weights=None, **kwargs):
        """`keras.Model.compile`; also keeps the per-output losses and weights for PCGrad."""
        super().compile(optimizer=optimizer, loss=loss, loss_weights=loss_weights, **kwargs)
        self._task_losses = self._parse_task_losses(loss, loss_weights)

    def compile_from_config(self, config):
        # Keras skips compile() on load when it is overridden; the config is the standard one.
        config = keras.saving.deserialize_keras_object(config)
        self.compile(**config)
        if getattr(self, "optimizer", None) is not None and self.built:
            self.optimizer.build(self.trainable_variables)

    def _output_keys(self):
        """Keys of a dict-output model (its `y_pred` dict), else `output_names`."""
        output = self.output
        return list(output) if isinstance(output, dict) else list(self.output_names)

    def _parse_task_losses(self, loss, loss_weights):
        if loss is None:
            return None
        names = self._output_keys()
        if isinstance(loss, (list, tuple)) and len(loss) == len(names):
            loss = dict(zip(names, loss))
        if isinstance(loss_weights, (list, tuple)) and len(loss_weights) == len(names):
            loss_weights = dict(zip(names, loss_weights))
        if not isinstance(loss, dict):
            if not self.pcgrad:
                return None
            raise ValueError(
                "PCGradModel with pcgrad=True needs one loss per task: pass `loss` as a dict "
                f"keyed by output name ({names})"
            )
        unknown = [k for k in loss if k not in names]
        if unknown:
            raise ValueError(f"loss keys {unknown} are not model outputs {names}")
        if loss_weights is not None and not isinstance(loss_weights, dict):
            raise ValueError("with a dict `loss`, `loss_weights` must be a dict or None")
        tasks = []
        for name in names:  # the model's output order (dict outputs: their key order)
            if loss.get(name) is None:
                continue
            weight = 1.0 if loss_weights is None else loss_weights.get(name, 1.0)
            tasks.append((name, _resolve_loss(name, loss[name]), weight))
        return tuple(tasks)

    # ------------------------------------------------------------ training

    def fit(self, *args, **kwargs):
        if self.pcgrad:
            _require_pcgrad_backend()
        return super().fit(*args, **kwargs)

    def train_step(self, *args, **kwargs):
        if not self.pcgrad:
            return super().train_step(*args, **kwargs)
        _require_pcgrad_backend()
        backend = keras.backend.backend()
        if backend == "jax":
            return self._pcgrad_train_step_jax(*args, **kwargs)
        if backend == "torch":
            return self._pcgrad_train_step_torch(*args, **kwargs)
        return self._pcgrad_train_step(*args, **kwargs)

    def task_loss_values(self, y, y_pred, sample_weight=None):
        """The compiled per-task losses of a batch.

        Args:
            y, y_pred: dicts (or lists ordered like `output_names`) of targets and outputs.
            sample_weight: None, a (B,) array shared by every task, or a dict per output.
        Returns:
            list of (name, unweighted loss, weighted loss) scalars, in output order.
        """
        if not self._task_losses:
            raise ValueError(
                "PCGradModel needs compiled losses: compile(loss={output: loss, ...}, ...)"
            )
        names = self._output_keys()
        y = _by_name(y, names)
        y_pred = _by_name(y_pred, names)
        if isinstance(sample_weight, (dict, list, tuple)):
            sample_weight = _by_name(sample_weight, names)
        out = []
        for name, loss_fn, weight in self._task_losses:
            sw = sample_weight.get(name) if isinstance(sample_weight, dict) else sample_weight
            value = ops.cast(loss_fn(y[name], y_pred[name], sw), "float32")
            out.append((name, value, value * weight))
        return out

    @staticmethod
    def _gradient(tape, loss, variables):
        """tape.gradient with zeros for unconnected variables (a task that does not reach a
        head). tf's unconnected_gradients="zero" needs tf dtypes, so fill them here."""
        grads = tape.gradient(loss, variables)
        return [ops.zeros(v.shape, v.dtype) if g is None else g for g, v in zip(grads, variables)]

    def _pcgrad_train_step(self, data):
        import tensorflow as tf

        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        variables = self.trainable_variables
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        with tf.GradientTape(persistent=True) as tape:
            y_pred = self(x, training=True)
            terms = self.task_loss_values(y, y_pred, sample_weight)
            extra = [ops.sum(ops.cast(v, "float32")) for v in self.losses]  # regularisers
            extra = ops.sum(ops.stack(extra)) if extra else None
            scaled = [self.optimizer.scale_loss(w) for _, _, w in terms]
            scaled_extra = None if extra is None else self.optimizer.scale_loss(extra)

        if variables:
            grads = [self._gradient(tape, s, variables) for s in scaled]
            if replicas > 1:
                # A replica's losses are its share of the global batch's mean (Keras divides
                # them by the replica count): their sum over replicas is the global gradient,
                # which PCGrad merges (the same on every replica) as on one device.
                context = tf.distribute.get_replica_context()
                grads = [context.all_reduce("sum", g) for g in grads]
            names = [name for name, _, _ in terms]
            protect = names.index(self.protected_task) if self.protected_task in names else None
            merged = pcgrad(grads, protect=protect, per_variable=self.per_variable)
            if scaled_extra is not None:  # regularisation: added, never projected
                reg = self._gradient(tape, scaled_extra, variables)
                merged = [g + r for g, r in zip(merged, reg)]
            if self.clip_norm:
                # Gradients are loss-scaled (mixed precision); clipping is homogeneous, so clip
                # the scaled ones to clip_norm * scale.
                scale = self.optimizer.scale_loss(ops.ones((), "float32"))
                merged = clip_by_global_norm(merged, self.clip_norm * scale)
            if replicas > 1:  # the optimizer sums the replicas' gradients once more
                merged = [g / replicas for g in merged]
            self.optimizer.apply_gradients(zip(merged, variables))
        else:
            warnings.warn("The model does not have any trainable weights.", stacklevel=2)
        del tape

        # Logs as the standard step. The compiled loss (outside the tape: no gradient) updates
        # the per-output loss trackers (`<output>_loss`, unweighted) and returns the total
        # (weighted sum plus regularisers) for the `loss` tracker; then the compiled metrics.
        total = self.compute_loss(x=x, y=y, y_pred=y_pred, sample_weight=sample_weight)
        batch = tf.shape(next(v for v in keras.tree.flatten(x) if v is not None))[0]
        loss_tracker = next(m for m in self.metrics if m.name == "loss")
        loss_tracker.update_state(total * replicas, sample_weight=batch)
        return self.compute_metrics(x, y, y_pred, sample_weight=sample_weight)

    # ------------------------------------------------------------ shared by the steps

    def _merge(self, names, task_grads, extra_grads, variables):
        """PCGrad-merge per-task gradients, add the (never projected) regulariser gradients
        and clip; all lists are ordered like `variables`."""
        protect = names.index(self.protected_task) if self.protected_task in names else None
        merged = pcgrad(task_grads, protect=protect, per_variable=self.per_variable)
        merged = [
            ops.zeros(v.shape, v.dtype) if g is None else g for g, v in zip(merged, variables)
        ]
        if extra_grads is not None:
            merged = [g + r for g, r in zip(merged, extra_grads)]
        if self.clip_norm:
            # Gradients are loss-scaled (mixed precision); clipping is homogeneous, so clip
            # the scaled ones to clip_norm * scale.
            scale = self.optimizer.scale_loss(ops.ones((), "float32"))
            merged = clip_by_global_norm(merged, self.clip_norm * scale)
        return merged

    def _loss_tracker_metric(self):
        tracker = getattr(self, "_loss_tracker", None)
        return tracker if tracker is not None else next(m for m in self.metrics if m.name == "loss")

    @staticmethod
    def _batch_size(x):
        return ops.shape(next(v for v in keras.tree.flatten(x) if v is not None))[0]

    def _scaled_terms(self, y, y_pred, sample_weight, losses):
        """(names, [scaled weighted task losses] + [scaled regularisation or 0])."""
        terms = self.task_loss_values(y, y_pred, sample_weight)
        extra = [ops.sum(ops.cast(v, "float32")) for v in losses]
        extra = ops.sum(ops.stack(extra)) if extra else ops.zeros((), "float32")
        scaled = [self.optimizer.scale_loss(w) for _, _, w in terms]
        return [name for name, _, _ in terms], scaled + [self.optimizer.scale_loss(extra)]

    # ------------------------------------------------------------ JAX

    def _pcgrad_train_step_jax(self, state, data):
        """The JAX step: stateless, `(state, data) -> (logs, state)` like keras' own."""
        import jax
        import jax.numpy as jnp

        trainable, non_trainable, optimizer_vars, metrics_vars = state
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        opt_mapping = list(zip(self.optimizer.variables, optimizer_vars))
        names = []

        def forward(trainable_values):
            y_pred, new_non_trainable, losses = self.stateless_call(
                trainable_values, non_trainable, x, return_losses=True, training=True
            )
            with keras.StatelessScope(state_mapping=opt_mapping):
                task_names, scaled = self._scaled_terms(y, y_pred, sample_weight, losses)
            names[:] = task_names
            return jnp.stack(scaled), (y_pred, new_non_trainable, losses)

        values, pullback, (y_pred, non_trainable, losses) = jax.vjp(
            forward, trainable, has_aux=True
        )
        n = values.shape[0]
        grads = [list(pullback(jnp.eye(n, dtype=values.dtype)[i])[0]) for i in range(n)]
        with keras.StatelessScope(state_mapping=opt_mapping):
            extra = grads[-1] if losses else None
            merged = self._merge(names, grads[:-1], extra, self.trainable_variables)
        trainable_new, optimizer_vars = self.optimizer.stateless_apply(
            optimizer_vars, merged, trainable
        )

        # Logs as the standard step: the compiled loss of this batch (before the update)
        # updates the per-output loss trackers, then the total tracker and the metrics.
        if losses:  # the forward pass's regularisers, for compute_loss (as keras' step)
            self._losses_override.clear()
            self._losses_override = losses
        total, (_, _, metrics_vars) = self.stateless_compute_loss(
            trainable,
            non_trainable,
            metrics_vars,
            x=x,
            y=y,
            y_pred=y_pred,
            sample_weight=sample_weight,
            training=True,
        )
        if losses:
            self._losses_override.clear()
        mapping = list(zip(self.metrics_variables, metrics_vars))
        with keras.StatelessScope(state_mapping=mapping) as scope:
            self._loss_tracker_metric().update_state(total, sample_weight=self._batch_size(x))
            logs = self.compute_metrics(x, y, y_pred, sample_weight)
        metrics_vars = [
            v if scope.get_current_value(ref) is None else scope.get_current_value(ref)
            for ref, v in mapping
        ]
        return logs, (trainable_new, non_trainable, optimizer_vars, metrics_vars)

    # ------------------------------------------------------------ PyTorch

    def _pcgrad_train_step_torch(self, data):
        import torch

        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        y_pred = self(x, training=True)
        self.zero_grad()
        names, scaled = self._scaled_terms(y, y_pred, sample_weight, self.losses)
        variables = self.trainable_variables
        if variables:
            params = [v.value for v in variables]

            def grad(loss):
                if not loss.requires_grad:  # e.g. no regulariser: a constant zero
                    return [torch.zeros_like(p) for p in params]
                g = torch.autograd.grad(loss, params, retain_graph=True, allow_unused=True)
                return [torch.zeros_like(p) if gi is None else gi for gi, p in zip(g, params)]

            grads = [grad(s) for s in scaled]
            extra = grads[-1] if self.losses else None
            with torch.no_grad():
                merged = self._merge(names, grads[:-1], extra, variables)
                self.optimizer.apply(merged, variables)
        else:
            warnings.warn("The model does not have any trainable weights.", stacklevel=2)
        with torch.no_grad():
            y_pred = keras.tree.map_structure(lambda t: t.detach(), y_pred)
            total = self.compute_loss(x=x, y=y, y_pred=y_pred, sample_weight=sample_weight)
            self._loss_tracker_metric().update_state(total, sample_weight=self._batch_size(x))
        return self.compute_metrics(x, y, y_pred, sample_weight=sample_weight)
