"""Dilepton ttbar reconstruction: leptons, jets, b matching, MET, selection and output columns.

Selection (CMS dilepton ttbar, e.g. TOP-17-014): two opposite-charge prompt leptons (e or mu)
with reco pT > 20 / 15 GeV (leading / subleading) and |eta| < 2.4, and >= 2 jets (anti-kT
R = 0.4) with pT > 30 GeV and |eta| < 2.4. No isolation or b-tagging is simulated.

b candidates: the jets matched (Delta R < 0.4) to the generated b and bbar when both exist
(`TTbar_bPairing` = 0); otherwise the two leading jets, b and bbar assigned by the smallest
average m(l b) with t -> b l+ nu (`TTbar_bPairing` = 1; the ATLAS dilepton top-mass rule,
arXiv:1606.02179).

Columns: `Muon_*`, `Electron_*` (pt, eta, phi, mass, charge, genLepIdx: 0 = GenLep l-, 1 = l+),
`Jet_*` (pt, eta, phi, mass, genBIdx: 0 = b, 1 = bbar, -1 none), `TTbar_bJetIdx`,
`TTbar_bbarJetIdx`, `TTbar_bPairing`, `MET_*` with covariance, `GenMET_*`, and the truth
collections `GenTop`, `GenW`, `GenB`, `GenLep`, `GenNu` (pt, eta, phi, mass, pdgId; two per
event, particle first).
"""

import awkward as ak
import numpy as np

from data.detector import cms
from data.generate import tau_decays as td
from data.generate.ditau_events import TAU_SIGMA_PHI, kinematics
from data.generate.ditau_output import collection
from data.generate.pythia import ChargeTable, ancestor_owner, bottom_copy
from data.reco import met as met_reco
from data.reco.jets import cluster

LEPTON_MIN_PT = (20.0, 15.0)  # GeV, leading / subleading
LEPTON_ETA_MAX = cms.LEPTON_ETA_MAX
JET_MIN_PT = 30.0  # GeV
JET_ETA_MAX = 2.4  # tracker acceptance, where b jets can be tagged
JET_MET_MIN_PT = 15.0  # jets entering MET as objects (type-1 like), as the di-tau sample
MATCH_DR = 0.4
LEPTON_SIGMA_PHI = TAU_SIGMA_PHI  # rad; "a few mrad" (ditau.md 5.1), negligible next to jets
TRUTH = ("top", "w", "b", "lep", "nu")
TRUTH_NAMES = {"top": "GenTop", "w": "GenW", "b": "GenB", "lep": "GenLep", "nu": "GenNu"}


def delta_r(eta1, phi1, eta2, phi2):
    return np.hypot(eta1 - eta2, cms.wrap_phi(phi1 - phi2))


def _sum_by(labels, values, n):
    return np.stack(
        [np.bincount(labels, weights=values[:, k], minlength=n) for k in range(values.shape[1])], 1
    )


def prompt_leptons(rec, truth, py):
    """Final-state e/mu of the W decays (n, 2) global indices, (l-, l+), -1 if none.

    e/mu are followed to their last copy after QED FSR; a tau (`--with-taus`) gives its
    lepton when it decays leptonically and nothing when it decays hadronically.
    """
    n = rec.n_events
    lep = np.where(truth["valid"][:, None], truth["lep"], -1)
    out = bottom_copy(rec, lep.ravel())
    is_tau = np.abs(rec.id[np.maximum(out, 0)]) == 15
    if is_tau.any():
        labels = np.arange(2 * n)
        owner = ancestor_owner(rec, out[is_tau], labels[is_tau])
        info = td.classify(rec, ChargeTable(py)(rec.id), owner, 2 * n)
        out = np.where(is_tau, info["lepton_index"], out)
    out = np.where(out >= 0, out, -1)
    return out.reshape(n, 2)


def _smear_leptons(rng, rec, idx):
    """Reco (pt, eta, phi, mass, rel_sigma_pt, flavour, charge) of (n, 2) lepton indices."""
    p4 = rec.p4[np.maximum(idx, 0)]
    pt, eta, phi, mass = kinematics(p4)
    flavour = np.abs(rec.id[np.maximum(idx, 0)])
    reco = pt.copy()
    rel = np.zeros_like(pt)
    for fl in (13, 11):
        sel = (flavour == fl) & (idx >= 0)
        reco[sel] = cms.smear_lepton_pt(rng, pt[sel], eta[sel], fl)
        rel[sel] = cms.lepton_resolution(pt[sel], eta[sel], fl)
    charge = -np.sign(rec.id[np.maximum(idx, 0)])  # e-/mu- have positive PDG ids
    return {
        "pt": reco,
        "eta": eta,
        "phi": phi,
        "mass": mass,
        "rel": rel,
        "flavour": flavour,
        "charge": charge,
    }


def select_leptons(lep, idx):
    """(n,) mask: both leptons found, in acceptance, above the pT thresholds, opposite charge."""
    lead = np.maximum(lep["pt"][:, 0], lep["pt"][:, 1])
    sub = np.minimum(lep["pt"][:, 0], lep["pt"][:, 1])
    return (
        np.all(idx >= 0, 1)
        & np.all(np.abs(lep["eta"]) < LEPTON_ETA_MAX, 1)
        & (lead > LEPTON_MIN_PT[0])
        & (sub > LEPTON_MIN_PT[1])
        & (lep["charge"][:, 0] * lep["charge"][:, 1] < 0)
    )


def match_b(jet_eta, jet_phi, jet_ok, b_eta, b_phi):
    """Match jets to b and bbar, each jet to at most one quark (the closer one wins).

    Args:
        jet_eta, jet_phi, jet_ok: (n, J) padded jets and their mask.
        b_eta, b_phi: (n, 2) generated b and bbar directions.
    Returns:
        (n, 2) jet index matched to b and bbar (-1 if none within MATCH_DR).
    """
    d = delta_r(jet_eta[:, :, None], jet_phi[:, :, None], b_eta[:, None], b_phi[:, None])
    d = np.where(jet_ok[:, :, None], d, np.inf)  # (n, J, 2)
    rows = np.arange(len(d))
    best = d.argmin(1)  # (n, 2)
    dbest = d[rows[:, None], best, [0, 1]]
    clash = (best[:, 0] == best[:, 1]) & np.all(dbest < MATCH_DR, 1)
    loser = np.where(dbest[:, 0] <= dbest[:, 1], 1, 0)
    d[rows[clash], best[clash, 0], loser[clash]] = np.inf
    best = d.argmin(1)
    dbest = d[rows[:, None], best, [0, 1]]
    return np.where(dbest < MATCH_DR, best, -1)


def pair_leading(jet_p4, lep_p4):
    """Assign the two leading jets to (b, bbar) by the smallest average m(l b).

    Args:
        jet_p4: (n, 2, 4) the two leading jets; lep_p4: (n, 2, 4) leptons (l-, l+).
    Returns:
        (n, 2) jet slots (0 or 1) taken as b and bbar.
    """

    def mass(a, b):
        return kinematics(a + b)[3]

    # t -> b l+ nu and tbar -> bbar l- nubar
    straight = mass(jet_p4[:, 0], lep_p4[:, 1]) + mass(jet_p4[:, 1], lep_p4[:, 0])
    swapped = mass(jet_p4[:, 1], lep_p4[:, 1]) + mass(jet_p4[:, 0], lep_p4[:, 0])
    return np.where((straight <= swapped)[:, None], [0, 1], [1, 0])


def p4_from(pt, eta, phi, mass):
    px, py, pz = pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta)
    return np.stack([px, py, pz, np.sqrt(px**2 + py**2 + pz**2 + mass**2)], -1)


def reconstruct(rec, py, rng, truth):
    """Reconstruct and select one batch.

    Args:
        rec: `FlatRecord` of the batch.
        py: the Pythia instance (particle data for the charges of tau decay products).
        rng: numpy Generator for the detector.
        truth: `ttbar_dilepton.truth_indices(rec)`.
    Returns:
        dict of columns for the selected events (see the module doc); collections are dicts
        with `_counts` and flat arrays (`ditau_output` conventions).
    """
    n = rec.n_events
    lep_idx = prompt_leptons(rec, truth, py)
    lep = _smear_leptons(rng, rec, lep_idx)
    ev_lep = np.nonzero(select_leptons(lep, lep_idx))[0]
    # visible final state without neutrinos and prompt leptons, clustered per selected event
    pt_all, eta_all, _, _ = kinematics(rec.p4)
    seen = rec.is_final & ~td.is_neutrino(rec.id) & (np.abs(eta_all) < cms.VISIBLE_ETA_MAX)
    visible = seen.copy()
    visible[lep_idx[lep_idx >= 0]] = False
    use = np.nonzero(visible & np.isin(rec.event, ev_lep))[0]
    new_event = np.searchsorted(ev_lep, rec.event[use])
    jets, constituents = cluster(rec.p4[use], new_event, len(ev_lep), min_pt=JET_MET_MIN_PT)
    jet_p4 = np.stack(
        [ak.to_numpy(ak.flatten(getattr(jets, c))) for c in ("px", "py", "pz", "E")], 1
    ).reshape(-1, 4)
    jet_event = np.repeat(np.arange(len(ev_lep)), ak.to_numpy(ak.num(jets)))
    jpt, jeta, jphi, jm = kinematics(jet_p4)
    rpt, reta, rphi, rsig = cms.smear_jets(rng, jpt, jeta, jphi)
    rmass = jm * rpt / np.maximum(jpt, 1e-9)
    # MET: leptons and all jets above JET_MET_MIN_PT as objects, the rest as recoil
    in_jet = np.zeros(len(use), bool)
    in_jet[ak.to_numpy(ak.flatten(constituents, axis=None)).astype(np.int64)] = True
    rest = use[~in_jet]
    rest_event = np.searchsorted(ev_lep, rec.event[rest])
    recoil = _sum_by(rest_event, rec.p4[rest, :2], len(ev_lep))
    sum_et = np.bincount(rest_event, weights=pt_all[rest], minlength=len(ev_lep))
    lead = {
        "pt": lep["pt"][ev_lep],
        "phi": lep["phi"][ev_lep],
        "rel_sigma_pt": lep["rel"][ev_lep],
        "sigma_phi": np.full((len(ev_lep), 2), LEPTON_SIGMA_PHI),
    }
    objects = met_reco.object_table(lead, jet_event, rpt, rphi, rsig, len(ev_lep))
    met = met_reco.reconstruct_met(rng, objects, recoil, sum_et)
    gen_vis = _sum_by(rec.event[seen], rec.p4[seen, :2], n)
    met["GenMET_pt"], met["GenMET_phi"] = met_reco.pt_phi(-gen_vis[ev_lep, 0], -gen_vis[ev_lep, 1])
    # selected jets and the final selection
    good = (rpt > JET_MIN_PT) & (np.abs(reta) < JET_ETA_MAX)
    n_good = np.bincount(jet_event[good], minlength=len(ev_lep))
    keep = n_good >= 2
    events = ev_lep[keep]
    jet_rows = good & keep[jet_event]
    jet_ev = np.searchsorted(events, ev_lep[jet_event[jet_rows]])
    jets_out = {
        "pt": rpt[jet_rows],
        "eta": reta[jet_rows],
        "phi": rphi[jet_rows],
        "mass": rmass[jet_rows],
    }
    met = {k: np.asarray(v, np.float64)[keep] for k, v in met.items()}
    return _columns(rec, truth, lep, lep_idx, events, jet_ev, jets_out, met)


def _columns(rec, truth, lep, lep_idx, events, jet_ev, jets, met):
    n = len(events)
    cols = {"event": events.astype(np.int64)}
    ev2 = np.repeat(np.arange(n), 2)
    slot = np.tile([0, 1], n)
    get = {k: v[events].ravel() for k, v in lep.items()}
    for name, fl in (("Muon", 13), ("Electron", 11)):
        s = get["flavour"] == fl
        cols[name], _ = collection(
            ev2[s],
            n,
            get["pt"][s],
            pt=get["pt"][s],
            eta=get["eta"][s],
            phi=get["phi"][s],
            mass=get["mass"][s],
            charge=get["charge"][s].astype(np.int32),
            genLepIdx=slot[s].astype(np.int32),
        )
    jet, _ = collection(jet_ev, n, jets["pt"], **jets)
    # padded (n, J) view of the pT-ordered jets for matching and pairing
    counts = jet["_counts"]
    width = max(int(counts.max()) if n else 0, 2)
    pos = np.arange(len(jet["pt"])) - np.repeat(np.cumsum(counts) - counts, counts)
    row = np.repeat(np.arange(n), counts)
    pad = {f: np.zeros((n, width)) for f in ("pt", "eta", "phi", "mass")}
    for f, arr in pad.items():
        arr[row, pos] = jet[f]
    ok = np.zeros((n, width), bool)
    ok[row, pos] = True
    b_last = np.where(truth["b_last"] >= 0, truth["b_last"], truth["b"])[events]
    _, beta, bphi, _ = kinematics(rec.p4[b_last])
    matched = match_b(pad["eta"], pad["phi"], ok, beta, bphi)
    gen_b = np.full((n, width), -1, np.int64)
    for k in (0, 1):
        has = matched[:, k] >= 0
        gen_b[np.nonzero(has)[0], matched[has, k]] = k
    jet["genBIdx"] = gen_b[row, pos].astype(np.int32)
    cols["Jet"] = jet
    both = np.all(matched >= 0, 1)
    jp4 = p4_from(pad["pt"][:, :2], pad["eta"][:, :2], pad["phi"][:, :2], pad["mass"][:, :2])
    lp4 = p4_from(lep["pt"][events], lep["eta"][events], lep["phi"][events], lep["mass"][events])
    bjets = np.where(both[:, None], matched, pair_leading(jp4, lp4))
    cols["TTbar_bJetIdx"] = bjets[:, 0].astype(np.int32)
    cols["TTbar_bbarJetIdx"] = bjets[:, 1].astype(np.int32)
    cols["TTbar_bPairing"] = np.where(both, 0, 1).astype(np.int32)
    cols.update(met)
    for key in TRUTH:
        idx = truth[key][events].ravel()
        pt, eta, phi, mass = kinematics(rec.p4[idx])
        cols[TRUTH_NAMES[key]], _ = collection(
            ev2, n, None, pt=pt, eta=eta, phi=phi, mass=mass, pdgId=rec.id[idx].astype(np.int32)
        )
    return cols
