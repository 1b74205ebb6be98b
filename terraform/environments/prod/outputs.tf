output "api_endpoint" {
  description = "Public invoke URL."
  value       = module.splitgate.api_endpoint
}

output "traffic_weights" {
  description = "ALB listener weights per color."
  value       = module.splitgate.traffic_weights
}

output "capacity" {
  description = "Autoscaling bounds per color."
  value       = module.splitgate.capacity
}

output "ecs_service_names" {
  description = "ECS service per color."
  value       = module.splitgate.ecs_service_names
}

output "dynamodb_table_names" {
  description = "config, registry and audit tables."
  value       = module.splitgate.dynamodb_table_names
}

output "alarm_topic_arn" {
  description = "SNS topic of the alarms."
  value       = module.splitgate.alarm_topic_arn
}

output "config_parameter_name" {
  description = "SSM parameter holding the static config (SPLITGATE_CONFIG)."
  value       = module.splitgate.config_parameter_name
}

output "config_item_key" {
  description = "Partition key of the DynamoDB config item."
  value       = module.splitgate.config_item_key
}

output "admin_token_secret_arn" {
  description = "Secret for SPLITGATE_ADMIN_TOKEN."
  value       = module.splitgate.admin_token_secret_arn
}

output "dashboard_name" {
  description = "CloudWatch dashboard."
  value       = module.splitgate.dashboard_name
}
