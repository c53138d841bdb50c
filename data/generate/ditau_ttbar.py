"""ttbar background for TPMT: tau candidates are jets faking tau_h, plus prompt e/mu from W.

Seed 000: fake candidates must match (Delta R < 0.4) a top daughter (b or W decay product);
their regression target is their reconstructed pT.
"""

import numpy as np

from data.detector import cms
from data.generate import tau_decays as td
from data.generate.pythia import bottom_copy, daughters
from data.reco.jets import cluster
from data.reco.taus import tau_candidates_from_jets

MATCH_DR = 0.4
MIN_PT = 20.0


def _last_signed(rec, pid):
    out = np.full(rec.n_events, -1, dtype=np.int64)
    where = np.nonzero(rec.id == pid)[0]
    out[rec.event[where]] = where
    return out


def _top_daughters(rec):
    """(n, 6) global indices of b, bbar and the four W decay products, and their type."""
    parts, types = [], []
    for pid in (6, -6):
        top = bottom_copy(rec, _last_signed(rec, pid))
        dau = daughters(rec, np.maximum(top, 0))
        is_w = np.abs(rec.id[np.maximum(dau, 0)]) == 24
        w = np.where(is_w[:, 0], dau[:, 0], dau[:, 1])
        b = np.where(is_w[:, 0], dau[:, 1], dau[:, 0])
        wdau = daughters(rec, np.maximum(bottom_copy(rec, w), 0))
        parts += [b, wdau[:, 0], wdau[:, 1]]
        types += [1, 2, 2]
    return np.stack(parts, 1), np.array(types)


def _delta_r(eta1, phi1, eta2, phi2):
    return np.hypot(eta1 - eta2, cms.wrap_phi(phi1 - phi2))


def fake_legs(rec, charge, rng):
    """Select a tau pair per event from fake tau_h and prompt leptons (see module doc)."""
    from data.generate.ditau_events import kinematics

    n = rec.n_events
    partons, ptypes = _top_daughters(rec)
    _, p_eta, p_phi, _ = kinematics(rec.p4[np.maximum(partons, 0)])
    # prompt leptons: W -> e/mu, followed through their radiation copies to the final one
    lep = bottom_copy(
        rec,
        np.where(np.isin(np.abs(rec.id[np.maximum(partons, 0)]), (11, 13)), partons, -1).ravel(),
    )
    lep = lep[(lep >= 0) & rec.is_final[np.maximum(lep, 0)]]
    visible = rec.is_final & ~td.is_neutrino(rec.id)
    _, eta_all, _, _ = kinematics(rec.p4)
    visible &= np.abs(eta_all) < cms.VISIBLE_ETA_MAX
    visible[lep] = False
    use = np.nonzero(visible)[0]
    jets, constituents = cluster(rec.p4[use], rec.event[use], n, min_pt=MIN_PT)
    cand = tau_candidates_from_jets(jets, constituents, rec.p4[use], charge[use], rec.id[use])
    cpt, ceta, cphi, cmass = kinematics(cand["p4"])
    cpt_reco = cpt * cms.tau_response(rng, cpt.shape)
    ok = cand["is_candidate"] & (cpt_reco > MIN_PT) & (np.abs(ceta) < cms.TAU_ETA_MAX)
    ev = cand["event"]
    dr = _delta_r(ceta[:, None], cphi[:, None], p_eta[ev], p_phi[ev])
    match = np.where(dr.min(1) < MATCH_DR, ptypes[dr.argmin(1)], 0)
    ok &= match > 0
    # leptons: smeared, in acceptance
    lpt, leta, lphi, lmass = kinematics(rec.p4[lep])
    laid = np.abs(rec.id[lep])
    lpt_reco = np.where(
        laid == 13, cms.smear_lepton_pt(rng, lpt, leta, 13), cms.smear_lepton_pt(rng, lpt, leta, 11)
    )
    lok = (lpt_reco > MIN_PT) & (np.abs(leta) < cms.LEPTON_ETA_MAX)
    lev = rec.event[lep]

    legs = _empty_legs(n)
    tau_rows = np.nonzero(ok)[0]
    lep_rows = np.nonzero(lok)[0]
    tau_by_event = np.split(tau_rows, np.searchsorted(ev[tau_rows], np.arange(1, n)))
    lep_by_event = np.split(lep_rows, np.searchsorted(lev[lep_rows], np.arange(1, n)))
    members, pf_idx, pf_leg = cand["members"], [], []
    lcharge = -np.sign(rec.id[lep])  # e-/mu- have positive PDG ids
    for e in range(n):
        taus = tau_by_event[e]
        taus = taus[np.argsort(-cpt_reco[taus])]
        pair = None
        for flavour in (13, 11):  # mu-tauh, then e-tauh, then tauh-tauh (CMS priority)
            for li in lep_by_event[e][laid[lep_by_event[e]] == flavour]:
                os_taus = taus[cand["charge"][taus] == -lcharge[li]]
                if len(os_taus):
                    pair = ("lep", li, os_taus[0])
                    break
            if pair:
                break
        if pair is None and len(taus) >= 2:
            os_taus = taus[cand["charge"][taus] == -cand["charge"][taus[0]]]
            if len(os_taus):
                pair = ("tau", taus[0], os_taus[0])
        if pair is None:
            continue
        legs["valid"][e] = True
        for slot, row in ((0, pair[1]), (1, pair[2])):
            is_tau = slot == 1 or pair[0] == "tau"
            if is_tau:
                _fill(
                    legs,
                    e,
                    slot,
                    cpt_reco[row],
                    ceta[row],
                    cphi[row],
                    cmass[row],
                    cand["charge"][row],
                    td.HADRONIC,
                    td.hps_decay_mode(cand["n_charged"][row], (cand["n_photons"][row] + 1) // 2),
                    match[row],
                    cand["p4"][row],
                    cms.TAU_RESPONSE["sigma"],
                    in_met=False,
                )
                pf_idx.append(use[np.asarray(members[row])])
                pf_leg.append(np.full(len(members[row]), 2 * e + slot))
            else:
                kind = td.MUON if laid[row] == 13 else td.ELECTRON
                rel = cms.lepton_resolution(lpt[row : row + 1], leta[row : row + 1], laid[row])[0]
                _fill(
                    legs,
                    e,
                    slot,
                    lpt_reco[row],
                    leta[row],
                    lphi[row],
                    lmass[row],
                    lcharge[row],
                    kind,
                    -1,
                    2,
                    rec.p4[lep[row]],
                    rel,
                    in_met=True,
                )
    # prompt leptons that are no leg go back into the recoil (they are not clustered)
    used = np.zeros(len(lep), bool)
    for e in np.nonzero(legs["valid"])[0]:
        for s in (0, 1):
            if legs["kind"][e, s] != td.HADRONIC:
                used |= (lev == e) & np.all(rec.p4[lep] == legs["true_p4"][e, s], axis=1)
    legs["extra_recoil"] = np.zeros((n, 2))
    np.add.at(legs["extra_recoil"], lev[~used], rec.p4[lep[~used], :2])
    legs["pf_idx"] = np.concatenate(pf_idx) if pf_idx else np.zeros(0, np.int64)
    legs["pf_leg"] = np.concatenate(pf_leg) if pf_leg else np.zeros(0, np.int64)
    legs["excluded"] = lep
    legs["gen"] = None
    return legs


def _empty_legs(n):
    def z(dtype=float):
        return np.zeros((n, 2), dtype)

    return dict(
        valid=np.zeros(n, bool),
        pt=z(),
        eta=z(),
        phi=z(),
        mass=z(),
        rel_sigma=z(),
        charge=z(np.int64),
        kind=z(np.int64),
        decay_mode=z(np.int64) - 1,
        gen_tau=z(np.int64) - 1,
        top_match=z(np.int64),
        true_p4=np.zeros((n, 2, 4)),
        in_met=z(bool),
    )


def _fill(legs, e, s, pt, eta, phi, mass, q, kind, dm, match, p4, rel, in_met):
    for key, val in (
        ("pt", pt),
        ("eta", eta),
        ("phi", phi),
        ("mass", mass),
        ("charge", q),
        ("kind", kind),
        ("decay_mode", dm),
        ("top_match", match),
        ("rel_sigma", rel),
        ("in_met", in_met),
    ):
        legs[key][e, s] = val
    legs["true_p4"][e, s] = p4
