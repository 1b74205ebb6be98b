# One splitgate environment: everything between the API Gateway endpoint and the model endpoints.
#
#   client -> API Gateway HTTP API ($default stage, throttled, JSON access logs)
#          -> VPC link -> internal ALB (weighted blue/green listener)
#          -> ECS Fargate services splitgate-blue / splitgate-green
#          -> SageMaker endpoints / HTTP model servers; DynamoDB config, registry, audit tables
#
# Environments (terraform/environments/*) call this module with their own sizes and limits.


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

module "iam" {
  source = "../iam"

  region                   = var.region
  name                     = var.name
  log_group_arn            = aws_cloudwatch_log_group.app.arn
  ecr_repository_arns      = var.ecr_repository_arns
  sagemaker_endpoint_names = keys(var.sagemaker_endpoints)
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

  region                         = var.region
  name                           = var.name
  images                         = var.images
  active_color                   = var.active_color
  candidate_weight               = var.candidate_weight
  standby_task_count             = var.standby_task_count
  min_capacity                   = var.min_capacity
  max_capacity                   = var.max_capacity
  cpu                            = var.cpu
  memory                         = var.memory
  cpu_architecture               = var.cpu_architecture
  cpu_target_percent             = var.cpu_target_percent
  requests_per_target_per_minute = var.requests_per_target_per_minute
  environment                    = merge({ AWS_REGION = var.region }, var.container_environment)
  execution_role_arn             = module.iam.execution_role_arn
  task_role_arn                  = module.iam.task_role_arn
  log_group_name                 = aws_cloudwatch_log_group.app.name
  vpc_id                         = var.vpc_id
  subnet_ids                     = var.private_subnet_ids
  alb_security_group_id          = module.load_balancer.security_group_id
  egress                         = var.task_egress
  target_group_arns              = module.load_balancer.target_group_arns
  target_group_arn_suffixes      = module.load_balancer.target_group_arn_suffixes
  alb_arn_suffix                 = module.load_balancer.alb_arn_suffix
  tags                           = var.tags
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
  sagemaker_endpoints       = var.sagemaker_endpoints
  tags                      = var.tags
}
