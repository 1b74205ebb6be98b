variable "name" {
  description = "Name of the ALB; also the prefix of its security groups and target groups (<= 26 characters)."
  type        = string

  validation {
    condition     = length(var.name) <= 26
    error_message = "name must be at most 26 characters so that \"<name>-green\" fits the 32-character target group limit."
  }
}

variable "vpc_id" {
  description = "VPC the ALB and the tasks live in."
  type        = string
}

variable "subnet_ids" {
  description = "Private subnets for the ALB (at least two availability zones)."
  type        = list(string)
}

variable "client_security_group_id" {
  description = "Security group of the only client allowed to reach the listener (the API Gateway VPC link)."
  type        = string
}

variable "container_port" {
  description = "Port splitgate listens on inside the task."
  type        = number
  default     = 8080
}

variable "active_color" {
  description = "Color (blue or green) that receives the traffic not given to the candidate."
  type        = string

  validation {
    condition     = contains(["blue", "green"], var.active_color)
    error_message = "active_color must be \"blue\" or \"green\"."
  }
}

variable "candidate_weight" {
  description = "Percentage of requests (0-100) forwarded to the standby color, for a weighted switch."
  type        = number
  default     = 0

  validation {
    condition     = var.candidate_weight >= 0 && var.candidate_weight <= 100 && floor(var.candidate_weight) == var.candidate_weight
    error_message = "candidate_weight must be an integer between 0 and 100."
  }
}

variable "certificate_arn" {
  description = "ACM certificate for an HTTPS listener on 443; null gives a plain HTTP listener on 80."
  type        = string
  default     = null
}

variable "access_logs_bucket" {
  description = "S3 bucket for ALB access logs; null disables them."
  type        = string
  default     = null
}

variable "deletion_protection" {
  description = "Refuse to delete the ALB."
  type        = bool
  default     = true
}

variable "idle_timeout_seconds" {
  description = "ALB idle timeout; above API Gateway's 30 s integration timeout."
  type        = number
  default     = 35
}

variable "deregistration_delay_seconds" {
  description = "Time a draining task keeps serving in-flight requests."
  type        = number
  default     = 30
}

variable "tags" {
  description = "Tags applied to every resource."
  type        = map(string)
  default     = {}
}
