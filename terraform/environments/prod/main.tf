# Production: the deployment guide's numbers - API Gateway throttling 10000 req/s with a burst of
# 5000, 90-day log retention, up to 10 serving instances - with HTTPS to the ALB, deletion
# protection and ALB access logs. Three tasks minimum keep one per availability zone.
module "splitgate" {
  source = "../../modules/splitgate"

  region             = var.region
  name               = "splitgate-prod"
  environment        = "prod"
  vpc_id             = var.vpc_id
  private_subnet_ids = var.private_subnet_ids

  aws_service_access               = var.aws_service_access
  private_route_table_ids          = var.private_route_table_ids
  admin_ingress_security_group_ids = var.admin_ingress_security_group_ids

  images             = var.images
  active_color       = var.active_color
  candidate_weight   = var.candidate_weight
  standby_task_count = var.standby_task_count

  cpu          = 1024
  memory       = 2048
  min_capacity = 3
  max_capacity = 10

  throttle_rate_limit  = 10000
  throttle_burst_limit = 5000

  log_retention_days  = 90
  deletion_protection = true

  certificate_arn        = var.certificate_arn
  alb_tls_server_name    = var.alb_tls_server_name
  alb_access_logs_bucket = var.alb_access_logs_bucket

  models              = var.models
  variants            = var.variants
  alarm_emails        = var.alarm_emails
  ecr_repository_arns = var.ecr_repository_arns
}
