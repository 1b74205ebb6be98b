# Development: internal traffic only, smallest footprint, plain HTTP inside the VPC, no deletion
# protection so the environment can be torn down and rebuilt freely.
module "splitgate" {
  source = "../../modules/splitgate"

  region             = var.region
  name               = "splitgate-dev"
  environment        = "dev"
  vpc_id             = var.vpc_id
  private_subnet_ids = var.private_subnet_ids

  aws_service_access               = var.aws_service_access
  private_route_table_ids          = var.private_route_table_ids
  admin_ingress_security_group_ids = var.admin_ingress_security_group_ids

  images             = var.images
  active_color       = var.active_color
  candidate_weight   = var.candidate_weight
  standby_task_count = var.standby_task_count

  cpu          = 256
  memory       = 512
  min_capacity = 1
  max_capacity = 2

  throttle_rate_limit  = 100
  throttle_burst_limit = 50

  log_retention_days  = 14
  deletion_protection = false

  models              = var.models
  variants            = var.variants
  alarm_emails        = var.alarm_emails
  ecr_repository_arns = var.ecr_repository_arns
}
