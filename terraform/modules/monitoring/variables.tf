variable "region" {
  description = "AWS region of the environment (the provider's region; passed in so no version-specific data source attribute is needed)."
  type        = string
}

variable "name" {
  description = "Prefix of the alarms, topic and dashboard."
  type        = string
}

variable "kms_key_arn" {
  description = "Customer-managed key encrypting the SNS topic."
  type        = string
}

variable "alarm_emails" {
  description = "E-mail addresses subscribed to the alarm topic (each must confirm)."
  type        = list(string)
  default     = []
}

variable "api_id" {
  description = "HTTP API id."
  type        = string
}

variable "api_stage" {
  description = "HTTP API stage name."
  type        = string
}

variable "api_access_log_group_name" {
  description = "Log group of the API's JSON access logs (source of the throttled-request count)."
  type        = string
}

variable "metrics_namespace" {
  description = "Namespace splitgate publishes to ([cloudwatch] namespace); metric-filter metrics go to <namespace>/<name>."
  type        = string
  default     = "Splitgate"
}

variable "alb_arn_suffix" {
  description = "ALB ARN suffix."
  type        = string
}

variable "target_group_arn_suffixes" {
  description = "Target group ARN suffix per color."
  type        = map(string)
}

variable "active_color" {
  description = "Color whose target group must always have a healthy task."
  type        = string
}

variable "ecs_cluster_name" {
  description = "ECS cluster name."
  type        = string
}

variable "ecs_service_names" {
  description = "ECS service name per color."
  type        = map(string)
}

variable "environment" {
  description = "The Environment dimension splitgate publishes ([cloudwatch] environment)."
  type        = string
}

variable "models" {
  description = "Model name -> SageMaker endpoint and production variant; one ModelInvocationErrors alarm each."
  type = map(object({
    endpoint       = string
    target_variant = string
  }))
  default = {}
}

variable "variants" {
  description = "Split variant -> model it serves (the Variant and Model dimensions); one set of guard alarms each."
  type        = map(string)
  default     = {}
}

variable "error_rate_percent" {
  description = "Guard trigger: 5xx share of requests, per minute for 5 minutes."
  type        = number
  default     = 5
}

variable "latency_ms" {
  description = "Guard trigger: mean latency, per minute for 5 minutes."
  type        = number
  default     = 1000
}

variable "model_errors_per_minute" {
  description = "Guard trigger: SageMaker ModelInvocationErrors per minute."
  type        = number
  default     = 10
}

variable "throttle_rate_percent" {
  description = "Guard trigger: 429 share of requests over 5 minutes."
  type        = number
  default     = 10
}

variable "min_requests_per_minute" {
  description = "Below this many requests a minute, rates count as 0 (one failure of two requests is not an outage)."
  type        = number
  default     = 10
}

variable "tags" {
  description = "Tags applied to every resource."
  type        = map(string)
  default     = {}
}
