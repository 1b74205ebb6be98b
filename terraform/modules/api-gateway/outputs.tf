output "api_id" {
  description = "HTTP API id (the ApiId CloudWatch dimension)."
  value       = aws_apigatewayv2_api.this.id
}

output "endpoint" {
  description = "Invoke URL of the $default stage."
  value       = aws_apigatewayv2_stage.default.invoke_url
}

output "stage_name" {
  description = "Stage name (the Stage CloudWatch dimension)."
  value       = aws_apigatewayv2_stage.default.name
}

output "vpc_link_security_group_id" {
  description = "Security group of the VPC link (the ALB's only allowed client)."
  value       = aws_security_group.vpc_link.id
}
