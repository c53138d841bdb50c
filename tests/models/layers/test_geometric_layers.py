"""Equivariance, masking and serialization tests of the L-GATr layers."""

import keras
import numpy as np
import pytest

from models.layers.geometric import (
    EquiLayerNorm,
    EquiLinear,
    GatedGELU,
    GeometricBilinear,
    GeometricSelfAttention,
    GeoMLP,
    LGATrBlock,
    LGATrNetwork,
)
from tests.helpers import assert_keras_round_trip, assert_layer_config_round_trip
from tests.models.layers.lorentz import check_equivariance, random_lorentz

B, N, C, S = 2, 5, 3, 4


def _inputs(seed=0):
    rng = np.random.default_rng(seed)
    mv = rng.normal(size=(B, N, C, 16)).astype("float32")
    s = rng.normal(size=(B, N, S)).astype("float32")
    return mv, s


def _layers():
    return {
        "linear": EquiLinear(5, 6),
        "linear_mv_only": EquiLinear(5, 0, init="almost_unit_scalar"),
        "norm": EquiLayerNorm(),
        "gelu": GatedGELU(),
        "bilinear": GeometricBilinear(4, 3, hidden_mv_channels=4),
        "mlp": GeoMLP(mlp_ratio=2),
        "attention": GeometricSelfAttention(num_heads=2),
        "block": LGATrBlock(num_heads=2, mlp_ratio=2),
        "network": LGATrNetwork(2, 4, 6, 2, 1, num_heads=2, mlp_ratio=2),
    }


@pytest.mark.parametrize("name", list(_layers()))
def test_layer_equivariance(name):
    keras.utils.set_random_seed(0)
    layer = _layers()[name]
    mv, s = _inputs()
    rng = np.random.default_rng(1)

    def fn(x, sc):
        out_mv, out_s = layer(x, sc)
        return np.asarray(out_mv), None if out_s is None else np.asarray(out_s)

    for _ in range(3):
        check_equivariance(fn, mv, s, random_lorentz(rng, max_gamma=10.0), tol=1e-4)


@pytest.mark.parametrize("name", list(_layers()))
def test_layer_config_round_trip(name):
    assert_layer_config_round_trip(_layers()[name])


@pytest.mark.parametrize("name", ["attention", "network"])
def test_padded_tokens_do_not_change_real_tokens(name):
    keras.utils.set_random_seed(0)
    layer = _layers()[name]
    mv, s = _inputs()
    mask = np.ones((B, N), bool)
    mask[:, 3:] = False
    mask[1, 2] = False
    mv2, s2 = mv.copy(), s.copy()
    rng = np.random.default_rng(5)
    mv2[~mask] = 50.0 * rng.normal(size=mv2[~mask].shape)
    s2[~mask] = 50.0 * rng.normal(size=s2[~mask].shape)
    a_mv, a_s = layer(mv, s, token_mask=mask)
    b_mv, b_s = layer(mv2, s2, token_mask=mask)
    np.testing.assert_allclose(np.asarray(a_mv)[mask], np.asarray(b_mv)[mask], atol=1e-5)
    np.testing.assert_allclose(np.asarray(a_s)[mask], np.asarray(b_s)[mask], atol=1e-5)
    # and the mask matters
    c_mv, _ = layer(mv2, s2)
    assert not np.allclose(np.asarray(a_mv)[mask], np.asarray(c_mv)[mask], atol=1e-5)


def test_all_layers_keras_round_trip(tmp_path):
    keras.utils.set_random_seed(0)
    mv_in = keras.Input((N, C, 16), name="multivectors")
    s_in = keras.Input((N, S), name="scalars")
    m_in = keras.Input((N,), name="mask")
    mv, s = EquiLinear(4, 6)(mv_in, s_in)
    mv, s = EquiLayerNorm()(mv, s)
    mv, s = GatedGELU()(mv, s)
    mv, s = GeometricBilinear(4, 6, hidden_mv_channels=4)(mv, s)
    mv, s = GeoMLP(mlp_ratio=2)(mv, s)
    mv, s = GeometricSelfAttention(num_heads=2)(mv, s, token_mask=m_in)
    mv, s = LGATrBlock(num_heads=2, mlp_ratio=2)(mv, s, token_mask=m_in)
    mv, s = LGATrNetwork(1, 4, 4, 2, 1, num_heads=2, mlp_ratio=2)(mv, s, token_mask=m_in)
    model = keras.Model([mv_in, s_in, m_in], [mv, s])
    mv_x, s_x = _inputs(3)
    mask = np.ones((B, N), "float32")
    mask[0, -1] = 0.0
    assert_keras_round_trip(
        model,
        {"multivectors": mv_x, "scalars": s_x, "mask": mask},
        tmp_path,
        atol=1e-5,
        fresh_process=True,
    )


def test_configs_without_the_lgatr_keys_rebuild_the_legacy_layers():
    """Configs saved before the layers matched lgatr (saved_models/lgatr/lgatr.keras) lack
    `legacy` / `pseudoscalar_bias`: they rebuild the layers as they were, weights included."""
    config = LGATrNetwork(1, 4, 6, 2, 1, num_heads=2, mlp_ratio=2).get_config()
    del config["legacy"]
    network = LGATrNetwork.from_config(config)
    network(*_inputs())
    block = network.blocks[0]
    assert network.legacy and block.legacy and block.attention.legacy and block.mlp.legacy
    assert network.linear_in.ps_bias is None and block.attention.out.ps_bias is None
    assert block.mlp.bilinear.norm.mv_gain is not None  # gains lgatr does not have
    config = EquiLinear(4, 6).get_config()
    del config["pseudoscalar_bias"]
    assert not EquiLinear.from_config(config).pseudoscalar_bias
    assert not LGATrNetwork(1, 4, 6, 2, 1, num_heads=2).legacy  # new layers match lgatr
