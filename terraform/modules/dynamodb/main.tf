# The four tables splitgate's AWS control plane uses:
#   config   - the live routing config (variants, weights, models) that the proxies hot-reload
#   registry - model registry entries (model id -> version, endpoint, status)
#   audit    - append-only record of admin actions (weight changes, promotions, rollbacks)
#   fleet    - every replica's cumulative counters and the guard lease ([fleet]); split layouts
#              of recent config versions for feedback attribution. Items expire by TTL.

locals {
  # Key schemas match what splitgate reads and writes:
  #   config   - pk = the `[source] key` value; attributes version (N), document (S, TOML)
  #   registry - model_id; attributes status, artifact, metrics, updated_at
  #   audit    - pk = config key, sk = timestamp#change-id (append-only)
  #   fleet    - pk = "fleet" (sk = "tally#<replica>" | "lease") or "split" (sk = version);
  #              TTL attribute expires_at (a day after the last write)
  tables = {
    config   = { hash_key = "pk", range_key = null, ttl_attribute = null }
    registry = { hash_key = "model_id", range_key = null, ttl_attribute = null }
    audit    = { hash_key = "pk", range_key = "sk", ttl_attribute = var.audit_ttl_attribute }
    fleet    = { hash_key = "pk", range_key = "sk", ttl_attribute = "expires_at" }
  }
}

resource "aws_dynamodb_table" "this" {
  for_each = local.tables

  name                        = "${var.name}-${each.key}"
  billing_mode                = "PAY_PER_REQUEST"
  hash_key                    = each.value.hash_key
  range_key                   = each.value.range_key
  deletion_protection_enabled = var.deletion_protection

  dynamic "attribute" {
    for_each = compact([each.value.hash_key, each.value.range_key])
    content {
      name = attribute.value
      type = "S"
    }
  }

  point_in_time_recovery {
    enabled = true
  }

  server_side_encryption {
    enabled     = true
    kms_key_arn = var.kms_key_arn
  }

  dynamic "ttl" {
    for_each = each.value.ttl_attribute == null ? [] : [each.value.ttl_attribute]
    content {
      attribute_name = ttl.value
      enabled        = true
    }
  }

  tags = merge(var.tags, { "splitgate:table" = each.key })
}
