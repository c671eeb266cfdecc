#!/usr/bin/env python3
"""Checks the Kubernetes base (deploy/k8s/base) as a cluster reviewer would.

It lints the YAML (yamllint), renders the base (kubectl kustomize) and checks
the rendered objects: per service a Deployment under mutual TLS (its own
certificate from a Secret) with readiness on the overall health and liveness on
the name that stays SERVING while a store is down (physio-probe with the pod's
certificate, since the kubelet's gRPC probe cannot show one), a termination grace above the service's own drain, non-root with a
read-only root filesystem, requests and limits, passwords only as files from
Secrets, every required and peer-address setting the binary lists set, a
Service, a headless Service for peers and a PodDisruptionBudget; and a
NetworkPolicy letting only the services reach Redis and PostgreSQL.

usage: k8s_check.py BUILD_DIR K8S_DIR   (deploy/k8s: renders its kustomization)
"""
import subprocess
import sys

import yaml

from deploy_settings import SERVICES, settings_of

LIVENESS_NAME = "liveness"  # kLivenessHealthName in libs/server


def probe_target(probe):
    """{port, service, tls} a probe asks: a native gRPC probe, or physio-probe run in the pod."""
    if "grpc" in probe:
        return {"port": probe["grpc"].get("port"), "service": probe["grpc"].get("service", ""), "tls": False}
    command = probe.get("exec", {}).get("command", [])
    if not command or not command[0].endswith("physio-probe"):
        return None
    args = dict(arg[2:].split("=", 1) for arg in command[1:] if arg.startswith("--") and "=" in arg)
    return {"port": int(args.get("addr", ":0").rsplit(":", 1)[-1]), "service": args.get("service", ""),
            "tls": bool(args.get("ca-file") and args.get("cert-file") and args.get("key-file"))}


def main():
    build_dir, base = sys.argv[1], sys.argv[2]
    problems = []
    lint = subprocess.run(["yamllint", "-f", "parsable", "-d",
                           "{extends: default, rules: {line-length: {max: 120}, document-start: disable}}", base],
                          capture_output=True, text=True)
    if lint.returncode != 0:
        problems.append("yamllint:\n" + lint.stdout + lint.stderr)
    rendered = subprocess.run(["kubectl", "kustomize", base], check=True, capture_output=True, text=True).stdout
    objects = [doc for doc in yaml.safe_load_all(rendered) if doc]
    by_kind = {}
    for obj in objects:
        by_kind.setdefault(obj["kind"], []).append(obj)
    configmaps = {c["metadata"]["name"]: c.get("data", {}) for c in by_kind.get("ConfigMap", [])}

    def find(kind, name):
        return next((o for o in by_kind.get(kind, []) if o["metadata"]["name"] == name), None)

    for service in SERVICES:
        name = f"physio-{service}"
        deployment = find("Deployment", name)
        if deployment is None:
            problems.append(f"no Deployment {name}")
            continue
        labels = deployment["spec"]["selector"]["matchLabels"]
        pod = deployment["spec"]["template"]["spec"]
        container = pod["containers"][0]
        env = {}
        for source in container.get("envFrom", []):
            ref = source.get("configMapRef", {}).get("name")
            if ref not in configmaps:
                problems.append(f"{name}: envFrom names missing ConfigMap {ref}")
            env.update(configmaps.get(ref, {}))
        for item in container.get("env", []):
            env[item["name"]] = item.get("value", "<from>")

        # Under mutual TLS the kubelet's native gRPC probe cannot show a client certificate:
        # the probes run physio-probe with the pod's own certificate instead.
        mutual_tls = bool(env.get("PHYSIO_TLS_CLIENT_CA_FILE"))
        readiness = probe_target(container.get("readinessProbe", {}))
        liveness = probe_target(container.get("livenessProbe", {}))
        startup = probe_target(container.get("startupProbe", {}))
        if not readiness or readiness["service"]:
            problems.append(f"{name}: readiness must probe the overall health")
        for probe_name, probe in (("liveness", liveness), ("startup", startup)):
            if not probe or probe["service"] != LIVENESS_NAME:
                problems.append(f"{name}: {probe_name} must probe '{LIVENESS_NAME}' "
                                "(stays SERVING while a store is down)")
        port = int(env.get("PHYSIO_LISTEN", ":0").rsplit(":", 1)[-1])
        for probe in (readiness, liveness, startup):
            if probe and probe["port"] != port:
                problems.append(f"{name}: a probe asks port {probe['port']}, the service listens on {port}")
            if probe and mutual_tls and not probe["tls"]:
                problems.append(f"{name}: the service asks for client certificates but a probe has none")
        # Mutual TLS between the services (issue 25): its own certificate, from a Secret volume.
        for setting in ("PHYSIO_TLS_CERT_FILE", "PHYSIO_TLS_KEY_FILE", "PHYSIO_TLS_CLIENT_CA_FILE",
                        "PHYSIO_PEER_CA_FILE", "PHYSIO_PEER_CERT_FILE", "PHYSIO_PEER_KEY_FILE"):
            value = env.get(setting, "")
            mounts = [m["mountPath"] for m in container.get("volumeMounts", [])]
            if not value:
                problems.append(f"{name}: {setting} is not set (the services run under mutual TLS)")
            elif not any(value.startswith(m + "/") for m in mounts):
                problems.append(f"{name}: {setting}={value} is not under a mounted volume")
        tls_volumes = [v for v in pod.get("volumes", []) if v.get("secret", {}).get("secretName") == f"{name}-tls"]
        if not tls_volumes:
            problems.append(f"{name}: its certificate must come from the Secret {name}-tls")

        grace_ms = int(env.get("PHYSIO_SHUTDOWN_GRACE_MS", "10000"))
        notice_ms = int(env.get("PHYSIO_SHUTDOWN_NOTICE_MS", "1000"))
        pre_stop = container.get("lifecycle", {}).get("preStop", {}).get("exec", {}).get("command", [])
        pre_stop_s = int(pre_stop[-1]) if pre_stop and pre_stop[-1].isdigit() else 0
        termination_s = pod.get("terminationGracePeriodSeconds", 30)
        if termination_s * 1000 <= notice_ms + grace_ms + pre_stop_s * 1000:
            problems.append(f"{name}: terminationGracePeriodSeconds {termination_s} is not above "
                            f"shutdown-notice-ms {notice_ms} plus shutdown-grace-ms {grace_ms} "
                            f"plus the preStop pause ({pre_stop_s} s)")

        if not pod.get("securityContext", {}).get("runAsNonRoot"):
            problems.append(f"{name}: runAsNonRoot is not set")
        security = container.get("securityContext", {})
        if not security.get("readOnlyRootFilesystem"):
            problems.append(f"{name}: root filesystem is not read-only")
        if security.get("allowPrivilegeEscalation", True):
            problems.append(f"{name}: privilege escalation is allowed")
        resources = container.get("resources", {})
        for part in ("requests", "limits"):
            if not {"cpu", "memory"} <= set(resources.get(part, {})):
                problems.append(f"{name}: resources.{part} needs cpu and memory")

        for key, value in env.items():
            if "PASSWORD" in key and not key.endswith("_FILE"):
                problems.append(f"{name}: {key} is set as a value; passwords come from Secret files (*_FILE)")
            if key.endswith("_FILE") and "PASSWORD" in key:
                mounts = [m["mountPath"] for m in container.get("volumeMounts", [])]
                if not any(value.startswith(m + "/") for m in mounts):
                    problems.append(f"{name}: {key}={value} is not under a mounted volume")
        secret_volumes = {v["name"] for v in pod.get("volumes", []) if "secret" in v}
        if len(secret_volumes) < 2:
            problems.append(f"{name}: JWT keys and store passwords must come from Secret volumes")

        for setting, (kind, _default) in settings_of(build_dir, service).items():
            if kind == "plain":
                continue
            value = env.get(setting)
            if not value:
                problems.append(f"{name}: {setting} ({kind}) is not set")
            elif kind == "peer-address":
                peer = setting[len("PHYSIO_"):-len("_ADDR")].lower()
                if f"physio-{peer}-peers" not in value or find("Service", f"physio-{peer}-peers") is None:
                    problems.append(f"{name}: {setting}={value} must name the headless Service physio-{peer}-peers")

        service_obj = find("Service", name)
        if service_obj is None or service_obj["spec"].get("selector") != labels:
            problems.append(f"{name}: no Service selecting its pods")
        peers = find("Service", f"{name}-peers")
        if peers is None or peers["spec"].get("clusterIP") != "None":
            problems.append(f"{name}: no headless Service for peers")
        pdb = find("PodDisruptionBudget", name)
        if pdb is None or pdb["spec"]["selector"].get("matchLabels") != labels:
            problems.append(f"{name}: no PodDisruptionBudget selecting its pods")
        elif deployment["spec"].get("replicas", 1) <= pdb["spec"].get("minAvailable", 0):
            problems.append(f"{name}: replicas must exceed the PodDisruptionBudget's minAvailable")

    store_policy = None
    for policy in by_kind.get("NetworkPolicy", []):
        for expression in policy["spec"]["podSelector"].get("matchExpressions", []):
            if {"redis", "redis-sentinel", "postgresql"} <= set(expression.get("values", [])):
                store_policy = policy
    if store_policy is None:
        problems.append("no NetworkPolicy selecting the Redis, Redis Sentinel and PostgreSQL pods")
    else:
        sources = [peer for rule in store_policy["spec"].get("ingress", []) for peer in rule.get("from", [])]
        if not sources or any(p.get("podSelector", {}).get("matchLabels", {}).get("app.kubernetes.io/component")
                              != "service" for p in sources):
            problems.append("the stores' NetworkPolicy must admit the services' pods only")
        ports = {p.get("port") for rule in store_policy["spec"].get("ingress", []) for p in rule.get("ports", [])}
        for port, what in ((6379, "Redis"), (26379, "Redis Sentinel"), (5432, "PostgreSQL")):
            if port not in ports:
                problems.append(f"the stores' NetworkPolicy must admit {what}'s port {port}")
        pod_labels = by_kind["Deployment"][0]["spec"]["template"]["metadata"]["labels"]
        for p in sources:
            wanted = p.get("podSelector", {}).get("matchLabels", {})
            if not all(pod_labels.get(k) == v for k, v in wanted.items()):
                problems.append("the stores' NetworkPolicy selects no service pod")

    for problem in problems:
        print("k8s:", problem)
    if problems:
        sys.exit(1)
    print(f"k8s base: {len(objects)} objects, {len(SERVICES)} services checked")


if __name__ == "__main__":
    main()
