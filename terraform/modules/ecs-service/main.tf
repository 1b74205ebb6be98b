# splitgate on ECS Fargate: one cluster, two services (blue, green), one per ALB target group.
# Each color has its own task definition (image), rolling deployments with the deployment circuit
# breaker (failed deployments roll back on their own), and target-tracking autoscaling on CPU and
# on ALB requests per target. A color that receives no traffic runs exactly standby_task_count
# tasks: keep it warm for an instant switch or rollback, or set 0 to decommission it.
#
# Configuration, with no image rebuild: the container gets SPLITGATE_CONFIG (the static TOML:
# [server], [source], [registry], [cloudwatch], [admin]) from an SSM parameter and
# SPLITGATE_ADMIN_TOKEN from Secrets Manager, both through `secrets`, so neither appears in the
# task definition. The hot part (keys, throttle, models, split, shadows) comes from the DynamoDB
# item named in that TOML. The command passes no --config (it would win over SPLITGATE_CONFIG)
# and never --demo; the image's own demo config is therefore never used on ECS.


locals {
  colors = toset(["blue", "green"])

  serving = {
    for color in local.colors : color => color == var.active_color || var.candidate_weight > 0
  }
  min_capacity = { for color, on in local.serving : color => on ? var.min_capacity : var.standby_task_count }
  max_capacity = { for color, on in local.serving : color => on ? var.max_capacity : var.standby_task_count }

  container_name = "splitgate"

  # Everything but the image and the log stream prefix, which differ per color. Kept as a plain
  # object so .ci/test_deploy.py can read it with python-hcl2.
  container = {
    name                   = "splitgate"
    essential              = true
    readonlyRootFilesystem = true
    privileged             = false
    stopTimeout            = 30
    command                = ["serve", "--listen", "0.0.0.0:${var.container_port}", "--admin-listen", "0.0.0.0:${var.admin_port}"]
    portMappings = [
      { containerPort = var.container_port, protocol = "tcp", name = "http" },
      { containerPort = var.admin_port, protocol = "tcp", name = "admin" },
    ]
    secrets = [
      { name = "SPLITGATE_CONFIG", valueFrom = var.config_parameter_arn },
      { name = "SPLITGATE_ADMIN_TOKEN", valueFrom = var.admin_token_secret_arn },
    ]
    ulimits = [
      { name = "nofile", softLimit = 65536, hardLimit = 65536 },
    ]
    linuxParameters = {
      initProcessEnabled = true
      capabilities       = { drop = ["ALL"] }
    }
    # Liveness only (plain /health stays 200 while draining); readiness is the ALB's /health?ready.
    healthCheck = {
      command     = ["CMD-SHELL", "curl -fsS --max-time 2 http://127.0.0.1:${var.container_port}/health > /dev/null || exit 1"]
      interval    = 10
      timeout     = 5
      retries     = 3
      startPeriod = 10
    }
  }
}

# --- network ------------------------------------------------------------------------------------

resource "aws_security_group" "tasks" {
  name        = "${var.name}-tasks"
  description = "splitgate tasks: traffic from the ALB, admin port from inside the VPC; egress to AWS APIs and model servers"
  vpc_id      = var.vpc_id
  tags        = var.tags
}

resource "aws_vpc_security_group_ingress_rule" "tasks_from_alb" {
  security_group_id            = aws_security_group.tasks.id
  description                  = "splitgate port from the ALB"
  referenced_security_group_id = var.alb_security_group_id
  ip_protocol                  = "tcp"
  from_port                    = var.container_port
  to_port                      = var.container_port
}

resource "aws_vpc_security_group_egress_rule" "alb_to_tasks" {
  security_group_id            = var.alb_security_group_id
  description                  = "Traffic and health checks to the splitgate port"
  referenced_security_group_id = aws_security_group.tasks.id
  ip_protocol                  = "tcp"
  from_port                    = var.container_port
  to_port                      = var.container_port
}

# The admin listener (token-protected /admin/*, detailed /health, Prometheus /metrics without a
# token) is reachable only from inside the VPC: the CIDRs and security groups given here (the
# Prometheus/ADOT scraper, an operator bastion). Never the ALB's security group, so nothing public
# can reach it through the API Gateway -> VPC link -> ALB path.
resource "aws_vpc_security_group_ingress_rule" "admin_from_cidr" {
  for_each = toset(var.admin_ingress_cidrs)

  security_group_id = aws_security_group.tasks.id
  description       = "splitgate admin port (metrics, admin API) from inside the VPC"
  cidr_ipv4         = each.value
  ip_protocol       = "tcp"
  from_port         = var.admin_port
  to_port           = var.admin_port
}

resource "aws_vpc_security_group_ingress_rule" "admin_from_security_group" {
  for_each = toset(var.admin_ingress_security_group_ids)

  security_group_id            = aws_security_group.tasks.id
  description                  = "splitgate admin port (metrics, admin API) from a scraper or operator security group"
  referenced_security_group_id = each.value
  ip_protocol                  = "tcp"
  from_port                    = var.admin_port
  to_port                      = var.admin_port
}

resource "aws_vpc_security_group_egress_rule" "tasks_to_security_group" {
  # Map keys are known at plan time even when the ids are not (endpoints created in the same apply).
  for_each = var.egress_security_groups

  security_group_id            = aws_security_group.tasks.id
  description                  = "HTTPS to ${each.key}"
  referenced_security_group_id = each.value
  ip_protocol                  = "tcp"
  from_port                    = 443
  to_port                      = 443
}

resource "aws_vpc_security_group_egress_rule" "tasks_to_prefix_list" {
  for_each = var.egress_prefix_lists

  security_group_id = aws_security_group.tasks.id
  description       = "HTTPS to the ${each.key} gateway endpoint"
  prefix_list_id    = each.value
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
}

resource "aws_vpc_security_group_egress_rule" "tasks_upstream" {
  for_each = { for rule in var.egress : "${rule.cidr_block}:${rule.port}" => rule }

  security_group_id = aws_security_group.tasks.id
  description       = each.value.description
  cidr_ipv4         = each.value.cidr_block
  ip_protocol       = "tcp"
  from_port         = each.value.port
  to_port           = each.value.port
}

# --- cluster, tasks, services -------------------------------------------------------------------

resource "aws_ecs_cluster" "this" {
  name = var.name
  tags = var.tags

  setting {
    name  = "containerInsights"
    value = "enabled"
  }
}

resource "aws_ecs_task_definition" "this" {
  for_each = local.colors

  family                   = "${var.name}-${each.key}"
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = var.cpu
  memory                   = var.memory
  execution_role_arn       = var.execution_role_arn
  task_role_arn            = var.task_role_arn
  tags                     = merge(var.tags, { "splitgate:color" = each.key })

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = var.cpu_architecture
  }

  container_definitions = jsonencode([
    merge(local.container, {
      image = var.images[each.key]
      environment = [
        for key in sort(keys(var.environment)) : { name = key, value = var.environment[key] }
      ]
      logConfiguration = {
        logDriver = "awslogs"
        options = {
          awslogs-group         = var.log_group_name
          awslogs-region        = var.region
          awslogs-stream-prefix = each.key
          mode                  = "non-blocking"
          max-buffer-size       = "8m"
        }
      }
    }),
  ])
}

resource "aws_ecs_service" "this" {
  for_each = local.colors

  name                               = "${var.name}-${each.key}"
  cluster                            = aws_ecs_cluster.this.id
  task_definition                    = aws_ecs_task_definition.this[each.key].arn
  launch_type                        = "FARGATE"
  platform_version                   = "LATEST"
  desired_count                      = local.min_capacity[each.key]
  deployment_minimum_healthy_percent = 100
  deployment_maximum_percent         = 200
  health_check_grace_period_seconds  = 30
  enable_ecs_managed_tags            = true
  propagate_tags                     = "SERVICE"
  tags                               = merge(var.tags, { "splitgate:color" = each.key })

  deployment_controller {
    type = "ECS"
  }

  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  network_configuration {
    subnets          = var.subnet_ids
    security_groups  = [aws_security_group.tasks.id]
    assign_public_ip = false
  }

  load_balancer {
    target_group_arn = var.target_group_arns[each.key]
    container_name   = local.container_name
    container_port   = var.container_port
  }

  lifecycle {
    # Application Auto Scaling owns the running count after creation.
    ignore_changes = [desired_count]
  }
}

# --- autoscaling --------------------------------------------------------------------------------

resource "aws_appautoscaling_target" "this" {
  for_each = local.colors

  service_namespace  = "ecs"
  scalable_dimension = "ecs:service:DesiredCount"
  resource_id        = "service/${aws_ecs_cluster.this.name}/${aws_ecs_service.this[each.key].name}"
  min_capacity       = local.min_capacity[each.key]
  max_capacity       = local.max_capacity[each.key]
  tags               = var.tags
}

resource "aws_appautoscaling_policy" "cpu" {
  for_each = local.colors

  name               = "${var.name}-${each.key}-cpu"
  policy_type        = "TargetTrackingScaling"
  service_namespace  = aws_appautoscaling_target.this[each.key].service_namespace
  scalable_dimension = aws_appautoscaling_target.this[each.key].scalable_dimension
  resource_id        = aws_appautoscaling_target.this[each.key].resource_id

  target_tracking_scaling_policy_configuration {
    target_value       = var.cpu_target_percent
    scale_in_cooldown  = 300
    scale_out_cooldown = 60

    predefined_metric_specification {
      predefined_metric_type = "ECSServiceAverageCPUUtilization"
    }
  }
}

resource "aws_appautoscaling_policy" "requests" {
  for_each = local.colors

  name               = "${var.name}-${each.key}-requests"
  policy_type        = "TargetTrackingScaling"
  service_namespace  = aws_appautoscaling_target.this[each.key].service_namespace
  scalable_dimension = aws_appautoscaling_target.this[each.key].scalable_dimension
  resource_id        = aws_appautoscaling_target.this[each.key].resource_id

  target_tracking_scaling_policy_configuration {
    target_value       = var.requests_per_target_per_minute
    scale_in_cooldown  = 300
    scale_out_cooldown = 60

    predefined_metric_specification {
      predefined_metric_type = "ALBRequestCountPerTarget"
      resource_label         = "${var.alb_arn_suffix}/${var.target_group_arn_suffixes[each.key]}"
    }
  }
}
