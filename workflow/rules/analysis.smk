# One job per analysis writes all of its tables and figures: the statistics of an analysis take milliseconds,
# so a job's cost is starting Python and drawing; one job per step would pay the start-up ten times.
# One rule per analysis (its outputs follow its config: subgroup and moderator figures), e.g.
# `snakemake analysis_il6_smd` runs just that analysis.
for name in ANALYSES:

    rule:
        name:
            analysis_rule(name)
        input:
            sheet=local(config["analyses"][name]["data"]),
            # the published study-level values (config compare_studies), when the analysis has them
            studies=study_level_sheet(name),
        output:
            **analysis_outputs(name),
        log:
            f"logs/analysis/{name}.log",
        # the analyses with the most figures first, so that no long job starts last while a core idles
        priority: len(analysis_files(name))
        conda:
            "../envs/metarepro.yaml"
        # peak memory of one job grows with its sheet (benchmarks/bench_scale.py: 0.5 GB up to k = 10^5, 0.9 GB at
        # k = 5,000 where every refit still runs, 3.6 GB for a 79 MB sheet of 10^6 rows): 1 GB + 40 times the sheet
        resources:
            mem_mb=lambda wildcards, input: 1000 + 40 * input.size_mb,
            runtime=lambda wildcards, input: 10 + int(input.size_mb / 10),
        params:
            settings=analysis_settings(name),
            formats=FIGURE_FORMATS,
        message:
            f"{name}: effect sizes, pooled fit, sensitivity analyses, figures"
        script:
            "../scripts/analysis.py"
