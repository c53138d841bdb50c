"""`python -m data.validate ditau FILE.root [...] --out DIR`: validation figures of a sample.

Writes PNG plots (mplhep CMS style) and `summary.json` to DIR:
  mass_vis.png, mass_ditau_true.png, mass_boson_true.png: per channel, one curve per process;
  decay_modes.png: decay-mode fractions of the generated taus next to PDG_FRACTIONS;
  met_resolution.png: MET - GenMET per component, and the pull (MET - GenMET) / sqrt(cov).
The generated taus in a file are those of *selected* events, so the leptonic fractions are biased
(e-mu, e-e, mu-mu pairs are not selected, and pT cuts prefer some modes); the hadronic modes are
also compared renormalised among themselves. The unbiased check on all generated taus is
tests/data/test_generate_ditau.py.
"""

import argparse
import json
import os

import awkward as ak
import numpy as np

from data import checks, io
from data.ditau import CHANNELS, PROCESSES
from data.errors import UserError, cli
from data.generate.tau_decays import HADRONIC, PDG_FRACTIONS, pdg_group

SAMPLES = ("ditau",)
PROCESS_NAMES = {v: k for k, v in PROCESSES.items()}
CHANNEL_NAMES = {0: r"$\tau_h\tau_h$", 1: r"$\mu\tau_h$", 2: r"$e\tau_h$"}
CHANNEL_KEYS = {v: k for k, v in CHANNELS.items()}
EVENT_BRANCHES = [
    "process",
    "channel",
    "GenDiTau_mass",
    "GenBoson_mass",
    "MET_pt",
    "MET_phi",
    "GenMET_pt",
    "GenMET_phi",
    "MET_covXX",
    "MET_covYY",
]
GEN_BRANCHES = ["GenTau_kind", "GenTau_decayMode"]
MASS_PNGS = ("mass_vis.png", "mass_ditau_true.png", "mass_boson_true.png")
HADRONIC_GROUPS = ("h", "h pi0", "h >=2pi0", "3h", "3h >=1pi0", "other")


def parse_args(argv):
    p = argparse.ArgumentParser(prog="python -m data.validate", description=__doc__.split("\n")[0])
    p.add_argument("sample", choices=SAMPLES, help="sample family")
    p.add_argument("files", nargs="+", help="ROOT files with an Events tree")
    p.add_argument("--out", default="validation", help="output folder (default validation/)")
    p.add_argument(
        "--drop-nonfinite",
        action="store_true",
        help="drop events with NaN or inf values instead of failing",
    )
    from data import schemas

    schemas.add_arguments(p, mapping=False)
    return p.parse_args(argv)


def _savefig(fig, out, name):
    import matplotlib.pyplot as plt

    fig.savefig(os.path.join(out, name), dpi=80, bbox_inches="tight")
    plt.close(fig)


def mass_plots(out, name, xlabel, mass, process, channel, bins):
    """One panel per channel, one normalised histogram per process; returns mean/median/n."""
    import matplotlib.pyplot as plt
    import mplhep as hep

    fig, axes = plt.subplots(1, 3, figsize=(30, 10))
    stats = {}
    for ax, (ch, label) in zip(axes, CHANNEL_NAMES.items()):
        for pr, pname in PROCESS_NAMES.items():
            m = mass[(process == pr) & (channel == ch) & (mass > 0)]
            if len(m) == 0:
                continue
            stats[f"{pname}/{CHANNEL_KEYS[ch]}"] = dict(
                n=len(m), mean=float(m.mean()), median=float(np.median(m))
            )
            hist, edges = np.histogram(m, bins)
            hep.histplot(hist, edges, density=True, ax=ax, label=f"{pname} ({len(m)})")
        ax.set_xlabel(xlabel)
        ax.set_ylabel("Fraction of events / GeV")
        ax.set_title(label, loc="right")
        if ax.get_legend_handles_labels()[0]:
            ax.legend()
        hep.cms.text("Simulation", ax=ax)
    _savefig(fig, out, name)
    return stats


def decay_mode_table(kind, decay_mode, has_k0):
    """Fractions in % (all groups, and hadronic groups renormalised) with binomial errors."""
    groups = pdg_group(kind, decay_mode, has_k0)
    n, n_had = len(groups), int((kind == HADRONIC).sum())
    had_pdg = sum(PDG_FRACTIONS[g] for g in HADRONIC_GROUPS)
    rows = []
    for g, ref in PDG_FRACTIONS.items():
        k = int((groups == g).sum())
        f = 100.0 * k / max(n, 1)
        row = dict(group=g, n=k, fraction=f, error=np.sqrt(f * (100 - f) / max(n, 1)), pdg=ref)
        if g in HADRONIC_GROUPS:
            fh = 100.0 * k / max(n_had, 1)
            err = np.sqrt(fh * (100 - fh) / max(n_had, 1))
            row.update(hadronic_fraction=fh, hadronic_error=err, hadronic_pdg=100 * ref / had_pdg)
        rows.append(row)
    return rows, n


def decay_mode_plot(out, rows, n_taus):
    import matplotlib.pyplot as plt
    import mplhep as hep

    fig, axes = plt.subplots(1, 2, figsize=(24, 10))
    for ax, prefix, title in (
        (axes[0], "", "all generated taus of selected events"),
        (axes[1], "hadronic_", "hadronic taus, renormalised"),
    ):
        sel = [r for r in rows if f"{prefix}fraction" in r]
        x = np.arange(len(sel))
        ax.bar(
            x - 0.2,
            [r[f"{prefix}fraction"] for r in sel],
            0.4,
            yerr=[r[f"{prefix}error"] for r in sel],
            label=f"generated ({n_taus} taus)",
        )
        ax.bar(x + 0.2, [r[f"{prefix}pdg"] for r in sel], 0.4, label="PDG 2024")
        ax.set_xticks(x, [r["group"] for r in sel], rotation=30)
        ax.set_xlabel(r"$\tau$ decay mode")
        ax.set_ylabel("Fraction [%]")
        ax.set_title(title, loc="right", fontsize=16)
        ax.legend()
        hep.cms.text("Simulation", ax=ax)
    _savefig(fig, out, "decay_modes.png")


def met_resolution(out, a):
    """MET - GenMET per component, its RMS, the mean sqrt(cov), and the pulls."""
    import matplotlib.pyplot as plt
    import mplhep as hep

    res, summary = {}, {}
    for c, trig in (("x", np.cos), ("y", np.sin)):
        d = a["MET_pt"] * trig(a["MET_phi"]) - a["GenMET_pt"] * trig(a["GenMET_phi"])
        sigma = np.sqrt(a[f"MET_cov{c.upper()}{c.upper()}"])
        res[c] = (d, d / sigma)
        summary[c] = dict(
            rms=float(np.sqrt(np.mean(d**2))),
            mean=float(d.mean()),
            mean_sigma=float(sigma.mean()),
            pull_mean=float((d / sigma).mean()),
            pull_std=float((d / sigma).std()),
        )
    fig, axes = plt.subplots(1, 2, figsize=(24, 10))
    for c in ("x", "y"):
        s = summary[c]
        hist, edges = np.histogram(res[c][0], np.linspace(-100, 100, 41))
        hep.histplot(
            hist,
            edges,
            ax=axes[0],
            label=f"{c}: RMS {s['rms']:.1f}, <sigma> {s['mean_sigma']:.1f} GeV",
        )
        hist, edges = np.histogram(res[c][1], np.linspace(-5, 5, 41))
        hep.histplot(
            hist,
            edges,
            ax=axes[1],
            label=f"{c}: mean {s['pull_mean']:.2f}, std {s['pull_std']:.2f}",
        )
    z = np.linspace(-5, 5, 200)
    axes[1].plot(
        z,
        len(res["x"][1]) * 0.25 * np.exp(-0.5 * z**2) / np.sqrt(2 * np.pi),
        "k--",
        label="N(0, 1)",
    )
    axes[0].set_xlabel(r"$E_{T,c}^{miss} - E_{T,c}^{miss,gen}$ [GeV]")
    axes[0].set_ylabel("Events / 5 GeV")
    axes[1].set_xlabel(r"$(E_{T,c}^{miss} - E_{T,c}^{miss,gen}) / \sigma_c$, $\sigma_c^2 = V_{cc}$")
    axes[1].set_ylabel("Events / 0.25")
    for ax in axes:
        ax.legend(fontsize=16)
        hep.cms.text("Simulation", ax=ax)
    _savefig(fig, out, "met_resolution.png")
    return summary


def validate(files, out, *, drop_nonfinite=False):
    """Make the figures and summary for di-tau files; returns the summary dict."""
    import matplotlib

    matplotlib.use("Agg")
    import mplhep as hep

    from data.ditau import load

    a = {
        k: ak.to_numpy(v)
        for k, v in io.read_branches(files, EVENT_BRANCHES, drop_nonfinite=drop_nonfinite).items()
    }
    gen = io.read_branches(files, GEN_BRANCHES, drop_nonfinite=drop_nonfinite)
    try:
        has_k0 = io.read_branches(files, ["GenTau_hasK0"], drop_nonfinite=drop_nonfinite)
        has_k0 = ak.to_numpy(ak.flatten(has_k0["GenTau_hasK0"])).astype(bool)
    except UserError:  # older files: K0 modes then count in their prong/pi0 group
        has_k0 = None
    kind = ak.to_numpy(ak.flatten(gen["GenTau_kind"])).astype(int)
    dm = ak.to_numpy(ak.flatten(gen["GenTau_decayMode"])).astype(int)
    loaded = load(files, drop_nonfinite=drop_nonfinite)["meta"]
    try:
        os.makedirs(out, exist_ok=True)
    except OSError as err:
        raise UserError(f"cannot create output folder {out}: {err.strerror or err}") from None
    if not os.access(out, os.W_OK):
        raise UserError(f"cannot write to output folder {out}")
    hep.style.use("CMS")
    summary = dict(files=[str(f) for f in files], n_events=len(a["process"]))
    bins = np.linspace(0, 400, 41)
    masses = (
        ("m_vis", r"$m_{vis}$ [GeV]", loaded["m_vis"], loaded["process"], loaded["channel"]),
        (
            "GenDiTau_mass",
            r"$m_{\tau\tau}^{gen}$ [GeV]",
            a["GenDiTau_mass"],
            a["process"],
            a["channel"],
        ),
        ("GenBoson_mass", r"$m_{X}^{gen}$ [GeV]", a["GenBoson_mass"], a["process"], a["channel"]),
    )
    for (key, label, mass, process, channel), png in zip(masses, MASS_PNGS):
        summary[key] = mass_plots(out, png, label, mass, process, channel, bins)
    rows, n_taus = decay_mode_table(
        kind, dm, has_k0 if has_k0 is not None else np.zeros_like(kind, dtype=bool)
    )
    summary["decay_modes"] = dict(n_taus=n_taus, has_k0_flag=has_k0 is not None, rows=rows)
    if n_taus:
        decay_mode_plot(out, rows, n_taus)
    summary["met"] = met_resolution(out, a)
    with open(os.path.join(out, "summary.json"), "w") as f:
        json.dump(summary, f, indent=1, default=float)
    return summary


def print_summary(s):
    print(f"{s['n_events']} events; decay modes of {s['decay_modes']['n_taus']} generated taus:")
    print(f"{'group':>10} {'gen %':>13} {'PDG %':>6} {'had. gen %':>13} {'had. PDG %':>10}")
    for r in s["decay_modes"]["rows"]:
        line = f"{r['group']:>10} {r['fraction']:6.2f} ± {r['error']:4.2f} {r['pdg']:6.2f}"
        if "hadronic_fraction" in r:
            line += (
                f" {r['hadronic_fraction']:6.2f} ± {r['hadronic_error']:4.2f} "
                f"{r['hadronic_pdg']:10.2f}"
            )
        print(line)
    for c, m in s["met"].items():
        print(
            f"MET {c}: RMS(MET - GenMET) {m['rms']:.1f} GeV, mean sqrt(cov) {m['mean_sigma']:.1f}"
            f" GeV, pull mean {m['pull_mean']:.2f} std {m['pull_std']:.2f}"
        )


@cli
def main(argv=None):
    args = parse_args(argv)
    checks.writable_dir(args.out)
    from data import schemas

    schemas.check_own_inputs(args.schema, "data.validate (generator-level checks)", args.files)
    summary = validate(args.files, args.out, drop_nonfinite=args.drop_nonfinite)
    print_summary(summary)
    print(f"wrote plots and summary.json to {args.out}")


if __name__ == "__main__":
    main()
