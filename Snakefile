# metarepro: extraction sheets + a researcher's config -> effect sizes, pooled fits, forest plots, report.
#
#   snakemake --cores 2                          # the default reproduction (config/config.yaml)
#   snakemake --cores 2 --configfile my.yaml     # exactly the analyses of my.yaml (not the defaults too)


import gc
import os
import sys

from snakemake.utils import min_version, validate

min_version("9.0")


# A researcher's --configfile replaces the default config rather than merging into it, so that
# their run contains exactly their analyses.
if not workflow.overwrite_configfiles:
    # Snakemake's own reading of a config that is empty, UTF-16 or holds a YAML tag says only "not valid JSON
    # or YAML"; metarepro's says what is wrong and how to fix it. (A --configfile is read before this file runs.)
    # Only where the directive reads the file: it exists, and this is not a module given its config.
    try:
        from metarepro.inputs.config import ConfigError, load_yaml
    except ImportError:
        pass
    else:
        skipped = getattr(workflow.modifier, "skip_configfile", False)
        try:
            if not skipped and os.path.exists("config/config.yaml"):
                load_yaml("config/config.yaml")
        except ConfigError as err:
            sys.exit(f"metarepro: {err}")

    configfile: "config/config.yaml"


SCHEMA = workflow.source_path("workflow/schemas/config.schema.yaml")
try:
    from metarepro.inputs.config import (
        ConfigError,
        check_config,
        format_errors,
        load_config,
    )
except ImportError:
    # Parsing needs only Snakemake (e.g. with --sdm conda, metarepro is in the jobs' environment):
    # JSON Schema only, and the jobs' metarepro reads the sheets.
    validate(config, SCHEMA)
else:
    # The config is re-read strictly (duplicate keys, YAML 1.1 booleans such as NO, analysis names as
    # written, alias bombs) and checked whole with its sheets: one line per problem, then stop, before any
    # rule runs.
    try:
        strict, key_lines = load_config(
            workflow.configfiles, dict(workflow.config_settings.config)
        )
    except ConfigError as err:
        sys.exit(f"metarepro: {err}")
    if strict is not None:  # None: a YTE template, which only Snakemake can read
        config.clear()
        config.update(strict)
    # Every sheet is read whole here, so that every problem of every file shows at once, before any job; inputs
    # that passed and have not changed since are remembered, so a rerun reads only their headers.
    config_problems = check_config(
        config, SCHEMA, key_lines, checked=".snakemake/metarepro/checked_inputs.json"
    )
    if config_problems:
        sys.exit(format_errors(config_problems))


include: "workflow/rules/common.smk"
include: "workflow/rules/analysis.smk"
include: "workflow/rules/report.smk"


rule all:
    default_target: True
    input:
        result_path("summary.csv"),
        result_path("reproduction.csv"),
        result_path("report.html"),
        all_analysis_outputs(),
    message:
        f"all {len(ANALYSES)} analyses done"


report: "workflow/report/workflow.rst"


# On a cluster the target rule runs where snakemake runs, not as a job.
localrules:
    all,


# Snakemake, the parsed rules and the config live until the run ends: moved out of the garbage collector's view,
# they are not walked again by every collection while the DAG is built (a no-op run 1.6 -> 1.2 s).
gc.freeze()


# Snakemake's SIGTERM handler can deadlock its scheduler (a cancelled CI job or scancel hangs): see common.smk.
onstart:
    defer_sigterm_handler()


onsuccess:
    import sys

    release_rate_limiter()
    print(run_summary(), file=sys.stderr)


onerror:
    release_rate_limiter()
