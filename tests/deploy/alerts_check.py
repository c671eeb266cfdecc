#!/usr/bin/env python3
"""Checks the alerting rules (deploy/k8s/monitoring/physio-alerts.yml) as an on-call team would.

- promtool accepts the rules (`promtool check rules`) and their unit tests pass
  (`promtool test rules tests/deploy/physio-alerts.test.yml`: each alert fires on the series
  that should raise it, after its `for`, with its labels and summary, and stays quiet otherwise);
- every alert has a unit test in which it fires;
- every metric an expression names is one the services export (registered by name in libs/ or
  services/), so a renamed metric cannot leave an alert that never fires;
- every alert has a severity (critical, warning or info), a summary and the runbook pointer, and
  is explained in docs/deploy.md's "Alerts" section;
- yamllint passes, and `kubectl kustomize deploy/k8s/monitoring` renders the file, unchanged, as
  the ConfigMap physio-alert-rules.

usage: alerts_check.py SOURCE_DIR
"""
import pathlib
import re
import subprocess
import sys

import yaml

RULES = "deploy/k8s/monitoring/physio-alerts.yml"
UNIT_TESTS = "tests/deploy/physio-alerts.test.yml"
SEVERITIES = {"critical", "warning", "info"}
# The metric names of an expression (ours all start so; PromQL's own words never do).
METRIC = re.compile(r"\b((?:physio|grpc_server|process)_[a-z_]+)\b")


def run(args, cwd):
    done = subprocess.run(args, cwd=cwd, capture_output=True, text=True)
    return done.returncode, done.stdout + done.stderr


def exported_names(source):
    """Every metric the services' and libraries' sources register by name (a string literal that
    is the name, or a `# TYPE` line written out by hand)."""
    names = set()
    for folder in ("libs", "services"):
        for path in (source / folder).rglob("*"):
            if path.suffix in (".cc", ".h"):
                names.update(re.findall(r'(?:"|# TYPE )((?:physio|grpc_server|process)_[a-z_]+)[" ]',
                                        path.read_text()))
    return names


def alerts_section(docs):
    match = re.search(r"^## Alerts\n(.*?)(?=^## |\Z)", docs, re.S | re.M)
    return match.group(1) if match else ""


def main():
    source = pathlib.Path(sys.argv[1]).resolve()
    problems = []

    code, out = run(["yamllint", "-f", "parsable", "-d",
                     "{extends: default, rules: {line-length: {max: 120}, document-start: disable}}",
                     "deploy/k8s/monitoring", UNIT_TESTS], source)
    if code != 0:
        problems.append("yamllint:\n" + out)
    code, out = run(["promtool", "check", "rules", RULES], source)
    if code != 0:
        problems.append("promtool check rules:\n" + out)
    code, out = run(["promtool", "test", "rules", UNIT_TESTS], source)
    if code != 0:
        problems.append("promtool test rules:\n" + out)

    text = (source / RULES).read_text()
    rules = [rule for group in yaml.safe_load(text)["groups"] for rule in group["rules"]]
    alerts = [rule for rule in rules if "alert" in rule]
    if not alerts:
        problems.append(f"{RULES} has no alerts")

    tests = yaml.safe_load((source / UNIT_TESTS).read_text())
    fired = {case["alertname"] for group in tests["tests"] for case in group.get("alert_rule_test", [])
             if case.get("exp_alerts")}
    exported = exported_names(source)
    explained = alerts_section((source / "docs/deploy.md").read_text())
    if not explained:
        problems.append("docs/deploy.md has no '## Alerts' section")

    for rule in alerts:
        name = rule["alert"]
        if name not in fired:
            problems.append(f"{name}: no unit test in {UNIT_TESTS} in which it fires")
        for metric in sorted(set(METRIC.findall(rule["expr"]))):
            base = re.sub(r"_(bucket|sum|count)$", "", metric)
            if metric not in exported and base not in exported:
                problems.append(f"{name}: its expression names {metric}, which no service exports")
        if rule.get("labels", {}).get("severity") not in SEVERITIES:
            problems.append(f"{name}: severity must be one of {sorted(SEVERITIES)}")
        annotations = rule.get("annotations", {})
        if not annotations.get("summary"):
            problems.append(f"{name}: no summary")
        if annotations.get("runbook") != "docs/deploy.md, Alerts":
            problems.append(f"{name}: its runbook annotation must point at docs/deploy.md, Alerts")
        if f"`{name}`" not in explained:
            problems.append(f"{name}: not explained in docs/deploy.md's Alerts section")

    code, rendered = run(["kubectl", "kustomize", "deploy/k8s/monitoring"], source)
    if code != 0:
        problems.append("kubectl kustomize deploy/k8s/monitoring:\n" + rendered)
    else:
        maps = [doc for doc in yaml.safe_load_all(rendered)
                if doc and doc.get("kind") == "ConfigMap" and doc["metadata"]["name"] == "physio-alert-rules"]
        if len(maps) != 1 or maps[0].get("data", {}).get("physio-alerts.yml") != text:
            problems.append("deploy/k8s/monitoring does not render physio-alerts.yml as the ConfigMap physio-alert-rules")

    for problem in problems:
        print("PROBLEM:", problem)
    print(f"{len(alerts)} alerts, {len(fired)} with a firing unit test; {len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
