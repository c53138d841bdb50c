"""Speed of the numpy FastMTT and collinear di-tau masses on toy H(125) -> tau tau events.

    python -m evaluate.bench.fastmtt_speed --events 2000

Toy events: a 125 GeV resonance with pT ~ N(0, 30) and pz ~ N(0, 150) GeV per component decays
isotropically to two taus; each tau is a random channel (tau_h 65%, mu 17.5%, e 17.5% per leg)
with a visible fraction x ~ U(0.15, 0.95) and collinear neutrinos; legs below 20 GeV are dropped
by regenerating. MET = the neutrinos' pT sum + N(0, --met-sigma) per component, covariance
diag(sigma^2, sigma^2) (sigma = 20 GeV by default, i.e. diag(400, 400)). The resolution figures are
for these toy events only, not for any physics sample.
"""

import argparse
import time

import numpy as np

from evaluate.baselines.collinear import Leg, collinear_mass
from evaluate.baselines.fastmtt import fastmtt
from evaluate.bench.toy_kinematics import boost

M_H, M_TAU = 125.0, 1.77685


def _legs(rng, tau, x):
    """Visible legs x * tau with a random channel, as a :class:`Leg`."""
    n = len(x)
    vis = tau * x[:, None]
    kind = rng.choice([1, 2, 3], size=n, p=[0.65, 0.175, 0.175])
    had = kind == 1
    pt = np.hypot(vis[:, 0], vis[:, 1])
    return Leg(
        pt=pt,
        eta=np.arcsinh(vis[:, 2] / pt),
        phi=np.arctan2(vis[:, 1], vis[:, 0]),
        mass=np.where(had, rng.uniform(0.14, 1.5, n), np.where(kind == 2, 0.000511, 0.10566)),
        kind=kind,
        decay_mode=np.where(had, rng.choice([0, 1, 10], size=n), -1),
    )


def toy_events(n, seed=0, met_sigma=20.0):
    """Toy di-tau events (see module docstring). Returns (leg1, leg2, met (N, 2), cov (N, 2, 2))."""
    rng = np.random.default_rng(seed)
    m = 4 * n  # oversample, then keep n events with both legs above 20 GeV
    p3 = np.stack([rng.normal(0, 30, m), rng.normal(0, 30, m), rng.normal(0, 150, m)], axis=1)
    beta = p3 / np.sqrt(np.sum(p3**2, 1) + M_H**2)[:, None]
    cos, phi = rng.uniform(-1, 1, m), rng.uniform(-np.pi, np.pi, m)
    q = np.sqrt(M_H**2 / 4 - M_TAU**2)
    d = q * np.stack([np.sqrt(1 - cos**2) * np.cos(phi), np.sqrt(1 - cos**2) * np.sin(phi), cos], 1)
    e = np.full((m, 1), M_H / 2)
    tau1, tau2 = boost(np.concatenate([d, e], 1), beta), boost(np.concatenate([-d, e], 1), beta)
    x1, x2 = rng.uniform(0.15, 0.95, m), rng.uniform(0.15, 0.95, m)
    keep = (np.hypot(*(x1[:, None] * tau1[:, :2]).T) > 20) & (
        np.hypot(*(x2[:, None] * tau2[:, :2]).T) > 20
    )
    idx = np.flatnonzero(keep)[:n]
    if idx.size < n:
        raise RuntimeError("too few toy events passed the 20 GeV cut; raise the oversampling")
    tau1, tau2, x1, x2 = tau1[idx], tau2[idx], x1[idx], x2[idx]
    nu = (1 - x1)[:, None] * tau1 + (1 - x2)[:, None] * tau2
    met = nu[:, :2] + rng.normal(0, met_sigma, (n, 2))
    cov = np.tile(np.diag([met_sigma**2, met_sigma**2]), (n, 1, 1))
    return _legs(rng, tau1, x1), _legs(rng, tau2, x2), met, cov


def _summary(ratio):
    q16, q50, q84 = np.nanpercentile(ratio, [16, 50, 84])
    return f"m/m_true median {q50:.3f}, (q84-q16)/2/median {(q84 - q16) / 2 / q50:.3f}"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=2000, help="toy events (default 2000)")
    parser.add_argument("--met-sigma", type=float, default=20.0, help="MET resolution, GeV")
    parser.add_argument("--chunk-size", type=int, default=128, help="FastMTT events per block")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs; the fastest is shown")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if min(args.events, args.chunk_size, args.repeat) < 1 or args.met_sigma <= 0:
        parser.error("--events, --chunk-size and --repeat must be >= 1 and --met-sigma > 0")
    leg1, leg2, met, cov = toy_events(args.events, args.seed, args.met_sigma)
    runs = {
        "fastmtt": lambda: (
            fastmtt(leg1, leg2, met[:, 0], met[:, 1], cov, chunk_size=args.chunk_size).mass
        ),
        "collinear": lambda: collinear_mass(leg1, leg2, met[:, 0], met[:, 1]).mass,
    }
    for name, run in runs.items():
        best = np.inf
        for _ in range(args.repeat):
            start = time.perf_counter()
            mass = run()
            best = min(best, time.perf_counter() - start)
        rate = args.events / best
        print(f"{name:>10}: {rate:10.0f} events/s  ({args.events} events; {_summary(mass / M_H)})")


if __name__ == "__main__":
    main()
