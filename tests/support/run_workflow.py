"""Runs one job of a GitHub Actions workflow's `run:` steps on this machine, the way a runner does.

    run_workflow.py WORKFLOW --job JOB --workdir DIR [--input K=V]... [--var K=V]...
                    [--secret K=V]... [--env K=V]... [--report FILE] [--step-timeout SECONDS]

What it does like GitHub: the job's and each step's `env:` with `${{ inputs|vars|secrets|env|
runner|github .NAME }}` substituted (missing values are empty); each `run:` written to a file and
run with `bash --noprofile --norc -eo pipefail` (the `shell: bash` default) in DIR; `$GITHUB_ENV`
and `$GITHUB_PATH` files carried to later steps; `$RUNNER_TEMP`, `$GITHUB_STEP_SUMMARY`; steps run
while the job succeeds, `if: failure()` steps only after a failure, `if: always()` steps always.
What it does not: `uses:` steps (GitHub's actions, e.g. checkout) are skipped and reported; any
other expression or `if:` condition is an error, so a workflow that needs more fails here loudly
instead of running differently. `--env` values override the workflow's own (to point it at a
local proxy). Prints each step's name and outcome; exits 0 if the job succeeded, 1 if a step
failed, 2 on a usage or unsupported-workflow error. `--report` writes the outcomes as JSON.

Standard library plus PyYAML (in .venv-test with moto).
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

import yaml

EXPR = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")
NAME = re.compile(r"^(inputs|vars|secrets|env|runner|github)\.([A-Za-z_][A-Za-z0-9_-]*)$")
CONDITIONS = {"success()": "success", "failure()": "failure", "always()": "always", "!cancelled()": "always"}


class Unsupported(Exception):
    pass


def pairs(items):
    out = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep:
            raise Unsupported(f"expected K=V, got {item!r}")
        out[key] = value
    return out


def substitute(text, ctx):
    def one(m):
        found = NAME.match(m.group(1))
        if not found:
            raise Unsupported(f"unsupported expression ${{{{ {m.group(1)} }}}}")
        return str(ctx[found.group(1)].get(found.group(2), ""))

    return EXPR.sub(one, str(text))


def read_env_file(path):
    """NAME=value lines, and NAME<<DELIM … DELIM blocks, as GitHub reads $GITHUB_ENV."""
    out = {}
    with open(path, encoding="utf-8") as f:
        lines = f.read().splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if "<<" in line and ("=" not in line or line.index("<<") < line.index("=")):
            name, delim = line.split("<<", 1)
            i += 1
            block = []
            while i < len(lines) and lines[i] != delim:
                block.append(lines[i])
                i += 1
            out[name] = "\n".join(block)
        elif "=" in line:
            name, value = line.split("=", 1)
            out[name] = value
        i += 1
    return out


def main():
    temp = tempfile.mkdtemp(prefix="runner-temp-")
    try:
        return run(temp)
    finally:
        shutil.rmtree(temp, ignore_errors=True)


def run(temp):
    ap = argparse.ArgumentParser()
    ap.add_argument("workflow")
    ap.add_argument("--job", required=True)
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--input", action="append")
    ap.add_argument("--var", action="append")
    ap.add_argument("--secret", action="append")
    ap.add_argument("--env", action="append")
    ap.add_argument("--report")
    ap.add_argument("--step-timeout", type=float, default=300)
    args = ap.parse_args()

    with open(args.workflow, encoding="utf-8") as f:
        wf = yaml.safe_load(f)
    job = wf["jobs"][args.job]
    shell = job.get("defaults", {}).get("run", {}).get("shell", "bash")
    if shell != "bash":
        raise Unsupported(f"only shell: bash is supported, not {shell!r}")

    # PyYAML reads the key `on` as True (YAML 1.1).
    trigger = wf.get("on", wf.get(True, {})) or {}
    declared = (trigger.get("workflow_dispatch") or {}).get("inputs") or {}
    inputs = {k: str(v.get("default", "")) for k, v in declared.items()}
    inputs.update(pairs(args.input))
    unknown = set(pairs(args.input)) - set(declared)
    if unknown:
        raise Unsupported(f"inputs the workflow does not declare: {sorted(unknown)}")
    missing = [k for k, v in declared.items() if v.get("required") and not inputs.get(k)]
    if missing:
        raise Unsupported(f"required inputs missing: {missing}")

    files = {n: os.path.join(temp, n) for n in ("github_env", "github_path", "step_summary")}
    for p in files.values():
        open(p, "w").close()
    ctx = {
        "inputs": inputs,
        "vars": pairs(args.var),
        "secrets": pairs(args.secret),
        "runner": {"temp": temp, "os": "Linux"},
        "github": {"run_id": "local", "actor": "run_workflow", "workspace": args.workdir},
        "env": {},
    }
    overrides = pairs(args.env)
    env = dict(os.environ)
    job_env = {k: substitute(v, ctx) for k, v in (job.get("env") or {}).items()}
    env.update(job_env)
    env.update(overrides)
    env.update(
        RUNNER_TEMP=temp,
        GITHUB_ENV=files["github_env"],
        GITHUB_PATH=files["github_path"],
        GITHUB_STEP_SUMMARY=files["step_summary"],
        GITHUB_WORKSPACE=args.workdir,
        GITHUB_ACTIONS="true",
        CI="true",
    )

    failed = False
    report = []
    for i, step in enumerate(job["steps"]):
        name = step.get("name") or step.get("uses") or f"step {i + 1}"
        if "uses" in step:
            print(f"== skip: {name} (uses: {step['uses']})", flush=True)
            report.append({"name": name, "outcome": "skipped-uses"})
            continue
        condition = CONDITIONS.get(str(step.get("if", "success()")).strip())
        if condition is None:
            raise Unsupported(f"step {name!r}: unsupported if: {step['if']!r}")
        if (condition == "success" and failed) or (condition == "failure" and not failed):
            print(f"== skip: {name} (if: {step.get('if', 'success()')})", flush=True)
            report.append({"name": name, "outcome": "skipped"})
            continue
        ctx["env"] = env
        step_env = dict(env)
        step_env.update({k: substitute(v, ctx) for k, v in (step.get("env") or {}).items()})
        step_env.update(overrides)
        script = os.path.join(temp, f"step-{i}.sh")
        with open(script, "w", encoding="utf-8") as f:
            f.write(substitute(step["run"], ctx))
        print(f"== run: {name}", flush=True)
        try:
            rc = subprocess.run(
                ["bash", "--noprofile", "--norc", "-eo", "pipefail", script],
                cwd=args.workdir,
                env=step_env,
                timeout=args.step_timeout,
                check=False,
            ).returncode
        except subprocess.TimeoutExpired:
            rc = 124
        outcome = "success" if rc == 0 else "failure"
        print(f"== {outcome}: {name} (exit {rc})", flush=True)
        report.append({"name": name, "outcome": outcome, "exit": rc})
        if rc != 0:
            failed = True
        # What the step exported, for the steps after it (GitHub applies them even after a failure).
        env.update(read_env_file(files["github_env"]))
        with open(files["github_path"], encoding="utf-8") as f:
            extra = [line.strip() for line in f if line.strip()]
        if extra:
            env["PATH"] = os.pathsep.join(list(reversed(extra)) + [env.get("PATH", "")])
        open(files["github_path"], "w").close()

    with open(files["step_summary"], encoding="utf-8") as f:
        summary = f.read()
    if summary:
        print("== summary:\n" + summary, flush=True)
    if args.report:
        with open(args.report, "w", encoding="utf-8") as f:
            json.dump({"failed": failed, "steps": report, "summary": summary}, f, indent=2)
    return 1 if failed else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Unsupported as e:
        print(f"run_workflow: {e}", file=sys.stderr)
        sys.exit(2)
