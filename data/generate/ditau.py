"""X -> tautau samples for TPMT: Pythia8 events, CMS-like detector, seed-000 selection.

Processes (13.6 TeV): `flat` (ggH + VBF H -> tautau, boson mass flat in 30-300 GeV), `h125`
(ggH + VBF at 125 GeV), `dy` (Z/gamma* -> tautau, mHat > 50 GeV), `ttbar` (inclusive, taus are
jets faking tau_h, matched to top daughters), `bsm350` (ggH + bbH-like scalar at 350 GeV),
`flatz` (qqbar -> Z -> tautau with the Z mass flat in 30-300 GeV: the vector counterpart of
`flat`; Pythia's TauDecays gives its taus the Z's helicity correlations, not the scalar's).
"""

import numpy as np

from data.detector import cms
from data.ditau import PROCESSES  # the process codes written to the files
from data.generate import ditau_events, ditau_output, redecay
from data.generate.batches import Timing, collect, subseed  # noqa: F401  (Timing re-exported)
from data.generate.pythia import make_pythia, reinit

FLAT_MASS_RANGE = (30.0, 300.0)
MAX_SMEARINGS = 16  # event numbers: (event in batch) * S + pass must stay below 2^20
EVENTS_PER_MASS_POINT = 250  # re-initialising Pythia costs ~0.3 s, ~15% of a point's time

_GGH = ("HiggsSM:gg2H = on",)
_VBF = ("HiggsSM:ff2Hff(t:WW) = on", "HiggsSM:ff2Hff(t:ZZ) = on")
_BBH = ("HiggsSM:gg2Hbbbar = on", "HiggsSM:qqbar2Hbbbar = on")
_DY = (
    "WeakSingleBoson:ffbar2gmZ = on",
    "WeakZ0:gmZmode = 0",
    "23:onMode = off",
    "23:onIfAny = 15",
    "PhaseSpace:mHatMin = 50.",
)
# Z only (no photon), so the mass point is the Z's and the taus carry its V-A correlations
_FLATZ = (
    "WeakSingleBoson:ffbar2gmZ = on",
    "WeakZ0:gmZmode = 2",
    "23:onMode = off",
    "23:onIfAny = 15",
)
_TTBAR = ("Top:gg2ttbar = on", "Top:qqbar2ttbar = on")


def higgs_decay(mass):
    """A narrow scalar of `mass` GeV decaying only to tau pairs (ditau.md 4.2)."""
    return (
        "25:onMode = off",
        "25:onIfAny = 15",
        f"25:m0 = {mass:.4f}",
        "25:mWidth = 0.01",
        "25:doForceWidth = on",
        f"25:mMin = {max(mass - 1.0, 1.0):.4f}",
        f"25:mMax = {mass + 1.0:.4f}",
    )


def z_decay(mass):
    """A narrow Z of `mass` GeV (SM couplings) decaying only to tau pairs; the phase-space
    window follows the mass, since mHat is the Z's mass in this 2 -> 1 process."""
    window = (max(mass - 1.0, 1.0), mass + 1.0)
    return (
        f"23:m0 = {mass:.4f}",
        "23:mWidth = 0.01",
        "23:doForceWidth = on",
        f"23:mMin = {window[0]:.4f}",
        f"23:mMax = {window[1]:.4f}",
        f"PhaseSpace:mHatMin = {window[0]:.4f}",
        f"PhaseSpace:mHatMax = {window[1]:.4f}",
    )


# flat-mass processes: (production modes, boson id, decay settings at a mass point)
FLAT_PROCESSES = {"flat": ((_GGH, _VBF), 25, higgs_decay), "flatz": ((_FLATZ,), 23, z_decay)}


def streams(process):
    """(production settings, boson mass or None) alternatives for fixed-mass processes."""
    return {
        "h125": [(_GGH + higgs_decay(125.0), 25), (_VBF + higgs_decay(125.0), 25)],
        "bsm350": [(_GGH + higgs_decay(350.0), 25), (_BBH + higgs_decay(350.0), 25)],
        "dy": [(_DY, 23)],
        "ttbar": [(_TTBAR, None)],
    }[process]


def generate(
    process,
    n_events,
    seed,
    *,
    worker=0,
    batch_size=250,
    tau_decays=1,
    smearings=1,
    progress=None,
    timing=None,
):
    """Generate `n_events` selected events of `process`.

    Args:
        process: a key of PROCESSES.
        n_events: number of events that pass the selection (generation continues until then).
        seed: random seed; (seed, worker) fixes everything.
        worker: index of this worker (separate random streams per worker).
        batch_size: events per Pythia batch.
        tau_decays: decays of each generated tau pair (K, see `redecay`); 1 = Pythia's inline
            decays (the reference path); K > 1 only for the boson processes (not ttbar).
        smearings: detector passes per generated (and decayed) event, S: an augmentation
            (see `smeared_copies`); 1 = one detector response per event (the reference).
        progress: optional callable(n) called with the number of newly selected events.
        timing: optional `Timing` to fill.
    Returns:
        dict of columns (see `ditau_output.assemble`), exactly `n_events` long.
    """
    rng = np.random.default_rng([seed, worker, PROCESSES[process]])
    if not 1 <= smearings <= MAX_SMEARINGS:
        raise ValueError(f"smearings must be between 1 and {MAX_SMEARINGS}, got {smearings}")
    instances, current = {}, {}
    if tau_decays > 1 and process == "ttbar":
        raise ValueError("tau_decays > 1 needs a boson decaying to taus (not ttbar)")
    undecayed = redecay.UNDECAYED if tau_decays > 1 else ()
    decayer = redecay.TauDecayer(subseed(seed, worker, 99_991)) if tau_decays > 1 else None

    def next_batch(point):
        if process in FLAT_PROCESSES:
            # one instance per production mode, re-initialised at each new mass point
            modes, boson, decay = FLAT_PROCESSES[process]
            k = point % len(modes)
            mass = float(rng.uniform(*FLAT_MASS_RANGE))
            if k not in instances:
                instances[k] = make_pythia(modes[k] + undecayed, subseed(seed, worker, point))
            reinit(instances[k], decay(mass), subseed(seed, worker, point))
            current.update(py=instances[k], boson=boson)
            return instances[k].nextBatch(EVENTS_PER_MASS_POINT, "skip")
        options = streams(process)
        k = point % len(options)
        settings, boson = options[k]
        if k not in instances:
            instances[k] = make_pythia(settings + undecayed, subseed(seed, worker, k))
        current.update(py=instances[k], boson=boson)
        return instances[k].nextBatch(batch_size, "skip")

    def reconstruct(rec):
        if decayer is not None:
            keep = _could_pass(rec, current["boson"])
            rec, _ = redecay.redecay(
                rec, decayer, current["boson"], tau_decays, keep, copy_filter=_copy_could_pass
            )
        return smeared_copies(
            lambda: ditau_events.reconstruct(
                rec, current["py"], rng, boson=current["boson"], process=PROCESSES[process]
            ),
            smearings,
        )

    return collect(
        next_batch, reconstruct, n_events, worker=worker, timing=timing, progress=progress
    )


def smeared_copies(reconstruct, smearings):
    """`smearings` detector passes over the same generated events, one column dict.

    Why it is unbiased: every pass draws the detector response (tau_h response, lepton, jet
    and MET smearing, fake legs) afresh from the detector model for the same particles, so each
    copy is an exact draw of (reconstructed event | generated event), like a separate event;
    copies share everything at generator level, so S copies carry far less information than S
    events and training uses them only when asked (`models.tpmt.fit --smearings`). Each event
    gets a `smearing` column (0 .. S-1: which pass) and the event number event * S + pass, so
    (event, smearing) stays unique; copy 0 alone is a sample of independent events.
    """
    copies = []
    for s in range(smearings):
        cols = reconstruct()
        cols["smearing"] = np.full(len(cols["event"]), s, np.int32)
        cols["event"] = cols["event"] * smearings + s
        copies.append(cols)
    if smearings == 1:
        return copies[0]
    cols = ditau_output.concatenate(copies)
    # the passes of one event next to each other, so that a batch cut to the requested number
    # of events keeps whole groups and wastes no pass
    return ditau_output.take(cols, np.argsort(cols["event"], kind="stable"))


def _copy_could_pass(vis_p4, leptonic):
    """Decayed tau pairs whose legs could pass the selection (exact bound: the reco pT is at
    most the tau_h response cap times the visible pT; e/mu smearing never reaches it)."""
    pt = np.hypot(vis_p4[..., 0], vis_p4[..., 1])
    eta = np.arcsinh(vis_p4[..., 2] / np.maximum(pt, 1e-9))
    eta_max = np.where(leptonic, cms.LEPTON_ETA_MAX, cms.TAU_ETA_MAX)
    leg_ok = (pt * cms.TAU_RESPONSE_RANGE[1] > ditau_events.MIN_PT) & (np.abs(eta) < eta_max)
    return leg_ok.all(1) & ~leptonic.all(1)


def _could_pass(rec, boson):
    """Events whose boson tau pair could pass the selection for some decay (exact bound)."""
    pair, _, taus = redecay.boson_taus(rec, boson)
    ok = redecay.could_pass(
        rec.p4[np.maximum(taus, 0)],
        min_vis_pt=ditau_events.MIN_PT,
        max_response=cms.TAU_RESPONSE_RANGE[1],
        max_abs_eta=max(cms.TAU_ETA_MAX, cms.LEPTON_ETA_MAX),
    )
    return pair & ok.all(1)
