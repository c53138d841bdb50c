"""Named branch-name schemas: what a ROOT file holds and how the loaders read it.

- `hepformers`: the toolkit's own files (`python -m data.generate`): objects already selected
  at generation, tau decay products as `PFCand_*` with `PFCand_tauIdx`, generator truth.
- `nanoaod`: standard CMS NanoAOD (v5-v12): `Tau_*`, `Muon_*`, `Electron_*`, `Jet_*`, `MET_*`
  with identification branches, no PF candidates, no toolkit truth. Objects are selected here
  with named working points (`WorkingPoints`).
- `pfnano`: NanoAOD plus the PFNano candidate tables (`PFCands_*`, `JetPFCands_jetIdx`,
  `JetPFCands_pFCandsIdx`); a tau's decay products are the candidates of its jet
  (`Tau_jetIdx`) inside the HPS signal region.
- `auto` (the CLIs' default): pfnano or nanoaod when the file holds their marker branches
  (`MARKERS`: CMS files have run / luminosityBlock numbers), else hepformers.

A user's other ntuple: pass a `mapping` (canonical name -> name in the file) on top of the
schema that is closest.
"""

import dataclasses

import awkward as ak
import numpy as np

from data.errors import UserError

SCHEMAS = ("hepformers", "nanoaod", "pfnano")
CHOICES = ("auto", *SCHEMAS)
# branches that identify CMS files, in the order `detect` tries them; anything else is taken
# for the toolkit's own files (which have no run / luminosityBlock numbers)
MARKERS = {
    "pfnano": (
        "run",
        "luminosityBlock",
        "PFCands_pt",
        "JetPFCands_jetIdx",
        "JetPFCands_pFCandsIdx",
    ),
    "nanoaod": ("run", "luminosityBlock"),
}

# Tau identification against jets, newest first (NanoAOD names differ by version).
# (branch, kind, working points) with kind "bits" (bit i = WP i) or "level" (value >= WP).
_WP_NAMES = ("vvvloose", "vvloose", "vloose", "loose", "medium", "tight", "vtight", "vvtight")
TAU_ID_BRANCHES = (
    ("Tau_idDeepTau2018v2p5VSjet", "level", _WP_NAMES),  # v12+: 1 = VVVLoose ... 8 = VVTight
    ("Tau_idDeepTau2017v2p1VSjet", "bits", _WP_NAMES),  # v9-v11: bit 0 = VVVLoose
    ("Tau_idMVAoldDM2017v2", "bits", _WP_NAMES[1:]),  # v5-v8: bit 0 = VVLoose
    ("Tau_idMVAoldDM", "bits", _WP_NAMES[2:]),  # 2015/2016 files: bit 0 = VLoose
)
# Decay-mode finding: the HPS 1- and 3-prong modes (the 2-prong modes 5-7 are left out: the
# toolkit's training taus have none).
TAU_DECAY_MODES = (0, 1, 2, 10, 11)
# Muon ID (boolean branch) and relative PF isolation (cone 0.4) per working point.
# "iso": isolation only, for files whose ID flags were not filled (some Open Data NanoAODs).
MUON_WPS = {"loose": ("Muon_looseId", 0.25), "medium": ("Muon_mediumId", 0.15),
            "tight": ("Muon_tightId", 0.15), "iso": (None, 0.15)}  # fmt: skip
# Electron MVA ID (with isolation); v12 dropped "Fall17V2" from the name.
ELECTRON_WPS = {
    "wp90": ("Electron_mvaIso_WP90", "Electron_mvaFall17V2Iso_WP90"),
    "wp80": ("Electron_mvaIso_WP80", "Electron_mvaFall17V2Iso_WP80"),
}
ELECTRON_CUT_BASED = {"veto": 1, "loose": 2, "medium": 3, "tight": 4}  # Electron_cutBased
# Jet ID bitmask (Jet_jetId): bit 1 (value 2) tight, bit 2 (value 4) tight lepton veto.
JET_ID_BITS = {"tight": 2, "tightlepveto": 4}
# b taggers, newest first, with (loose, medium, tight) thresholds. They are era dependent: the
# values are the published ones of the era named (DeepJet / DeepCSV 2018 UL, ParticleNet 2022,
# CSVv2 2016); pass a number to --btag for another era.
BTAG_TAGGERS = (
    ("Jet_btagDeepFlavB", (0.0490, 0.2783, 0.7100)),
    ("Jet_btagPNetB", (0.047, 0.245, 0.6734)),
    ("Jet_btagDeepB", (0.1241, 0.4184, 0.7527)),
    ("Jet_btagCSVV2", (0.5426, 0.8484, 0.9535)),
)
# Kinematic selection of reconstructed objects on NanoAOD (the toolkit's files are selected at
# generation with the same numbers: data/generate/ditau_events.py, ttbar_dilepton_reco.py).
LEG_MIN_PT, TAU_ETA_MAX, LEPTON_ETA_MAX = 20.0, 2.3, 2.4
LEPTON_TAU_MIN_DR = 0.5  # a lepton is also reconstructed as a tau: keep taus away from it
JET_MIN_PT, JET_ETA_MAX = 20.0, 4.7


@dataclasses.dataclass(frozen=True)
class WorkingPoints:
    """Object identification on NanoAOD (ignored for the toolkit's own files).

    tau_id: VS-jet working point of the newest tau ID in the file (vvvloose ... vvtight, none).
    muon_id: loose / medium / tight ID with its isolation (0.25 / 0.15 / 0.15), iso (isolation
        < 0.15 only), or none.
    electron_id: wp90 / wp80 (MVA with isolation), veto / loose / medium / tight (cut based),
        or none.
    jet_id: tight / tightlepveto / none.
    btag: loose / medium / tight of the newest tagger with values in the file, or a number.
    lepton_tau_dr: taus closer than this to an identified lepton are dropped (0 = keep).
    """

    tau_id: str = "medium"
    muon_id: str = "medium"
    electron_id: str = "wp90"
    jet_id: str = "tight"
    btag: str = "medium"
    lepton_tau_dr: float = LEPTON_TAU_MIN_DR

    def __post_init__(self):
        checks = {
            "tau_id": (*_WP_NAMES, "none"),
            "muon_id": (*MUON_WPS, "none"),
            "electron_id": (*ELECTRON_WPS, *ELECTRON_CUT_BASED, "none"),
            "jet_id": (*JET_ID_BITS, "none"),
        }
        for field, allowed in checks.items():
            if getattr(self, field) not in allowed:
                raise UserError(
                    f"unknown {field} working point '{getattr(self, field)}' "
                    f"(choose {', '.join(allowed)})"
                )
        if not self.lepton_tau_dr >= 0:
            raise UserError(f"lepton_tau_dr must be >= 0, got {self.lepton_tau_dr}")
        if self.btag not in ("loose", "medium", "tight"):
            try:
                float(self.btag)
            except ValueError:
                raise UserError(
                    f"unknown btag working point '{self.btag}' (choose loose, medium, tight or "
                    "a threshold)"
                ) from None


def detect(keys):
    """The schema a set of branch names fits: pfnano, nanoaod, else hepformers."""
    keys = set(keys)
    for name, markers in MARKERS.items():
        if all(m in keys for m in markers):
            return name
    return "hepformers"


def resolve(schema, keys, path):
    """`schema` itself, or for "auto" the detected one.

    Raises:
        UserError: an unknown schema.
    """
    if schema not in CHOICES:
        raise UserError(f"unknown schema '{schema}' (choose {', '.join(CHOICES)})")
    return detect(keys) if schema == "auto" else schema


def require(path, keys, needed, schema, what):
    """One clear line when the file lacks branches the schema needs.

    Args:
        path: the file; keys: its branch names; needed: branch names (after mapping).
        schema: the schema in use; what: what needs them (e.g. "TPMT inputs").
    Raises:
        UserError: naming the missing branches and the schema the file fits.
    """
    missing = [b for b in needed if b not in keys]
    if not missing:
        return
    fits = detect(keys)
    hint = (
        f"; the file looks like --schema {fits}"
        if fits != schema
        else "; pass --mapping CANONICAL=NAME for branches with other names"
    )
    shown = ", ".join(missing[:6]) + (f" and {len(missing) - 6} more" if len(missing) > 6 else "")
    raise UserError(f"{path} lacks branch {shown} for {what} with --schema {schema}{hint}")


def has_truth(path, keys, truth, mapping, schema, what, required=False):
    """Whether the file holds the generator-truth branches `truth` (after `mapping`).

    Raises:
        UserError: with `required` (training, evaluation against truth), naming what is missing.
    """
    names = [(mapping or {}).get(b, b) for b in truth]
    if required:
        hint = "generator truth; predict-only use: python -m evaluate.predict"
        require(path, keys, names, schema, f"{what} targets ({hint})")
    return all(n in keys for n in names)


def keys_of(path):
    from data import io

    return set(io.open_tree(path).keys())


# --- object identification on NanoAOD -------------------------------------------------------


def tau_id_branch(keys):
    """(branch, kind, WP names) of the newest tau ID against jets in `keys`, or None."""
    for entry in TAU_ID_BRANCHES:
        if entry[0] in keys:
            return entry
    return None


def electron_id_branch(keys, wp):
    if wp in ELECTRON_CUT_BASED:
        return "Electron_cutBased"
    if wp in ELECTRON_WPS:
        return next((b for b in ELECTRON_WPS[wp] if b in keys), ELECTRON_WPS[wp][-1])
    return None


def id_branches(keys, wp, collections):
    """Identification branches that `object_masks` reads for `collections`."""
    out = []
    if "Tau" in collections:
        out.append("Tau_decayMode")
        if wp.tau_id != "none":
            entry = tau_id_branch(keys)
            out.append(entry[0] if entry else TAU_ID_BRANCHES[0][0])
    if "Muon" in collections and wp.muon_id != "none":
        out += [b for b in (MUON_WPS[wp.muon_id][0], "Muon_pfRelIso04_all") if b]
    if "Electron" in collections and wp.electron_id != "none":
        out.append(electron_id_branch(keys, wp.electron_id))
    if "Jet" in collections and wp.jet_id != "none":
        out.append("Jet_jetId")
    return out


def btag_branch(path, keys):
    """(branch, thresholds) of the newest b tagger that has values in [0, 1] in the file (old
    files keep newer taggers' branches filled with placeholders such as -3000)."""
    from data import io

    tree = io.open_tree(path)
    for branch, thresholds in BTAG_TAGGERS:
        if branch in keys:
            v = ak.flatten(tree[branch].array(entry_stop=1000), axis=None)
            if len(v) and np.any((v >= 0) & (v <= 1)):
                return branch, thresholds
    raise UserError(
        f"{path} has no b-tag score with values in [0, 1] (looked for "
        f"{', '.join(b for b, _ in BTAG_TAGGERS)})"
    )


def btag_threshold(wp, thresholds):
    if wp in ("loose", "medium", "tight"):
        return thresholds[("loose", "medium", "tight").index(wp)]
    return float(wp)


def object_masks(a, keys, wp, collections):
    """Per-object identification and kinematic masks (jagged bool) on NanoAOD branches.

    Taus: HPS decay modes TAU_DECAY_MODES, the VS-jet working point, pT > 20, |eta| < 2.3.
    Muons / electrons: the ID (and isolation) working point and |eta| < 2.4 (each loader adds
    its pT thresholds). Jets: jet ID, pT > 20, |eta| < 4.7.
    """
    out = {}
    if "Tau" in collections:
        dm = a["Tau_decayMode"]
        m = dm != dm  # all False, jagged like the taus
        for mode in TAU_DECAY_MODES:
            m = m | (dm == mode)
        if wp.tau_id != "none":
            branch, kind, names = tau_id_branch(keys) or TAU_ID_BRANCHES[0]
            if wp.tau_id not in names:
                raise UserError(
                    f"{branch} has no {wp.tau_id} working point (it has {', '.join(names)})"
                )
            level = names.index(wp.tau_id)
            v = a[branch]
            m = m & ((v >= level + 1) if kind == "level" else ((v >> level) & 1) == 1)
        out["Tau"] = m & (a["Tau_pt"] > LEG_MIN_PT) & (abs(a["Tau_eta"]) < TAU_ETA_MAX)
    if "Muon" in collections:
        m = abs(a["Muon_eta"]) < LEPTON_ETA_MAX
        if wp.muon_id != "none":
            branch, iso = MUON_WPS[wp.muon_id]
            if branch and _filled(a, branch, "selecting muons on isolation only (--muon-id iso)"):
                m = m & a[branch]
            m = m & (a["Muon_pfRelIso04_all"] < iso)
        out["Muon"] = m
    if "Electron" in collections:
        m = abs(a["Electron_eta"]) < LEPTON_ETA_MAX
        if wp.electron_id in ELECTRON_CUT_BASED:
            m = m & (a["Electron_cutBased"] >= ELECTRON_CUT_BASED[wp.electron_id])
        elif wp.electron_id != "none":
            branch = electron_id_branch(keys, wp.electron_id)
            if _filled(a, branch, "selecting electrons without ID (--electron-id none)"):
                m = m & a[branch]
        out["Electron"] = m
    if "Jet" in collections:
        m = (a["Jet_pt"] > JET_MIN_PT) & (abs(a["Jet_eta"]) < JET_ETA_MAX)
        if wp.jet_id != "none":
            m = m & ((a["Jet_jetId"] & JET_ID_BITS[wp.jet_id]) > 0)
        out["Jet"] = m
    return out


def _filled(a, branch, instead):
    """Whether a boolean ID branch is ever True; if it is False for every object (some Open Data
    NanoAODs never filled it), one warning line says what is done instead."""
    v = a[branch]
    if ak.sum(ak.num(v)) > 0 and not ak.any(v):
        print(f"warning: {branch} is False for every object (not filled in this file): {instead}")
        return False
    return True


def filter_collections(a, masks):
    """Keep the objects of each collection that pass its mask; every `Name_*` branch is cut and
    `Name_index` keeps each object's position in the file's collection (index branches such
    as Tau_jetIdx or PFCand_tauIdx point there)."""
    out = dict(a)
    for name, mask in masks.items():
        prefix = f"{name}_"
        first = next(k for k in a if k.startswith(prefix))
        out[f"{name}_index"] = ak.local_index(a[first])[mask]
        for k in a:
            if k.startswith(prefix):
                out[k] = a[k][mask]
    return out


def parse_mapping(pairs):
    """`--mapping CANONICAL=NAME ...` -> dict (None when empty).

    Raises:
        UserError: a pair without '='.
    """
    if not pairs:
        return None
    out = {}
    for pair in pairs:
        canonical, sep, name = pair.partition("=")
        if not sep or not canonical or not name:
            raise UserError(f"--mapping takes CANONICAL=NAME pairs, got '{pair}'")
        out[canonical] = name
    return out


def add_arguments(parser, *, working_points=False, mapping=True):
    """`--schema` and `--mapping` (and the NanoAOD working points) of a CLI that reads ROOT."""
    parser.add_argument(
        "--schema",
        default="auto",
        choices=CHOICES,
        help="branch names of the input files: the toolkit's own (hepformers), standard CMS "
        "NanoAOD, PFNano; auto = detect from the branches (default)",
    )
    if not mapping:
        return
    parser.add_argument(
        "--mapping",
        nargs="+",
        metavar="CANONICAL=NAME",
        default=None,
        help="branches with other names, e.g. MET_pt=PuppiMET_pt MET_phi=PuppiMET_phi",
    )
    if working_points:
        d = WorkingPoints()
        parser.add_argument("--tau-id", default=d.tau_id, help="NanoAOD tau VS-jet WP")
        parser.add_argument("--muon-id", default=d.muon_id, help="NanoAOD muon ID WP")
        parser.add_argument("--electron-id", default=d.electron_id, help="NanoAOD electron WP")
        parser.add_argument("--jet-id", default=d.jet_id, help="NanoAOD jet ID")
        parser.add_argument("--btag", default=d.btag, help="NanoAOD b-tag WP or threshold")
        parser.add_argument(
            "--lepton-tau-dr",
            type=float,
            default=d.lepton_tau_dr,
            help="NanoAOD: drop taus this close to a selected lepton (0 = keep)",
        )


def working_points(args):
    """WorkingPoints from the options of `add_arguments(working_points=True)`."""
    return WorkingPoints(
        tau_id=args.tau_id,
        muon_id=args.muon_id,
        electron_id=args.electron_id,
        jet_id=args.jet_id,
        btag=args.btag,
        lepton_tau_dr=args.lepton_tau_dr,
    )


def reading_options(args):
    """Keyword arguments (schema, mapping[, working_points]) for a loader from parsed args."""
    out = {"schema": args.schema, "mapping": parse_mapping(getattr(args, "mapping", None))}
    if hasattr(args, "tau_id"):
        out["working_points"] = working_points(args)
    return out


def only_own_files(schema, what, path):
    """For loaders that read only the toolkit's own files: a clear line for other schemas.

    Raises:
        UserError: `schema` resolves to nanoaod or pfnano.
    """
    resolved = resolve(schema, keys_of(path) if schema == "auto" else (), path)
    if resolved != "hepformers":
        raise UserError(
            f"{path}: {what} reads the toolkit's own files (--schema hepformers); {resolved} "
            "files do not hold its inputs (TPMT and L-GATr read NanoAOD)"
        )


def check_own_inputs(schema, what, patterns):
    """`only_own_files` on the first file of a CLI's inputs (nothing to check without inputs)."""
    if not patterns:
        return
    from data import io

    only_own_files(schema, what, io.expand_paths(patterns)[0])
