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

variable "sagemaker_endpoints" {
  description = "SageMaker endpoint name -> production variant name."
  type        = map(string)
  default     = {}
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
