# Internal ALB in front of the splitgate tasks. Two target groups, blue and green, one per ECS
# service; the listener forwards to them with weights, so a whole environment can be switched
# (or canaried) between two releases of splitgate. See terraform/README.md.

locals {
  colors        = toset(["blue", "green"])
  standby       = var.active_color == "blue" ? "green" : "blue"
  https         = var.certificate_arn != null
  listener_port = local.https ? 443 : 80
  weights = {
    (var.active_color) = 100 - var.candidate_weight
    (local.standby)    = var.candidate_weight
  }
}

# --- security groups ----------------------------------------------------------------------------

resource "aws_security_group" "alb" {
  name        = "${var.name}-alb"
  description = "splitgate internal ALB: reachable only from the API Gateway VPC link"
  vpc_id      = var.vpc_id
  tags        = var.tags
}

resource "aws_vpc_security_group_ingress_rule" "alb_from_client" {
  security_group_id            = aws_security_group.alb.id
  description                  = "Listener port from the API Gateway VPC link"
  referenced_security_group_id = var.client_security_group_id
  ip_protocol                  = "tcp"
  from_port                    = local.listener_port
  to_port                      = local.listener_port
}

resource "aws_vpc_security_group_egress_rule" "client_to_alb" {
  security_group_id            = var.client_security_group_id
  description                  = "VPC link to the splitgate ALB listener"
  referenced_security_group_id = aws_security_group.alb.id
  ip_protocol                  = "tcp"
  from_port                    = local.listener_port
  to_port                      = local.listener_port
}

# --- load balancer ------------------------------------------------------------------------------

resource "aws_lb" "this" {
  name                       = var.name
  internal                   = true
  load_balancer_type         = "application"
  subnets                    = var.subnet_ids
  security_groups            = [aws_security_group.alb.id]
  drop_invalid_header_fields = true
  enable_deletion_protection = var.deletion_protection
  idle_timeout               = var.idle_timeout_seconds
  tags                       = var.tags

  dynamic "access_logs" {
    for_each = var.access_logs_bucket == null ? [] : [var.access_logs_bucket]
    content {
      enabled = true
      bucket  = access_logs.value
      prefix  = var.name
    }
  }
}

resource "aws_lb_target_group" "this" {
  #checkov:skip=CKV_AWS_378:The ALB-to-task hop stays in private subnets and the task security group admits only the ALB; splitgate serves plain HTTP on its container port.
  for_each = local.colors

  name                 = "${var.name}-${each.key}"
  port                 = var.container_port
  protocol             = "HTTP"
  target_type          = "ip"
  vpc_id               = var.vpc_id
  deregistration_delay = var.deregistration_delay_seconds
  tags                 = merge(var.tags, { "splitgate:color" = each.key })

  # `/health?ready` answers 503 as soon as a task starts draining (SIGTERM), so the ALB stops
  # sending it new requests before it closes its listener; plain `/health` stays 200 until exit.
  # A query string is accepted: the provider only checks for a leading "/" and the API for a
  # length of 1-1024 (verified with `terraform validate`, provider 5.100).
  health_check {
    path                = "/health?ready"
    matcher             = "200"
    interval            = 10
    timeout             = 5
    healthy_threshold   = 2
    unhealthy_threshold = 3
  }
}

resource "aws_lb_listener" "this" {
  #checkov:skip=CKV_AWS_2:HTTPS whenever certificate_arn is set (staging and prod set it); plain HTTP is only for dev, where the ALB is reachable solely from the VPC link.
  #checkov:skip=CKV_AWS_103:TLS policy ELBSecurityPolicy-TLS13-1-2-2021-06 is applied whenever the listener is HTTPS (certificate_arn set).
  load_balancer_arn = aws_lb.this.arn
  port              = local.listener_port
  protocol          = local.https ? "HTTPS" : "HTTP"
  certificate_arn   = var.certificate_arn
  ssl_policy        = local.https ? "ELBSecurityPolicy-TLS13-1-2-2021-06" : null
  tags              = var.tags

  default_action {
    type = "forward"

    forward {
      dynamic "target_group" {
        for_each = local.colors
        content {
          arn    = aws_lb_target_group.this[target_group.value].arn
          weight = local.weights[target_group.value]
        }
      }

      # splitgate's own split is sticky per user; the ALB does not need session affinity.
      stickiness {
        enabled  = false
        duration = 1
      }
    }
  }
}
