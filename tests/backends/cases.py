"""Tiny models, their fit.py compile step and valid random batches, for the backend parity suite.

Every case is `make(seed) -> (model, x, y, sample_weight)`: a compiled model (compiled as its
`fit.py` does) and a batch of `N_EVENTS` events with padded masks. `saved_inputs(name, seed)`
gives valid inputs for the shipped `saved_models/` files (same builders, the files' shapes).
No module here imports a backend: the suite runs on whatever KERAS_BACKEND the process has.
"""

import keras
import numpy as np

N_EVENTS = 8  # two training steps of 4


# ---------------------------------------------------------------- inputs (numpy, any backend)


def tpmt_inputs(rng, n, c):
    x = {
        "legs": rng.normal(size=(n, 2, c.n_leg_features)).astype("float32"),
        "products": rng.normal(size=(n, c.n_products, c.n_product_features)).astype("float32"),
        "product_mask": rng.random((n, c.n_products)) > 0.4,
        "jets": rng.normal(size=(n, c.n_jets, c.n_jet_features)).astype("float32"),
        "jet_mask": rng.random((n, c.n_jets)) > 0.5,
        "met": rng.normal(size=(n, c.n_met_features)).astype("float32"),
        # (eta, phi, visible mass) of the visible legs
        "leg_kinematics": np.stack(
            [
                rng.uniform(-2, 2, (n, 2)),
                rng.uniform(-np.pi, np.pi, (n, 2)),
                rng.uniform(0.1, 1.5, (n, 2)),
            ],
            -1,
        ).astype("float32"),
    }
    x["legs"][..., 0] = np.log(rng.uniform(20, 80, size=(n, 2)))
    x["product_mask"][:, 0] = True
    return x


def lgatr_inputs(rng, n, n_objects, n_scalar):
    p3 = rng.normal(scale=50.0, size=(n, n_objects, 3))
    m = rng.uniform(0.0, 10.0, size=(n, n_objects, 1))
    p = np.concatenate([p3, np.sqrt(m**2 + (p3**2).sum(-1, keepdims=True))], -1)
    p[:, 4, 2] = 0.0  # MET: (px, py, 0, |pT|)
    p[:, 4, 3] = np.hypot(p[:, 4, 0], p[:, 4, 1])
    scalars = np.zeros((n, n_objects, n_scalar), "float32")
    types = [0, 1, 2, 3, 4] + [5] * (n_objects - 5)
    scalars[:, np.arange(n_objects), types] = 1.0
    mask = np.ones((n, n_objects), "float32")
    for i, k in enumerate(rng.integers(2, n_objects - 5 + 1, n)):
        mask[i, 5 + k :] = 0.0
    p[mask == 0] = 0.0
    scalars[mask == 0] = 0.0
    return {"fourvectors": p.astype("float32"), "scalars": scalars, "mask": mask}


def met_inputs(rng, n, max_cands, n_feat, max_real=40):
    cands = np.zeros((n, max_cands, n_feat), np.float32)
    mask = np.zeros((n, max_cands), bool)
    for i, k in enumerate(rng.integers(5, min(max_real, max_cands), n)):
        cands[i, :k, :2] = rng.normal(0, 5, (k, 2))
        cands[i, :k, 2] = rng.uniform(-4, 4, k)
        cands[i, :k, 4] = rng.random(k) < 0.4
        cands[i, :k, 3] = cands[i, :k, 4] * (rng.random(k) < 0.5)
        cands[i, :k, 5:] = rng.random((k, n_feat - 5)) < 0.5
        mask[i, :k] = True
    return {"cands": cands, "mask": mask}


def partau_inputs(rng, n, max_cands=20, n_feat=17):
    real = rng.integers(1, max_cands + 1, n)
    mask = np.arange(max_cands)[None] < real[:, None]
    fv = np.abs(rng.normal(size=(n, max_cands, 4))) + 0.1
    fv[..., 3] = np.linalg.norm(fv[..., :3], axis=-1) + 0.2
    return {
        "features": (rng.normal(size=(n, max_cands, n_feat)) * mask[..., None]).astype("float32"),
        "fourvectors": (fv * mask[..., None]).astype("float32"),
        "mask": mask.astype("float32"),
    }


def scouttau_inputs(rng, n, max_constituents=16, n_feat=14):
    x = np.zeros((n, max_constituents, n_feat), np.float32)
    mask = np.zeros((n, max_constituents), bool)
    for i, k in enumerate(rng.integers(1, max_constituents + 1, n)):
        x[i, :k] = rng.normal(size=(k, n_feat))
        mask[i, :k] = True
    return {"constituents": x, "mask": mask}


def saved_inputs(name, seed=0, n=4):
    """Valid inputs for the shipped model `saved_models/<model>/<name>.keras`."""
    rng = np.random.default_rng(seed)
    if name.startswith("tpmt"):  # the flat, calibrated, resonant, no-products, parametric models
        from models.tpmt.config import get_config

        x = tpmt_inputs(rng, n, get_config("cpu"))
        if "parametric" in name:
            x["mass_hypothesis"] = rng.uniform(30, 300, (n, 1)).astype("float32")
        return x
    if name.split("_")[0] in ("lgatr", "plain"):  # calibrated and uncalibrated
        from data.lgatr import SCALAR_FEATURES

        return lgatr_inputs(rng, n, 12, len(SCALAR_FEATURES))
    if name in ("metperceiver", "deepmet"):
        return met_inputs(rng, n, 12_288, 5 if name == "metperceiver" else 9, max_real=300)
    if name.startswith("partau"):
        return partau_inputs(rng, n)
    if name in ("scouttau", "scouttau_pf"):
        return scouttau_inputs(rng, n)
    if name == "nnpuppitau":
        return {"inputs": rng.normal(size=(n, 80)).astype("float32")}
    raise KeyError(name)


# ---------------------------------------------------------------- cases


def tpmt(seed, parametric=False):
    from models.tpmt.config import get_config
    from models.tpmt.model import build_model, compile_model

    c = get_config("cpu", d_model=16, num_heads=2, key_dim=8, ff_dim=16, head_dim=8)
    if parametric:
        c = get_config("cpu", d_model=16, num_heads=2, key_dim=8, ff_dim=16, parametric=True)
    rng = np.random.default_rng(seed)
    model = compile_model(build_model(c), c)
    x = tpmt_inputs(rng, N_EVENTS, c)
    if parametric:
        x["mass_hypothesis"] = rng.uniform(50, 300, (N_EVENTS, 1)).astype("float32")
    y = rng.uniform(20, 120, (N_EVENTS, 3)).astype("float32")
    return model, x, y, None


def tpmt_parametric(seed):
    return tpmt(seed, parametric=True)


def _lgatr(seed, plain):
    from models.lgatr import build_model, build_plain_transformer, get_config
    from models.lgatr.fit import compile_model

    c = get_config("default", num_blocks=1, hidden_mv_channels=4, hidden_s_channels=8, plain_dim=8)
    model = compile_model((build_plain_transformer if plain else build_model)(c), c)
    rng = np.random.default_rng(seed)
    x = lgatr_inputs(rng, N_EVENTS, c.n_objects, c.n_scalar)
    y = {"tops": lgatr_inputs(rng, N_EVENTS, c.n_objects, c.n_scalar)["fourvectors"][:, :2]}
    return model, x, y, None


def lgatr(seed):
    return _lgatr(seed, plain=False)


def lgatr_plain(seed):
    return _lgatr(seed, plain=True)


def _met(seed, variant, **overrides):
    from models.metperceiver.config import get_config
    from models.metperceiver.fit import compile_model
    from models.metperceiver.model import build_model

    c = get_config("tiny", max_cands=32, variant=variant, **overrides)
    model = compile_model(build_model(c), c)
    rng = np.random.default_rng(seed)
    x = met_inputs(rng, N_EVENTS, c.max_cands, 5 if variant == "perceiver" else 9)
    met = rng.normal(0, 30, (N_EVENTS, 2)).astype("float32")
    y = {"v": rng.normal(0, 0.3, (N_EVENTS, 2)).astype("float32"), "met": met}
    if variant != "perceiver":
        y = {"met": met}
    if c.hs_weight:  # the truth term's (flag, pT) per candidate
        pt = np.hypot(x["cands"][..., 0], x["cands"][..., 1]) * x["mask"]
        flag = (rng.random(pt.shape) < 0.3).astype("float32")
        y["weights"] = np.stack([flag, pt.astype("float32")], axis=-1)
    return model, x, y, rng.uniform(0.5, 2.0, N_EVENTS).astype("float32")


def metperceiver(seed):
    return _met(seed, "perceiver")


def metperceiver_pool(seed):
    return _met(seed, "perceiver", decoder="pool", target="met")


def metperceiver_hs(seed):
    return _met(seed, "perceiver", target="met", hs_weight=5.0)


def deepmet(seed):
    return _met(seed, "deepmet")


def _partau(seed, **overrides):
    from models.partau.config import get_config
    from models.partau.fit import compile_model
    from models.partau.model import build_model

    c = get_config("tiny", **overrides)
    model = compile_model(build_model(c), c, steps_per_epoch=2)
    rng = np.random.default_rng(seed)
    x = partau_inputs(rng, N_EVENTS)
    is_tau = np.arange(N_EVENTS) % 2 == 0
    y = {
        "tau_id": is_tau.astype("int32"),
        "charge": np.where(is_tau, rng.integers(0, 2, N_EVENTS), -1).astype("float32"),
        "decay_mode": np.where(is_tau, rng.integers(0, 6, N_EVENTS), -1).astype("int32"),
        "kinematics": np.concatenate(
            [rng.normal(0, 0.2, (N_EVENTS, 5)), is_tau[:, None]], axis=1
        ).astype("float32"),
    }
    y = {t: y[t] for t in c.tasks}
    return model, x, y, rng.uniform(0.5, 2.0, N_EVENTS).astype("float32")


def partau_multi_pcgrad(seed):
    return _partau(seed, variant="multi")


def partau_single(seed):
    return _partau(seed, variant="single", task="decay_mode")


def scouttau(seed):
    from models.scouttau.config import get_config
    from models.scouttau.fit import compile_transformer
    from models.scouttau.model import build_model

    c = get_config("tiny")
    model = build_model(c)
    compile_transformer(model, c, "auto")
    rng = np.random.default_rng(seed)
    x = scouttau_inputs(rng, N_EVENTS, c.max_constituents, c.num_features)
    is_tau = np.arange(N_EVENTS) % 2 == 0
    y = {
        "tau_id": is_tau.astype("float32")[:, None],
        "charge": np.where(is_tau, rng.random(N_EVENTS) > 0.5, -1).astype("float32")[:, None],
        "pt": np.stack([np.where(is_tau, rng.normal(0, 0.2, N_EVENTS), 0.0), is_tau], 1).astype(
            "float32"
        ),
        "pileup": np.where(x["mask"], rng.random(x["mask"].shape) > 0.7, -1).astype("float32"),
    }
    return model, x, y, rng.uniform(0.5, 2.0, N_EVENTS).astype("float32")


def nnpuppitau(seed):
    from models.scouttau.nnpuppitau import build_nnpuppitau

    rng = np.random.default_rng(seed)
    x = rng.normal(size=(N_EVENTS, 80)).astype("float32")
    model = build_nnpuppitau(mean=x.mean(0), variance=x.var(0) + 1.0, batch_norm=True)
    model.compile(  # as models/scouttau/fit.py
        optimizer=keras.optimizers.Adam(1e-3),
        loss=keras.losses.BinaryCrossentropy(from_logits=True),
        weighted_metrics=[keras.metrics.AUC(from_logits=True, name="auc")],
    )
    y = (np.arange(N_EVENTS) % 2).astype("float32")[:, None]
    return model, x, y, rng.uniform(0.5, 2.0, N_EVENTS).astype("float32")


CASES = {
    f.__name__: f
    for f in (
        tpmt,
        tpmt_parametric,
        lgatr,
        lgatr_plain,
        metperceiver,
        metperceiver_pool,
        metperceiver_hs,
        deepmet,
        partau_multi_pcgrad,
        partau_single,
        scouttau,
        nnpuppitau,
    )
}
