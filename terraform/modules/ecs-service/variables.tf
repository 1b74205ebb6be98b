variable "region" {
  description = "AWS region of the environment (the provider's region; passed in so no version-specific data source attribute is needed)."
  type        = string
}

variable "name" {
  description = "Cluster name and prefix of the services (<name>-blue, <name>-green)."
  type        = string
}

variable "images" {
  description = "Container image per color, pinned by tag or digest."
  type = object({
    blue  = string
    green = string
  })
}

variable "active_color" {
  description = "Color that serves traffic (blue or green)."
  type        = string

  validation {
    condition     = contains(["blue", "green"], var.active_color)
    error_message = "active_color must be \"blue\" or \"green\"."
  }
}

variable "candidate_weight" {
  description = "Percentage of traffic the ALB sends to the standby color; above 0 it scales like the active one."
  type        = number
  default     = 0
}

variable "standby_task_count" {
  description = "Tasks the color without traffic keeps running: warm for a switch or rollback, 0 to decommission."
  type        = number
  default     = 0

  validation {
    condition     = var.standby_task_count >= 0 && floor(var.standby_task_count) == var.standby_task_count
    error_message = "standby_task_count must be a whole number >= 0."
  }
}

variable "min_capacity" {
  description = "Minimum tasks of a serving color."
  type        = number
}

variable "max_capacity" {
  description = "Maximum tasks of a serving color."
  type        = number

  validation {
    condition     = var.max_capacity >= 1
    error_message = "max_capacity must be at least 1."
  }
}

variable "cpu" {
  description = "Task CPU units (1024 = 1 vCPU)."
  type        = number
}

variable "memory" {
  description = "Task memory in MiB."
  type        = number
}

variable "cpu_architecture" {
  description = "X86_64 or ARM64; must match the image."
  type        = string
  default     = "X86_64"

  validation {
    condition     = contains(["X86_64", "ARM64"], var.cpu_architecture)
    error_message = "cpu_architecture must be X86_64 or ARM64."
  }
}

variable "cpu_target_percent" {
  description = "Average CPU utilisation the CPU scaling policy keeps."
  type        = number
  default     = 60
}

variable "requests_per_target_per_minute" {
  description = "ALB requests per task per minute the request-count scaling policy keeps."
  type        = number
  default     = 60000
}

variable "container_port" {
  description = "Port splitgate listens on (the image's CMD uses 8080)."
  type        = number
  default     = 8080
}

variable "admin_port" {
  description = "Port of splitgate's admin listener (admin API, detailed /health, Prometheus /metrics)."
  type        = number
  default     = 9901
}

variable "admin_ingress_cidrs" {
  description = "CIDRs inside the VPC allowed to reach the admin port (e.g. the VPC CIDR)."
  type        = list(string)
  default     = []
}

variable "admin_ingress_security_group_ids" {
  description = "Security groups (Prometheus/ADOT scraper, bastion) allowed to reach the admin port."
  type        = list(string)
  default     = []
}

variable "config_parameter_arn" {
  description = "SSM parameter holding splitgate's static TOML config, injected as SPLITGATE_CONFIG."
  type        = string
}

variable "admin_token_secret_arn" {
  description = "Secrets Manager secret holding the admin bearer token, injected as SPLITGATE_ADMIN_TOKEN."
  type        = string
}

variable "environment" {
  description = "Environment variables of the container."
  type        = map(string)
  default     = {}
}

variable "execution_role_arn" {
  description = "Role the ECS agent uses (image pull, logs)."
  type        = string
}

variable "task_role_arn" {
  description = "Role splitgate runs as."
  type        = string
}

variable "log_group_name" {
  description = "CloudWatch log group for the container's stdout/stderr."
  type        = string
}

variable "subnet_ids" {
  description = "Private subnets for the tasks."
  type        = list(string)
}

variable "vpc_id" {
  description = "VPC of the tasks."
  type        = string
}

variable "alb_security_group_id" {
  description = "Security group of the ALB, the only source the tasks accept traffic from."
  type        = string
}

variable "egress" {
  description = "Outbound CIDR destinations of the tasks (NAT: 0.0.0.0/0 on 443; HTTP model servers)."
  nullable    = false
  type = list(object({
    description = string
    cidr_block  = string
    port        = number
  }))
  default = []
}

variable "egress_security_groups" {
  description = "Security groups the tasks may reach on 443, by a label known at plan time (e.g. the VPC interface endpoints)."
  type        = map(string)
  default     = {}
}

variable "egress_prefix_lists" {
  description = "Prefix lists the tasks may reach on 443, by service (the S3 and DynamoDB gateway endpoints)."
  type        = map(string)
  default     = {}
}

variable "target_group_arns" {
  description = "ALB target group ARN per color."
  type        = map(string)
}

variable "target_group_arn_suffixes" {
  description = "ALB target group ARN suffix per color (request-count scaling)."
  type        = map(string)
}

variable "alb_arn_suffix" {
  description = "ALB ARN suffix (request-count scaling)."
  type        = string
}

variable "tags" {
  description = "Tags applied to every resource."
  type        = map(string)
  default     = {}
}
