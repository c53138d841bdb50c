"""Phase-2-like CMS particle-flow response at high pileup (met_l1.md section 7).

A parametric particle flow in the spirit of the Delphes CMS Phase-II card that the MET seed's
dataset used: charged particles inside the tracker acceptance become tracks (efficiency,
momentum and z0 resolution); everything else that is visible reaches the calorimeters and
becomes a neutral candidate (photon, neutral hadron, or HF hadron / EM) with the calorimeter
energy resolution and a transverse-momentum threshold. A primary vertex is found from the
tracks, and every track further than `DELTA_Z_CUT` from it is flagged `IsRecoPU`.
All functions take numpy arrays and a `numpy.random.Generator`.
"""

import numpy as np

# --- Tracker ----------------------------------------------------------------------------
TRACK_ETA_MAX = 2.5  # Phase-2 PUPPI "central" region / tracker used for charged PF (met_l1.md 3.2)
# Below ~0.5 GeV tracks curl up in 3.8 T and PF keeps few of them; this also sets the
# multiplicity at PU200 near the seed's ~10k candidates (about 36 candidates per interaction).
TRACK_PT_MIN = 0.5
# Delphes tracking efficiency (met_l1.md 7.1): 97% for |eta| < 1.2, 87% for 1.2-2.5
TRACK_EFF = ((1.2, 0.97), (2.5, 0.87))
# sigma(pT)/pT = sqrt(a^2 + (b pT)^2): ~0.5% central at low pT, ~1.8% near |eta| = 2 (met_l1.md
# 7.1, Delphes trackMomentumResolution.tcl); the pT slopes b are assumptions of this model.
TRACK_RES = ((1.2, 0.005, 1.5e-4), (2.0, 0.010, 3.0e-4), (np.inf, 0.018, 5.0e-4))
# --- Calorimeters (Delphes Phase-II, met_l1.md 7.3); sigma_E = sqrt((cE)^2 + s^2 E + n^2)
CALO_ETA_MAX = 5.0
ECAL_BARREL = (0.009, 0.12, 0.45)  # |eta| < 1.5
ECAL_ENDCAP = (0.007, 0.22, 0.0)  # HGCAL EM, 1.5 < |eta| < 3
HCAL = (0.05, 1.0, 0.0)  # 100%/sqrt(E) (+) 5%, |eta| < 3
HF = (0.11, 2.8, 0.0)  # 280%/sqrt(E) (+) 11%, 3 < |eta| < 5
HF_ETA_MIN = 3.0
NEUTRAL_PT_MIN = 0.5  # L1 ECAL cluster minimum (met_l1.md 7.3), applied to every neutral
# --- Vertexing
DELTA_Z_CUT = 0.1  # cm, Phase-2 HLT PUPPI DeltaZCut (met_l1.md 3.2)
PV_BIN = 0.05  # cm, histogram bin of the primary-vertex finder
PV_WINDOW = 2  # bins on each side summed around a bin (a 2.5 mm window)

# particle-flow candidate codes (CMS PF pdgId convention; HF hadron = 1, HF EM = 2)
CHARGED_HADRON, ELECTRON, MUON, PHOTON, NEUTRAL_HADRON, HF_HADRON, HF_EM = (
    211,
    11,
    13,
    22,
    130,
    1,
    2,
)


def _binned(abs_eta, table, column):
    """Value of `column` of an |eta|-binned table [(eta_max, ...), ...] per particle."""
    edges = np.array([row[0] for row in table])
    values = np.array([row[column] for row in table])
    return values[np.minimum(np.searchsorted(edges, abs_eta, side="right"), len(table) - 1)]


def track_sigma_z(pt, eta):
    """Track z0 resolution in cm (Delphes Phase-II parametrisation, met_l1.md 7.2).

    (-0.8 log10 pT + 1) * 10^(0.5|eta| + 1.5) um below 10 GeV, 0.2 * 10^(...) um above;
    about 30 um at eta = 0 and 1 GeV.
    """
    pt = np.maximum(pt, 0.1)
    scale = np.where(pt < 10.0, -0.8 * np.log10(pt) + 1.0, 0.2)
    return scale * 10.0 ** (0.5 * np.abs(eta) + 1.5) * 1e-4


def _calo_sigma(e, terms):
    c, s, n = terms
    return np.sqrt((c * e) ** 2 + s**2 * e + n**2)


def calo_sigma(e, abs_eta, em):
    """Calorimeter energy resolution sigma_E in GeV (EM or hadronic shower)."""
    ecal = np.where(abs_eta < 1.5, _calo_sigma(e, ECAL_BARREL), _calo_sigma(e, ECAL_ENDCAP))
    had = _calo_sigma(e, HCAL)
    central = np.where(em, ecal, had)
    return np.where(abs_eta < HF_ETA_MIN, central, _calo_sigma(e, HF))


def reconstruct(p, rng):
    """Particle flow from visible particles.

    Args:
        p: dict of flat arrays: px, py, pz, e, vz (cm), pdg, charge; any further arrays (truth
            flags, event index) are carried along for the kept candidates.
        rng: numpy Generator.
    Returns:
        dict of the candidates' flat arrays: px, py, eta (smeared), charge, pdgId (PF code), vz
        (measured track z0 in cm; 0 for neutrals), sigma_z (cm), plus the carried arrays, and
        `source` (index of the particle each candidate came from).
    """
    px, py, pz, e = (np.asarray(p[k], np.float64) for k in ("px", "py", "pz", "e"))
    pt = np.hypot(px, py)
    eta = np.arcsinh(pz / np.maximum(pt, 1e-9))
    aeta = np.abs(eta)
    charged = np.asarray(p["charge"]) != 0
    apdg = np.abs(np.asarray(p["pdg"]))
    in_tracker = charged & (aeta < TRACK_ETA_MAX) & (pt > TRACK_PT_MIN)
    tracked = in_tracker & (rng.random(len(pt)) < _binned(aeta, TRACK_EFF, 1))
    # tracks: pT smeared, direction kept
    rel = np.hypot(_binned(aeta, TRACK_RES, 1), _binned(aeta, TRACK_RES, 2) * pt)
    scale_trk = np.maximum(1.0 + rel * rng.standard_normal(len(pt)), 0.05)
    # calorimeter: energy smeared with the EM or hadronic resolution; muons leave no deposit
    em = (apdg == 22) | (apdg == 11)
    sig = calo_sigma(e, aeta, em)
    e_calo = np.maximum(e + sig * rng.standard_normal(len(e)), 0.0)
    scale_calo = e_calo / np.maximum(e, 1e-9)
    to_calo = ~tracked & (apdg != 13) & (aeta < CALO_ETA_MAX)
    calo_pt = pt * scale_calo
    neutral_kept = to_calo & (calo_pt > NEUTRAL_PT_MIN)
    keep = tracked | neutral_kept
    src = np.nonzero(keep)[0]
    trk = tracked[src]
    scale = np.where(trk, scale_trk[src], scale_calo[src])
    hf = aeta[src] >= HF_ETA_MIN
    code = np.where(
        trk,
        np.where(apdg[src] == 11, ELECTRON, np.where(apdg[src] == 13, MUON, CHARGED_HADRON)),
        np.where(em[src], np.where(hf, HF_EM, PHOTON), np.where(hf, HF_HADRON, NEUTRAL_HADRON)),
    )
    q = np.where(trk, np.asarray(p["charge"])[src], 0)
    # signed like PDG ids: pi+ 211, e- 11, mu- 13 (leptons carry the opposite sign of q)
    code = np.where(trk, code * np.where(code == CHARGED_HADRON, 1, -1) * np.sign(q), code)
    sz = np.where(trk, track_sigma_z(pt[src], eta[src]), 0.0)
    vz = np.where(trk, np.asarray(p["vz"])[src] + sz * rng.standard_normal(len(src)), 0.0)
    out = dict(
        px=px[src] * scale,
        py=py[src] * scale,
        eta=eta[src],
        charge=q.astype(np.int8),
        pdgId=code.astype(np.int32),
        vz=vz,
        sigma_z=sz,
        source=src,
    )
    for k, v in p.items():
        if k not in ("px", "py", "pz", "e", "vz", "pdg", "charge"):
            out[k] = np.asarray(v)[src]
    return out


def primary_vertex(
    vz, pt, charged, event, n_events, sigma_z=None, *, bin_width=PV_BIN, window=PV_WINDOW, power=2
):
    """Reconstructed primary-vertex z per event (cm): the sum-pT^2 peak of the track z0.

    Tracks are histogrammed in `PV_BIN` bins over |z| < 25 cm; the bin with the largest sum of
    pT^power (pT capped at 50 GeV; power 2 offline, 1 for the L1 histogram vertex) in a
    +-`window`-bin window wins, and the vertex is the mean
    z0 of the tracks in that window weighted with pT^2 / sigma_z^2 (`sigma_z` in cm; without
    it pT^2), so that precise tracks dominate. Events without tracks get z = 0.
    """
    n_bins = int(round(50.0 / bin_width))
    w = np.where(charged, np.minimum(pt, 50.0) ** power, 0.0)
    b = np.clip(((vz + 25.0) / bin_width).astype(np.int64), 0, n_bins - 1)
    hist = np.zeros((n_events, n_bins))
    np.add.at(hist, (event, b), w)
    cs = np.cumsum(np.pad(hist, ((0, 0), (window + 1, window))), axis=1)
    win = cs[:, 2 * window + 1 :] - cs[:, : -(2 * window + 1)]
    best = np.argmax(win, axis=1)
    near = charged & (np.abs(b - best[event]) <= window)
    if sigma_z is not None:
        w = w / np.maximum(np.asarray(sigma_z), 1e-4) ** 2
    sw = np.bincount(event, weights=np.where(near, w, 0.0), minlength=n_events)
    swz = np.bincount(event, weights=np.where(near, w * vz, 0.0), minlength=n_events)
    return np.where(sw > 0, swz / np.maximum(sw, 1e-12), 0.0)
