"""Pileup: a cached Pythia8 minimum-bias library and its overlay on hard-scatter events.

The library (met_l1.md 6.1, the Delphes `generatePileUpCMS.cmnd` card) holds inelastic pp
events at 14 TeV: their visible final-state particles (neutrinos dropped, as Delphes'
PileUpMerger does) with momenta, PDG ids, charges and production z. It is generated once per
(seed, size) and cached as a compressed `.npz`.

The overlay (met_l1.md 6.2, Delphes PileUpMerger): N_PU ~ Poisson(mu) library events per hard
event, each drawn at random, rotated by a random azimuth and mirrored in z with probability
1/2 (pp is symmetric, so a reused event looks new), shifted to its own vertex
z ~ N(0, 5.3 cm) truncated at |z| < 25 cm. The hard event keeps its own beam-spot vertex.
Every particle keeps a truth flag (hard scatter or pileup), its interaction index and vertex z.
"""

import os
import sys
from dataclasses import dataclass

import numpy as np

from data.errors import UserError
from data.generate.pythia import (
    NEUTRINOS,
    ChargeTable,
    beamline_z0,
    flatten_batch,
    make_pythia,
)

ECM = 14000.0
# Delphes generatePileUpCMS.cmnd: Monash tune with the CUETP8M1 MPI settings; SoftQCD:inelastic
# switches on non-diffractive, single-, double- and central-diffractive events.
MINBIAS_SETTINGS = (
    "SoftQCD:inelastic = on",
    "Tune:pp = 14",
    "MultipartonInteractions:pT0Ref = 2.4024",
    "MultipartonInteractions:ecmPow = 0.25208",
    "MultipartonInteractions:expPow = 1.6",
)
SIGMA_Z_CM = 5.3  # luminous region, Delphes CMS Phase-II PileUpMerger (met_l1.md 6.2)
Z_MAX_CM = 25.0  # truncation of the vertex distribution
DEFAULT_MU = 200
DEFAULT_LIBRARY_EVENTS = 100_000
_BATCH = 1000
_FIELDS = ("px", "py", "pz", "e", "vz", "pdg", "charge")


@dataclass
class Library:
    """Minimum-bias events as flat particle arrays; `offsets[i]:offsets[i+1]` is event i."""

    px: np.ndarray
    py: np.ndarray
    pz: np.ndarray
    e: np.ndarray
    vz: np.ndarray  # z0 relative to the interaction, cm (`beamline_z0`, displaced decays)
    pdg: np.ndarray
    charge: np.ndarray
    offsets: np.ndarray

    @property
    def n_events(self):
        return len(self.offsets) - 1


def generate_library(n_events, seed, *, progress=None):
    """Generate `n_events` minimum-bias events (visible final state) with Pythia8."""
    py = make_pythia(MINBIAS_SETTINGS, seed, ecm=ECM)
    charges = ChargeTable(py)
    parts, counts = {k: [] for k in _FIELDS}, []
    done = 0
    while done < n_events:
        n = min(_BATCH, n_events - done)
        rec = flatten_batch(py.nextBatch(n, "skip"))
        keep = rec.is_final & ~np.isin(np.abs(rec.id), NEUTRINOS)
        counts.append(np.bincount(rec.event[keep], minlength=rec.n_events))
        p4 = rec.p4[keep]
        for k, col in zip(("px", "py", "pz", "e"), p4.T):
            parts[k].append(col.astype(np.float32))
        z0 = beamline_z0(rec.vertex[keep], p4) * 0.1  # mm -> cm
        parts["vz"].append(z0.astype(np.float32))
        parts["pdg"].append(rec.id[keep].astype(np.int32))
        parts["charge"].append(charges(rec.id[keep]).astype(np.int8))
        done += rec.n_events
        if progress:
            progress(rec.n_events)
    counts = np.concatenate(counts)
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    return Library(**{k: np.concatenate(v) for k, v in parts.items()}, offsets=offsets)


def library_path(cache, n_events, seed):
    return os.path.join(cache, "minbias", f"minbias_14TeV_seed{seed}_{n_events}.npz")


def load_library(cache, n_events=DEFAULT_LIBRARY_EVENTS, seed=1, *, progress=True):
    """The cached library of (`n_events`, `seed`), generating and caching it first if needed.

    Concurrent jobs may call this at once: the file is written to a temporary name and renamed,
    so readers only ever see a complete library.
    """
    if n_events <= 0:
        raise UserError(f"the minimum-bias library needs at least 1 event, got {n_events}")
    path = library_path(cache, n_events, seed)
    if not os.path.exists(path):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        if progress:
            print(f"generating the minimum-bias library {path} (once)", file=sys.stderr)
        lib = generate_library(n_events, seed)
        tmp = f"{path}.{os.getpid()}.tmp.npz"
        np.savez_compressed(tmp, **{k: getattr(lib, k) for k in (*_FIELDS, "offsets")})
        os.replace(tmp, path)
    with np.load(path) as f:
        return Library(**{k: f[k] for k in (*_FIELDS, "offsets")})


def vertex_z(rng, size):
    """Interaction z positions in cm: N(0, 5.3 cm) truncated at |z| < 25 cm."""
    z = rng.normal(0.0, SIGMA_Z_CM, size)
    bad = np.abs(z) >= Z_MAX_CM
    while bad.any():
        z[bad] = rng.normal(0.0, SIGMA_Z_CM, bad.sum())
        bad = np.abs(z) >= Z_MAX_CM
    return z


def overlay(hard, hard_counts, library, mu, rng):
    """Overlay Poisson(`mu`) pileup interactions on each hard event.

    Args:
        hard: dict of flat arrays of the hard events' visible particles: px, py, pz, e, vz (cm,
            the particle's z0 including the hard vertex), pdg, charge, vertex_z (cm, the hard
            vertex).
        hard_counts: (n_events,) particles per hard event.
        library: `Library`.
        mu: mean number of pileup interactions (0 = none).
        rng: numpy Generator.
    Returns:
        (particles, counts, n_pu): particles as flat arrays sorted by event, hard particles
        first in each event, with the hard fields plus `is_pu` (bool), `interaction`
        (0 = hard scatter, 1..n_pu) and `vertex_z` (cm, the interaction's vertex);
        counts (n_events,); n_pu (n_events,) the pileup interactions drawn.
    """
    n_ev = len(hard_counts)
    n_pu = rng.poisson(mu, n_ev) if mu > 0 else np.zeros(n_ev, np.int64)
    if library is None or library.n_events == 0:
        if n_pu.sum():
            raise ValueError("pileup requested without a minimum-bias library")
        dtypes = (np.float32,) * 5 + (np.int32, np.int8)
        library = Library(*(np.zeros(0, t) for t in dtypes), offsets=np.zeros(1, np.int64))
    pick = rng.integers(0, max(library.n_events, 1), n_pu.sum())
    rot = rng.uniform(-np.pi, np.pi, len(pick))
    flip = rng.random(len(pick)) < 0.5
    zv = vertex_z(rng, len(pick))
    sizes = np.diff(library.offsets)[pick]
    # particle j of pileup interaction k: library index offsets[pick[k]] + local index
    inter = np.repeat(np.arange(len(pick)), sizes)
    local = np.arange(len(inter)) - np.repeat(np.cumsum(sizes) - sizes, sizes)
    src = library.offsets[pick][inter] + local
    c, s = np.cos(rot)[inter], np.sin(rot)[inter]
    px, py = library.px[src], library.py[src]
    sign = np.where(flip[inter], -1.0, 1.0)
    pu = dict(
        px=c * px - s * py,
        py=s * px + c * py,
        pz=sign * library.pz[src],
        e=library.e[src].astype(np.float64),
        vz=zv[inter] + sign * library.vz[src],
        pdg=library.pdg[src],
        charge=library.charge[src],
        vertex_z=zv[inter],
    )
    pu_event = np.repeat(np.repeat(np.arange(n_ev), n_pu), sizes)
    first_inter = np.cumsum(n_pu) - n_pu  # index of each event's first pileup interaction
    pu["interaction"] = inter - first_inter[pu_event] + 1
    pu["is_pu"] = np.ones(len(inter), bool)
    hard_event = np.repeat(np.arange(n_ev), hard_counts)
    hv = dict(hard)
    hv["interaction"] = np.zeros(len(hard_event), np.int64)
    hv["is_pu"] = np.zeros(len(hard_event), bool)
    # stable sort by event keeps the hard particles first and the pileup in drawn order
    event = np.concatenate([hard_event, pu_event])
    order = np.argsort(event, kind="stable")
    out = {k: np.concatenate([np.asarray(hv[k]), np.asarray(pu[k])])[order] for k in pu}
    counts = np.bincount(event, minlength=n_ev)
    return out, counts, n_pu


def hard_event(rec, charges, rng):
    """The visible final state of a Pythia batch as `overlay`'s hard input, at beam-spot vertices.

    Args:
        rec: `FlatRecord` of the hard events; charges: a `ChargeTable`; rng: numpy Generator.
    Returns:
        (hard, hard_counts, vis, gen_pv): the `overlay` dict (z0 from `beamline_z0` shifted to
        the event's vertex), particles per event, the record indices of the visible particles,
        and the generated vertex z per event (cm).
    """
    n = rec.n_events
    vis = np.nonzero(rec.is_final & ~np.isin(np.abs(rec.id), NEUTRINOS))[0]
    gen_pv = vertex_z(rng, n)
    hard = dict(
        px=rec.p4[vis, 0],
        py=rec.p4[vis, 1],
        pz=rec.p4[vis, 2],
        e=rec.p4[vis, 3],
        vz=gen_pv[rec.event[vis]] + beamline_z0(rec.vertex[vis], rec.p4[vis]) * 0.1,  # cm
        pdg=rec.id[vis],
        charge=charges(rec.id[vis]).astype(np.int8),
        vertex_z=gen_pv[rec.event[vis]],
    )
    return hard, np.bincount(rec.event[vis], minlength=n), vis, gen_pv
