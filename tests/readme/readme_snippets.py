#!/usr/bin/env python3
"""Runs the README's examples as a newcomer would, so the text and the code cannot drift.

Every ```sh and ```python block of README.md is taken from the README itself:
 - a block after `<!-- readme-test: skip (why) -->` is not run;
 - a block after `<!-- readme-test: file PATH -->` is written to PATH (as the README says to save it);
 - a block after `<!-- readme-test: expect-output -->` must appear in what the sh blocks printed;
 - all other sh blocks run, in order, in one bash with `set -e`.
They run from a throwaway checkout in a mode-0700 directory (its scripts, protos and build linked
to this one) with the services of `./scripts/run.sh` up, under the PATH of a fresh Debian root
shell. The only change made to the text: the default ports become free ones, since other tests
run at the same time.

usage: readme_snippets.py SOURCE_DIR BUILD_DIR
"""
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time

DEBIAN_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
DEFAULT_PORTS = {"ASSESSMENT": 50051, "PLANNING": 50052, "PROGRESS": 50053, "REDIS": 6380, "PG": 5433}
HAND_STARTED_PORTS = (50061,)


TAKEN = set()  # every port chosen in this run, by either function


def free_port(taken=TAKEN):
    """A port nothing listens on, below the kernel's ephemeral range (32768+), so that no
    outgoing connection of a concurrent test can take it before run.sh binds it."""
    import random
    while True:
        port = random.randint(20000, 31999)
        if port in taken:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        taken.add(port)
        return port


def free_service_port(taken=TAKEN):
    """A gRPC port whose HTTP (+1000) and metrics (+2000) ports are free as well, all three
    below the ephemeral range."""
    import random
    while True:
        port = random.randint(20000, 29999)
        trio = (port, port + 1000, port + 2000)
        if any(p in taken for p in trio):
            continue
        free = True
        for candidate in trio:
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", candidate))
                except OSError:
                    free = False
        if free:
            taken.update(trio)
            return port


def blocks(readme):
    """(language, directive, text) for every fenced block with a language."""
    pending = None
    out = []
    lines = readme.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        directive = re.match(r"<!-- readme-test: (.*?) -->", line)
        if directive:
            pending = directive.group(1)
        fence = re.match(r"```(\w+)\s*$", line)
        if fence:
            body = []
            i += 1
            while not lines[i].startswith("```"):
                body.append(lines[i])
                i += 1
            out.append((fence.group(1), pending, "\n".join(body) + "\n"))
            pending = None
        elif line.strip() and not directive:
            pending = None  # a directive applies only to the block right after it
        i += 1
    return out


def main():
    source, build = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
    readme = open(os.path.join(source, "README.md")).read()
    ports = {name: free_service_port() if name in ("ASSESSMENT", "PLANNING", "PROGRESS") else free_port()
             for name in DEFAULT_PORTS}
    renumber = {default: ports[name] for name, default in DEFAULT_PORTS.items()}
    renumber.update({port: free_port() for port in HAND_STARTED_PORTS})
    # Each service's HTTP port is its gRPC port plus 1000 (the http-listen default), its
    # metrics listener the gRPC port plus 2000 (metrics-listen).
    for offset in (1000, 2000):
        renumber.update({DEFAULT_PORTS[name] + offset: ports[name] + offset
                         for name in ("ASSESSMENT", "PLANNING", "PROGRESS")})

    def localise(text):
        return re.sub(r"\b(\d{4,5})\b", lambda m: str(renumber.get(int(m.group(1)), m.group(1))), text)

    script, files, expected, skipped = ["set -euo pipefail"], [], [], 0
    for language, directive, text in blocks(readme):
        if directive and directive.startswith("skip"):
            skipped += 1
        elif directive and directive.startswith("file "):
            files.append((directive[len("file "):].strip(), localise(text)))
        elif directive == "expect-output":
            expected.append(text.strip())
        elif language == "sh":
            script.append(localise(text))
        elif language == "python":
            sys.exit("a python block without a 'file' directive: the README must say where it goes")
    if len(script) < 2 or not files or not expected:
        sys.exit("the README lost its runnable examples (sh blocks, a python file, an expected output)")

    checkout = tempfile.mkdtemp(prefix="physio-readme-")  # mode 0700, like a clone under /root
    for name in ("scripts", "protos"):
        os.symlink(os.path.join(source, name), os.path.join(checkout, name))
    os.symlink(build, os.path.join(checkout, "build"))
    env = dict(os.environ, PATH=DEBIAN_PATH, PHYSIO_SKIP_BUILD="1", PHYSIO_BUILD_DIR=build)
    env.pop("PHYSIO_RUN_DIR", None)
    for name, port in ports.items():
        env[f"PHYSIO_{name}_PORT"] = str(port)
    run_log = open(os.path.join(checkout, "run-sh.log"), "w+")
    run = subprocess.Popen([os.path.join(checkout, "scripts", "run.sh")], cwd=checkout, env=env,
                           stdout=run_log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        give_up = time.time() + 120
        while "Press Ctrl-C" not in open(run_log.name).read():
            if run.poll() is not None or time.time() > give_up:
                print(open(run_log.name).read())
                sys.exit("run.sh did not come up")
            time.sleep(0.5)
        for path, text in files:
            os.makedirs(os.path.dirname(os.path.join(checkout, path)), exist_ok=True)
            with open(os.path.join(checkout, path), "w") as f:
                f.write(text)
        result = subprocess.run(["bash", "-c", "\n".join(script)], cwd=checkout, env=env,
                                capture_output=True, text=True, timeout=300)
        print(result.stdout)
        print(result.stderr, file=sys.stderr)
        if result.returncode != 0:
            sys.exit(f"the README's commands failed (exit {result.returncode})")
        for text in expected:
            if text not in result.stdout:
                sys.exit(f"expected output not printed:\n{text}")
        print(f"README: {len(script) - 1} sh blocks run, {len(files)} file(s), "
              f"{len(expected)} output(s) matched, {skipped} skipped")
    finally:
        try:
            os.killpg(run.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass  # run.sh has already exited (its failure is the error reported)
        run.wait(timeout=60)
        subprocess.run(f"grep -lxF '{checkout}/.run' /var/lib/postgresql/physio-run/*/run-dir 2>/dev/null"
                       " | xargs -r -n1 dirname | xargs -r rm -rf", shell=True)
        subprocess.run(["rm", "-rf", checkout])
    return 0


if __name__ == "__main__":
    sys.exit(main())
