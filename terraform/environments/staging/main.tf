# Staging: QA plus 5 % of real traffic, so sized at roughly a tenth of production with the same
# shape (HTTPS to the ALB, deletion protection, ALB access logs).
module "splitgate" {
  source = "../../modules/splitgate"

  region             = var.region
  name               = "splitgate-staging"
  environment        = "staging"
  vpc_id             = var.vpc_id
  private_subnet_ids = var.private_subnet_ids

  aws_service_access               = var.aws_service_access
  private_route_table_ids          = var.private_route_table_ids
  admin_ingress_security_group_ids = var.admin_ingress_security_group_ids

  images             = var.images
  active_color       = var.active_color
  candidate_weight   = var.candidate_weight
  standby_task_count = var.standby_task_count

  cpu          = 512
  memory       = 1024
  min_capacity = 2
  max_capacity = 4

  throttle_rate_limit  = 1000
  throttle_burst_limit = 500

  log_retention_days  = 30
  deletion_protection = true

  certificate_arn        = var.certificate_arn
  alb_tls_server_name    = var.alb_tls_server_name
  alb_access_logs_bucket = var.alb_access_logs_bucket

  models              = var.models
  variants            = var.variants
  alarm_emails        = var.alarm_emails
  ecr_repository_arns = var.ecr_repository_arns
}
