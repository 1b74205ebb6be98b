# Private access from the tasks to the AWS APIs they use, instead of a NAT gateway:
#   interface endpoints - SageMaker Runtime (InvokeEndpoint), CloudWatch (PutMetricData), CloudWatch
#                         Logs (awslogs driver), ECR API + ECR Docker registry (image pull), Secrets
#                         Manager and SSM (the `secrets` ECS injects at start)
#   gateway endpoints   - DynamoDB (config item, registry, audit) and S3 (ECR image layers)
# Private DNS is on, so the SDK's default endpoints resolve to the interface endpoints and nothing
# in splitgate's config changes. See terraform/README.md for the cost trade-off against NAT.

locals {
  interface_services = toset(["sagemaker.runtime", "monitoring", "logs", "ecr.api", "ecr.dkr", "secretsmanager", "ssm"])
  gateway_services   = toset(["dynamodb", "s3"])
}

resource "aws_security_group" "endpoints" {
  name        = "${var.name}-endpoints"
  description = "Interface endpoints of ${var.name}: HTTPS from inside the VPC"
  vpc_id      = var.vpc_id
  tags        = var.tags
}

resource "aws_vpc_security_group_ingress_rule" "endpoints_https" {
  security_group_id = aws_security_group.endpoints.id
  description       = "HTTPS from the VPC to the AWS API endpoints"
  cidr_ipv4         = var.vpc_cidr
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
}

resource "aws_vpc_endpoint" "interface" {
  for_each = local.interface_services

  vpc_id              = var.vpc_id
  service_name        = "com.amazonaws.${var.region}.${each.key}"
  vpc_endpoint_type   = "Interface"
  private_dns_enabled = true
  subnet_ids          = var.subnet_ids
  security_group_ids  = [aws_security_group.endpoints.id]
  tags                = merge(var.tags, { Name = "${var.name}-${each.key}" })
}

resource "aws_vpc_endpoint" "gateway" {
  for_each = local.gateway_services

  vpc_id            = var.vpc_id
  service_name      = "com.amazonaws.${var.region}.${each.key}"
  vpc_endpoint_type = "Gateway"
  route_table_ids   = var.route_table_ids
  tags              = merge(var.tags, { Name = "${var.name}-${each.key}" })
}
