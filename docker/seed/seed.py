#!/usr/bin/env python3
"""One-shot seed of the local AWS-shaped stack (docker/docker-compose.yml) on moto.

Creates the three DynamoDB tables splitgate uses (config, registry, audit: the key schemas of
terraform/modules/dynamodb), writes the config item from a document (config/aws-document.toml by
default) adapted for a laptop, fills the model registry, and queues SageMaker Runtime answers so
InvokeEndpoint returns recommendations. Idempotent: existing tables are kept and an existing config
item is left alone (so a restart does not undo changes made through the admin API) unless --force.

The document is changed in two ways only, so it stays what prod runs:
  - every `sha256 = "..."` (the [[auth.keys]] digests) becomes the SHA-256 of the local API key
    (SPLITGATE_LOCAL_API_KEY, default "local-dev-key"): never the published demo key;
  - every [models.NAME] table gets `endpoint_url` and `region` pointing at moto.

Needs Python >= 3.11 and boto3 (both are in the motoserver/moto image). Run by hand against a moto
on loopback:
  moto_server -H 127.0.0.1 -p 5000 &
  AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing \
    python3 docker/seed/seed.py --endpoint-url http://127.0.0.1:5000 --document config/aws-document.toml
"""

import argparse
import hashlib
import json
import os
import re
import sys
import time
import urllib.request

try:
    import tomllib
except ImportError:  # Python < 3.11
    raise SystemExit("docker/seed/seed.py needs Python >= 3.11 (tomllib)") from None
from datetime import datetime, timezone

import boto3
from botocore.exceptions import ClientError

TABLES = {
    # role: (hash key, range key) - as terraform/modules/dynamodb creates them
    "config": ("pk", None),
    "registry": ("model_id", None),
    "audit": ("pk", "sk"),
}


def local_document(text, api_key, model_endpoint_url, region):
    digest = hashlib.sha256(api_key.encode()).hexdigest()
    text, keys = re.subn(r'(?m)^(\s*sha256\s*=\s*)"[0-9a-fA-F]{64}"', rf'\g<1>"{digest}"', text)
    if keys == 0:
        raise SystemExit("document has no [[auth.keys]] sha256 to replace")

    def add_endpoint(match):
        return f'{match.group(0)}\nendpoint_url = "{model_endpoint_url}"\nregion = "{region}"'

    text = re.sub(r"(?m)^\[models\.[^\]]+\]", add_endpoint, text)
    parsed = tomllib.loads(text)  # the result must still be TOML, with one endpoint per model
    for name, model in parsed.get("models", {}).items():
        if model.get("endpoint_url") != model_endpoint_url:
            raise SystemExit(f"models.{name}: endpoint_url was not set")
    return text, parsed


def ensure_table(ddb, name, hash_key, range_key):
    try:
        ddb.describe_table(TableName=name)
        return "kept"
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "ResourceNotFoundException":
            raise
    keys = [{"AttributeName": hash_key, "KeyType": "HASH"}]
    attrs = [{"AttributeName": hash_key, "AttributeType": "S"}]
    if range_key:
        keys.append({"AttributeName": range_key, "KeyType": "RANGE"})
        attrs.append({"AttributeName": range_key, "AttributeType": "S"})
    ddb.create_table(TableName=name, KeySchema=keys, AttributeDefinitions=attrs, BillingMode="PAY_PER_REQUEST")
    ddb.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    return "created"


def sagemaker_results(parsed, count):
    variants = [m.get("target_variant") or "AllTraffic" for m in parsed.get("models", {}).values()] or ["AllTraffic"]
    results = []
    for i in range(count):
        items = [{"item_id": f"item-{(i * 7 + j) % 50}", "score": round(1 - j / 10, 2)} for j in range(10)]
        results.append(
            {
                "Body": json.dumps({"items": items}),
                "ContentType": "application/json",
                "InvokedProductionVariant": variants[i % len(variants)],
                "CustomAttributes": "",
            }
        )
    return results


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--endpoint-url", default=os.environ.get("MOTO_URL", "http://moto:5000"))
    ap.add_argument("--model-endpoint-url", help="endpoint_url written into [models.*] (default: --endpoint-url)")
    ap.add_argument("--region", default=os.environ.get("AWS_REGION", "us-east-1"))
    ap.add_argument("--account-id", default="123456789012", help="moto's default account")
    ap.add_argument("--prefix", default="splitgate-local", help="table names are <prefix>-config|registry|audit")
    ap.add_argument("--key", default="splitgate/local", help="pk of the config item ([source] key)")
    ap.add_argument("--document", default="config/aws-document.toml")
    ap.add_argument("--results", type=int, default=500, help="SageMaker answers to queue")
    ap.add_argument("--force", action="store_true", help="overwrite an existing config item")
    args = ap.parse_args()

    api_key = os.environ.get("SPLITGATE_LOCAL_API_KEY", "local-dev-key")
    # The published demo key (its digest starts 5b1f89fd): splitgate refuses it off loopback.
    if hashlib.sha256(api_key.encode()).hexdigest().startswith("5b1f89fd1eaf4f5a"):
        raise SystemExit("refusing the published demo key; pick another SPLITGATE_LOCAL_API_KEY")
    with open(args.document, encoding="utf-8") as f:
        document, parsed = local_document(f.read(), api_key, args.model_endpoint_url or args.endpoint_url, args.region)

    ddb = boto3.client("dynamodb", endpoint_url=args.endpoint_url, region_name=args.region)
    for _ in range(30):  # moto may still be starting
        try:
            ddb.list_tables()
            break
        except Exception:  # noqa: BLE001 - connection errors of several kinds
            time.sleep(1)
    for role, (hash_key, range_key) in TABLES.items():
        name = f"{args.prefix}-{role}"
        print(f"table {name}: {ensure_table(ddb, name, hash_key, range_key)}")

    now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    table = f"{args.prefix}-config"
    existing = ddb.get_item(TableName=table, Key={"pk": {"S": args.key}}, ConsistentRead=True).get("Item")
    if existing and not args.force:
        print(f"config item {table}/{args.key}: kept at version {existing['version']['N']} (--force overwrites)")
    else:
        version = int(existing["version"]["N"]) + 1 if existing else 1
        ddb.put_item(
            TableName=table,
            Item={
                "pk": {"S": args.key},
                "version": {"N": str(version)},
                "document": {"S": document},
                "updated_at": {"S": now},
                "updated_by": {"S": "docker/seed/seed.py"},
            },
        )
        print(f"config item {table}/{args.key}: version {version}, {len(parsed.get('models', {}))} model(s)")

    roles = {v["model"]: ("champion" if v.get("champion") else "challenger") for v in parsed["split"]["variants"]}
    for shadow in parsed.get("shadow", []):
        roles.setdefault(shadow["model"], "shadow")
    for name, model in parsed.get("models", {}).items():
        ddb.put_item(
            TableName=f"{args.prefix}-registry",
            Item={
                "model_id": {"S": name},
                "status": {"S": roles.get(name, "candidate")},
                "artifact": {"S": f"sagemaker:{model.get('endpoint', '')}/{model.get('target_variant', '')}"},
                "metrics": {"S": "{}"},
                "updated_at": {"S": now},
            },
        )
    print(f"registry {args.prefix}-registry: {len(parsed.get('models', {}))} model(s)")

    body = json.dumps(
        {"account_id": args.account_id, "region": args.region, "results": sagemaker_results(parsed, args.results)}
    ).encode()
    req = urllib.request.Request(
        f"{args.endpoint_url}/moto-api/static/sagemaker/endpoint-results",
        data=body,
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        print(f"sagemaker: {args.results} answers queued (HTTP {resp.status})")
    print(f"local API key: X-API-Key: {api_key}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
