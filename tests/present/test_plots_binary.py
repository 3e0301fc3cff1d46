"""Binary outcomes drawn on the reader's scale: the OR forest plot of config/examples/linde2005.yaml (metafor's
forest(res, atransf = exp) with ilab events/total), and proportions in percent on their own scale."""

import numpy as np
import pytest
from conftest import REPO
from figure_readback import drawn_rows, figure_texts, heterogeneity
from matplotlib.lines import Line2D
from tolerances import FORMULA

from metarepro.jobs.pool import run_analysis
from metarepro.present.plots import forest_plot

LINDE = {"title": "Response", "data": "data/raw/linde2005_st_johns_wort.csv",
         "columns": {"study_id": "id", "events_cases": "ai", "n_cases": "n1i", "events_controls": "ci",
                     "n_controls": "n2i"}}  # fmt: skip
LABELS = {"cases": "SJW", "controls": "placebo", "left": "favours placebo", "right": "favours SJW"}


@pytest.fixture(autouse=True)
def _repo(monkeypatch):
    monkeypatch.chdir(REPO)


def test_odds_ratio_forest_has_a_log_axis_in_ratios_and_events_per_group():
    result = run_analysis(LINDE["data"], {**LINDE, "measure": "OR", "fit": "rma.mh"})
    fig = forest_plot(result.effects, result.pooled, labels=LABELS)
    ax = fig.axes[0]
    ticks = [float(t.get_text()) for t in ax.get_xticklabels()]
    assert 1.0 in ticks
    np.testing.assert_allclose(np.log(ticks), ax.get_xticks(), atol=1e-12)  # ratio labels on the log scale
    assert ax.get_xlabel() == "Odds ratio (SJW / placebo, log scale)"
    texts = [t.get_text() for t in fig.texts + ax.texts]
    assert {"Events/total SJW", "Events/total placebo", "19/30", "3/30"} <= set(texts)
    assert any("favours placebo" in t for t in texts) and any("favours SJW" in t for t in texts)
    drawn = drawn_rows(fig)
    pooled = result.pooled
    summary = np.exp([pooled["estimate"], pooled["ci_low"], pooled["ci_high"]])
    assert drawn[len(drawn) - 1]["text"] == f"{summary[0]:.2f} [{summary[1]:.2f}, {summary[2]:.2f}]"
    assert "Mantel-Haenszel model (k = 24)" in [t.replace("\n", " ") for t in texts]


def test_proportions_are_shown_in_percent_on_the_logit_scale():
    moore = {"title": "Success", "data": "data/raw/moore1998_topical_nsaids.csv", "measure": "PLO",
             "columns": {"study_id": "id", "study": "author", "events": "Ee", "n": "Ne"}}  # fmt: skip
    result = run_analysis(moore["data"], moore)
    fig = forest_plot(result.effects, result.pooled)
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_xticklabels()]
    assert all(label.endswith("%") for label in labels)
    shares = np.array([float(label[:-1]) / 100 for label in labels])
    np.testing.assert_allclose(np.log(shares / (1 - shares)), ax.get_xticks(), atol=1e-12)
    assert ax.get_xlabel() == "Proportion (%, logit scale)"
    p = result.pooled
    # the first trial, 24 of 29 (sheet line 2), by hand: logit(24/29) = ln(24/5) with se √(1/24 + 1/5) (escalc PLO),
    # its 95% CI ln(24/5) ± 1.959964·0.4916 back-transformed by 1/(1 + e^−x): 82.8% [64.7%, 92.6%]
    logit, se = np.log(24 / 5), np.sqrt(1 / 24 + 1 / 5)
    share = 100 / (1 + np.exp(-np.array([logit, logit - 1.959963984540054 * se, logit + 1.959963984540054 * se])))
    assert drawn_rows(fig)[0]["text"] == "{:.1f}% [{:.1f}%, {:.1f}%]".format(*share) == "82.8% [64.7%, 92.6%]"
    assert p["estimate_prop"] == pytest.approx(1 / (1 + np.exp(-p["estimate"])), rel=FORMULA)


def test_mantel_haenszel_forest_shows_no_tau2_and_a_zero_weight_study_smallest():
    """rma.mh is an equal-effects model: metafor's print.rma.mh gives Q and I² but no τ², so the footer names the
    method and leaves τ² out. Halama (10/25 vs 0/25) has MH weight b·c/n = 15·0/50 = 0 (metafor's
    weights.rma.mh), so its square is the smallest drawn, not the fallback size of a figure without weights."""
    result = run_analysis(LINDE["data"], {**LINDE, "measure": "OR", "fit": "rma.mh"})
    fig = forest_plot(result.effects, result.pooled, labels=LABELS)
    line = heterogeneity(fig)
    assert line["tau2"] is None and line["df"] == 22  # 23 tables with an estimate of their own (Osterheider 0/0)
    assert any(t.startswith("Mantel-Haenszel model, test z:  I² =") for t in figure_texts(fig))
    sizes = {a.get_gid(): a.get_markersize() for a in fig.findobj(Line2D) if (a.get_gid() or "").endswith("-point")}
    assert result.effects.loc[result.effects["study"] == "Halama", "weight"].tolist() == [0]
    halama = [i for i, parts in drawn_rows(fig).items() if parts.get("label") == "Halama"]
    assert len(halama) == 1 and sizes[f"row{halama[0]}-point"] == min(sizes.values())
