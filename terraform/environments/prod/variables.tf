variable "region" {
  description = "AWS region of the environment."
  type        = string
  default     = "us-east-1"
}

variable "vpc_id" {
  description = "VPC to run in."
  type        = string
}

variable "private_subnet_ids" {
  description = "Private subnets in at least two availability zones."
  type        = list(string)
}

variable "images" {
  description = "splitgate image per color (pin by digest: repo@sha256:...)."
  type = object({
    blue  = string
    green = string
  })
}

variable "active_color" {
  description = "Color serving this environment: blue or green."
  type        = string
  default     = "blue"
}

variable "candidate_weight" {
  description = "Percentage of traffic for the standby color during a weighted switch (0-100)."
  type        = number
  default     = 0
}

variable "standby_task_count" {
  description = "Tasks the standby color keeps running (warm for switch/rollback); 0 decommissions it."
  type        = number
  default     = 0
}

variable "models" {
  description = "SageMaker models of the config document: model name -> { endpoint, target_variant }."
  type = map(object({
    endpoint       = string
    target_variant = string
  }))
  default = {}
}

variable "variants" {
  description = "Split variants of the config document: variant name -> model."
  type        = map(string)
  default     = {}
}

variable "aws_service_access" {
  description = "vpc_endpoints (created by the module) or nat. See terraform/README.md."
  type        = string
  default     = "vpc_endpoints"
}

variable "private_route_table_ids" {
  description = "Route tables of the private subnets (DynamoDB and S3 gateway endpoints)."
  type        = list(string)
  default     = []
}

variable "admin_ingress_security_group_ids" {
  description = "Security groups (Prometheus/ADOT scraper, bastion) allowed to reach the admin port 9901."
  type        = list(string)
  default     = []
}

variable "alarm_emails" {
  description = "E-mail subscribers of the alarm topic."
  type        = list(string)
  default     = []
}

variable "ecr_repository_arns" {
  description = "ECR repositories the images are pulled from."
  type        = list(string)
  default     = []
}

variable "certificate_arn" {
  description = "ACM certificate of the internal ALB's HTTPS listener."
  type        = string
}

variable "alb_tls_server_name" {
  description = "Name on that certificate; API Gateway verifies it."
  type        = string
}

variable "alb_access_logs_bucket" {
  description = "S3 bucket for ALB access logs."
  type        = string
}
