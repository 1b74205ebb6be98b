variable "name" {
  description = "Name prefix; tables are <name>-config, <name>-registry and <name>-audit."
  type        = string
}

variable "kms_key_arn" {
  description = "Customer-managed KMS key for server-side encryption."
  type        = string
}

variable "deletion_protection" {
  description = "Refuse DeleteTable on all three tables."
  type        = bool
  default     = true
}

variable "audit_ttl_attribute" {
  description = "Epoch-seconds attribute after which audit items expire; null keeps them forever."
  type        = string
  default     = "expires_at"
}

variable "tags" {
  description = "Tags applied to every resource."
  type        = map(string)
  default     = {}
}
