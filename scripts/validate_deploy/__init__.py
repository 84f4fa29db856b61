"""Checks deploy/k8s, deploy/rabbitmq and deploy/observability. Run by
scripts/validate-deploy.sh, which installs the pinned Python packages, finds the tools and
builds the CLI; by hand, with those packages and scripts/ on PYTHONPATH:

    WORKOS_SYNC_CLI=target/debug/workos-sync PYTHONPATH=scripts:$PYDEPS \\
        python3 -m validate_deploy ROOT --kustomize "kubectl kustomize" [--promtool PATH]

What is checked, and how (each module's docstring says more):

deploy/k8s       (k8s.py) Every kustomization (base and each overlay) is rendered by
                 kustomize, `kustomize build` or `kubectl kustomize` (render.py; required:
                 there is no renderer of our own). What kustomize lets through in a patch,
                 a target that selects nothing or a `replace` of a missing field, is
                 reported (patches.py). Every rendered document (and
                 base/secret.example.yaml) is then validated, strictly (unknown fields are
                 errors), against the Kubernetes JSON schemas bundled by the
                 `kubernetes-validate` package for each version in Validators.versions, and
                 custom resources against the hand-written schemas in CRD_SCHEMAS
                 (schemas.py). Then cross-references (k8s_refs.py): selectors, ports, Secret
                 keys, ConfigMap keys against config/default.toml, security context.
deploy/rabbitmq  (rabbitmq.py) definitions.json against the topology the app declares, as
                 printed by the binary itself (`workos-sync debug topology`, app.py).
                 (rabbitmq_live.py) When a local RabbitMQ node answers `rabbitmqctl`, the
                 file is also imported into a throwaway vhost and read back.
deploy/observability
                 (observability.py) prometheus-rules.yaml: structure, then `promtool check
                 rules` and `promtool test rules` (prometheus-rules.test.yaml).
                 grafana-dashboard.json: structure, every panel has queries, every query
                 parses (promtool, as recording rules). Every metric named in either is one
                 the binaries emit (`workos-sync debug metrics`, app.py).

WORKOS_SYNC_CLI (the workos-sync binary) and the kustomize command are required; the run
stops before any check without them. Otherwise every problem is reported (common.error)
and the exit status is 1 when there was any.
"""
