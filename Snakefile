# metarepro: extraction sheets + a researcher's config -> effect sizes, pooled fits, forest plots, report.
#
#   snakemake --cores 2                          # the default reproduction (config/config.yaml)
#   snakemake --cores 2 --configfile my.yaml     # exactly the analyses of my.yaml (not the defaults too)


from snakemake.utils import min_version, validate

min_version("9.0")


# A researcher's --configfile replaces the default config rather than merging into it, so that
# their run contains exactly their analyses.
if not workflow.overwrite_configfiles:

    configfile: "config/config.yaml"


validate(config, "workflow/schemas/config.schema.yaml")


include: "workflow/rules/common.smk"
include: "workflow/rules/analysis.smk"
include: "workflow/rules/sensitivity.smk"
include: "workflow/rules/report.smk"


rule all:
    default_target: True
    input:
        result_path("summary.csv"),
        result_path("reproduction.csv"),
        result_path("report.html"),
        all_analysis_outputs(),
        sensitivity_outputs(),
    message:
        f"all {len(ANALYSES)} analyses done"


report: "workflow/report/workflow.rst"


# On a cluster the target rule runs where snakemake runs, not as a job.
localrules:
    all,


onsuccess:
    import sys

    print(run_summary(), file=sys.stderr)
