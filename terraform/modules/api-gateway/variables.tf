variable "name" {
  description = "Name of the HTTP API and its VPC link."
  type        = string
}

variable "vpc_id" {
  description = "VPC of the internal ALB."
  type        = string
}

variable "subnet_ids" {
  description = "Private subnets the VPC link places its network interfaces in."
  type        = list(string)
}

variable "alb_listener_arn" {
  description = "ALB listener the private integration forwards to."
  type        = string
}

variable "alb_tls_server_name" {
  description = "Host name to verify on the ALB certificate when the listener is HTTPS; null for HTTP."
  type        = string
  default     = null
}

variable "throttle_rate_limit" {
  description = "Steady-state requests per second for the stage."
  type        = number
  default     = 10000
}

variable "throttle_burst_limit" {
  description = "Burst size for the stage."
  type        = number
  default     = 5000
}

variable "integration_timeout_ms" {
  description = "Time API Gateway waits for splitgate (HTTP API maximum: 30000)."
  type        = number
  default     = 29000

  validation {
    condition     = var.integration_timeout_ms >= 50 && var.integration_timeout_ms <= 30000
    error_message = "integration_timeout_ms must be between 50 and 30000."
  }
}

variable "access_log_group_arn" {
  description = "CloudWatch log group receiving the stage's JSON access logs."
  type        = string
}

variable "cors_allowed_origins" {
  description = "Browser origins allowed by CORS; empty disables CORS."
  type        = list(string)
  default     = []
}

variable "tags" {
  description = "Tags applied to every resource."
  type        = map(string)
  default     = {}
}
