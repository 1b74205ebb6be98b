output "table_names" {
  description = "Table names keyed by role (config, registry, audit, fleet)."
  value       = { for role, table in aws_dynamodb_table.this : role => table.name }
}

output "table_arns" {
  description = "Table ARNs keyed by role (config, registry, audit, fleet)."
  value       = { for role, table in aws_dynamodb_table.this : role => table.arn }
}
