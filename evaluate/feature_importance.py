"""`python -m evaluate.feature_importance`: Random-Forest ranking of di-tau variables, H vs Z.

The TPMT seed talk chose the model's inputs by a Random-Forest feature importance on the full set
of tau, jet and MET variables for H vs Z classification. This CLI redoes that study on the
toolkit's own loader (`data.ditau.load`): it builds a flat table of every candidate variable,
marks which ones TPMT takes directly (they are in `LEG_FEATURES`, `PRODUCT_FEATURES`,
`JET_FEATURES` or `MET_FEATURES`), trains a seeded class-balanced Random Forest on a 70/30 split
and ranks the variables by the permutation importance (drop of the held-out ROC AUC) next to the
impurity importance. Permutation importance splits credit between correlated variables, so a
variable that copies another one ranks low even when the pair matters. Monotone transforms are
one variable to a forest, so m_vis enters once, as `met_log_m_vis`.

Writes DIR/importance.csv, DIR/importance.json and DIR/importance.png.

Example:
    python -m evaluate.feature_importance --input h125.root dy.root --out fi
    python -m evaluate.feature_importance --signal h1.root h2.root --background dy.root --out fi
"""

import argparse
import csv
import json
import os
import sys

import numpy as np

from data.errors import UserError, cli

SENTINEL = -10.0  # value of a variable whose object is absent (no jet, no decay product)
N_LEAD_JETS = 3  # leading jets given feature by feature, as TPMT (data.ditau.MAX_JETS)
LOAD_MAX_JETS, LOAD_MAX_PRODUCTS = 8, 16  # wider padding than TPMT, so counts do not saturate
LEAD_PRODUCT_FEATURES = ("log_pt", "deta_leg", "dphi_leg", "charge", "is_photon")


def parse_args(argv):
    p = argparse.ArgumentParser(
        prog="python -m evaluate.feature_importance", description=__doc__.split("\n")[0]
    )
    p.add_argument("--input", nargs="+", help="two ROOT files: signal H, then background Z")
    p.add_argument("--signal", nargs="+", help="signal (H) ROOT files, instead of --input")
    p.add_argument("--background", nargs="+", help="background (Z) ROOT files, with --signal")
    p.add_argument("--out", default="evaluation/feature_importance", help="output folder")
    p.add_argument("--channel", default="all", help="all, tauh-tauh, mu-tauh or e-tauh")
    p.add_argument("--drop-nonfinite", action="store_true", help="skip events with NaN or inf")
    p.add_argument("--trees", type=int, default=200, help="trees in the forest")
    p.add_argument("--min-samples-leaf", type=int, default=20)
    p.add_argument("--test-fraction", type=float, default=0.3, help="held-out share of events")
    p.add_argument("--repeats", type=int, default=5, help="permutations per variable")
    p.add_argument("--top", type=int, default=25, help="variables in the plot")
    p.add_argument("--jobs", type=int, default=2, help="CPU threads of the forest")
    p.add_argument("--seed", type=int, default=1)
    from data import schemas

    schemas.add_arguments(p, working_points=True)
    return p.parse_args(argv)


def _check(args):
    """(signal files, background files) from the arguments, or a UserError."""
    if args.input and (args.signal or args.background):
        raise UserError("give either --input H.root Z.root or --signal/--background, not both")
    if args.input:
        if len(args.input) != 2:
            raise UserError(
                f"--input takes two files (signal H, then background Z), got {len(args.input)}; "
                "use --signal/--background for more"
            )
        sig, bkg = [args.input[0]], [args.input[1]]
    elif args.signal and args.background:
        sig, bkg = args.signal, args.background
    else:
        raise UserError("give --input H.root Z.root, or both --signal and --background")
    for name, v, lo, hi in (
        ("--trees", args.trees, 1, 10_000),
        ("--min-samples-leaf", args.min_samples_leaf, 1, 100_000),
        ("--repeats", args.repeats, 1, 100),
        ("--top", args.top, 1, 1000),
        ("--jobs", args.jobs, 1, 256),
    ):
        if not lo <= v <= hi:
            raise UserError(f"{name} must be between {lo} and {hi}, got {v}")
    if not 0.05 <= args.test_fraction <= 0.9:
        raise UserError(f"--test-fraction must be between 0.05 and 0.9, got {args.test_fraction}")
    return sig, bkg


def _mt(pt1, phi1, pt2, phi2):
    """Transverse mass of two objects, shape (N,)."""
    return np.sqrt(np.maximum(2 * pt1 * pt2 * (1 - np.cos(phi1 - phi2)), 0.0))


def build_table(d):
    """Flat table of every candidate variable the loader output allows.

    Args:
        d: output of `data.ditau.load`: inputs legs (N, 2, L), products (N, P, Fp),
            product_mask (N, P), jets (N, J, Fj), jet_mask (N, J), met (N, M); meta legs (dict of
            (N, 2) lab-frame arrays pt, eta, phi, mass, kind, decayMode), met_x, met_y (N,),
            met_cov (N, 2, 2).
    Returns:
        (names, table (N, V) float64, used (V,) bool): `used` marks the variables TPMT takes
        directly (a feature of its leg, product, jet or MET inputs). Absent objects are SENTINEL.
    """
    from data.ditau import JET_FEATURES, LEG_FEATURES, MET_FEATURES, PRODUCT_FEATURES, wrap
    from evaluate.baselines.collinear import collinear_mass

    x, meta = d["inputs"], d["meta"]
    cols = {}

    def add(name, values, used):
        cols[name] = (np.asarray(values, np.float64), used)

    for i in (0, 1):
        for k, f in enumerate(LEG_FEATURES):
            add(f"leg{i + 1}_{f}", x["legs"][:, i, k], True)
    for k, f in enumerate(MET_FEATURES):
        add(f"met_{f}", x["met"][:, k], True)
    # jets: the leading ones feature by feature, then summaries over all cleaned jets
    jets, jmask = x["jets"], np.asarray(x["jet_mask"], bool)
    for j in range(min(N_LEAD_JETS, jets.shape[1])):
        for k, f in enumerate(JET_FEATURES):
            add(f"jet{j + 1}_{f}", np.where(jmask[:, j], jets[:, j, k], SENTINEL), True)
    jf = {f: jets[..., k] for k, f in enumerate(JET_FEATURES)}
    jpt = np.exp(jf["log_pt"]) * jmask
    add("n_jets", jmask.sum(1), False)
    add("ht_jets", jpt.sum(1), False)
    if jets.shape[1] >= 2:
        from data.ditau import pair_mass

        two = jmask[:, :2].all(1)
        mjj = pair_mass(
            jpt[:, :2], jf["eta"][:, :2], jf["dphi"][:, :2], np.exp(jf["log_mass"][:, :2])
        )
        add("m_jj", np.where(two, mjj, SENTINEL), False)
        add("deta_jj", np.where(two, np.abs(jf["eta"][:, 0] - jf["eta"][:, 1]), SENTINEL), False)
    # decay products of each tau_h leg: counts, energy sharing, cone width, leading product
    prod, pmask = x["products"], np.asarray(x["product_mask"], bool)
    pf = {f: prod[..., k] for k, f in enumerate(PRODUCT_FEATURES)}
    ppt = np.exp(pf["log_pt"]) * pmask
    charged = pf["charge"] != 0
    leg_pt = meta["legs"]["pt"]
    for i in (0, 1):
        sel = pmask & (np.rint(pf["leg"]) == i)
        has = sel.any(1)
        tot = (ppt * sel).sum(1)
        safe = np.where(has, tot, 1.0)
        name = f"leg{i + 1}"
        add(f"{name}_n_products", sel.sum(1), False)
        add(f"{name}_n_charged", (sel & charged).sum(1), False)
        add(f"{name}_n_photons", (sel & (pf["is_photon"] > 0)).sum(1), False)
        add(
            f"{name}_charged_pt_frac",
            np.where(has, (ppt * (sel & charged)).sum(1) / safe, SENTINEL),
            False,
        )
        add(
            f"{name}_products_pt_over_leg",
            np.where(has, tot / np.maximum(leg_pt[:, i], 1e-3), SENTINEL),
            False,
        )
        dr = np.hypot(pf["deta_leg"], pf["dphi_leg"])
        add(f"{name}_products_dr_max", np.where(has, np.where(sel, dr, 0).max(1), SENTINEL), False)
        lead = np.argmax(sel, 1)  # products are pT-ordered: the first of this leg leads it
        for f in LEAD_PRODUCT_FEATURES:
            v = np.take_along_axis(pf[f], lead[:, None], 1)[:, 0]
            add(f"{name}_prod1_{f}", np.where(has, v, SENTINEL), True)
    # derived from the lab-frame legs and MET
    legs = meta["legs"]
    pt, eta, phi = legs["pt"], legs["eta"], legs["phi"]
    mx, my = np.asarray(meta["met_x"], np.float64), np.asarray(meta["met_y"], np.float64)
    met_pt, met_phi = np.hypot(mx, my), np.arctan2(my, mx)
    vx, vy = (pt * np.cos(phi)).sum(1), (pt * np.sin(phi)).sum(1)
    add("pt_vis", np.hypot(vx, vy), False)
    add("pt_vis_met", np.hypot(vx + mx, vy + my), False)
    add("dr_legs", np.hypot(eta[:, 0] - eta[:, 1], wrap(phi[:, 0] - phi[:, 1])), False)
    mt1, mt2 = (_mt(pt[:, i], phi[:, i], met_pt, met_phi) for i in (0, 1))
    mt12 = _mt(pt[:, 0], phi[:, 0], pt[:, 1], phi[:, 1])
    add("mt_leg1_met", mt1, False)
    add("mt_leg2_met", mt2, False)
    add("mt_tot", np.sqrt(mt1**2 + mt2**2 + mt12**2), False)
    cov = np.asarray(meta["met_cov"], np.float64)
    det = cov[:, 0, 0] * cov[:, 1, 1] - cov[:, 0, 1] * cov[:, 1, 0]
    quad = cov[:, 1, 1] * mx**2 - 2 * cov[:, 0, 1] * mx * my + cov[:, 0, 0] * my**2
    add("met_significance", np.where(det > 0, quad / np.where(det > 0, det, 1.0), SENTINEL), False)
    leg = [
        {
            "pt": pt[:, i],
            "eta": eta[:, i],
            "phi": phi[:, i],
            "mass": legs["mass"][:, i],
            "kind": legs["kind"][:, i],
            "decay_mode": legs["decayMode"][:, i],
        }
        for i in (0, 1)
    ]
    try:
        add("m_collinear", collinear_mass(leg[0], leg[1], mx, my).mass, False)
    except ValueError as err:  # only on inputs the loader never builds; say which
        print(f"warning: no collinear mass ({err})", file=sys.stderr)
    names = list(cols)
    table = np.stack([cols[n][0] for n in names], 1)
    used = np.array([cols[n][1] for n in names], bool)
    return names, table, used


def _auc_scorer(bar):
    """A permutation-importance scorer (held-out ROC AUC) that ticks a progress bar."""
    from sklearn.metrics import roc_auc_score

    def score(estimator, x, y):
        bar.update(1)
        return roc_auc_score(y, estimator.predict_proba(x)[:, 1])

    return score


def rank(x, y, names, used, *, trees, min_samples_leaf, test_fraction, repeats, jobs, seed):
    """Fit the forest, score it, and rank the variables.

    Args:
        x: (N, V) table; y: (N,) 1 = signal H, 0 = background Z; names, used: (V,).
    Returns:
        dict with auc_test, auc_train, n_train, n_test and `rows`: one dict per variable
        (variable, used_by_tpmt, impurity, permutation_mean, permutation_std, rank), sorted by rank
        (1 = largest permutation importance, the impurity importance breaks ties).
    """
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.inspection import permutation_importance
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import train_test_split
    from tqdm import tqdm

    x_tr, x_te, y_tr, y_te = train_test_split(
        x, y, test_size=test_fraction, random_state=seed, stratify=y
    )
    forest = RandomForestClassifier(
        n_estimators=trees,
        min_samples_leaf=min_samples_leaf,
        class_weight="balanced",
        n_jobs=jobs,
        random_state=seed,
    )
    print(f"fitting {trees} trees on {len(y_tr)} events, {x.shape[1]} variables", file=sys.stderr)
    forest.fit(x_tr, y_tr)
    auc_test = roc_auc_score(y_te, forest.predict_proba(x_te)[:, 1])
    auc_train = roc_auc_score(y_tr, forest.predict_proba(x_tr)[:, 1])
    with tqdm(total=1 + x.shape[1] * repeats, desc="permutation", unit="fit", file=sys.stderr) as b:
        perm = permutation_importance(
            forest, x_te, y_te, scoring=_auc_scorer(b), n_repeats=repeats, random_state=seed
        )
    order = np.lexsort((-forest.feature_importances_, -perm.importances_mean))
    rows = [
        dict(
            variable=names[i],
            used_by_tpmt=bool(used[i]),
            impurity=float(forest.feature_importances_[i]),
            permutation_mean=float(perm.importances_mean[i]),
            permutation_std=float(perm.importances_std[i]),
            rank=r + 1,
        )
        for r, i in enumerate(order)
    ]
    return dict(
        auc_test=float(auc_test),
        auc_train=float(auc_train),
        n_train=len(y_tr),
        n_test=len(y_te),
        rows=rows,
    )


def plot(rows, auc, path, top):
    """Horizontal bars of the `top` permutation importances, coloured by TPMT use."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import mplhep
    from matplotlib.patches import Patch

    mplhep.style.use("CMS")
    rows = rows[:top][::-1]
    colors = {True: "tab:blue", False: "tab:orange"}
    fig, ax = plt.subplots(figsize=(10, 2 + 0.38 * len(rows)))
    pos = np.arange(len(rows))
    ax.barh(
        pos,
        [r["permutation_mean"] for r in rows],
        xerr=[r["permutation_std"] for r in rows],
        color=[colors[r["used_by_tpmt"]] for r in rows],
    )
    ax.set_yticks(pos, [r["variable"] for r in rows], fontsize=12)
    ax.axvline(0, color="k", lw=0.8)
    ax.set_xlabel("Permutation importance (drop of held-out ROC AUC)", fontsize=18)
    ax.set_title(f"H vs Z Random Forest, AUC = {auc:.3f}", fontsize=16)
    ax.legend(
        handles=[
            Patch(color=colors[True], label="TPMT input"),
            Patch(color=colors[False], label="not a TPMT input"),
        ],
        loc="lower right",
        fontsize=13,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write(out, res, meta):
    """importance.csv (one row per variable) and importance.json (AUC, counts, ranking)."""
    os.makedirs(out, exist_ok=True)
    keys = ("variable", "used_by_tpmt", "impurity", "permutation_mean", "permutation_std", "rank")
    with open(os.path.join(out, "importance.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, keys)
        w.writeheader()
        w.writerows(res["rows"])
    with open(os.path.join(out, "importance.json"), "w") as f:
        json.dump(
            {**meta, **{k: v for k, v in res.items() if k != "rows"}, "ranking": res["rows"]},
            f,
            indent=1,
        )


def top_unused(rows, n=10):
    """Variables in the first `n` ranks that TPMT does not take directly."""
    return [r["variable"] for r in rows[:n] if not r["used_by_tpmt"]]


@cli
def main(argv=None):
    args = parse_args(argv)
    sig, bkg = _check(args)
    try:
        os.makedirs(args.out, exist_ok=True)
    except OSError as err:
        raise UserError(f"cannot write {args.out}: {err.strerror or err}") from None
    from data import schemas
    from data.ditau import load

    reading = schemas.reading_options(args)
    tables, names, used = [], None, None
    for paths in (sig, bkg):
        d = load(
            paths,
            channel=args.channel,
            drop_nonfinite=args.drop_nonfinite,
            max_jets=LOAD_MAX_JETS,
            max_products=LOAD_MAX_PRODUCTS,
            require_truth=True,
            **reading,
        )
        names, table, used = build_table(d)
        tables.append(table)
    n_sig, n_bkg = len(tables[0]), len(tables[1])
    if min(n_sig, n_bkg) < 20:
        raise UserError(f"too few events to train on ({n_sig} signal, {n_bkg} background; need 20)")
    x = np.concatenate(tables)
    y = np.concatenate([np.ones(n_sig, int), np.zeros(n_bkg, int)])
    res = rank(
        x,
        y,
        names,
        used,
        trees=args.trees,
        min_samples_leaf=args.min_samples_leaf,
        test_fraction=args.test_fraction,
        repeats=args.repeats,
        jobs=args.jobs,
        seed=args.seed,
    )
    meta = dict(
        signal=sig,
        background=bkg,
        channel=args.channel,
        n_signal=n_sig,
        n_background=n_bkg,
        n_variables=len(names),
        settings=dict(
            trees=args.trees,
            min_samples_leaf=args.min_samples_leaf,
            test_fraction=args.test_fraction,
            repeats=args.repeats,
            seed=args.seed,
            class_weight="balanced",
            sentinel=SENTINEL,
        ),
        top10_unused=top_unused(res["rows"]),
        command="python -m evaluate.feature_importance "
        + " ".join(sys.argv[1:] if argv is None else argv),
    )
    write(args.out, res, meta)
    plot(res["rows"], res["auc_test"], os.path.join(args.out, "importance.png"), args.top)
    print(
        f"H vs Z held-out ROC AUC = {res['auc_test']:.3f} (train {res['auc_train']:.3f}); "
        f"{n_sig} H + {n_bkg} Z events, {len(names)} variables"
    )
    print(f"{'rank':>4}  {'variable':<28} {'TPMT':>4}  {'permutation':>17}  {'impurity':>8}")
    for r in res["rows"][:15]:
        print(
            f"{r['rank']:>4}  {r['variable']:<28} {'yes' if r['used_by_tpmt'] else 'no':>4}  "
            f"{r['permutation_mean']:>8.4f} +- {r['permutation_std']:.4f}  {r['impurity']:>8.4f}"
        )
    unused = meta["top10_unused"]
    print("top-10 variables TPMT does not use: " + (", ".join(unused) if unused else "none"))
    print(f"wrote {args.out}/importance.csv, importance.json, importance.png")
    return res


if __name__ == "__main__":
    main()
