# Public entry point: API Gateway HTTP API -> VPC link -> internal ALB listener -> splitgate.
# API Gateway does the coarse, account-level throttling; splitgate does API-key auth, its own
# token-bucket throttle and the champion/challenger split.
#
# Exactly two routes are public. There is no `$default` route, so anything else (GET /health,
# GET /metrics, /admin/*) gets API Gateway's own 404 and never reaches the VPC: health is probed by
# the ALB inside the VPC, metrics are scraped from the admin port inside the VPC.

locals {
  routes = ["POST /recommend", "POST /feedback"]
}

resource "aws_security_group" "vpc_link" {
  name        = "${var.name}-vpc-link"
  description = "API Gateway VPC link to the splitgate ALB (egress rule owned by the load-balancer module)"
  vpc_id      = var.vpc_id
  tags        = var.tags
}

resource "aws_apigatewayv2_vpc_link" "this" {
  name               = var.name
  subnet_ids         = var.subnet_ids
  security_group_ids = [aws_security_group.vpc_link.id]
  tags               = var.tags
}

resource "aws_apigatewayv2_api" "this" {
  name          = var.name
  protocol_type = "HTTP"
  description   = "splitgate ${var.name}"
  tags          = var.tags

  dynamic "cors_configuration" {
    for_each = length(var.cors_allowed_origins) > 0 ? [1] : []
    content {
      allow_origins  = var.cors_allowed_origins
      allow_methods  = ["POST", "OPTIONS"]
      allow_headers  = ["content-type", "x-api-key", "x-request-id"]
      expose_headers = ["x-splitgate-variant", "x-splitgate-model", "x-request-id", "retry-after"]
      max_age        = 300
    }
  }
}

resource "aws_apigatewayv2_integration" "alb" {
  api_id                 = aws_apigatewayv2_api.this.id
  description            = "splitgate internal ALB"
  integration_type       = "HTTP_PROXY"
  integration_method     = "ANY"
  integration_uri        = var.alb_listener_arn
  connection_type        = "VPC_LINK"
  connection_id          = aws_apigatewayv2_vpc_link.this.id
  payload_format_version = "1.0"
  timeout_milliseconds   = var.integration_timeout_ms

  dynamic "tls_config" {
    for_each = var.alb_tls_server_name == null ? [] : [var.alb_tls_server_name]
    content {
      server_name_to_verify = tls_config.value
    }
  }
}

resource "aws_apigatewayv2_route" "this" {
  for_each = toset(local.routes)

  #checkov:skip=CKV_AWS_309:Both public routes (POST /recommend, POST /feedback) are authenticated by splitgate itself (X-API-Key, SHA-256 compared in constant time); a gateway authorizer would duplicate it and add a Lambda hop.
  api_id             = aws_apigatewayv2_api.this.id
  route_key          = each.value
  target             = "integrations/${aws_apigatewayv2_integration.alb.id}"
  authorization_type = "NONE"
}

resource "aws_apigatewayv2_stage" "default" {
  api_id      = aws_apigatewayv2_api.this.id
  name        = "$default"
  auto_deploy = true
  tags        = var.tags

  default_route_settings {
    throttling_rate_limit  = var.throttle_rate_limit
    throttling_burst_limit = var.throttle_burst_limit
  }

  access_log_settings {
    destination_arn = var.access_log_group_arn
    format = jsonencode({
      requestId          = "$context.requestId"
      ip                 = "$context.identity.sourceIp"
      requestTime        = "$context.requestTime"
      httpMethod         = "$context.httpMethod"
      routeKey           = "$context.routeKey"
      path               = "$context.path"
      status             = "$context.status"
      protocol           = "$context.protocol"
      responseLength     = "$context.responseLength"
      responseLatency    = "$context.responseLatency"
      integrationLatency = "$context.integrationLatency"
      integrationStatus  = "$context.integrationStatus"
      integrationError   = "$context.integrationErrorMessage"
      errorMessage       = "$context.error.message"
      userAgent          = "$context.identity.userAgent"
    })
  }
}
