output "listener_arn" {
  description = "Listener the API Gateway private integration targets."
  value       = aws_lb_listener.this.arn
}

output "alb_arn_suffix" {
  description = "ALB ARN suffix, for CloudWatch dimensions and request-count scaling."
  value       = aws_lb.this.arn_suffix
}

output "target_group_arns" {
  description = "Target group ARNs keyed by color."
  value       = { for color, tg in aws_lb_target_group.this : color => tg.arn }

  # ECS refuses a target group that no listener uses yet.
  depends_on = [aws_lb_listener.this]
}

output "target_group_arn_suffixes" {
  description = "Target group ARN suffixes keyed by color."
  value       = { for color, tg in aws_lb_target_group.this : color => tg.arn_suffix }
}

output "security_group_id" {
  description = "Security group of the ALB (the tasks admit only this one)."
  value       = aws_security_group.alb.id
}

output "traffic_weights" {
  description = "Listener weights keyed by color."
  value       = local.weights
}
