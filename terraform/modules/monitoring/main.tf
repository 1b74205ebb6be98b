# Alarms for the four rollback triggers of the deployment guide, an SNS topic they notify, and one
# dashboard. Thresholds default to the guide's numbers. Per split variant, from the metrics
# splitgate itself publishes (src/aws/cloudwatch.rs: namespace `metrics_namespace`, dimensions
# Environment + Variant + Model; Requests, 4XXError, 5XXError, Latency as statistic sets):
#   error rate      > 5 % of the variant's requests, each of 5 minutes   (5XXError / Requests)
#   mean latency    > 1000 ms, each of 5 minutes                           (Latency, Average)
#   model errors    > 10 per minute, 2 minutes in a row                    (the variant's 5XXError: what
#                     splitgate got from its model; and SageMaker's own ModelInvocationErrors per
#                     endpoint production variant of each model)
# For the whole environment (splitgate throttles before it picks a variant, so its `Throttles`
# metric has only the Environment dimension):
#   throttling      > 10 % of requests over 5 minutes    (Throttles / (Throttles + Requests))
# and at the edge, where splitgate's own metrics go silent if it is down: API Gateway 5xx rate and
# latency, 429s in the access log, and "no healthy task behind the serving target group".


locals {
  region         = var.region
  api_dimensions = { ApiId = var.api_id, Stage = var.api_stage }
  custom_ns      = "${var.metrics_namespace}/${var.name}"
  actions        = [aws_sns_topic.alarms.arn]
  splitgate_ns   = var.metrics_namespace

  # The exact dimension set splitgate publishes per variant (CloudWatch matches all of them).
  variant_dimensions = {
    for variant, model in var.variants : variant => { Environment = var.environment, Variant = variant, Model = model }
  }
  variant_ids = { for index, variant in sort(keys(var.variants)) : variant => "r${index}" }
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
  for_each = var.models

  alarm_name          = "${var.name}-model-errors-${each.key}"
  alarm_description   = "SageMaker endpoint ${each.value.endpoint} variant ${each.value.target_variant} (model ${each.key}) returned more than ${var.model_errors_per_minute} invocation errors per minute."
  namespace           = "AWS/SageMaker"
  metric_name         = "ModelInvocationErrors"
  dimensions          = { EndpointName = each.value.endpoint, VariantName = each.value.target_variant }
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

# --- per split variant, from splitgate's own metrics ---------------------------------------------

resource "aws_cloudwatch_metric_alarm" "variant_error_rate" {
  for_each = local.variant_dimensions

  alarm_name          = "${var.name}-${each.key}-error-rate"
  alarm_description   = "Variant ${each.key} (model ${each.value.Model}): more than ${var.error_rate_percent}% of its requests answered 5xx in each of 5 minutes."
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
    label       = "${each.key} 5xx rate (%)"
    expression  = "IF(requests >= ${var.min_requests_per_minute}, 100 * FILL(errors, 0) / requests, 0)"
    return_data = true
  }

  metric_query {
    id = "errors"
    metric {
      namespace   = local.splitgate_ns
      metric_name = "5XXError"
      dimensions  = each.value
      period      = 60
      stat        = "Sum"
    }
  }

  metric_query {
    id = "requests"
    metric {
      namespace   = local.splitgate_ns
      metric_name = "Requests"
      dimensions  = each.value
      period      = 60
      stat        = "Sum"
    }
  }
}

resource "aws_cloudwatch_metric_alarm" "variant_latency" {
  for_each = local.variant_dimensions

  alarm_name          = "${var.name}-${each.key}-latency"
  alarm_description   = "Variant ${each.key} (model ${each.value.Model}): mean latency above ${var.latency_ms} ms in each of 5 minutes."
  namespace           = local.splitgate_ns
  metric_name         = "Latency"
  dimensions          = each.value
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

resource "aws_cloudwatch_metric_alarm" "variant_model_errors" {
  for_each = local.variant_dimensions

  alarm_name          = "${var.name}-${each.key}-model-errors"
  alarm_description   = "Variant ${each.key} (model ${each.value.Model}): more than ${var.model_errors_per_minute} failed model calls (5xx) per minute, 2 minutes in a row."
  namespace           = local.splitgate_ns
  metric_name         = "5XXError"
  dimensions          = each.value
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

resource "aws_cloudwatch_metric_alarm" "splitgate_throttle_rate" {
  count = length(var.variants) > 0 ? 1 : 0

  alarm_name          = "${var.name}-splitgate-throttle-rate"
  alarm_description   = "splitgate's token bucket rejected more than ${var.throttle_rate_percent}% of requests over 5 minutes (environment-wide: throttling happens before a variant is chosen)."
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.throttle_rate_percent
  evaluation_periods  = 1
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.actions
  ok_actions          = local.actions
  tags                = var.tags

  metric_query {
    id          = "total"
    label       = "requests seen (served + throttled)"
    expression  = join(" + ", concat(["FILL(throttled, 0)"], [for variant, id in local.variant_ids : "FILL(${id}, 0)"]))
    return_data = false
  }

  metric_query {
    id          = "rate"
    label       = "throttled by splitgate (%)"
    expression  = "IF(total >= ${var.min_requests_per_minute * 5}, 100 * FILL(throttled, 0) / total, 0)"
    return_data = true
  }

  metric_query {
    id = "throttled"
    metric {
      namespace   = local.splitgate_ns
      metric_name = "Throttles"
      dimensions  = { Environment = var.environment }
      period      = 300
      stat        = "Sum"
    }
  }

  dynamic "metric_query" {
    for_each = local.variant_ids
    content {
      id = metric_query.value
      metric {
        namespace   = local.splitgate_ns
        metric_name = "Requests"
        dimensions  = local.variant_dimensions[metric_query.key]
        period      = 300
        stat        = "Sum"
      }
    }
  }
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
            [for alarm in aws_cloudwatch_metric_alarm.variant_error_rate : alarm.arn],
            [for alarm in aws_cloudwatch_metric_alarm.variant_latency : alarm.arn],
            [for alarm in aws_cloudwatch_metric_alarm.variant_model_errors : alarm.arn],
            [for alarm in aws_cloudwatch_metric_alarm.splitgate_throttle_rate : alarm.arn],
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
          # concat(...), not flatten(): each metric row must stay a list.
          metrics = concat([], [
            for color, service in var.ecs_service_names : [
              ["AWS/ECS", "CPUUtilization", "ClusterName", var.ecs_cluster_name, "ServiceName", service, { label = "${color} cpu" }],
              [".", "MemoryUtilization", ".", ".", ".", ".", { label = "${color} memory" }],
            ]
          ]...)
        }
      },
    ], local.variant_widgets, local.sagemaker_widgets)
  })
}

locals {
  # The SageMaker panel exists only when the environment routes to SageMaker endpoints.
  sagemaker_widgets = [
    for models in [var.models] : {
      type = "metric", x = 0, y = 39, width = 24, height = 6
      properties = {
        title  = "SageMaker invocations and errors"
        region = local.region
        stat   = "Sum"
        period = 60
        metrics = concat([], [
          for model, target in models : [
            ["AWS/SageMaker", "Invocations", "EndpointName", target.endpoint, "VariantName", target.target_variant, { label = "${model} invocations" }],
            [".", "ModelInvocationErrors", ".", ".", ".", ".", { label = "${model} errors" }],
          ]
        ]...)
      }
    } if length(models) > 0
  ]

  # splitgate's own metrics per variant. SEARCH expressions pick up every (Variant, Model) pair
  # splitgate publishes for this environment, so a promoted or replaced model appears without an
  # apply (the alarms above need `variants` updated). Latency is published as statistic sets, so
  # CloudWatch offers Average/Minimum/Maximum/SampleCount but no percentiles; ShadowOverlapAtK has
  # Environment + Model (the shadow model) only.
  search_variant = "{${var.metrics_namespace},Environment,Model,Variant} Environment=\"${var.environment}\""
  variant_widgets = [
    {
      type = "metric", x = 0, y = 15, width = 12, height = 6
      properties = {
        title   = "splitgate requests per variant"
        region  = local.region
        period  = 60
        metrics = [[{ expression = "SEARCH('${local.search_variant} MetricName=\"Requests\"', 'Sum', 60)", id = "requests", label = "" }]]
      }
    },
    {
      type = "metric", x = 12, y = 15, width = 12, height = 6
      properties = {
        title  = "splitgate errors per variant (5xx, 4xx)"
        region = local.region
        period = 60
        metrics = [
          [{ expression = "SEARCH('${local.search_variant} MetricName=\"5XXError\"', 'Sum', 60)", id = "e5", label = "5xx" }],
          [{ expression = "SEARCH('${local.search_variant} MetricName=\"4XXError\"', 'Sum', 60)", id = "e4", label = "4xx" }],
        ]
      }
    },
    {
      type = "metric", x = 0, y = 21, width = 12, height = 6
      properties = {
        title  = "splitgate latency per variant (ms; mean and max, no percentiles from statistic sets)"
        region = local.region
        period = 60
        metrics = [
          [{ expression = "SEARCH('${local.search_variant} MetricName=\"Latency\"', 'Average', 60)", id = "mean", label = "mean" }],
          [{ expression = "SEARCH('${local.search_variant} MetricName=\"Latency\"', 'Maximum', 60)", id = "max", label = "max" }],
        ]
        annotations = { horizontal = [{ label = "guard", value = var.latency_ms }] }
      }
    },
    {
      type = "metric", x = 12, y = 21, width = 12, height = 6
      properties = {
        title  = "shadow overlap@k per shadow model (mean, 0-1)"
        region = local.region
        period = 60
        metrics = [
          [{ expression = "SEARCH('{${var.metrics_namespace},Environment,Model} Environment=\"${var.environment}\" MetricName=\"ShadowOverlapAtK\"', 'Average', 60)", id = "overlap", label = "" }],
        ]
        yAxis = { left = { min = 0, max = 1 } }
      }
    },
    {
      type = "metric", x = 0, y = 27, width = 12, height = 6
      properties = {
        title   = "splitgate throttled requests (token bucket, environment-wide)"
        region  = local.region
        stat    = "Sum"
        period  = 60
        metrics = [[var.metrics_namespace, "Throttles", "Environment", var.environment]]
      }
    },
    {
      type = "metric", x = 12, y = 27, width = 12, height = 6
      properties = {
        title  = "splitgate 5xx rate per variant (%), as the alarms see it"
        region = local.region
        period = 60
        metrics = concat([], [
          for variant, dims in local.variant_dimensions : [
            [{ expression = "100 * FILL(${local.variant_ids[variant]}e, 0) / ${local.variant_ids[variant]}n", id = "${local.variant_ids[variant]}rate", label = variant }],
            [var.metrics_namespace, "5XXError", "Environment", dims.Environment, "Variant", variant, "Model", dims.Model, { id = "${local.variant_ids[variant]}e", visible = false, stat = "Sum" }],
            [var.metrics_namespace, "Requests", "Environment", dims.Environment, "Variant", variant, "Model", dims.Model, { id = "${local.variant_ids[variant]}n", visible = false, stat = "Sum" }],
          ]
        ]...)
        annotations = { horizontal = [{ label = "guard", value = var.error_rate_percent }] }
      }
    },
  ]
}
