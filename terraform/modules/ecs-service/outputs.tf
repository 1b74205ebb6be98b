output "cluster_name" {
  description = "ECS cluster name."
  value       = aws_ecs_cluster.this.name
}

output "service_names" {
  description = "ECS service names keyed by color."
  value       = { for color, service in aws_ecs_service.this : color => service.name }
}

output "capacity" {
  description = "Autoscaling bounds per color, as applied."
  value       = { for color in local.colors : color => { min = local.min_capacity[color], max = local.max_capacity[color] } }
}
