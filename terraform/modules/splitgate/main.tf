# One splitgate environment: everything between the API Gateway endpoint and the model endpoints.
#
#   client -> API Gateway HTTP API (POST /recommend, POST /feedback; throttled, JSON access logs)
#          -> VPC link -> internal ALB (weighted blue/green listener, /health?ready)
#          -> ECS Fargate services splitgate-blue / splitgate-green
#          -> SageMaker endpoints / HTTP model servers; DynamoDB config, registry, audit tables
#   inside the VPC only: the admin port 9901 (admin API with the token from Secrets Manager,
#   Prometheus /metrics) for the scraper and operators
#
# The task's static config is rendered here into an SSM parameter (SPLITGATE_CONFIG), from the
# same names this module gives the tables and the metrics; the hot part is the DynamoDB item.
# Environments (terraform/environments/*) call this module with their own sizes and limits.

locals {
  config_key     = "splitgate/${var.environment}"
  parameter_name = "/${var.name}/config"
  static_config = templatefile("${path.module}/static-config.toml.tftpl", {
    name           = var.name
    parameter_name = local.parameter_name
    config_table   = module.dynamodb.table_names["config"]
    registry_table = module.dynamodb.table_names["registry"]
    audit_table    = module.dynamodb.table_names["audit"]
    fleet_table    = module.dynamodb.table_names["fleet"]
    config_key     = local.config_key
    namespace      = var.metrics_namespace
    environment    = var.environment
    extra          = var.static_config_extra
  })

  vpc_endpoints = var.aws_service_access == "vpc_endpoints"
  vpc_cidr      = data.aws_vpc.this.cidr_block

  # Tasks reach AWS APIs through the endpoints (no internet route needed) or through NAT.
  task_egress = concat(
    local.vpc_endpoints ? [] : [
      { description = "HTTPS to AWS APIs through NAT (SageMaker Runtime, DynamoDB, CloudWatch, Logs, ECR, SSM, Secrets Manager)", cidr_block = "0.0.0.0/0", port = 443 },
    ],
    var.model_egress,
  )

  sagemaker_endpoint_names = distinct([for model in values(var.models) : model.endpoint])
}

data "aws_vpc" "this" {
  id = var.vpc_id
}


module "kms" {
  source = "../kms"

  region = var.region
  name   = var.name
  tags   = var.tags
}

resource "aws_cloudwatch_log_group" "app" {
  #checkov:skip=CKV_AWS_338:Retention is an explicit per-environment setting taken from the deployment guide (prod 90 days), not a year.
  name              = "/splitgate/${var.name}/app"
  retention_in_days = var.log_retention_days
  kms_key_id        = module.kms.key_arn
  tags              = var.tags
}

resource "aws_cloudwatch_log_group" "api_access" {
  #checkov:skip=CKV_AWS_338:Retention is an explicit per-environment setting taken from the deployment guide (prod 90 days), not a year.
  name              = "/splitgate/${var.name}/api-access"
  retention_in_days = var.log_retention_days
  kms_key_id        = module.kms.key_arn
  tags              = var.tags
}

module "dynamodb" {
  source = "../dynamodb"

  name                = var.name
  kms_key_arn         = module.kms.key_arn
  deletion_protection = var.deletion_protection
  tags                = var.tags
}

# The static config, as a SecureString under the environment's key. It holds no secret (API keys
# and admin tokens are not in it), but SecureString keeps it out of plain-text parameter listings.
resource "aws_ssm_parameter" "config" {
  name        = local.parameter_name
  description = "splitgate static config (SPLITGATE_CONFIG) of ${var.name}"
  type        = "SecureString"
  tier        = "Standard"
  key_id      = module.kms.key_arn
  value       = local.static_config
  tags        = var.tags
}

# The admin bearer token (SPLITGATE_ADMIN_TOKEN). Terraform creates the secret, never its value:
# put one with `aws secretsmanager put-secret-value` before the first tasks start (README).
resource "aws_secretsmanager_secret" "admin_token" {
  #checkov:skip=CKV2_AWS_57:The token is rotated by the operator procedure in terraform/README.md (put a new value, roll the services); a rotation Lambda could not restart the tasks that read it at start.
  name                    = "${var.name}/admin-token"
  description             = "splitgate admin API bearer token (SPLITGATE_ADMIN_TOKEN) of ${var.name}"
  kms_key_id              = module.kms.key_arn
  recovery_window_in_days = 7
  tags                    = var.tags
}

module "vpc_endpoints" {
  source = "../vpc-endpoints"
  count  = local.vpc_endpoints ? 1 : 0

  region          = var.region
  name            = var.name
  vpc_id          = var.vpc_id
  vpc_cidr        = local.vpc_cidr
  subnet_ids      = var.private_subnet_ids
  route_table_ids = var.private_route_table_ids
  tags            = var.tags
}

module "iam" {
  source = "../iam"

  region                   = var.region
  name                     = var.name
  log_group_arn            = aws_cloudwatch_log_group.app.arn
  ecr_repository_arns      = var.ecr_repository_arns
  sagemaker_endpoint_names = local.sagemaker_endpoint_names
  config_parameter_arn     = aws_ssm_parameter.config.arn
  admin_token_secret_arn   = aws_secretsmanager_secret.admin_token.arn
  dynamodb_table_arns      = values(module.dynamodb.table_arns)
  kms_key_arn              = module.kms.key_arn
  metrics_namespace        = var.metrics_namespace
  tags                     = var.tags
}

# The API Gateway and the load balancer reference each other (the integration targets the ALB
# listener; the ALB admits only the VPC link's security group). Terraform resolves this per
# resource, so there is no cycle.
module "api_gateway" {
  source = "../api-gateway"

  name                 = var.name
  vpc_id               = var.vpc_id
  subnet_ids           = var.private_subnet_ids
  alb_listener_arn     = module.load_balancer.listener_arn
  alb_tls_server_name  = var.alb_tls_server_name
  throttle_rate_limit  = var.throttle_rate_limit
  throttle_burst_limit = var.throttle_burst_limit
  access_log_group_arn = aws_cloudwatch_log_group.api_access.arn
  cors_allowed_origins = var.cors_allowed_origins
  tags                 = var.tags
}

module "load_balancer" {
  source = "../load-balancer"

  name                     = var.name
  vpc_id                   = var.vpc_id
  subnet_ids               = var.private_subnet_ids
  client_security_group_id = module.api_gateway.vpc_link_security_group_id
  active_color             = var.active_color
  candidate_weight         = var.candidate_weight
  certificate_arn          = var.certificate_arn
  access_logs_bucket       = var.alb_access_logs_bucket
  deletion_protection      = var.deletion_protection
  tags                     = var.tags
}

module "ecs" {
  source = "../ecs-service"

  region                           = var.region
  name                             = var.name
  images                           = var.images
  active_color                     = var.active_color
  candidate_weight                 = var.candidate_weight
  standby_task_count               = var.standby_task_count
  min_capacity                     = var.min_capacity
  max_capacity                     = var.max_capacity
  cpu                              = var.cpu
  memory                           = var.memory
  cpu_architecture                 = var.cpu_architecture
  cpu_target_percent               = var.cpu_target_percent
  requests_per_target_per_minute   = var.requests_per_target_per_minute
  environment                      = merge({ AWS_REGION = var.region }, var.container_environment)
  execution_role_arn               = module.iam.execution_role_arn
  task_role_arn                    = module.iam.task_role_arn
  log_group_name                   = aws_cloudwatch_log_group.app.name
  vpc_id                           = var.vpc_id
  subnet_ids                       = var.private_subnet_ids
  alb_security_group_id            = module.load_balancer.security_group_id
  config_parameter_arn             = aws_ssm_parameter.config.arn
  admin_token_secret_arn           = aws_secretsmanager_secret.admin_token.arn
  admin_ingress_cidrs              = var.admin_ingress_cidrs == null ? [local.vpc_cidr] : var.admin_ingress_cidrs
  admin_ingress_security_group_ids = var.admin_ingress_security_group_ids
  egress                           = local.task_egress
  egress_security_groups           = { for label, id in { "the VPC interface endpoints" = try(module.vpc_endpoints[0].security_group_id, "") } : label => id if local.vpc_endpoints }
  egress_prefix_lists              = { for service in ["dynamodb", "s3"] : service => try(module.vpc_endpoints[0].prefix_list_ids[service], "") if local.vpc_endpoints }
  target_group_arns                = module.load_balancer.target_group_arns
  target_group_arn_suffixes        = module.load_balancer.target_group_arn_suffixes
  alb_arn_suffix                   = module.load_balancer.alb_arn_suffix
  tags                             = var.tags
}

module "monitoring" {
  source = "../monitoring"

  region                    = var.region
  name                      = var.name
  kms_key_arn               = module.kms.key_arn
  alarm_emails              = var.alarm_emails
  api_id                    = module.api_gateway.api_id
  api_stage                 = module.api_gateway.stage_name
  api_access_log_group_name = aws_cloudwatch_log_group.api_access.name
  metrics_namespace         = var.metrics_namespace
  alb_arn_suffix            = module.load_balancer.alb_arn_suffix
  target_group_arn_suffixes = module.load_balancer.target_group_arn_suffixes
  active_color              = var.active_color
  ecs_cluster_name          = module.ecs.cluster_name
  ecs_service_names         = module.ecs.service_names
  environment               = var.environment
  models                    = var.models
  variants                  = var.variants
  tags                      = var.tags
}
