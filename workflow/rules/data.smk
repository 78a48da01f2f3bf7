# Data stage: the synthetic benchmark (default) and one manifest per dataset.


rule synthesize:
    output:
        SYNTHETIC_DONE,
    params:
        root=lambda wc, output: os.path.dirname(output[0]),
        seed=config["synthetic"]["seed"],
        settings=settings_json(config["synthetic"]["settings"]),
    log:
        f"{LOGS}/synthesize.log",
    threads: 8  # capped by --cores
    conda:
        "../envs/hico-bench.yaml"
    shell:
        "hico-bench synthesize --root {params.root:q} --seed {params.seed} --settings {params.settings:q}"
        " --workers {threads} --summary {output:q} 2> >(tee {log:q} >&2)"


rule manifest:
    input:
        manifest_inputs,
    output:
        manifest=f"{RESULTS}/manifests/{{dataset}}.csv",
        quarantine=f"{RESULTS}/manifests/{{dataset}}.quarantine.csv",
    params:
        kind=lambda wc: manifest_dataset(wc)[0],
        split=lambda wc: manifest_dataset(wc)[1],
        paths=lambda wc: settings_json(dataset_paths(config, manifest_dataset(wc)[0])),
        max_bad=config["manifest"]["max_bad_fraction"],
    wildcard_constraints:
        dataset="k400|uk400|hacs|activitynet|(ucf101|hmdb51)_split[123]",
    log:
        f"{LOGS}/manifest_{{dataset}}.log",
    threads: config["manifest"]["workers"]
    conda:
        "../envs/hico-bench.yaml"
    shell:
        "hico-bench manifest {params.kind} --split {params.split} --paths {params.paths:q} --out {output.manifest:q}"
        " --quarantine {output.quarantine:q} --max-bad-fraction {params.max_bad} --workers {threads} 2> >(tee {log:q} >&2)"


rule prepare:
    input:
        f"{RESULTS}/manifests/{{dataset}}.csv",
    output:
        f"{RESULTS}/manifests/{{dataset}}.prepared.csv",
    params:
        out_dir=lambda wc: f"{config['prepare']['root']}/{wc.dataset}",
        short_side=config["prepare"]["short_side"],
        keyframe=config["prepare"]["keyframe_interval_s"],
    log:
        f"{LOGS}/prepare_{{dataset}}.log",
    threads: config["prepare"]["workers"]
    conda:
        "../envs/hico-bench.yaml"
    shell:
        "hico-bench prepare {input:q} --out-dir {params.out_dir:q} --manifest-out {output:q}"
        " --short-side {params.short_side} --keyframe-interval {params.keyframe} --workers {threads}"
        " 2> >(tee {log:q} >&2)"
