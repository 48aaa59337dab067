# One key per kind of data, each rotated yearly. Key policies delegate to IAM (the account),
# so the IRSA policies in ../irsa decide which role may use which key; nothing else is granted.

data "aws_caller_identity" "current" {}
data "aws_region" "current" {}
data "aws_region" "replica" {
  provider = aws.replica
}

locals {
  account_id = data.aws_caller_identity.current.account_id
  root_statement = {
    Sid       = "AccountAdministersThroughIAM"
    Effect    = "Allow"
    Principal = { AWS = "arn:aws:iam::${data.aws_caller_identity.current.account_id}:root" }
    Action    = "kms:*"
    Resource  = "*"
  }
}

resource "aws_kms_key" "bundles" {
  description             = "${var.prefix}: bundles bucket (SSE-KMS over age ciphertext)"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy                  = jsonencode({ Version = "2012-10-17", Statement = [local.root_statement] })
}

resource "aws_kms_alias" "bundles" {
  name          = "alias/${var.prefix}-bundles"
  target_key_id = aws_kms_key.bundles.key_id
}

resource "aws_kms_key" "checkpoints" {
  description             = "${var.prefix}: audit checkpoint bucket"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy                  = jsonencode({ Version = "2012-10-17", Statement = [local.root_statement] })
}

resource "aws_kms_alias" "checkpoints" {
  name          = "alias/${var.prefix}-checkpoints"
  target_key_id = aws_kms_key.checkpoints.key_id
}

resource "aws_kms_key" "secrets" {
  description             = "${var.prefix}: Secrets Manager (worker identities, server keys, database URL)"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy                  = jsonencode({ Version = "2012-10-17", Statement = [local.root_statement] })
}

resource "aws_kms_alias" "secrets" {
  name          = "alias/${var.prefix}-secrets"
  target_key_id = aws_kms_key.secrets.key_id
}

resource "aws_kms_key" "database" {
  description             = "${var.prefix}: RDS storage, snapshots and Performance Insights"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy                  = jsonencode({ Version = "2012-10-17", Statement = [local.root_statement] })
}

resource "aws_kms_key" "ecr" {
  description             = "${var.prefix}: container images"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy                  = jsonencode({ Version = "2012-10-17", Statement = [local.root_statement] })
}

# Replica region: the replica buckets' key.
resource "aws_kms_key" "replica" {
  provider                = aws.replica
  description             = "${var.prefix}: replica buckets (bundles, checkpoints)"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy                  = jsonencode({ Version = "2012-10-17", Statement = [local.root_statement] })
}
