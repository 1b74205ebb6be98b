variable "region" {
  description = "AWS region of the environment (the provider's region; passed in so no version-specific data source attribute is needed)."
  type        = string
}

variable "name" {
  description = "Name of the environment's resources, e.g. splitgate-prod (<= 26 characters)."
  type        = string
}

variable "vpc_id" {
  description = "VPC to run in."
  type        = string
}

variable "private_subnet_ids" {
  description = "Private subnets (two or more availability zones) for the VPC link, ALB and tasks."
  type        = list(string)

  validation {
    condition     = length(var.private_subnet_ids) >= 2
    error_message = "private_subnet_ids needs subnets in at least two availability zones."
  }
}

variable "images" {
  description = "splitgate image per color, pinned by tag or digest."
  type = object({
    blue  = string
    green = string
  })
}

variable "active_color" {
  description = "Color (blue or green) serving the environment. See terraform/README.md."
  type        = string
  default     = "blue"
}

variable "candidate_weight" {
  description = "Percentage of traffic sent to the standby color (weighted blue/green switch)."
  type        = number
  default     = 0
}

variable "standby_task_count" {
  description = "Tasks the color without traffic keeps: warm for switch/rollback, 0 to decommission."
  type        = number
  default     = 0
}

variable "min_capacity" {
  description = "Minimum tasks of a serving color."
  type        = number
}

variable "max_capacity" {
  description = "Maximum tasks of a serving color."
  type        = number
}

variable "cpu" {
  description = "Task CPU units."
  type        = number
}

variable "memory" {
  description = "Task memory (MiB)."
  type        = number
}

variable "cpu_architecture" {
  description = "X86_64 or ARM64; must match the image."
  type        = string
  default     = "X86_64"
}

variable "cpu_target_percent" {
  description = "CPU utilisation the autoscaler keeps."
  type        = number
  default     = 60
}

variable "requests_per_target_per_minute" {
  description = "ALB requests per task per minute the autoscaler keeps."
  type        = number
  default     = 60000
}

variable "sagemaker_endpoints" {
  description = "SageMaker endpoints splitgate may invoke: endpoint name -> production variant name."
  type        = map(string)
  default     = {}
}

variable "throttle_rate_limit" {
  description = "API Gateway steady-state requests per second."
  type        = number
}

variable "throttle_burst_limit" {
  description = "API Gateway burst."
  type        = number
}

variable "log_retention_days" {
  description = "Retention of the application and access log groups."
  type        = number
}

variable "alarm_emails" {
  description = "E-mail subscribers of the alarm topic."
  type        = list(string)
  default     = []
}

variable "certificate_arn" {
  description = "ACM certificate for an HTTPS ALB listener; null for HTTP."
  type        = string
  default     = null
}

variable "alb_tls_server_name" {
  description = "Name on the ALB certificate that API Gateway verifies; set together with certificate_arn."
  type        = string
  default     = null
}

variable "alb_access_logs_bucket" {
  description = "S3 bucket for ALB access logs; null disables them."
  type        = string
  default     = null
}

variable "task_egress" {
  description = "Outbound destinations of the tasks; null keeps the module default (HTTPS anywhere)."
  type = list(object({
    description = string
    cidr_block  = string
    port        = number
  }))
  default = null
}

variable "deletion_protection" {
  description = "Protect the ALB and the DynamoDB tables from deletion."
  type        = bool
  default     = true
}

variable "cors_allowed_origins" {
  description = "Browser origins allowed by CORS; empty disables CORS."
  type        = list(string)
  default     = []
}

variable "ecr_repository_arns" {
  description = "ECR repositories the image comes from."
  type        = list(string)
  default     = []
}

variable "metrics_namespace" {
  description = "CloudWatch namespace splitgate publishes to."
  type        = string
  default     = "Splitgate"
}

variable "container_environment" {
  description = "Extra environment variables for the splitgate container."
  type        = map(string)
  default     = {}
}

variable "tags" {
  description = "Tags applied to every resource."
  type        = map(string)
  default     = {}
}
