output "execution_role_arn" {
  description = "Role the ECS agent uses to start the task."
  value       = aws_iam_role.execution.arn
}

output "task_role_arn" {
  description = "Role splitgate itself runs as."
  value       = aws_iam_role.task.arn
}
