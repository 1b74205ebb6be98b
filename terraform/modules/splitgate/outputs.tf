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
