variable "region" {
  description = "AWS region of the environment (the provider's region; passed in so no version-specific data source attribute is needed)."
  type        = string
}

variable "name" {
  description = "Name of the environment's resources, e.g. splitgate-prod (<= 26 characters)."
  type        = string
}

variable "environment" {
  description = "Environment name (dev, staging, prod): the CloudWatch Environment dimension splitgate publishes and the config item key splitgate/<environment>."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9-]+$", var.environment))
    error_message = "environment must be lower-case letters, digits and dashes."
  }
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

variable "private_route_table_ids" {
  description = "Route tables of the private subnets (the DynamoDB and S3 gateway endpoints add routes there); required with aws_service_access = \"vpc_endpoints\"."
  type        = list(string)
  default     = []
}

variable "aws_service_access" {
  description = "How the tasks reach AWS APIs: \"vpc_endpoints\" (interface + gateway endpoints created here, no internet egress) or \"nat\" (the VPC's NAT gateway, HTTPS to 0.0.0.0/0). See terraform/README.md."
  type        = string
  default     = "vpc_endpoints"

  validation {
    condition     = contains(["vpc_endpoints", "nat"], var.aws_service_access)
    error_message = "aws_service_access must be \"vpc_endpoints\" or \"nat\"."
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

variable "models" {
  description = "SageMaker-backed models of the DynamoDB config document: model name -> endpoint and production variant (TargetVariant). IAM, the SageMaker alarms and .ci/test_deploy.py use it; keep it equal to [models.*] of the document."
  type = map(object({
    endpoint       = string
    target_variant = string
  }))
  default = {}
}

variable "variants" {
  description = "Split variants of the config document: variant name -> model it serves. One set of per-variant alarms each (splitgate's own CloudWatch metrics)."
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

variable "model_egress" {
  description = "Extra outbound destinations of the tasks, e.g. HTTP model servers outside the VPC endpoints."
  type = list(object({
    description = string
    cidr_block  = string
    port        = number
  }))
  default = []
}

variable "admin_ingress_cidrs" {
  description = "CIDRs allowed to reach the admin port 9901; null means the VPC's CIDR. Never public ranges."
  type        = list(string)
  default     = null
}

variable "admin_ingress_security_group_ids" {
  description = "Security groups (Prometheus/ADOT scraper, bastion) allowed to reach the admin port 9901."
  type        = list(string)
  default     = []
}

variable "static_config_extra" {
  description = "TOML appended to the rendered static config (e.g. a [guard] section); must not repeat its tables."
  type        = string
  default     = ""
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
  description = "Extra environment variables for the splitgate container (e.g. SPLITGATE_LOG)."
  type        = map(string)
  default     = {}

  validation {
    condition     = length(setintersection(keys(var.container_environment), ["SPLITGATE_CONFIG", "SPLITGATE_ADMIN_TOKEN"])) == 0
    error_message = "SPLITGATE_CONFIG and SPLITGATE_ADMIN_TOKEN come from SSM and Secrets Manager through `secrets`; do not set them as plain environment variables."
  }
}

variable "tags" {
  description = "Tags applied to every resource."
  type        = map(string)
  default     = {}
}
