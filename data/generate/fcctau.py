"""FCC-ee Z-pole samples for ParTau: e+e- -> Z -> tautau and Z -> qq (u, d, s) at 91.188 GeV.

Pythia8 with the FCC-ee generator card (HEP-FCC/FCC-config p8_ee_Ztautau_ecm91.cmd, partau.md
4.1: beam-spot vertex spread, no beam-energy spread), a CLD-like detector (`data.detector.cld`),
jets clustered from the reconstructed candidates with the e+e- generalised kT algorithm
(R = 0.4, p = -1) as in ML-Tau's ntupeliser, and the Z's taus matched to jets (Delta R < 0.4)
through their visible four-vectors. Columns follow NanoAOD conventions: `Jet_*`, `PFCand_*`
(the candidates of the written jets, with `PFCand_jetIdx`) and `GenTau_*`.
"""

import awkward as ak
import numpy as np

from data.detector import cld
from data.generate import tau_decays as td
from data.generate.batches import Timing, collect, subseed  # noqa: F401  (Timing re-exported)
from data.generate.ditau_events import kinematics
from data.generate.pythia import (
    NEUTRINOS,
    ChargeTable,
    ancestor_owner,
    bottom_copy,
    daughters,
    last_of_id,
    make_pythia,
)
from data.reco.jets import cluster

PROCESSES = {"ztautau": 0, "zqq": 1}
ECM = 91.188
_BEAMS = (
    "Beams:idA = 11",
    "Beams:idB = -11",
    "Beams:allowMomentumSpread = off",
    "Beams:allowVertexSpread = on",
    "Beams:sigmaVertexX = 5.96e-3",
    "Beams:sigmaVertexY = 23.8e-6",
    "Beams:sigmaVertexZ = 0.397",
    "Beams:sigmaTime = 10.89",
    "WeakSingleBoson:ffbar2gmZ = on",
    "23:onMode = off",
)
DECAYS = {"ztautau": "23:onIfAny = 15", "zqq": "23:onIfAny = 1 2 3"}  # light quarks (issue 7)
JET_RADIUS, JET_P = 0.4, -1.0  # ee_genkt, ML-Tau clustering.py
JET_MIN_E = 5.0  # written jets (assumption: below 5 GeV a jet holds a couple of particles)
JET_ETA_MAX = 2.4  # jet axis inside the tracker (|eta| < 2.54) with its 0.4 radius
MATCH_DR = 0.4  # visible tau -> reco jet (ML-Tau matching.py)
LEPTONIC = 16  # full decay-mode code of leptonic taus (partau.md 2.8)
RARE = 15


def full_decay_mode(n_charged, n_neutral):
    """ML-Tau's full code 5 (n_charged - 1) + min(n_neutral hadrons, 4); 15 = rare (> 3 prongs),
    16 = leptonic (no charged hadron)."""
    code = 5 * (np.asarray(n_charged) - 1) + np.minimum(n_neutral, 4)
    code = np.where(np.asarray(n_charged) > 3, RARE, code)
    return np.where(np.asarray(n_charged) > 0, code, LEPTONIC)


def generate(process, n_events, seed, *, worker=0, batch_size=500, progress=None, timing=None):
    """Generate `n_events` events of `process` with at least one written jet.

    Args:
        process: "ztautau" or "zqq".
        n_events: events to write.
        seed: random seed; (seed, worker) fixes everything.
        worker: index of this worker (its own random streams).
        batch_size: events per Pythia batch.
        progress: optional callable(n) called with the number of newly written events.
        timing: optional `Timing` to fill.
    Returns:
        dict of columns (collections as dicts with `_counts`), exactly `n_events` long.
    """
    rng = np.random.default_rng([seed, worker, 100 + PROCESSES[process]])
    py = make_pythia((*_BEAMS, DECAYS[process]), subseed(seed, worker, 0), ecm=ECM)
    charges = ChargeTable(py)

    def next_batch(point):
        return py.nextBatch(batch_size, "skip")

    def reconstruct(rec):
        return reconstruct_batch(rec, charges(rec.id), rng, process=process)

    return collect(
        next_batch, reconstruct, n_events, worker=worker, timing=timing, progress=progress
    )


def gen_taus(rec, charge):
    """The Z's two taus: global index (n, 2) (-1 without), visible p4 (n, 2, 4), charge, code."""
    n = rec.n_events
    iz = last_of_id(rec, [23])
    dau = daughters(rec, np.maximum(iz, 0))
    valid = (iz >= 0) & np.all(np.abs(rec.id[np.maximum(dau, 0)]) == 15, axis=1)
    taus = bottom_copy(rec, np.where(valid[:, None], dau, -1).ravel()).reshape(n, 2)
    flat = taus.ravel()
    labels = np.arange(2 * n)
    owner = ancestor_owner(rec, flat[flat >= 0], labels[flat >= 0])
    visible = (owner >= 0) & rec.is_final & ~np.isin(np.abs(rec.id), NEUTRINOS)
    vis = np.stack(
        [np.bincount(owner[visible], rec.p4[visible, k], minlength=2 * n) for k in range(4)], 1
    ).reshape(n, 2, 4)
    counts = td.classify(rec, charge, owner, 2 * n)
    neutral_k = np.bincount(
        owner[(owner >= 0) & rec.is_final & np.isin(np.abs(rec.id), (130, 310))],
        minlength=2 * n,
    )
    code = full_decay_mode(counts["n_charged"], counts["n_pi0"] + neutral_k).reshape(n, 2)
    tau_charge = -np.sign(rec.id[np.maximum(taus, 0)])
    return taus, vis, tau_charge.astype(np.int32), np.where(taus >= 0, code, -1)


def reconstruct_batch(rec, charge, rng, *, process):
    """Candidates, jets and truth of one Pythia batch; events without a written jet dropped."""
    n = rec.n_events
    stable = rec.is_final & ~np.isin(np.abs(rec.id), NEUTRINOS)
    idx = np.nonzero(stable)[0]
    # the hard-process vertex (beam spot draw) is the primary vertex of every particle
    primary = rec.vertex[rec.offsets[:-1] + 3]
    keep, cand = cld.reconstruct(
        rng, rec.id[idx], charge[idx], rec.p4[idx], rec.vertex[idx], primary[rec.event[idx]]
    )
    cand_event = rec.event[idx][keep]
    cand_p4 = _p4(cand["pt"], cand["eta"], cand["phi"], cand["mass"])
    jets, constituents = cluster(
        cand_p4, cand_event, n, radius=JET_RADIUS, min_pt=1.0, algorithm="ee_genkt", p=JET_P
    )
    jet_counts = ak.to_numpy(ak.num(jets))
    jet_p4 = np.stack(
        [ak.to_numpy(ak.flatten(getattr(jets, c))) for c in ("px", "py", "pz", "E")], 1
    )
    jet_event = np.repeat(np.arange(n), jet_counts)
    jpt, jeta, jphi, jmass = kinematics(jet_p4)
    written = (jet_p4[:, 3] > JET_MIN_E) & (np.abs(jeta) < JET_ETA_MAX)
    # candidate -> (flat) jet, then -> index among the written jets of its event
    per_jet = ak.flatten(constituents, axis=1)
    cand_jet = np.full(len(cand_event), -1)
    cand_jet[ak.to_numpy(ak.flatten(per_jet))] = np.repeat(
        np.arange(len(jet_event)), ak.to_numpy(ak.num(per_jet))
    )
    local = _local_index(jet_event[written], n)
    new_index = np.full(len(jet_event), -1)
    new_index[np.nonzero(written)[0]] = local
    cand_jet = np.where(cand_jet >= 0, new_index[np.maximum(cand_jet, 0)], -1)

    # truth: the Z's taus, matched to the nearest written jet through their visible p4
    j_event, j_p4 = jet_event[written], jet_p4[written]
    n_jets = np.bincount(j_event, minlength=n)
    gen = {
        "dm": np.full(len(j_event), -1),
        "charge": np.zeros(len(j_event), np.int32),
        "idx": np.full(len(j_event), -1),
        "vis": np.zeros((len(j_event), 4)),
    }
    if process == "ztautau":
        taus, vis, tau_charge, code = gen_taus(rec, charge)
        tau_jet = match(vis, taus >= 0, j_event, j_p4, n)
        for k in range(2):
            hit = tau_jet[:, k] >= 0
            first = np.cumsum(n_jets) - n_jets
            row = first[hit] + tau_jet[hit, k]
            gen["dm"][row], gen["charge"][row] = code[hit, k], tau_charge[hit, k]
            gen["idx"][row], gen["vis"][row] = k, vis[hit, k]
    selected = np.nonzero(n_jets > 0)[0]
    return _columns(
        selected,
        n,
        j_event,
        j_p4,
        gen,
        cand_event,
        cand,
        cand_jet,
        (taus, vis, tau_charge, code, tau_jet) if process == "ztautau" else None,
        PROCESSES[process],
    )


def match(vis, valid, j_event, j_p4, n):
    """Index (within its event) of the nearest jet to each visible tau, -1 beyond MATCH_DR."""
    n_jets = np.bincount(j_event, minlength=n)
    width = max(int(n_jets.max(initial=0)), 1)
    eta = np.full((n, width), np.inf)
    phi = np.zeros((n, width))
    local = _local_index(j_event, n)
    _, je, jp, _ = kinematics(j_p4)
    eta[j_event, local], phi[j_event, local] = je, jp
    _, te, tp, _ = kinematics(vis)
    d_eta = te[:, :, None] - eta[:, None, :]
    d_phi = np.angle(np.exp(1j * (tp[:, :, None] - phi[:, None, :])))
    dr = np.hypot(d_eta, d_phi)
    best = np.argmin(dr, axis=2)
    ok = valid & (np.take_along_axis(dr, best[..., None], 2)[..., 0] < MATCH_DR)
    return np.where(ok, best, -1)


def _local_index(event, n):
    counts = np.bincount(event, minlength=n)
    return np.arange(len(event)) - np.repeat(np.cumsum(counts) - counts, counts)


def _p4(pt, eta, phi, mass):
    px, py, pz = pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta)
    return np.stack([px, py, pz, np.sqrt(px**2 + py**2 + pz**2 + mass**2)], 1)


def _columns(selected, n, j_event, j_p4, gen, cand_event, cand, cand_jet, taus, process):
    """Column dict of the selected events (collections with `_counts`)."""
    remap = np.full(n, -1)
    remap[selected] = np.arange(len(selected))
    m = len(selected)
    jpt, jeta, jphi, jmass = kinematics(j_p4)
    vpt, veta, vphi, vmass = kinematics(gen["vis"])
    jet_sel = remap[j_event] >= 0
    cols = {"event": selected.astype(np.int64), "process": np.full(m, process, np.int32)}
    cols["Jet"] = dict(
        pt=jpt[jet_sel],
        eta=jeta[jet_sel],
        phi=jphi[jet_sel],
        mass=jmass[jet_sel],
        nConstituents=np.bincount(
            _flat_jet(cand_event, cand_jet, j_event, n), minlength=len(j_event)
        )[jet_sel].astype(np.int32),
        genTauDecayMode=gen["dm"][jet_sel].astype(np.int32),
        genTauCharge=gen["charge"][jet_sel],
        genTauIdx=gen["idx"][jet_sel].astype(np.int32),
        genTauVisPt=vpt[jet_sel],
        genTauVisEta=veta[jet_sel],
        genTauVisPhi=vphi[jet_sel],
        genTauVisMass=vmass[jet_sel],
        _counts=np.bincount(remap[j_event[jet_sel]], minlength=m),
    )
    # candidates of the written jets, grouped by event, then jet, then decreasing pT
    c_sel = (cand_jet >= 0) & (remap[cand_event] >= 0)
    order = np.lexsort((-cand["pt"][c_sel], cand_jet[c_sel], cand_event[c_sel]))
    pf = {k: v[c_sel][order] for k, v in cand.items()}
    pf["jetIdx"] = cand_jet[c_sel][order].astype(np.int32)
    pf["_counts"] = np.bincount(remap[cand_event[c_sel]], minlength=m)
    cols["PFCand"] = pf
    if taus is None:
        cols["GenTau"] = dict(
            _counts=np.zeros(m, np.int64), **{k: np.zeros(0, t) for k, t in _GEN_TAU_FIELDS.items()}
        )
        return cols
    index, vis, charge, code, tau_jet = taus
    t_sel = (index[selected] >= 0).ravel()
    t_event = np.repeat(np.arange(m), 2)[t_sel]
    tpt, teta, tphi, tm = kinematics(vis[selected].reshape(-1, 4)[t_sel])
    cols["GenTau"] = dict(
        visPt=tpt,
        visEta=teta,
        visPhi=tphi,
        visMass=tm,
        charge=charge[selected].ravel()[t_sel].astype(np.int32),
        decayMode=code[selected].ravel()[t_sel].astype(np.int32),
        jetIdx=tau_jet[selected].ravel()[t_sel].astype(np.int32),
        _counts=np.bincount(t_event, minlength=m),
    )
    return cols


_GEN_TAU_FIELDS = dict(
    visPt=np.float64,
    visEta=np.float64,
    visPhi=np.float64,
    visMass=np.float64,
    charge=np.int32,
    decayMode=np.int32,
    jetIdx=np.int32,
)


def _flat_jet(cand_event, cand_jet, j_event, n):
    """Flat written-jet index of every candidate in a written jet."""
    n_jets = np.bincount(j_event, minlength=n)
    first = np.cumsum(n_jets) - n_jets
    ok = cand_jet >= 0
    return first[cand_event[ok]] + cand_jet[ok]
