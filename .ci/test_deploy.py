"""The deployment contract of terraform/, config/aws*.toml and docker/, checked offline.

    .venv-infra/bin/python -m unittest discover -s .ci -p 'test_deploy.py' -v

Run by .ci/infra-check.sh. `terraform plan` needs AWS credentials, so the ECS task definition,
the IAM policies and the routes are read from the HCL with python-hcl2 instead:

- the task gets SPLITGATE_CONFIG from the SSM parameter Terraform renders and
  SPLITGATE_ADMIN_TOKEN from Secrets Manager (both through `secrets`), with no --config/--demo;
- the published demo key (or its digest) appears nowhere in what is deployed;
- API Gateway routes are exactly POST /recommend and POST /feedback;
- the ALB probes /health?ready;
- the admin port is open to the VPC (CIDR / named security groups), never to the ALB;
- the task role grants every AWS call in src/ (files naming an aws_sdk_* crate) (derived from the Rust source, so a new SDK
  call without a grant fails here);
- one set of names: tfvars models/variants == config/aws-document.toml, and the static config
  Terraform renders for prod == config/aws.toml (tables, item key, namespace, environment).
"""

import re
import tomllib
import unittest
from pathlib import Path

import hcl2
import yaml

ROOT = Path(__file__).resolve().parent.parent
TF = ROOT / "terraform"
DEMO_KEY = "splitgate-demo-key"
DEMO_DIGEST = "5b1f89fd1eaf4f5a25821da4a9d3f8a6881fdd0d8ec50232ed0bf787f4f9a0ad"
ENVIRONMENTS = ("dev", "staging", "prod")
PUBLIC_ROUTES = {"POST /recommend", "POST /feedback"}

# Rust SDK crate -> IAM service prefix. A crate not listed here fails the test (add it, with the
# IAM grant, when src/aws/ starts using it).
CRATE_SERVICE = {
    "dynamodb": "dynamodb",
    "dynamodbstreams": "dynamodb",
    "sagemakerruntime": "sagemaker",
    "cloudwatch": "cloudwatch",
    "ssm": "ssm",
    "secretsmanager": "secretsmanager",
    "s3": "s3",
    "sts": "sts",
}
# Operations recognised anywhere in src/aws (besides any `client.<op>()` call).
KNOWN_OPERATIONS = (
    "get_item put_item update_item delete_item query scan batch_get_item batch_write_item "
    "transact_get_items transact_write_items describe_table describe_stream get_shard_iterator "
    "get_records list_streams invoke_endpoint invoke_endpoint_async "
    "invoke_endpoint_with_response_stream put_metric_data get_parameter get_parameters "
    "get_secret_value"
).split()
NOT_OPERATIONS = {"clone", "config", "as_ref", "to_owned", "build", "send"}


def first(value):
    """python-hcl2 wraps attribute values of .tf files in one-element lists; unwrap them."""
    while isinstance(value, list) and len(value) == 1:
        value = value[0]
    return value


def parse_dir(directory):
    docs = {}
    for path in sorted(Path(directory).glob("*.tf")):
        docs[path.name] = hcl2.loads(path.read_text())
    return docs


def resources(directory, kind):
    """{name: body} of every `resource "kind" "name"` in a module directory."""
    out = {}
    for doc in parse_dir(directory).values():
        for entry in doc.get("resource", []):
            for name, body in entry.get(kind, {}).items():
                out[name] = body
    return out


def data_sources(directory, kind):
    out = {}
    for doc in parse_dir(directory).values():
        for entry in doc.get("data", []):
            for name, body in entry.get(kind, {}).items():
                out[name] = body
    return out


def locals_of(directory):
    out = {}
    for doc in parse_dir(directory).values():
        for entry in doc.get("locals", []):
            out.update({k: first(v) for k, v in entry.items() if not k.startswith("__")})
    return out


def variables_of(directory):
    out = {}
    for doc in parse_dir(directory).values():
        for entry in doc.get("variable", []):
            out.update(entry)
    return out


def module_call(directory, name):
    for doc in parse_dir(directory).values():
        for entry in doc.get("module", []):
            if name in entry:
                return {k: first(v) for k, v in entry[name].items()}
    raise AssertionError(f"{directory}: no module {name!r}")


def statements(policy):
    """Every statement of an aws_iam_policy_document body, static and dynamic."""
    out = list(policy.get("statement", []))
    for dyn in policy.get("dynamic", []):
        for content in first(dyn.get("statement", {})).get("content", []):
            out.append(content)
    return out


def tfvars(env):
    path = TF / "environments" / env / "terraform.tfvars.example"
    return {k: first(v) for k, v in hcl2.loads(path.read_text()).items()}


def aws_calls():
    """{(file, method): 'service:Action'} for every AWS SDK operation called in src/ (every .rs
    file that names an aws_sdk_* crate: src/aws/*.rs and the SageMaker backend in src/backend/)."""
    calls = {}
    unknown = []
    op_any = re.compile(r"\.\s*(%s)\s*\(\s*\)" % "|".join(KNOWN_OPERATIONS))
    op_client = re.compile(r"\bclient\s*\.\s*([a-z][a-z0-9_]*)\s*\(\s*\)")
    for path in sorted((ROOT / "src").rglob("*.rs")):
        if "aws_sdk_" not in path.read_text():
            continue
        code = re.sub(r"//[^\n]*", "", path.read_text())
        code = code.split("#[cfg(test)]")[0]
        methods = set(op_any.findall(code)) | (set(op_client.findall(code)) - NOT_OPERATIONS)
        if not methods:
            continue
        crates = {c for c in re.findall(r"\baws_sdk_([a-z0-9]+)\b", code)}
        services = {CRATE_SERVICE.get(c, f"?{c}") for c in crates}
        if len(services) != 1 or any(s.startswith("?") for s in services):
            unknown.append(f"{path.name}: SDK crates {sorted(crates)} -> cannot map {sorted(methods)} to one IAM service")
            continue
        service = services.pop()
        for method in sorted(methods):
            action = "".join(part.capitalize() for part in method.split("_"))
            calls[(path.name, method)] = f"{service}:{action}"
    return calls, unknown


class TaskDefinition(unittest.TestCase):
    ecs = TF / "modules" / "ecs-service"
    splitgate = TF / "modules" / "splitgate"

    def container(self):
        return locals_of(self.ecs)["container"]

    def test_config_and_admin_token_come_from_ssm_and_secrets_manager(self):
        secrets = {s["name"]: s["valueFrom"] for s in self.container()["secrets"]}
        self.assertEqual(secrets.get("SPLITGATE_CONFIG"), "${var.config_parameter_arn}")
        self.assertEqual(secrets.get("SPLITGATE_ADMIN_TOKEN"), "${var.admin_token_secret_arn}")
        ecs = module_call(self.splitgate, "ecs")
        self.assertEqual(ecs["config_parameter_arn"], "${aws_ssm_parameter.config.arn}")
        self.assertEqual(ecs["admin_token_secret_arn"], "${aws_secretsmanager_secret.admin_token.arn}")
        param = resources(self.splitgate, "aws_ssm_parameter")["config"]
        self.assertEqual(first(param["value"]), "${local.static_config}")
        self.assertEqual(first(param["type"]), "SecureString")
        self.assertIn("static-config.toml.tftpl", locals_of(self.splitgate)["static_config"])

    def test_task_definition_uses_the_container_object(self):
        task = resources(self.ecs, "aws_ecs_task_definition")["this"]
        self.assertIn("merge(local.container", first(task["container_definitions"]))

    def test_command_never_overrides_the_config_or_asks_for_the_demo(self):
        command = self.container()["command"]
        self.assertEqual(command[0], "serve")
        for flag in ("--config", "--demo"):
            self.assertNotIn(flag, " ".join(command))

    def test_plain_environment_cannot_carry_the_config_or_token(self):
        var = first(variables_of(self.splitgate)["container_environment"])
        rule = str(var.get("validation"))
        for name in ("SPLITGATE_CONFIG", "SPLITGATE_ADMIN_TOKEN"):
            self.assertIn(name, rule, f"container_environment must refuse {name}")

    def test_admin_port_is_open_to_the_vpc_only(self):
        rules = resources(self.ecs, "aws_vpc_security_group_ingress_rule")
        admin = {n: r for n, r in rules.items() if first(r.get("from_port")) == "${var.admin_port}"}
        self.assertTrue(admin, "no ingress rule for the admin port")
        for name, rule in admin.items():
            self.assertNotIn("alb", str(rule), f"{name}: the admin port must not be reachable from the ALB")
        ports = {m["name"]: m["containerPort"] for m in self.container()["portMappings"]}
        self.assertEqual(ports.get("admin"), "${var.admin_port}")
        ecs = module_call(self.splitgate, "ecs")
        self.assertIn("local.vpc_cidr", ecs["admin_ingress_cidrs"])
        self.assertEqual(first(locals_of(self.splitgate)["vpc_cidr"]), "${data.aws_vpc.this.cidr_block}")


class NoDemoKey(unittest.TestCase):
    def test_nothing_deployed_contains_the_demo_key_or_digest(self):
        files = [p for p in TF.rglob("*") if p.is_file() and ".terraform" not in p.parts]
        files += [ROOT / "config" / "aws.toml", ROOT / "config" / "aws-document.toml"]
        files += [p for p in (ROOT / "docker").rglob("*") if p.is_file()]
        self.assertGreater(len(files), 40)
        for path in files:
            text = path.read_text(errors="replace")
            for needle in (DEMO_KEY, DEMO_DIGEST):
                self.assertFalse(needle in text, f"{path.relative_to(ROOT)} contains {needle}")


class PublicSurface(unittest.TestCase):
    def test_api_routes_are_exactly_recommend_and_feedback(self):
        found = []
        for directory in {p.parent for p in TF.rglob("*.tf")}:
            for name, body in resources(directory, "aws_apigatewayv2_route").items():
                key = first(body["route_key"])
                if key == "${each.value}":
                    for_each = first(body["for_each"])
                    match = re.fullmatch(r"\$\{toset\(local\.(\w+)\)\}", for_each)
                    self.assertTrue(match, f"{directory}/{name}: routes must come from a local list, got {for_each}")
                    found += list(first(locals_of(directory)[match.group(1)]))
                else:
                    found.append(key)
        self.assertEqual(sorted(found), sorted(PUBLIC_ROUTES))
        self.assertNotIn("$default", found)

    def test_alb_health_check_is_readiness(self):
        groups = resources(TF / "modules" / "load-balancer", "aws_lb_target_group")
        self.assertTrue(groups)
        for name, body in groups.items():
            check = first(body["health_check"])
            self.assertEqual(first(check["path"]), "/health?ready", name)


class IamCoversTheCode(unittest.TestCase):
    iam = TF / "modules" / "iam"

    def granted(self, document):
        policy = data_sources(self.iam, "aws_iam_policy_document")[document]
        actions = set()
        for st in statements(policy):
            actions.update(first(st.get("actions", [])) if isinstance(first(st.get("actions")), list)
                           else [first(st.get("actions"))])
        return actions

    def test_every_sdk_call_in_src_aws_has_a_task_role_grant(self):
        calls, unknown = aws_calls()
        self.assertFalse(unknown, unknown)
        needed = set(calls.values())
        # Sanity: the scan finds the calls we know are there (so a broken regex cannot pass).
        for action in ("dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:Scan",
                       "sagemaker:InvokeEndpoint", "cloudwatch:PutMetricData"):
            self.assertIn(action, needed)
        missing = needed - self.granted("task")
        self.assertFalse(missing, f"task role lacks {sorted(missing)} used by {[k for k, v in calls.items() if v in missing]}")

    def test_execution_role_reads_exactly_the_parameter_and_the_secret(self):
        policy = data_sources(self.iam, "aws_iam_policy_document")["execution"]
        by_action = {}
        for st in statements(policy):
            for action in first(st["actions"]) if isinstance(first(st["actions"]), list) else [first(st["actions"])]:
                by_action[action] = first(st["resources"])
        self.assertEqual(by_action.get("ssm:GetParameters"), "${var.config_parameter_arn}")
        self.assertEqual(by_action.get("secretsmanager:GetSecretValue"), "${var.admin_token_secret_arn}")
        self.assertEqual(by_action.get("kms:Decrypt"), "${var.kms_key_arn}")


class NamesAgree(unittest.TestCase):
    def document(self):
        return tomllib.loads((ROOT / "config" / "aws-document.toml").read_text())

    def test_prod_tfvars_models_and_variants_match_the_document(self):
        doc = self.document()
        models = {
            name: {"endpoint": m["endpoint"], "target_variant": m.get("target_variant")}
            for name, m in doc["models"].items()
            if m["backend"] == "sagemaker"
        }
        variants = {v["name"]: v["model"] for v in doc["split"]["variants"]}
        prod = tfvars("prod")
        self.assertEqual(prod["models"], models)
        self.assertEqual(prod["variants"], variants)
        for shadow in doc.get("shadow", []):
            self.assertIn(shadow["model"], prod["models"])

    def test_dev_and_staging_have_the_same_shape_with_their_own_endpoints(self):
        prod = tfvars("prod")
        for env in ("dev", "staging"):
            values = tfvars(env)
            self.assertEqual(values["variants"], prod["variants"], env)
            self.assertEqual(set(values["models"]), set(prod["models"]), env)
            for name, model in values["models"].items():
                self.assertEqual(model["target_variant"], prod["models"][name]["target_variant"], env)
                self.assertTrue(model["endpoint"].endswith(f"-{env}"), f"{env}: endpoint {model['endpoint']}")

    def test_environments_pass_models_variants_and_their_name(self):
        for env in ENVIRONMENTS:
            call = module_call(TF / "environments" / env, "splitgate")
            self.assertEqual(call["name"], f"splitgate-{env}")
            self.assertEqual(call["environment"], env)
            self.assertEqual(call["models"], "${var.models}")
            self.assertEqual(call["variants"], "${var.variants}")

    def render_static_config(self, env):
        """The SSM parameter value Terraform renders for `env`, from the same inputs it uses."""
        splitgate = TF / "modules" / "splitgate"
        call = module_call(TF / "environments" / env, "splitgate")
        name, environment = call["name"], call["environment"]
        namespace = call.get("metrics_namespace") or first(variables_of(splitgate)["metrics_namespace"]["default"])
        tables = locals_of(TF / "modules" / "dynamodb")["tables"]
        table_name = first(resources(TF / "modules" / "dynamodb", "aws_dynamodb_table")["this"]["name"])
        self.assertEqual(table_name, "${var.name}-${each.key}")
        config_key = first(locals_of(splitgate)["config_key"]).replace("${var.environment}", environment)
        values = {
            "name": name,
            "parameter_name": f"/{name}/config",
            "config_table": f"{name}-config",
            "registry_table": f"{name}-registry",
            "audit_table": f"{name}-audit",
            "fleet_table": f"{name}-fleet",
            "config_key": config_key,
            "namespace": namespace,
            "environment": environment,
            "extra": "",
        }
        self.assertEqual(set(tables), {"config", "registry", "audit", "fleet"})
        template = (splitgate / "static-config.toml.tftpl").read_text()
        used = set(re.findall(r"\$\{(\w+)\}", template))
        self.assertEqual(used - set(values), set(), "template uses inputs this test does not know")
        return tomllib.loads(re.sub(r"\$\{(\w+)\}", lambda m: values[m.group(1)], template))

    def test_config_aws_toml_is_what_terraform_renders_for_prod(self):
        rendered = self.render_static_config("prod")
        shipped = tomllib.loads((ROOT / "config" / "aws.toml").read_text())
        self.assertEqual(shipped, rendered)

    def test_alarms_and_iam_use_the_same_namespace_and_environment(self):
        monitoring = module_call(TF / "modules" / "splitgate", "monitoring")
        iam = module_call(TF / "modules" / "splitgate", "iam")
        self.assertEqual(monitoring["metrics_namespace"], "${var.metrics_namespace}")
        self.assertEqual(iam["metrics_namespace"], "${var.metrics_namespace}")
        self.assertEqual(monitoring["environment"], "${var.environment}")
        self.assertEqual(monitoring["variants"], "${var.variants}")
        self.assertIn("local.sagemaker_endpoint_names", iam["sagemaker_endpoint_names"])
        dims = str(locals_of(TF / "modules" / "monitoring")["variant_dimensions"])
        for dim in ("Environment", "Variant", "Model"):
            self.assertIn(dim, dims)


class ComposeStack(unittest.TestCase):
    def test_splitgate_reads_static_config_from_env_and_hot_config_from_moto(self):
        compose = yaml.safe_load((ROOT / "docker" / "docker-compose.yml").read_text())
        services = compose["services"]
        env = services["splitgate"]["environment"]
        static = tomllib.loads(env["SPLITGATE_CONFIG"])
        self.assertEqual(static["source"]["kind"], "dynamodb")
        for section in ("source", "registry", "cloudwatch"):
            self.assertEqual(static[section]["endpoint_url"], "http://moto:5000", section)
        self.assertIn("SPLITGATE_ADMIN_TOKEN", env["SPLITGATE_ADMIN_TOKEN"])
        seed = services["seed"]
        self.assertEqual(services["splitgate"]["depends_on"]["seed"]["condition"], "service_completed_successfully")
        self.assertIn("/seed/seed.py", " ".join(seed["entrypoint"]))
        text = (ROOT / "docker" / "docker-compose.yml").read_text()
        self.assertNotIn("later issue", text)


if __name__ == "__main__":
    unittest.main()
