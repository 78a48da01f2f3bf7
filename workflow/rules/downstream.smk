# Downstream stage: every evaluated checkpoint (pretraining runs, random init, external checkpoints) x downstream
# input x task x dataset x split, one metrics JSON per result; the tasks come from hico_bench/evaluate/tasks.py.
# results/eval/<run>/<input>/<task>_<dataset>.json holds the mean over the configured splits (and each split's).

EVAL = f"{RESULTS}/eval/{{run}}/{{input}}"


wildcard_constraints:
    input=r"\d+x\d+",
    split="[123]",


rule features:
    input:
        unpack(checkpoint_inputs),
        manifest=lambda wc: manifest_path(f"{wc.dataset}_split{wc.split}"),
    output:
        f"{EVAL}/features/{{dataset}}_split{{split}}.npz",
    params:
        checkpoint=checkpoint_args,
        model=model_json,
        settings=lambda wc: settings_json(evaluations(wc).features),
    wildcard_constraints:
        dataset="ucf101|hmdb51",
    resources:
        gpu=one_gpu,
    log:
        f"{LOGS}/features_{{run}}_{{input}}_{{dataset}}_split{{split}}.log",
    conda:
        "../envs/hico-bench.yaml"
    shell:
        "hico-bench features {params.checkpoint} --manifest {input.manifest:q} --model {params.model:q}"
        " --settings {params.settings:q} --out {output:q} 2> >(tee {log:q} >&2)"


rule task_on_features:
    input:
        f"{EVAL}/features/{{dataset}}_split{{split}}.npz",
    output:
        f"{EVAL}/splits/{{task}}_{{dataset}}_split{{split}}.json",
    params:
        identity=identity_json,
        settings=task_settings_json,
    wildcard_constraints:
        task="|".join(tasks_reading("features")),
        dataset="ucf101|hmdb51",
    log:
        f"{LOGS}/{{task}}_{{run}}_{{input}}_{{dataset}}_split{{split}}.log",
    conda:
        "../envs/hico-bench.yaml"
    shell:
        "hico-bench {wildcards.task} --features {input:q} --run {params.identity:q} --dataset {wildcards.dataset}"
        " --split {wildcards.split} --settings {params.settings:q} --out {output:q} 2> >(tee {log:q} >&2)"


rule task_on_videos:
    input:
        unpack(checkpoint_inputs),
        manifest=lambda wc: manifest_path(f"{wc.dataset}_split{wc.split}"),
    output:
        f"{EVAL}/splits/{{task}}_{{dataset}}_split{{split}}.json",
    params:
        checkpoint=checkpoint_args,
        identity=identity_json,
        model=model_json,
        settings=task_settings_json,
        launcher=lambda wc: launcher(task_gpus(wc)),
    wildcard_constraints:
        task="|".join(tasks_reading("videos")),
        dataset="ucf101|hmdb51",
    resources:
        gpu=task_gpus,
    log:
        f"{LOGS}/{{task}}_{{run}}_{{input}}_{{dataset}}_split{{split}}.log",
    conda:
        "../envs/hico-bench.yaml"
    shell:
        "trap '' TERM; {params.launcher} {wildcards.task} {params.checkpoint} --manifest {input.manifest:q} --model {params.model:q}"
        " --run {params.identity:q} --dataset {wildcards.dataset} --split {wildcards.split}"
        " --settings {params.settings:q} --out {output:q} 2> >(tee {log:q} >&2)"


rule merge_splits:
    input:
        lambda wc: expand(f"{RESULTS}/eval/{wc.run}/{wc.input}/splits/{wc.task}_{wc.dataset}_split{{split}}.json",
                          split=evaluations(wc).splits),
    output:
        f"{EVAL}/{{task}}_{{dataset}}.json",
    wildcard_constraints:
        task="|".join(TASKS),
        dataset="ucf101|hmdb51",
    log:
        f"{LOGS}/merge_splits_{{run}}_{{input}}_{{task}}_{{dataset}}.log",
    localrule: True
    conda:
        "../envs/hico-bench.yaml"
    shell:
        # a shell command, not a run: block: Snakemake runs a run: block in a Snakemake process of its own, which
        # parses the whole workflow again (seconds); this verb starts in a fraction of a second
        "hico-bench merge-splits {input:q} --out {output:q} 2> {log:q}"


rule export_features:
    input:
        unpack(checkpoint_inputs),
        manifest=manifest_path("activitynet"),
    output:
        f"{EVAL}/anet_features/export.json",
    params:
        checkpoint=checkpoint_args,
        model=model_json,
        settings=lambda wc: settings_json(evaluations(wc).localization["export"]),
        out_dir=lambda wc, output: os.path.dirname(output[0]),
    threads: lambda wc: export_threads(wc)
    resources:
        gpu=one_gpu,
    log:
        f"{LOGS}/export_features_{{run}}_{{input}}.log",
    conda:
        "../envs/hico-bench.yaml"
    shell:
        "hico-bench export-features {params.checkpoint} --manifest {input.manifest:q} --model {params.model:q}"
        " --settings {params.settings:q} --out-dir {params.out_dir:q} 2> >(tee {log:q} >&2)"


rule localize:
    input:
        export=f"{EVAL}/anet_features/export.json",
        manifest=manifest_path("activitynet"),  # the ground truth JSON is read (or generated) before it
    output:
        predictions=f"{EVAL}/localization_predictions.json",
        metrics=f"{EVAL}/localization_activitynet.json",
    params:
        features=lambda wc, input: os.path.dirname(input.export),
        ground_truth=lambda wc: dataset_paths(config, "activitynet")["json"],
        identity=identity_json,
        settings=lambda wc: settings_json(evaluations(wc).localization["probe"]),
    log:
        f"{LOGS}/localize_{{run}}_{{input}}.log",
    conda:
        "../envs/hico-bench.yaml"
    shell:
        "hico-bench localize --features {params.features:q} --ground-truth {params.ground_truth:q}"
        " --predictions {output.predictions:q} --run {params.identity:q} --settings {params.settings:q}"
        " --out {output.metrics:q} 2> >(tee {log:q} >&2)"
