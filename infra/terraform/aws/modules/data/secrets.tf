# Key material lives in Secrets Manager; Terraform creates the containers and their access
# rules, never the values (they would land in the state). The key ceremony in docs/deploy.md
# puts the values in with `aws secretsmanager put-secret-value`.
#
#   worker-keys   worker.age (age identity) and worker-control.key: readable by the worker role
#                 and the break-glass role only (resource policy: an explicit deny for every
#                 other principal, so no IAM policy can grant it, the server role included).
#   server-keys   ticket.key, audit.key and server-secrets.key: the server role.
#   database-url  the readroom application user's PostgreSQL URL: the server role.
#
# No automatic rotation: rotating an age identity means new recipients and re-keying bundle
# headers, and rotating the ticket key means new server keys on every worker; both are the
# procedures in docs/deploy.md, not a Lambda's job.

locals {
  worker_role_arn = "arn:aws:iam::${local.account_id}:role/${var.prefix}-worker"
  server_role_arn = "arn:aws:iam::${local.account_id}:role/${var.prefix}-server"
}

resource "aws_secretsmanager_secret" "worker_keys" {
  # checkov:skip=CKV2_AWS_57: an age identity cannot be rotated by a Lambda (new recipients, re-keyed bundle headers); rotation is the documented key ceremony
  name                    = "${var.prefix}/worker-keys"
  description             = "readroom worker age identity (worker.age) and control key (worker-control.key); workers only"
  kms_key_id              = aws_kms_key.secrets.arn
  recovery_window_in_days = 30
}

resource "aws_secretsmanager_secret_policy" "worker_keys" {
  secret_arn = aws_secretsmanager_secret.worker_keys.arn
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Sid       = "OnlyWorkersAndBreakGlass"
      Effect    = "Deny"
      Principal = "*"
      Action    = ["secretsmanager:GetSecretValue", "secretsmanager:BatchGetSecretValue"]
      Resource  = "*"
      Condition = {
        ArnNotEquals = { "aws:PrincipalArn" = [local.worker_role_arn, var.break_glass_role_arn] }
      }
    }]
  })
}

resource "aws_secretsmanager_secret" "server_keys" {
  # checkov:skip=CKV2_AWS_57: the ticket key's public half is configured on every worker; rotation is the documented procedure, not a Lambda
  name                    = "${var.prefix}/server-keys"
  description             = "readroom ticket.key and audit.key (Ed25519 seeds) and server-secrets.key (encrypts TOTP secrets and ID tokens in the database); API servers only"
  kms_key_id              = aws_kms_key.secrets.arn
  recovery_window_in_days = 30
}

resource "aws_secretsmanager_secret_policy" "server_keys" {
  secret_arn = aws_secretsmanager_secret.server_keys.arn
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Sid       = "OnlyServersAndBreakGlass"
      Effect    = "Deny"
      Principal = "*"
      Action    = ["secretsmanager:GetSecretValue", "secretsmanager:BatchGetSecretValue"]
      Resource  = "*"
      Condition = {
        ArnNotEquals = { "aws:PrincipalArn" = [local.server_role_arn, var.break_glass_role_arn] }
      }
    }]
  })
}

resource "aws_secretsmanager_secret" "database_url" {
  # checkov:skip=CKV2_AWS_57: the application user's password is rotated with the documented procedure (ALTER ROLE, then the secret, then a rolling restart); RDS rotates the admin secret itself
  name                    = "${var.prefix}/database-url"
  description             = "readroom application user's PostgreSQL URL; API servers only"
  kms_key_id              = aws_kms_key.secrets.arn
  recovery_window_in_days = 30
}
