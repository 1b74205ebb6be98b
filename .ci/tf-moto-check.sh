#!/usr/bin/env bash
# Optional, slower companion of .ci/infra-check.sh (not part of `make ci`): `terraform plan` of the
# prod-shaped environment against moto on 127.0.0.1, then an apply of the parts whose rendered
# values matter, read back from moto:
#   - the SSM parameter Terraform renders equals config/aws.toml (TOML-equal);
#   - the task definition's container gets SPLITGATE_CONFIG / SPLITGATE_ADMIN_TOKEN via `secrets`;
#   - API routes are exactly POST /recommend and POST /feedback; target groups probe /health?ready;
#   - the VPC endpoints exist; the per-variant alarms exist.
# A plan catches what `validate` cannot (for_each keys unknown until apply, conditional types).
#
#   bash .ci/tf-moto-check.sh
#
# Needs: terraform on PATH, a filesystem mirror with hashicorp/aws (as infra-check.sh), and
# moto[server]==5.2.5 + boto3 from PyPI (installed into .venv-test, the venv `make unit` uses).
# Application Auto Scaling targets are not applied: moto never reports them created.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$PWD
mirror=${TF_PLUGIN_MIRROR:-$(find / -maxdepth 3 -type d -name tf-plugins 2>/dev/null | head -n 1 || true)}
if ! command -v terraform > /dev/null 2>&1 || [ -z "$mirror" ]; then
  echo "tf-moto-check: SKIPPED (no terraform binary / no provider mirror)"
  exit 0
fi
venv=.venv-test
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check 'moto[server]==5.2.5' boto3

work=$(mktemp -d)
moto_pid=
cleanup() {
  if [ -n "$moto_pid" ]; then kill "$moto_pid" 2> /dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

port=$("$venv/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$venv/bin/moto_server" -H 127.0.0.1 -p "$port" > "$work/moto.log" 2>&1 &
moto_pid=$!
export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
export AWS_EC2_METADATA_DISABLED=true
export MOTO_URL="http://127.0.0.1:$port"
for _ in $(seq 50); do
  curl -fs -o /dev/null "$MOTO_URL/moto-api/" && break
  sleep 0.2
done

cp -r terraform "$work/tf"
mkdir -p "$work/tf/environments/moto"
"$venv/bin/python" - "$work/tf/environments/moto/main.tf" << 'EOF'
import json, os, sys

import boto3

url = os.environ["MOTO_URL"]
ec2 = boto3.client("ec2", endpoint_url=url)
vpc = ec2.create_vpc(CidrBlock="10.20.0.0/16")["Vpc"]["VpcId"]
subnets = [
    ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.20.{i}.0/24", AvailabilityZone=f"us-east-1{az}")["Subnet"]["SubnetId"]
    for i, az in enumerate("abc")
]
tables = [ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"] for _ in subnets]
services = "sts ec2 iam ecs elbv2 apigatewayv2 dynamodb kms ssm secretsmanager cloudwatch cloudwatchlogs sns applicationautoscaling"
endpoints = "\n".join(f'    {s} = "{url}"' for s in services.split())
with open(sys.argv[1], "w") as f:
    f.write(f"""
terraform {{
  required_providers {{
    aws = {{ source = "hashicorp/aws", version = ">= 5.90, < 7" }}
  }}
}}

provider "aws" {{
  region                      = "us-east-1"
  skip_credentials_validation = true
  skip_requesting_account_id  = true
  skip_metadata_api_check     = true
  endpoints {{
{endpoints}
  }}
}}

# The prod environment's module call (same name, environment, models and variants as
# environments/prod) on a VPC made in moto.
module "splitgate" {{
  source                  = "../../modules/splitgate"
  region                  = "us-east-1"
  name                    = "splitgate-prod"
  environment             = "prod"
  vpc_id                  = "{vpc}"
  private_subnet_ids      = {json.dumps(subnets)}
  private_route_table_ids = {json.dumps(tables)}
  images                  = {{ blue = "splitgate:test", green = "splitgate:test" }}
  cpu                     = 1024
  memory                  = 2048
  min_capacity            = 3
  max_capacity            = 10
  throttle_rate_limit     = 10000
  throttle_burst_limit    = 5000
  log_retention_days      = 90
  models = {{
    "rec-v2-2" = {{ endpoint = "rec-prod", target_variant = "v2-2" }}
    "rec-v2-3" = {{ endpoint = "rec-prod", target_variant = "v2-3" }}
  }}
  variants = {{ champion = "rec-v2-2", challenger = "rec-v2-3" }}
}}
""")
EOF

cat > "$work/terraformrc" << EOF
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
export TF_CLI_CONFIG_FILE="$work/terraformrc" TF_DATA_DIR="$work/tf-data" TF_IN_AUTOMATION=1 CHECKPOINT_DISABLE=1
dir="$work/tf/environments/moto"
terraform -chdir="$dir" init -backend=false -input=false -no-color > "$work/init.log" 2>&1 || { cat "$work/init.log"; exit 1; }
if ! terraform -chdir="$dir" plan -input=false -no-color > "$work/plan.log" 2>&1; then
  cat "$work/plan.log" >&2
  exit 1
fi
echo "plan: $(grep -m1 '^Plan:' "$work/plan.log")"
targets=(
  module.splitgate.aws_ssm_parameter.config
  module.splitgate.aws_secretsmanager_secret.admin_token
  module.splitgate.module.iam
  module.splitgate.module.api_gateway
  module.splitgate.module.load_balancer
  module.splitgate.module.vpc_endpoints
  module.splitgate.module.monitoring
  'module.splitgate.module.ecs.aws_ecs_task_definition.this'
  'module.splitgate.module.ecs.aws_vpc_security_group_ingress_rule.admin_from_cidr'
)
if ! timeout 600 terraform -chdir="$dir" apply -input=false -no-color -auto-approve \
  "${targets[@]/#/-target=}" > "$work/apply.log" 2>&1; then
  cat "$work/apply.log" >&2
  exit 1
fi
echo "apply: $(grep -m1 'Apply complete' "$work/apply.log")"

"$venv/bin/python" - "$root" << 'EOF'
import json, os, sys, tomllib
from pathlib import Path

import boto3

root = Path(sys.argv[1])
kw = {"endpoint_url": os.environ["MOTO_URL"]}
problems = []

value = boto3.client("ssm", **kw).get_parameter(Name="/splitgate-prod/config", WithDecryption=True)["Parameter"]["Value"]
if tomllib.loads(value) != tomllib.loads((root / "config" / "aws.toml").read_text()):
    problems.append("the SSM parameter Terraform renders differs from config/aws.toml")

ecs = boto3.client("ecs", **kw)
for family in ("splitgate-prod-blue", "splitgate-prod-green"):
    container = ecs.describe_task_definition(taskDefinition=family)["taskDefinition"]["containerDefinitions"][0]
    secrets = {s["name"]: s["valueFrom"] for s in container.get("secrets", [])}
    if ":parameter/splitgate-prod/config" not in secrets.get("SPLITGATE_CONFIG", ""):
        problems.append(f"{family}: SPLITGATE_CONFIG is not the SSM parameter: {secrets}")
    if ":secret:splitgate-prod/admin-token" not in secrets.get("SPLITGATE_ADMIN_TOKEN", ""):
        problems.append(f"{family}: SPLITGATE_ADMIN_TOKEN is not the secret: {secrets}")
    if any(flag in container.get("command", []) for flag in ("--config", "--demo")):
        problems.append(f"{family}: command {container['command']}")

api = boto3.client("apigatewayv2", **kw)
routes = sorted(r["RouteKey"] for a in api.get_apis()["Items"] for r in api.get_routes(ApiId=a["ApiId"])["Items"])
if routes != ["POST /feedback", "POST /recommend"]:
    problems.append(f"routes {routes}")
paths = {t["HealthCheckPath"] for t in boto3.client("elbv2", **kw).describe_target_groups()["TargetGroups"]}
if paths != {"/health?ready"}:
    problems.append(f"health check paths {paths}")
endpoints = {e["ServiceName"].rsplit(".", 1)[-1] if "sagemaker" not in e["ServiceName"] else "sagemaker.runtime"
             for e in boto3.client("ec2", **kw).describe_vpc_endpoints()["VpcEndpoints"]}
for service in ("sagemaker.runtime", "monitoring", "logs", "api", "dkr", "secretsmanager", "ssm", "dynamodb", "s3"):
    if service not in endpoints:
        problems.append(f"no VPC endpoint for {service}")
alarms = {a["AlarmName"] for a in boto3.client("cloudwatch", **kw).describe_alarms()["MetricAlarms"]}
for variant in ("champion", "challenger"):
    for trigger in ("error-rate", "latency", "model-errors"):
        if f"splitgate-prod-{variant}-{trigger}" not in alarms:
            problems.append(f"no alarm splitgate-prod-{variant}-{trigger}")
for p in problems:
    print(f"  {p}")
print(f"read back from moto: {len(problems)} problem(s); {len(alarms)} alarms, routes {routes}")
sys.exit(1 if problems else 0)
EOF
