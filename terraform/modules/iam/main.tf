# Two roles per service, each with only what it needs:
#   execution role - used by the ECS agent: pull the image, write the container's logs, read the
#                    one SSM parameter (SPLITGATE_CONFIG) and the one secret (SPLITGATE_ADMIN_TOKEN)
#                    it injects, decrypting them with the environment's key only through SSM and
#                    Secrets Manager
#   task role      - used by splitgate: every AWS call in src/aws/ (.ci/test_deploy.py derives the
#                    list from the Rust source and fails when a call has no grant here): invoke
#                    the named SageMaker endpoints, read/write/scan the named DynamoDB tables,
#                    publish metrics into one CloudWatch namespace

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}

locals {
  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition
  region     = var.region

  # SageMaker stores endpoint names in ARNs in lower case.
  endpoint_arns = [
    for endpoint in var.sagemaker_endpoint_names :
    "arn:${local.partition}:sagemaker:${local.region}:${local.account_id}:endpoint/${lower(endpoint)}"
  ]
}

data "aws_iam_policy_document" "ecs_tasks_trust" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["ecs-tasks.amazonaws.com"]
    }

    # Confused-deputy guard: only tasks of this account may assume the roles.
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }

    condition {
      test     = "ArnLike"
      variable = "aws:SourceArn"
      values   = ["arn:${local.partition}:ecs:${local.region}:${local.account_id}:*"]
    }
  }
}

# --- execution role -----------------------------------------------------------------------------

resource "aws_iam_role" "execution" {
  name               = "${var.name}-execution"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_trust.json
  tags               = var.tags
}

data "aws_iam_policy_document" "execution" {
  statement {
    sid       = "WriteContainerLogs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${var.log_group_arn}:log-stream:*"]
  }

  statement {
    # ECS resolves `secrets` valueFrom SSM ARNs with GetParameters.
    sid       = "ReadConfigParameter"
    actions   = ["ssm:GetParameters"]
    resources = [var.config_parameter_arn]
  }

  statement {
    sid       = "ReadAdminTokenSecret"
    actions   = ["secretsmanager:GetSecretValue"]
    resources = [var.admin_token_secret_arn]
  }

  statement {
    # The parameter (SecureString) and the secret are encrypted with the environment's key.
    sid       = "DecryptConfigAndSecretThroughTheirServices"
    actions   = ["kms:Decrypt"]
    resources = [var.kms_key_arn]

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["ssm.${local.region}.amazonaws.com", "secretsmanager.${local.region}.amazonaws.com"]
    }
  }

  dynamic "statement" {
    for_each = length(var.ecr_repository_arns) > 0 ? [1] : []
    content {
      sid       = "PullImage"
      actions   = ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"]
      resources = var.ecr_repository_arns
    }
  }

  dynamic "statement" {
    for_each = length(var.ecr_repository_arns) > 0 ? [1] : []
    content {
      # GetAuthorizationToken has no resource-level permissions.
      sid       = "EcrLogin"
      actions   = ["ecr:GetAuthorizationToken"]
      resources = ["*"]
    }
  }
}

resource "aws_iam_role_policy" "execution" {
  name   = "execution"
  role   = aws_iam_role.execution.id
  policy = data.aws_iam_policy_document.execution.json
}

# --- task role ----------------------------------------------------------------------------------

resource "aws_iam_role" "task" {
  name               = "${var.name}-task"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_trust.json
  tags               = var.tags
}

data "aws_iam_policy_document" "task" {
  dynamic "statement" {
    for_each = length(local.endpoint_arns) > 0 ? [1] : []
    content {
      sid       = "InvokeNamedEndpoints"
      actions   = ["sagemaker:InvokeEndpoint"]
      resources = local.endpoint_arns
    }
  }

  statement {
    # GetItem: config item polls; PutItem: `source put`, admin changes, audit records, fleet
    # counters and lease; UpdateItem: registry status; Scan: `splitgate models list` (the
    # registry is one item per model); Query: the fleet partition, split layouts, the audit
    # trail; DeleteItem: the lease on shutdown and silent replicas' counters.
    sid       = "ReadWriteNamedTables"
    actions   = ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:Scan", "dynamodb:Query", "dynamodb:DeleteItem"]
    resources = var.dynamodb_table_arns
  }

  statement {
    # The tables are encrypted with a customer-managed key: DynamoDB uses it on the caller's behalf.
    sid       = "UseTableKeyThroughDynamoDb"
    actions   = ["kms:Decrypt", "kms:DescribeKey", "kms:Encrypt", "kms:GenerateDataKey*", "kms:ReEncrypt*"]
    resources = [var.kms_key_arn]

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["dynamodb.${local.region}.amazonaws.com"]
    }
  }

  statement {
    # PutMetricData has no resource-level permissions; the namespace condition is the boundary.
    sid       = "PublishMetricsToOwnNamespace"
    actions   = ["cloudwatch:PutMetricData"]
    resources = ["*"]

    condition {
      test     = "StringEquals"
      variable = "cloudwatch:namespace"
      values   = [var.metrics_namespace]
    }
  }
}

resource "aws_iam_role_policy" "task" {
  name   = "task"
  role   = aws_iam_role.task.id
  policy = data.aws_iam_policy_document.task.json
}
