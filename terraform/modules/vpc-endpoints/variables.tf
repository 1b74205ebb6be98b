variable "region" {
  description = "AWS region of the endpoints (com.amazonaws.<region>.<service>)."
  type        = string
}

variable "name" {
  description = "Name prefix of the endpoints and their security group."
  type        = string
}

variable "vpc_id" {
  description = "VPC of the tasks."
  type        = string
}

variable "vpc_cidr" {
  description = "CIDR of that VPC; the interface endpoints accept HTTPS from it."
  type        = string
}

variable "subnet_ids" {
  description = "Private subnets for the interface endpoints' network interfaces (one per AZ)."
  type        = list(string)
}

variable "route_table_ids" {
  description = "Route tables of the private subnets; the gateway endpoints add their routes there."
  type        = list(string)

  validation {
    condition     = length(var.route_table_ids) > 0
    error_message = "route_table_ids needs the private subnets' route tables for the DynamoDB and S3 gateway endpoints."
  }
}

variable "tags" {
  description = "Tags applied to every resource."
  type        = map(string)
  default     = {}
}
