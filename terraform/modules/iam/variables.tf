variable "region" {
  description = "AWS region of the environment (the provider's region; passed in so no version-specific data source attribute is needed)."
  type        = string
}

variable "name" {
  description = "Name prefix for the roles (<name>-execution, <name>-task)."
  type        = string
}

variable "log_group_arn" {
  description = "ARN of the container log group (without a trailing :*)."
  type        = string
}

variable "ecr_repository_arns" {
  description = "ECR repositories the image is pulled from; empty when the image is public."
  type        = list(string)
  default     = []
}

variable "sagemaker_endpoint_names" {
  description = "SageMaker endpoints splitgate may invoke."
  type        = list(string)
  default     = []
}

variable "dynamodb_table_arns" {
  description = "DynamoDB tables splitgate may read and write."
  type        = list(string)
}

variable "config_parameter_arn" {
  description = "SSM parameter (SecureString) with the static config the execution role injects."
  type        = string
}

variable "admin_token_secret_arn" {
  description = "Secrets Manager secret with the admin token the execution role injects."
  type        = string
}

variable "kms_key_arn" {
  description = "Customer-managed key of the DynamoDB tables, the config parameter and the admin token secret."
  type        = string
}

variable "metrics_namespace" {
  description = "The only CloudWatch namespace splitgate may publish metrics to."
  type        = string
  default     = "Splitgate"
}

variable "tags" {
  description = "Tags applied to every resource."
  type        = map(string)
  default     = {}
}
