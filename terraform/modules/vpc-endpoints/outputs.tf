output "security_group_id" {
  description = "Security group of the interface endpoints (the tasks' HTTPS egress target)."
  value       = aws_security_group.endpoints.id
}

output "prefix_list_ids" {
  description = "Prefix lists of the DynamoDB and S3 gateway endpoints (the tasks' HTTPS egress targets)."
  value       = [for endpoint in aws_vpc_endpoint.gateway : endpoint.prefix_list_id]
}

output "interface_endpoint_services" {
  description = "AWS services reached through interface endpoints."
  value       = sort(keys(aws_vpc_endpoint.interface))
}
