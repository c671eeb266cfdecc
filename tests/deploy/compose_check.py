#!/usr/bin/env python3
"""Checks docker-compose.yml against what each service binary says it needs.

Each binary lists its own settings (`--list-settings`: environment name, kind,
default), so this check cannot drift from the code: every `required` setting
and every `peer-address` setting must be set in that service's compose
environment, and a peer address must name a compose service of that name on
the port that service listens on.

usage: compose_check.py BUILD_DIR COMPOSE_FILE
"""
import os
import re
import subprocess
import sys

import yaml

from deploy_settings import SERVICES, settings_of



def runtime_stage(dockerfile):
    """The last stage's instructions, COPY lines left out (they name where binaries come from)."""
    text = open(dockerfile).read().replace("\\\n", " ")
    stages = re.split(r"(?m)^FROM ", text)
    lines = [line.split("#", 1)[0].strip() for line in ("FROM " + stages[-1]).splitlines()]
    return [" ".join(line.split()) for line in lines if line and not line.startswith("COPY")]


def runtime_stage_drift(deploy_dir):
    source = runtime_stage(os.path.join(deploy_dir, "Dockerfile"))
    prebuilt = runtime_stage(os.path.join(deploy_dir, "Dockerfile.prebuilt"))
    if source != prebuilt:
        return [f"deploy/Dockerfile.prebuilt's runtime stage differs from deploy/Dockerfile's: {prebuilt} vs {source}"]
    if not any(line.startswith("USER ") and line != "USER root" for line in source):
        return ["deploy/Dockerfile's runtime stage does not switch to a non-root USER"]
    return []


def main():
    build_dir, compose_file = sys.argv[1], sys.argv[2]
    rendered = subprocess.run(["docker-compose", "-f", compose_file, "config"], check=True,
                              capture_output=True, text=True).stdout
    compose = yaml.safe_load(rendered)["services"]
    problems = []
    listen_port = {}
    for service in SERVICES:
        if service not in compose:
            problems.append(f"compose has no service '{service}'")
            continue
        listen = compose[service].get("environment", {}).get("PHYSIO_LISTEN", "")
        listen_port[service] = listen.rsplit(":", 1)[-1]
    checked = 0
    for service in SERVICES:
        env = compose.get(service, {}).get("environment", {}) or {}
        for name, (kind, _default) in settings_of(build_dir, service).items():
            if kind == "plain":
                continue
            checked += 1
            value = env.get(name)
            if not value:
                problems.append(f"{service}: {name} ({kind}) is not set")
                continue
            if kind == "peer-address":
                peer = name[len("PHYSIO_"):-len("_ADDR")].lower()
                host, _, port = str(value).rpartition(":")
                if host != peer or peer not in compose:
                    problems.append(f"{service}: {name}={value} does not name the compose service '{peer}'")
                elif port != listen_port.get(peer):
                    problems.append(f"{service}: {name}={value} but {peer} listens on port {listen_port.get(peer)}")
    # Mutual TLS (issue 25): every service presents its own certificate, asks gRPC callers
    # for one from the CA, calls its peers with it, and has exactly those files mounted.
    tls_settings = ("PHYSIO_TLS_CERT_FILE", "PHYSIO_TLS_KEY_FILE", "PHYSIO_TLS_CLIENT_CA_FILE",
                    "PHYSIO_PEER_CA_FILE", "PHYSIO_PEER_CERT_FILE", "PHYSIO_PEER_KEY_FILE")
    for service in SERVICES:
        env = compose.get(service, {}).get("environment", {}) or {}
        mounted = {str(v).split(":")[1] if isinstance(v, str) else v.get("target")
                   for v in compose.get(service, {}).get("volumes", [])}
        for name in tls_settings:
            value = env.get(name)
            if not value:
                problems.append(f"{service}: {name} is not set (mutual TLS)")
            elif value not in mounted:
                problems.append(f"{service}: {name}={value} is not a mounted file")
        if env.get("PHYSIO_TLS_CERT_FILE", "").rsplit("/", 1)[-1] != f"physio-{service}.pem":
            problems.append(f"{service}: presents {env.get('PHYSIO_TLS_CERT_FILE')}, not its own certificate")
        if any(str(m).endswith("ca.key") for m in mounted):
            problems.append(f"{service}: the CA's private key is mounted")
        probe = compose.get(service, {}).get("healthcheck", {}).get("test", [])
        if "--ca-file=/run/certs/ca.pem" not in probe:
            problems.append(f"{service}: the healthcheck does not speak TLS")
    # Non-root on a read-only root filesystem (issue 27), in every service.
    for service in SERVICES:
        if compose.get(service, {}).get("read_only") is not True:
            problems.append(f"{service}: the root filesystem is not read_only")
    # The compose smoke's images (deploy/Dockerfile.prebuilt) are deploy/Dockerfile's runtime
    # image: the same base, packages, user and entrypoint, only the binaries come from elsewhere.
    problems += runtime_stage_drift(os.path.join(os.path.dirname(os.path.abspath(compose_file)), "deploy"))
    if checked == 0:
        problems.append("no required or peer-address settings were listed: --list-settings is broken")
    for problem in problems:
        print(problem)
    print(f"{checked} required/peer settings checked, {len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
