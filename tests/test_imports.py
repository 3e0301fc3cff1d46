"""What importing metarepro costs a process: every pipeline job is a fresh interpreter, so a heavy import that only
some functions need is paid by all of them. Each check runs in a new interpreter, where nothing is imported yet.

Allowed: numpy and scipy.special (distributions and Kendall's tau: metarepro._core.dist) for the statistics; pandas
for the steps, which read and write tables; matplotlib's Figure and Agg canvas for the figures. Not allowed at
import: scipy.stats (0.5-1 s), scipy.optimize/linalg/sparse (only rma_mv's profile CIs and block structure use
them, imported there), statsmodels, numba (the kernels of metarepro._core.batch run as Python until a process has
done enough work for compiling to pay), matplotlib.pyplot (figures are matplotlib.figure.Figure), and for
``import metarepro`` also pandas and matplotlib. A whole small analysis needs neither numba nor scipy.stats.
"""

import subprocess
import sys

import pytest

SCIPY_EXTRAS = ("scipy.stats", "scipy.optimize", "scipy.linalg", "scipy.sparse")
HEAVY = ("numba", "statsmodels", "matplotlib.pyplot", *SCIPY_EXTRAS)


def loaded(code: str, watch) -> list[str]:
    """The modules of ``watch`` that are imported after running ``code`` in a fresh interpreter."""
    probe = f"{code}\nimport sys\nprint(' '.join(m for m in {tuple(watch)!r} if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return done.stdout.split()


def test_the_probe_sees_an_import():
    assert "scipy.stats" in loaded("import scipy.stats", HEAVY)  # so an empty list below means something


@pytest.mark.parametrize(
    ("code", "also_forbidden"),
    [
        ("import metarepro", ("numpy", "scipy.special", "pandas", "matplotlib")),
        # what the Snakefile imports while Snakemake parses the workflow (every run, also a no-op one)
        ("from metarepro.inputs.config import check_config, load_config",
         ("numpy", "scipy.special", "pandas", "matplotlib")),
        # the files of a run, which common.smk reads while Snakemake parses the workflow
        ("from metarepro.jobs.outputs import analysis_files", ("numpy", "scipy.special", "pandas", "matplotlib")),
        ("from metarepro import rma, rma_batch, rma_mv, robust, vcalc, aggregate", ("pandas", "matplotlib")),
        ("import metarepro.jobs", ("matplotlib",)),  # the pool job
        # the report job: it reads the analyses' records and draws the overview figures; it computes no p-value
        ("from metarepro.jobs import end_job, logged\nimport metarepro.jobs.run, metarepro.jobs.overview, "
         "metarepro.present.report, metarepro.present.plots.overview",
         ("scipy.special", "metarepro.pipeline.analysis")),
        ("import metarepro.present.plots, metarepro.jobs.sensitivity, metarepro.jobs.overview", ()),
    ],
)
def test_imports_stay_light(code, also_forbidden):
    assert loaded(code, (*HEAVY, *also_forbidden)) == []


@pytest.mark.parametrize("package", ["metarepro", "metarepro.jobs"])
def test_every_public_name_resolves_to_its_module(package):
    import importlib

    lazy = importlib.import_module(package)
    for name, module in lazy._EXPORTS.items():
        assert getattr(lazy, name) is getattr(importlib.import_module(f"{package}.{module}"), name)
    assert set(lazy.__all__) <= set(lazy._EXPORTS) <= set(dir(lazy))
    with pytest.raises(AttributeError, match="no attribute 'rmaa'"):
        lazy.rmaa  # noqa: B018


def test_the_lazy_names_are_all_of_the_modules_public_names():
    import metarepro

    assert set(metarepro.__all__) == set(metarepro._EXPORTS)
    code = ("import metarepro.stats.rma, metarepro.stats.mv, metarepro\n"
            "print(type(metarepro.rma).__name__, type(metarepro.rma_mv).__name__)")  # fmt: skip
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["function", "function"]  # importing the submodule first does not shadow them


def test_a_small_analysis_never_imports_numba_or_scipy_stats():
    code = (
        "import numpy as np\n"
        "from metarepro import rma\n"
        "from metarepro.stats.bias import ranktest, regtest, trimfill\n"
        "from metarepro.stats.influence import influence, leave1out\n"
        "y, v = np.linspace(-0.5, 1.0, 12) ** 2, np.linspace(0.02, 0.2, 12)\n"
        "for method in ('REML', 'DL', 'PM', 'ML'):\n"
        "    rma(y, v, method, 'knha'); leave1out(y, v, method); influence(y, v, method)\n"
        "ranktest(y, v); ranktest(y, v, exact=False); regtest(y, v); trimfill(y, v)"
    )
    assert loaded(code, ("numba", "scipy.stats")) == []


def test_a_large_batch_compiles():
    code = "import numpy as np\nfrom metarepro import rma_batch\nrma_batch(np.ones((5000, 50)), np.ones((5000, 50)))"
    assert loaded(code, ("numba",)) == ["numba"]


def test_lazy_imports_still_work():
    # what moved into the functions that need it is imported there, and they work
    code = (
        "import numpy as np\n"
        "from metarepro import rma_mv, confint\n"
        "from metarepro.stats.bias import ranktest\n"
        "y, v = np.array([0.1, 0.3, 0.2, 0.5, 0.4, 0.0]), np.full(6, 0.05)\n"
        "fit = rma_mv(y, v, nested=[[1, 1, 2, 2, 3, 3]])\n"
        "assert confint(fit)['ci_high'] > fit.sigma2[0]\n"
        "assert 0 < ranktest(y, v + np.arange(6) / 100).pval <= 1"
    )
    assert loaded(code, ("scipy.stats", "scipy.optimize", "scipy.sparse")) == ["scipy.optimize", "scipy.sparse"]
