"""Pythia8 (`pythia8mc`) set-up and a flat, vectorised view of the event record.

`nextBatch` returns whole batches as awkward arrays built in C++, so Python never loops over
particles; the record is flattened to numpy with global indices (event offset + local index),
and truth navigation (last copies, decay products) is done with array indexing.
"""

from dataclasses import dataclass

import awkward as ak
import numpy as np

from data.errors import UserError

NEUTRINOS = (12, 14, 16)
# Common settings of every sample; Random:setSeed makes each init() reproducible.
COMMON = (
    "Print:quiet = on",
    "Next:numberCount = 0",
    "Random:setSeed = on",
    # Long-lived hadrons (K0S, Lambda, ...) stay undecayed like in a detector simulation input,
    # as in the CMS/Delphes-style generator cards (ditau.md section 4.2).
    "ParticleDecays:limitTau0 = on",
    "ParticleDecays:tau0Max = 10",
)


def make_pythia(settings, seed, *, ecm=13600.0):
    """A ready Pythia8 instance for `settings` at `ecm` GeV, seeded with `seed`."""
    import pythia8mc

    py = pythia8mc.Pythia("", False)
    for line in (
        *COMMON,
        f"Beams:eCM = {ecm}",
        f"Random:seed = {int(seed) % 900_000_000}",
        *settings,
    ):
        if not py.readString(line):
            raise RuntimeError(f"Pythia rejected setting '{line}'")
    if not py.init():
        raise RuntimeError("Pythia initialisation failed")
    return py


def reinit(py, settings, seed):
    """Change settings of an initialised instance (e.g. a new boson mass) and init() again."""
    for line in (*settings, f"Random:seed = {int(seed) % 900_000_000}"):
        if not py.readString(line):
            raise RuntimeError(f"Pythia rejected setting '{line}'")
    if not py.init():
        raise RuntimeError("Pythia re-initialisation failed")


@dataclass
class FlatRecord:
    """A batch of event records flattened to numpy arrays of shape (n_particles,).

    Index fields (`mother1`, `daughter1`, ...) hold global indices; -1 means none.
    `offsets[i]:offsets[i+1]` are the particles of event i; `event[j]` is particle j's event.
    """

    id: np.ndarray
    status: np.ndarray
    mother1: np.ndarray
    mother2: np.ndarray
    daughter1: np.ndarray
    daughter2: np.ndarray
    p4: np.ndarray  # (n, 4) px, py, pz, E
    offsets: np.ndarray
    event: np.ndarray
    vertex: np.ndarray | None = None  # (n, 3) production vertex x, y, z in mm

    @property
    def n_events(self):
        return len(self.offsets) - 1

    @property
    def is_final(self):
        return self.status > 0


def flatten_batch(batch):
    """Flatten a `Pythia.nextBatch` awkward array into a `FlatRecord`."""
    prt = batch.prt
    counts = ak.to_numpy(ak.num(prt.id))
    offsets = np.concatenate([[0], np.cumsum(counts)])
    event = np.repeat(np.arange(len(counts)), counts)
    base = offsets[:-1][event]

    def idx(field):
        local = ak.to_numpy(ak.flatten(prt[field])).astype(np.int64)
        # local index 0 is Pythia's "system" entry, which means "none" in mother/daughter slots
        return np.where(local > 0, local + base, -1)

    p = ak.flatten(prt.p)
    p4 = np.stack([ak.to_numpy(p[c]) for c in ("px", "py", "pz", "e")], axis=1)
    v = ak.flatten(prt.vProd)
    # particles without a vertex of their own (hasVertex false) come back as NaN: the origin
    vertex = np.nan_to_num(np.stack([ak.to_numpy(v[c]) for c in ("px", "py", "pz")], axis=1))
    return FlatRecord(
        id=ak.to_numpy(ak.flatten(prt.id)).astype(np.int64),
        status=ak.to_numpy(ak.flatten(prt.status)).astype(np.int64),
        mother1=idx("mother1"),
        mother2=idx("mother2"),
        daughter1=idx("daughter1"),
        daughter2=idx("daughter2"),
        p4=p4,
        offsets=offsets,
        event=event,
        vertex=vertex,
    )


def beamline_z0(vertex, p4):
    """z of each particle's straight-line point of closest approach to the beam line (mm).

    What a track measures as z0: a displaced decay product (B flight of several mm) points
    back towards its primary vertex, so z0 is close to the PV even when the production z is not.
    """
    pt2 = np.maximum(p4[:, 0] ** 2 + p4[:, 1] ** 2, 1e-12)
    s = (vertex[:, 0] * p4[:, 0] + vertex[:, 1] * p4[:, 1]) / pt2
    return vertex[:, 2] - s * p4[:, 2]


def last_of_id(rec, pdg_ids):
    """Global index of the last particle per event whose |id| is in `pdg_ids` (-1 if none)."""
    hit = np.isin(np.abs(rec.id), pdg_ids)
    out = np.full(rec.n_events, -1, dtype=np.int64)
    where = np.nonzero(hit)[0]
    out[rec.event[where]] = where  # later indices overwrite earlier ones
    return out


def bottom_copy(rec, idx, max_steps=30):
    """Follow each particle in `idx` down its chain of same-id copies (recoil, radiation).

    Mirrors Pythia's `iBotCopyId()`: a copy may sit at daughter1 or daughter2, so a tau that
    radiated a photon is followed to the copy that actually decays.
    """
    idx = np.asarray(idx, dtype=np.int64).copy()
    for _ in range(max_steps):
        ok = idx >= 0
        d1 = np.where(ok, rec.daughter1[np.maximum(idx, 0)], -1)
        d2 = np.where(ok, rec.daughter2[np.maximum(idx, 0)], -1)
        pid = rec.id[np.maximum(idx, 0)]
        same1 = (d1 >= 0) & (rec.id[np.maximum(d1, 0)] == pid)
        same2 = (d2 >= 0) & (rec.id[np.maximum(d2, 0)] == pid)
        nxt = np.where(same1, d1, np.where(same2, d2, -1))
        move = ok & (nxt >= 0)
        if not move.any():
            break
        idx = np.where(move, nxt, idx)
    return idx


def daughters(rec, idx):
    """Global indices of the two daughter slots of each particle in `idx` (N, 2)."""
    idx = np.asarray(idx)
    return np.stack([rec.daughter1[idx], rec.daughter2[idx]], axis=1)


def ancestor_owner(rec, owners, labels, max_depth=12):
    """Label every particle by the first of `owners` met walking up its mother1 chain.

    Args:
        rec: the flat record.
        owners: global indices of owner particles (e.g. decaying taus).
        labels: integer label per owner (>= 0).
        max_depth: walk length; tau decay chains are at most a few steps deep.
    Returns:
        (n_particles,) int array: the label of the closest owner ancestor, or -1.
    """
    tag = np.full(len(rec.id), -1, dtype=np.int64)
    tag[np.asarray(owners)] = np.asarray(labels)
    out = np.full(len(rec.id), -1, dtype=np.int64)
    cur = rec.mother1.copy()
    for _ in range(max_depth):
        alive = (cur >= 0) & (out < 0)
        if not alive.any():
            break
        hit = np.where(alive, tag[np.maximum(cur, 0)], -1)
        out = np.where(alive & (hit >= 0), hit, out)
        cur = np.where(alive & (hit < 0), rec.mother1[np.maximum(cur, 0)], -1)
    return out


class ChargeTable:
    """Electric charge by PDG id, looked up once per id from Pythia's particle data."""

    def __init__(self, py):
        self._pd = py.particleData
        self._cache = {}

    def __call__(self, pdg):
        pdg = np.asarray(pdg)
        uniq, inv = np.unique(pdg, return_inverse=True)
        vals = np.array([self._lookup(int(u)) for u in uniq], dtype=np.float64)
        return vals[inv].reshape(pdg.shape)

    def _lookup(self, pid):
        if pid not in self._cache:
            self._cache[pid] = float(self._pd.charge(pid))
        return self._cache[pid]


def check_events(n):
    if n <= 0:
        raise UserError(f"--events must be positive, got {n}")
