# Alarms for the guard triggers of the deployment guide, an SNS topic they notify, and one
# dashboard. Thresholds default to the guide's numbers:
#   error rate      > 5 % of requests for 5 minutes      (API Gateway 5xx / Count)
#   mean latency    > 1000 ms for 5 minutes                (API Gateway Latency, average)
#   model errors    > 10 per minute, 2 minutes in a row    (SageMaker ModelInvocationErrors, per endpoint)
#   throttling      > 10 % of requests over 5 minutes      (429s in the access log / Count)
# plus "no healthy splitgate task behind the serving target group".


locals {
  region         = var.region
  api_dimensions = { ApiId = var.api_id, Stage = var.api_stage }
  custom_ns      = "${var.metrics_namespace}/${var.name}"
  actions        = [aws_sns_topic.alarms.arn]
}

resource "aws_sns_topic" "alarms" {
  name              = "${var.name}-alarms"
  kms_master_key_id = var.kms_key_arn
  tags              = var.tags
}

resource "aws_sns_topic_subscription" "email" {
  for_each = toset(var.alarm_emails)

  topic_arn = aws_sns_topic.alarms.arn
  protocol  = "email"
  endpoint  = each.value
}

# Throttled requests (API Gateway's own 429s and splitgate's) counted from the JSON access log.
resource "aws_cloudwatch_log_metric_filter" "throttled" {
  name           = "${var.name}-throttled"
  log_group_name = var.api_access_log_group_name
  pattern        = "{ $.status = \"429\" }"

  metric_transformation {
    name          = "ThrottledRequests"
    namespace     = local.custom_ns
    value         = "1"
    default_value = "0"
    unit          = "Count"
  }
}

resource "aws_cloudwatch_metric_alarm" "error_rate" {
  alarm_name          = "${var.name}-error-rate"
  alarm_description   = "More than ${var.error_rate_percent}% of API requests failed with 5xx for 5 minutes."
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.error_rate_percent
  evaluation_periods  = 5
  datapoints_to_alarm = 5
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.actions
  ok_actions          = local.actions
  tags                = var.tags

  metric_query {
    id          = "rate"
    label       = "5xx rate (%)"
    expression  = "IF(requests >= ${var.min_requests_per_minute}, 100 * errors / requests, 0)"
    return_data = true
  }

  metric_query {
    id = "errors"
    metric {
      namespace   = "AWS/ApiGateway"
      metric_name = "5xx"
      dimensions  = local.api_dimensions
      period      = 60
      stat        = "Sum"
    }
  }

  metric_query {
    id = "requests"
    metric {
      namespace   = "AWS/ApiGateway"
      metric_name = "Count"
      dimensions  = local.api_dimensions
      period      = 60
      stat        = "Sum"
    }
  }
}

resource "aws_cloudwatch_metric_alarm" "latency" {
  alarm_name          = "${var.name}-latency"
  alarm_description   = "Mean API latency above ${var.latency_ms} ms for 5 minutes."
  namespace           = "AWS/ApiGateway"
  metric_name         = "Latency"
  dimensions          = local.api_dimensions
  statistic           = "Average"
  period              = 60
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.latency_ms
  evaluation_periods  = 5
  datapoints_to_alarm = 5
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.actions
  ok_actions          = local.actions
  tags                = var.tags
}

resource "aws_cloudwatch_metric_alarm" "model_invocation_errors" {
  for_each = var.sagemaker_endpoints

  alarm_name          = "${var.name}-model-errors-${each.key}"
  alarm_description   = "SageMaker endpoint ${each.key} returned more than ${var.model_errors_per_minute} invocation errors per minute."
  namespace           = "AWS/SageMaker"
  metric_name         = "ModelInvocationErrors"
  dimensions          = { EndpointName = each.key, VariantName = each.value }
  statistic           = "Sum"
  period              = 60
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.model_errors_per_minute
  evaluation_periods  = 2
  datapoints_to_alarm = 2
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.actions
  ok_actions          = local.actions
  tags                = var.tags
}

resource "aws_cloudwatch_metric_alarm" "throttle_rate" {
  alarm_name          = "${var.name}-throttle-rate"
  alarm_description   = "More than ${var.throttle_rate_percent}% of API requests were throttled (429) over 5 minutes."
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.throttle_rate_percent
  evaluation_periods  = 1
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.actions
  ok_actions          = local.actions
  tags                = var.tags

  metric_query {
    id          = "rate"
    label       = "throttled (%)"
    expression  = "IF(requests >= ${var.min_requests_per_minute * 5}, 100 * throttled / requests, 0)"
    return_data = true
  }

  metric_query {
    id = "throttled"
    metric {
      namespace   = local.custom_ns
      metric_name = aws_cloudwatch_log_metric_filter.throttled.metric_transformation[0].name
      period      = 300
      stat        = "Sum"
    }
  }

  metric_query {
    id = "requests"
    metric {
      namespace   = "AWS/ApiGateway"
      metric_name = "Count"
      dimensions  = local.api_dimensions
      period      = 300
      stat        = "Sum"
    }
  }
}

resource "aws_cloudwatch_metric_alarm" "no_healthy_tasks" {
  alarm_name          = "${var.name}-no-healthy-tasks"
  alarm_description   = "No healthy splitgate task behind the ${var.active_color} target group for 2 minutes."
  namespace           = "AWS/ApplicationELB"
  metric_name         = "HealthyHostCount"
  dimensions          = { LoadBalancer = var.alb_arn_suffix, TargetGroup = var.target_group_arn_suffixes[var.active_color] }
  statistic           = "Minimum"
  period              = 60
  comparison_operator = "LessThanThreshold"
  threshold           = 1
  evaluation_periods  = 2
  datapoints_to_alarm = 2
  treat_missing_data  = "breaching"
  alarm_actions       = local.actions
  ok_actions          = local.actions
  tags                = var.tags
}

resource "aws_cloudwatch_dashboard" "this" {
  dashboard_name = var.name
  dashboard_body = jsonencode({
    widgets = concat([
      {
        type = "alarm", x = 0, y = 0, width = 24, height = 3
        properties = {
          title = "Guard alarms"
          alarms = concat(
            [
              aws_cloudwatch_metric_alarm.error_rate.arn,
              aws_cloudwatch_metric_alarm.latency.arn,
              aws_cloudwatch_metric_alarm.throttle_rate.arn,
              aws_cloudwatch_metric_alarm.no_healthy_tasks.arn,
            ],
            [for alarm in aws_cloudwatch_metric_alarm.model_invocation_errors : alarm.arn],
          )
        }
      },
      {
        type = "metric", x = 0, y = 3, width = 12, height = 6
        properties = {
          title  = "API requests and errors"
          region = local.region
          stat   = "Sum"
          period = 60
          metrics = [
            ["AWS/ApiGateway", "Count", "ApiId", var.api_id, "Stage", var.api_stage],
            [".", "4xx", ".", ".", ".", "."],
            [".", "5xx", ".", ".", ".", "."],
            [local.custom_ns, "ThrottledRequests", { label = "429 (throttled)" }],
          ]
        }
      },
      {
        type = "metric", x = 12, y = 3, width = 12, height = 6
        properties = {
          title  = "API latency (ms)"
          region = local.region
          period = 60
          metrics = [
            ["AWS/ApiGateway", "Latency", "ApiId", var.api_id, "Stage", var.api_stage, { stat = "Average", label = "mean" }],
            ["AWS/ApiGateway", "Latency", "ApiId", var.api_id, "Stage", var.api_stage, { stat = "p95", label = "p95" }],
            ["AWS/ApiGateway", "Latency", "ApiId", var.api_id, "Stage", var.api_stage, { stat = "p99", label = "p99" }],
            ["AWS/ApiGateway", "IntegrationLatency", "ApiId", var.api_id, "Stage", var.api_stage, { stat = "Average", label = "integration mean" }],
          ]
          annotations = { horizontal = [{ label = "guard", value = var.latency_ms }] }
        }
      },
      {
        type = "metric", x = 0, y = 9, width = 12, height = 6
        properties = {
          title  = "Requests per color (blue/green)"
          region = local.region
          stat   = "Sum"
          period = 60
          metrics = [
            for color, suffix in var.target_group_arn_suffixes :
            ["AWS/ApplicationELB", "RequestCount", "TargetGroup", suffix, "LoadBalancer", var.alb_arn_suffix, { label = color }]
          ]
        }
      },
      {
        type = "metric", x = 12, y = 9, width = 12, height = 6
        properties = {
          title  = "ECS CPU and memory (%)"
          region = local.region
          stat   = "Average"
          period = 60
          metrics = flatten([
            for color, service in var.ecs_service_names : [
              ["AWS/ECS", "CPUUtilization", "ClusterName", var.ecs_cluster_name, "ServiceName", service, { label = "${color} cpu" }],
              [".", "MemoryUtilization", ".", ".", ".", ".", { label = "${color} memory" }],
            ]
          ])
        }
      },
    ], local.sagemaker_widgets)
  })
}

locals {
  # The SageMaker panel exists only when the environment routes to SageMaker endpoints.
  sagemaker_widgets = [
    for endpoints in [var.sagemaker_endpoints] : {
      type = "metric", x = 0, y = 15, width = 24, height = 6
      properties = {
        title  = "SageMaker invocations and errors"
        region = local.region
        stat   = "Sum"
        period = 60
        metrics = flatten([
          for endpoint, variant in endpoints : [
            ["AWS/SageMaker", "Invocations", "EndpointName", endpoint, "VariantName", variant, { label = "${endpoint} invocations" }],
            [".", "ModelInvocationErrors", ".", ".", ".", ".", { label = "${endpoint} errors" }],
          ]
        ])
      }
    } if length(endpoints) > 0
  ]
}
