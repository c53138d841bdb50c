"""Anti-kT jet clustering with fastjet's vectorised (awkward) interface."""

import awkward as ak
import numpy as np
import vector

vector.register_awkward()
_JETDEF = {}


def _jet_definition(radius, algorithm="antikt", p=-1.0):
    import fastjet

    key = (radius, algorithm, p)
    if key not in _JETDEF:
        if algorithm == "antikt":
            _JETDEF[key] = fastjet.JetDefinition(fastjet.antikt_algorithm, radius)
        else:  # e+e- generalised kT with angular distance (FCC-ee, partau.md 2.9)
            _JETDEF[key] = fastjet.JetDefinition(fastjet.ee_genkt_algorithm, radius, p)
    return _JETDEF[key]


def cluster(p4, event, n_events, *, radius=0.4, min_pt=15.0, algorithm="antikt", p=-1.0):
    """Cluster particles per event with anti-kT (or `algorithm="ee_genkt"` with exponent `p`).

    Args:
        p4: (n, 4) particle four-vectors (px, py, pz, E) to cluster, all events together.
        event: (n,) event number of each particle, sorted ascending.
        n_events: number of events (events with no particle get no jet).
        radius: jet radius R.
        min_pt: minimum jet pT in GeV.
    Returns:
        jets: awkward array (events -> jets) of Momentum4D (px, py, pz, E), pT-ordered.
        constituents: awkward array (events -> jets -> indices into `p4`).
    """
    import fastjet

    counts = np.bincount(event, minlength=n_events)
    flat = ak.zip(
        {"px": p4[:, 0], "py": p4[:, 1], "pz": p4[:, 2], "E": p4[:, 3]}, with_name="Momentum4D"
    )
    particles = ak.unflatten(flat, counts)
    sequence = fastjet.ClusterSequence(particles, _jet_definition(radius, algorithm, p))
    jets = sequence.inclusive_jets(min_pt=min_pt)
    local = sequence.constituent_index(min_pt=min_pt)
    # fastjet returns jets in clustering order: sort by pT and shift local indices to global.
    order = ak.argsort(jets.pt, axis=1, ascending=False)
    jets, local = jets[order], local[order]
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    constituents = local + starts[:, None]
    return jets, constituents
