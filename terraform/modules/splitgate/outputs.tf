output "api_endpoint" {
  description = "Public invoke URL."
  value       = module.api_gateway.endpoint
}

output "traffic_weights" {
  description = "ALB listener weights per color."
  value       = module.load_balancer.traffic_weights
}

output "capacity" {
  description = "Autoscaling bounds per color."
  value       = module.ecs.capacity
}

output "ecs_cluster_name" {
  description = "ECS cluster."
  value       = module.ecs.cluster_name
}

output "ecs_service_names" {
  description = "ECS service per color."
  value       = module.ecs.service_names
}

output "dynamodb_table_names" {
  description = "config, registry and audit tables."
  value       = module.dynamodb.table_names
}

output "alarm_topic_arn" {
  description = "SNS topic of the alarms."
  value       = module.monitoring.alarm_topic_arn
}

output "dashboard_name" {
  description = "CloudWatch dashboard."
  value       = module.monitoring.dashboard_name
}

output "config_parameter_name" {
  description = "SSM parameter holding the static config (SPLITGATE_CONFIG)."
  value       = aws_ssm_parameter.config.name
}

output "config_item_key" {
  description = "Partition key (pk) of the DynamoDB config item ([source] key)."
  value       = local.config_key
}

output "admin_token_secret_arn" {
  description = "Secrets Manager secret for SPLITGATE_ADMIN_TOKEN; put its value before the first tasks start."
  value       = aws_secretsmanager_secret.admin_token.arn
}

output "vpc_endpoint_services" {
  description = "AWS services reached through interface endpoints (empty with aws_service_access = nat)."
  value       = local.vpc_endpoints ? module.vpc_endpoints[0].interface_endpoint_services : []
}
