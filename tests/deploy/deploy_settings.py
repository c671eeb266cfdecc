"""What each service binary says it needs (`--list-settings`), for the deployment checks."""
import subprocess

SERVICES = ("assessment", "planning", "progress")


def settings_of(build_dir, service):
    """{environment name: (kind, default)}; kind is plain, required or peer-address."""
    out = subprocess.run([f"{build_dir}/services/{service}/physio-{service}", "--list-settings"],
                         check=True, capture_output=True, text=True).stdout
    rows = [line.split("\t") for line in out.splitlines() if line]
    return {name: (kind, default) for name, kind, default in rows}
