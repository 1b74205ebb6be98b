# The three tables splitgate's AWS control plane uses:
#   config   - the live routing config (variants, weights, models) that the proxies hot-reload
#   registry - model registry entries (model id -> version, endpoint, status)
#   audit    - append-only record of admin actions (weight changes, promotions, rollbacks)
# Keys are generic (pk/sk strings) so the item layout can evolve without replacing a table.

locals {
  tables = {
    config   = { ttl_attribute = null }
    registry = { ttl_attribute = null }
    audit    = { ttl_attribute = var.audit_ttl_attribute }
  }
}

resource "aws_dynamodb_table" "this" {
  for_each = local.tables

  name                        = "${var.name}-${each.key}"
  billing_mode                = "PAY_PER_REQUEST"
  hash_key                    = "pk"
  range_key                   = "sk"
  deletion_protection_enabled = var.deletion_protection

  attribute {
    name = "pk"
    type = "S"
  }

  attribute {
    name = "sk"
    type = "S"
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
