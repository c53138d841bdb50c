"""From a flat Pythia record to reconstructed, selected di-tau events (columns for ROOT).

Selection of seed 000: two opposite-charge candidates with reco pT > 20 GeV in acceptance
(tau_h |eta| < 2.3, e/mu |eta| < 2.4), channels tauh-tauh, mu-tauh, e-tauh.
"""

import awkward as ak
import numpy as np

from data.detector import cms
from data.generate import tau_decays as td
from data.generate.pythia import ChargeTable, ancestor_owner, bottom_copy, daughters, last_of_id
from data.reco import met as met_reco
from data.reco.jets import cluster

MIN_PT = 20.0
JET_MIN_PT = 20.0
JET_MET_MIN_PT = 15.0  # jets entering MET as objects (type-1 like); the rest is recoil
TAU_SIGMA_PHI = 0.002  # rad, "a few mrad" (ditau.md 5.1)
_CHARGES = {}


def kinematics(p4):
    """(pt, eta, phi, mass) of (..., 4) four-vectors (px, py, pz, E)."""
    pt = np.hypot(p4[..., 0], p4[..., 1])
    eta = np.arcsinh(p4[..., 2] / np.maximum(pt, 1e-9))
    phi = np.arctan2(p4[..., 1], p4[..., 0])
    m2 = p4[..., 3] ** 2 - (p4[..., :3] ** 2).sum(-1)
    return pt, eta, phi, np.sqrt(np.maximum(m2, 0.0))


def _charge_table(py):
    if id(py) not in _CHARGES:
        _CHARGES[id(py)] = ChargeTable(py)
    return _CHARGES[id(py)]


def _sum_by(labels, p4, n):
    return np.stack([np.bincount(labels, weights=p4[:, k], minlength=n) for k in range(4)], 1)


def reconstruct(rec, py, rng, *, boson, process):
    """Reconstruct and select one batch; returns a dict of columns for the selected events."""
    charge = _charge_table(py)(rec.id)
    if boson is None:
        from data.generate import ditau_ttbar

        legs = ditau_ttbar.fake_legs(rec, charge, rng)
    else:
        legs = genuine_legs(rec, charge, rng, boson)
    return finish(rec, charge, rng, legs, process)


def genuine_legs(rec, charge, rng, boson_id):
    """The two taus of a boson decay, their truth and their reconstructed visible legs."""
    n = rec.n_events
    iboson = last_of_id(rec, [boson_id])
    dau = daughters(rec, np.maximum(iboson, 0))
    valid = (iboson >= 0) & np.all(np.abs(rec.id[np.maximum(dau, 0)]) == 15, axis=1)
    taus = bottom_copy(rec, np.where(valid[:, None], dau, -1).ravel()).reshape(n, 2)
    labels = np.arange(2 * n).reshape(n, 2)
    owner = ancestor_owner(rec, taus[valid].ravel(), labels[valid].ravel())
    info = td.classify(rec, charge, owner, 2 * n)
    fin = np.nonzero(rec.is_final & (owner >= 0))[0]
    nu = td.is_neutrino(rec.id[fin])
    vis_p4 = _sum_by(owner[fin[~nu]], rec.p4[fin[~nu]], 2 * n)
    nu_p4 = _sum_by(owner[fin[nu]], rec.p4[fin[nu]], 2 * n)
    tau_p4 = rec.p4[np.maximum(taus.ravel(), 0)]
    kind = info["kind"]
    had = kind == td.HADRONIC
    # reconstructed legs: tau_h = visible x response; e/mu = the smeared lepton
    lep_p4 = rec.p4[np.maximum(info["lepton_index"], 0)]
    leg_src = np.where(had[:, None], vis_p4, lep_p4)
    pt, eta, phi, mass = kinematics(leg_src)
    reco_pt = pt * cms.tau_response(rng, pt.shape)
    rel_sigma = np.where(had, cms.TAU_RESPONSE["sigma"], 0.0)
    for flavour, k in ((13, td.MUON), (11, td.ELECTRON)):
        sel = kind == k
        reco_pt[sel] = cms.smear_lepton_pt(rng, pt[sel], eta[sel], flavour)
        rel_sigma[sel] = cms.lepton_resolution(pt[sel], eta[sel], flavour)
    # PF candidates: the visible decay products of hadronic legs
    vis_idx = fin[~nu]
    pf_idx = vis_idx[had[owner[vis_idx]]]
    return dict(
        valid=valid,
        pt=reco_pt.reshape(n, 2),
        eta=eta.reshape(n, 2),
        phi=phi.reshape(n, 2),
        mass=mass.reshape(n, 2),
        rel_sigma=rel_sigma.reshape(n, 2),
        charge=-np.sign(rec.id[np.maximum(taus, 0)]),  # tau- has PDG id +15
        kind=kind.reshape(n, 2),
        decay_mode=info["decay_mode"].reshape(n, 2),
        gen_tau=np.where(valid[:, None], [0, 1], -1),
        top_match=np.zeros((n, 2), np.int64),
        true_p4=leg_src.reshape(n, 2, 4),  # what the detector saw, for the MET recoil
        pf_idx=pf_idx,
        pf_leg=owner[pf_idx],  # leg label 2*event + slot
        excluded=fin,  # particles that are not clustered into jets
        in_met=np.ones((n, 2), bool),
        extra_recoil=np.zeros((n, 2)),
        gen=dict(
            tau_p4=tau_p4.reshape(n, 2, 4),
            vis_p4=vis_p4.reshape(n, 2, 4),
            nu_p4=nu_p4.reshape(n, 2, 4),
            kind=kind.reshape(n, 2),
            decay_mode=info["decay_mode"].reshape(n, 2),
            has_k0=info["has_k0"].reshape(n, 2),
            boson_mass=np.where(valid, kinematics(rec.p4[np.maximum(iboson, 0)])[3], -1.0),
        ),
    )


def select(legs):
    """Seed-000 selection on legs; returns (pass mask, channel code) per event."""
    kind, pt, eta = legs["kind"], legs["pt"], np.abs(legs["eta"])
    had = kind == td.HADRONIC
    in_acc = (pt > MIN_PT) & np.where(had, eta < cms.TAU_ETA_MAX, eta < cms.LEPTON_ETA_MAX)
    n_had = had.sum(1)
    n_mu = (kind == td.MUON).sum(1)
    channel = np.select(
        [n_had == 2, (n_had == 1) & (n_mu == 1), (n_had == 1) & (n_mu == 0)], [0, 1, 2], -1
    )
    os_ = legs["charge"][:, 0] * legs["charge"][:, 1] < 0
    ok = legs["valid"] & in_acc.all(1) & (channel >= 0) & os_
    return ok, channel


def finish(rec, charge, rng, legs, process):
    """Select events, cluster jets, build MET and assemble output columns."""
    from data.generate.ditau_output import assemble

    ok, channel = select(legs)
    events = np.nonzero(ok)[0]
    p4 = rec.p4
    pt_all, eta_all, _, _ = kinematics(p4)
    # everything a detector sees; GenMET is minus its sum
    visible = rec.is_final & ~td.is_neutrino(rec.id) & (np.abs(eta_all) < cms.VISIBLE_ETA_MAX)
    final = visible & np.isin(rec.event, events)
    final[legs["excluded"]] = False
    use = np.nonzero(final)[0]
    new_event = np.searchsorted(events, rec.event[use])
    jets, constituents = cluster(p4[use], new_event, len(events), min_pt=JET_MET_MIN_PT)
    jet_p4 = np.stack(
        [ak.to_numpy(ak.flatten(getattr(jets, c))) for c in ("px", "py", "pz", "E")], 1
    )
    n_jets = ak.to_numpy(ak.num(jets))
    jet_event = np.repeat(np.arange(len(events)), n_jets)
    jpt, jeta, jphi, jm = kinematics(jet_p4)
    rpt, reta, rphi, rsig = cms.smear_jets(rng, jpt, jeta, jphi)
    # the unclustered recoil: visible particles in no jet and in no leg
    in_jet = np.zeros(len(use), bool)
    in_jet[ak.to_numpy(ak.flatten(constituents, axis=None))] = True
    rest = use[~in_jet]
    rest_event = np.searchsorted(events, rec.event[rest])
    recoil = _sum_by(rest_event, p4[rest], len(events))[:, :2] + legs["extra_recoil"][events]
    sum_et = np.bincount(rest_event, weights=pt_all[rest], minlength=len(events))
    lead = {
        "pt": legs["pt"][events] * legs["in_met"][events],
        "phi": legs["phi"][events],
        "rel_sigma_pt": legs["rel_sigma"][events],
        "sigma_phi": np.full((len(events), 2), TAU_SIGMA_PHI),
    }
    objects = met_reco.object_table(lead, jet_event, rpt, rphi, rsig, len(events))
    met = met_reco.reconstruct_met(rng, objects, recoil, sum_et)
    gen_vis = _sum_by(rec.event[visible], p4[visible], rec.n_events)[events]
    met["GenMET_pt"], met["GenMET_phi"] = met_reco.pt_phi(-gen_vis[:, 0], -gen_vis[:, 1])
    jets_out = dict(
        event=jet_event, pt=rpt, eta=reta, phi=rphi, mass=jm * rpt / np.maximum(jpt, 1e-9)
    )
    return assemble(rec, charge, rng, legs, events, channel[events], jets_out, met, process)
