# One job runs several analyses (config analyses_per_job, default 12), each into its own folder: an analysis's
# statistics and SVG figures take under a second (benchmarks/bench_outputs.py), while starting Python, importing
# metarepro and Snakemake's own work for a job take about 1.2 s, paid once per job instead of once per analysis. A job reruns when
# the settings (params) or sheet (input) of any of its analyses change, so editing one analysis reruns the analyses
# of its job and nothing is left stale; analyses_per_job: 1 gives one job per analysis (README, "Clusters").
# `snakemake analysis_il6_smd` runs the job of that analysis.
for index, names in enumerate(analysis_chunks()):

    rule:
        name:
            chunk_rule(index, names)
        input:
            # each analysis's sheet, in the order of params.settings
            sheets=[local(config["analyses"][name]["data"]) for name in names],
            # the published study-level values (config compare_studies) of the analyses that have them
            studies=[sheet for name in names for sheet in study_level_sheet(name)],
        output:
            **{
                path: file
                for position, name in enumerate(names)
                for path, file in analysis_outputs(
                    name, key=lambda stem, position=position: f"a{position}_{stem}"
                ).items()
            },
        log:
            **{
                f"a{position}": f"logs/analysis/{name}.log"
                for position, name in enumerate(names)
            },
        # the jobs with the most figures first, so that no long job starts last while a core idles
        priority: sum(len(analysis_files(name)) for name in names)
        conda:
            "../envs/metarepro.yaml"
        # peak memory of one analysis grows with its sheet (benchmarks/bench_scale.py: 0.5 GB up to k = 10^5, 0.9 GB
        # at k = 5,000 where every refit still runs, 3.6 GB for a 79 MB sheet of 10^6 rows): 1 GB + 40 times the
        # largest sheet (the analyses run one after another); 10 minutes per analysis and one per 10 MB read
        resources:
            mem_mb=lambda wildcards, input: analysis_memory(input),
            runtime=lambda wildcards, input: analysis_runtime(input),
        params:
            settings=[analysis_settings(name) for name in names],
            formats=FIGURE_FORMATS,
            # unchanged analyses of a rerun job get their kept files back (metarepro.jobs.reuse)
            reuse=config["reuse_unchanged"],
        message:
            f"{', '.join(names)}: effect sizes, pooled fit, sensitivity analyses, figures"
        script:
            "../scripts/analysis.py"


# `snakemake analysis_il6_smd`: the files of one analysis (its job runs when they are missing or out of date)
for names in analysis_chunks():
    for name in names if len(names) > 1 else []:

        rule:
            name:
                analysis_rule(name)
            input:
                [result_path(f"{name}/{file}") for file in analysis_files(name)],
            localrule: True
