output "security_group_id" {
  description = "Security group of the interface endpoints (the tasks' HTTPS egress target)."
  value       = aws_security_group.endpoints.id
}

output "prefix_list_ids" {
  description = "Prefix list of each gateway endpoint, keyed by service (dynamodb, s3): the tasks' HTTPS egress targets."
  value       = { for service, endpoint in aws_vpc_endpoint.gateway : service => endpoint.prefix_list_id }
}

output "interface_endpoint_services" {
  description = "AWS services reached through interface endpoints."
  value       = sort(keys(aws_vpc_endpoint.interface))
}
