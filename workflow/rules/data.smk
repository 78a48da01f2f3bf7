# Data stage: the synthetic benchmark (default) and one manifest per dataset.


rule synthesize:
    output:
        SYNTHETIC_DONE,
    params:
        root=config["synthetic"]["root"],
        seed=config["synthetic"]["seed"],
        settings=settings_json(config["synthetic"]["settings"]),
    log:
        f"{LOGS}/synthesize.log",
    threads: workflow.cores
    shell:
        "hico-bench synthesize --root {params.root:q} --seed {params.seed} --settings {params.settings:q}"
        " --workers {threads} --summary {output:q} 2> >(tee {log:q} >&2)"


def manifest_inputs(wildcards):
    if SYNTHETIC:
        return [SYNTHETIC_DONE]
    return required_inputs(config, wildcards.dataset)


rule manifest:
    input:
        manifest_inputs,
    output:
        manifest=f"{RESULTS}/manifests/{{dataset}}.csv",
        quarantine=f"{RESULTS}/manifests/{{dataset}}.quarantine.csv",
    params:
        paths=lambda wc: settings_json(dataset_paths(config, wc.dataset)),
        max_bad=config["manifest"]["max_bad_fraction"],
    wildcard_constraints:
        dataset="k400|uk400|ucf101|hmdb51|activitynet",
    log:
        f"{LOGS}/manifest_{{dataset}}.log",
    threads: config["manifest"]["workers"]
    shell:
        "hico-bench manifest {wildcards.dataset} --paths {params.paths:q} --out {output.manifest:q}"
        " --quarantine {output.quarantine:q} --max-bad-fraction {params.max_bad} --workers {threads} 2> >(tee {log:q} >&2)"
