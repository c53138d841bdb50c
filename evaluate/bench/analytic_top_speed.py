"""Speed and solution efficiency of the analytic dilepton ttbar solution on exact toy events.

    python -m evaluate.bench.analytic_top_speed --events 2000

Toy events: two independent on-shell tops (m_t = 172.5 GeV, momenta ~ N(0, 120 GeV) per
component), t -> W b and W -> l nu isotropic in the rest frames (m_W = 80.4, m_b = 4.8,
m_l = 0.106 GeV), MET = the neutrino pT sum, optionally smeared by a Gaussian per component.
"""

import argparse
import time

import numpy as np

from evaluate.baselines.analytic_top import solution_efficiency, solve_dilepton
from evaluate.bench.toy_kinematics import boost

M_TOP, M_W, M_B, M_L = 172.5, 80.4, 4.8, 0.10566


def _decay(rng, parent, m_parent, m1, m2):
    """Isotropic two-body decay of `parent` (N, 4) in its rest frame, boosted to the lab."""
    n = len(parent)
    q = np.sqrt((m_parent**2 - (m1 + m2) ** 2) * (m_parent**2 - (m1 - m2) ** 2)) / (2 * m_parent)
    cos, phi = rng.uniform(-1, 1, n), rng.uniform(0, 2 * np.pi, n)
    sin = np.sqrt(1 - cos**2)
    d = q * np.stack([sin * np.cos(phi), sin * np.sin(phi), cos], axis=1)
    beta = parent[:, :3] / parent[:, 3:]
    e1, e2 = np.full((n, 1), np.hypot(q, m1)), np.full((n, 1), np.hypot(q, m2))
    return boost(np.concatenate([d, e1], 1), beta), boost(np.concatenate([-d, e2], 1), beta)


def toy_events(n, seed=0):
    """Exact dilepton ttbar kinematics.

    Args:
        n: number of events.
        seed: random seed.

    Returns:
        dict of (N, 4) four-vectors (px, py, pz, E) in GeV: ``t``, ``tbar``, ``b_t``, ``b_tbar``,
        ``l_t`` (l+), ``l_tbar`` (l-), ``nu_t``, ``nu_tbar``; and ``met`` (N, 2).
    """
    rng = np.random.default_rng(seed)
    ev = {}
    for name in ("t", "tbar"):
        p3 = rng.normal(0.0, 120.0, (n, 3))
        top = np.concatenate([p3, np.sqrt(np.sum(p3**2, 1) + M_TOP**2)[:, None]], axis=1)
        w, bq = _decay(rng, top, M_TOP, M_W, M_B)
        lep, nu = _decay(rng, w, M_W, M_L, 0.0)
        ev.update({name: top, f"b_{name}": bq, f"l_{name}": lep, f"nu_{name}": nu})
    ev["met"] = ev["nu_t"][:, :2] + ev["nu_tbar"][:, :2]
    return ev


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=2000, help="toy events (default 2000)")
    parser.add_argument("--met-sigma", type=float, default=25.0, help="MET smearing, GeV")
    parser.add_argument("--try-swap", action="store_true", help="also try b <-> bbar")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.events < 1 or args.met_sigma < 0:
        parser.error("--events must be >= 1 and --met-sigma >= 0")
    ev = toy_events(args.events, args.seed)
    smear = np.random.default_rng(args.seed + 1).normal(0.0, args.met_sigma, ev["met"].shape)
    smeared = (f"MET + {args.met_sigma:g} GeV", ev["met"] + smear)
    for label, met in (("exact MET", ev["met"]), smeared):
        inputs = (ev["l_t"], ev["l_tbar"], ev["b_t"], ev["b_tbar"], met[:, 0], met[:, 1])
        solve_dilepton(*(x[:10] for x in inputs))  # warm-up outside the timing
        start = time.perf_counter()
        res = solve_dilepton(*inputs, m_top=M_TOP, m_w=M_W, try_swap=args.try_swap)
        rate = args.events / (time.perf_counter() - start)
        err = np.linalg.norm(res["top"] - ev["t"], axis=1) / np.linalg.norm(ev["t"], axis=1)
        print(
            f"{label:>14}: {rate:7.0f} events/s, solution efficiency "
            f"{solution_efficiency(res):.3f}, fallback {np.mean(res['fallback']):.3f}, "
            f"top = truth to 1e-3 {np.mean(err < 1e-3):.3f}, "
            f"median rel. top error {np.median(err):.3f}"
        )


if __name__ == "__main__":
    main()
