# IAM roles for service accounts.
#
#   server  may write bundles (ingest: multipart upload, delete on a failed registration) and
#           write/read audit checkpoints; reads its own keys and the database URL. It can never
#           read the worker identity secret: no statement allows it, an explicit Deny here
#           forbids it, and the secret's resource policy denies every principal but the worker
#           and break-glass roles.
#   worker  may read bundles (ranged GETs) and decrypt with the bundles key, and read its own
#           identity secret. Nothing else: no write anywhere, no checkpoints, no database.
#   transfer  Google's Storage Transfer Service (GCP standby): read both buckets, consume their
#           event queues.

locals {
  server_sa = "system:serviceaccount:${var.namespace}:${var.release}-readroom-server"
  worker_sa = "system:serviceaccount:${var.namespace}:${var.release}-readroom-worker"
}

data "aws_iam_policy_document" "assume_server" {
  statement {
    actions = ["sts:AssumeRoleWithWebIdentity"]
    principals {
      type        = "Federated"
      identifiers = [var.oidc_provider_arn]
    }
    condition {
      test     = "StringEquals"
      variable = "${var.oidc_provider_url}:sub"
      values   = [local.server_sa]
    }
    condition {
      test     = "StringEquals"
      variable = "${var.oidc_provider_url}:aud"
      values   = ["sts.amazonaws.com"]
    }
  }
}

data "aws_iam_policy_document" "assume_worker" {
  statement {
    actions = ["sts:AssumeRoleWithWebIdentity"]
    principals {
      type        = "Federated"
      identifiers = [var.oidc_provider_arn]
    }
    condition {
      test     = "StringEquals"
      variable = "${var.oidc_provider_url}:sub"
      values   = [local.worker_sa]
    }
    condition {
      test     = "StringEquals"
      variable = "${var.oidc_provider_url}:aud"
      values   = ["sts.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "server" {
  name               = "${var.prefix}-server"
  assume_role_policy = data.aws_iam_policy_document.assume_server.json
}

resource "aws_iam_role" "worker" {
  name               = "${var.prefix}-worker"
  assume_role_policy = data.aws_iam_policy_document.assume_worker.json
}

data "aws_iam_policy_document" "server" {
  statement {
    sid       = "ListBuckets"
    actions   = ["s3:ListBucket"]
    resources = [var.bundles_bucket_arn, var.checkpoints_bucket_arn]
  }
  statement {
    sid = "WriteBundles"
    actions = ["s3:PutObject", "s3:GetObject", "s3:DeleteObject", "s3:AbortMultipartUpload",
    "s3:ListMultipartUploadParts"]
    resources = ["${var.bundles_bucket_arn}/*"]
  }
  statement {
    sid       = "WriteAndVerifyCheckpoints"
    actions   = ["s3:PutObject", "s3:GetObject"]
    resources = ["${var.checkpoints_bucket_arn}/*"]
  }
  statement {
    sid       = "BucketKeys"
    actions   = ["kms:GenerateDataKey", "kms:Decrypt"]
    resources = [var.bundles_kms_key_arn, var.checkpoints_kms_key_arn]
  }
  statement {
    sid       = "OwnSecrets"
    actions   = ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"]
    resources = [var.server_keys_secret_arn, var.database_secret_arn]
  }
  statement {
    sid       = "SecretsKey"
    actions   = ["kms:Decrypt"]
    resources = [var.secrets_kms_key_arn]
    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["secretsmanager.${data.aws_region.current.region}.amazonaws.com"]
    }
  }
  # Until readroom writes checkpoints to their own bucket (it writes audit/checkpoints/ into
  # store.s3.bucket today, docs/audit.md), a checkpoint there must not be deletable or hidden
  # under a delete marker with the server's credentials.
  statement {
    sid       = "KeepCheckpointsInBundleBucket"
    effect    = "Deny"
    actions   = ["s3:DeleteObject", "s3:DeleteObjectVersion"]
    resources = ["${var.bundles_bucket_arn}/audit/*"]
  }
  statement {
    sid       = "NeverWorkerIdentities"
    effect    = "Deny"
    actions   = ["secretsmanager:*"]
    resources = [var.worker_keys_secret_arn]
  }
}

data "aws_iam_policy_document" "worker" {
  statement {
    sid       = "ReadBundles"
    actions   = ["s3:GetObject"]
    resources = ["${var.bundles_bucket_arn}/*"]
  }
  statement {
    sid       = "BundlesKey"
    actions   = ["kms:Decrypt"]
    resources = [var.bundles_kms_key_arn]
  }
  statement {
    sid       = "OwnIdentity"
    actions   = ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"]
    resources = [var.worker_keys_secret_arn]
  }
  statement {
    sid       = "SecretsKey"
    actions   = ["kms:Decrypt"]
    resources = [var.secrets_kms_key_arn]
    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["secretsmanager.${data.aws_region.current.region}.amazonaws.com"]
    }
  }
}

data "aws_region" "current" {}

resource "aws_iam_role_policy" "server" {
  name   = "readroom-server"
  role   = aws_iam_role.server.id
  policy = data.aws_iam_policy_document.server.json
}

resource "aws_iam_role_policy" "worker" {
  name   = "readroom-worker"
  role   = aws_iam_role.worker.id
  policy = data.aws_iam_policy_document.worker.json
}

# --- Storage Transfer Service (GCP standby) -----------------------------------------------------
data "aws_iam_policy_document" "assume_transfer" {
  statement {
    actions = ["sts:AssumeRoleWithWebIdentity"]
    principals {
      type        = "Federated"
      identifiers = ["accounts.google.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "accounts.google.com:sub"
      values   = [var.gcp_transfer_subject]
    }
  }
}

resource "aws_iam_role" "transfer" {
  name               = "${var.prefix}-gcp-transfer"
  assume_role_policy = data.aws_iam_policy_document.assume_transfer.json
}

data "aws_iam_policy_document" "transfer" {
  statement {
    sid       = "List"
    actions   = ["s3:ListBucket", "s3:GetBucketLocation"]
    resources = [var.bundles_bucket_arn, var.checkpoints_bucket_arn]
  }
  statement {
    sid       = "Read"
    actions   = ["s3:GetObject"]
    resources = ["${var.bundles_bucket_arn}/*", "${var.checkpoints_bucket_arn}/*"]
  }
  statement {
    sid       = "Keys"
    actions   = ["kms:Decrypt"]
    resources = [var.bundles_kms_key_arn, var.checkpoints_kms_key_arn]
  }
  statement {
    sid       = "Events"
    actions   = ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility", "sqs:GetQueueAttributes"]
    resources = values(var.transfer_queue_arns)
  }
}

resource "aws_iam_role_policy" "transfer" {
  name   = "read-for-standby"
  role   = aws_iam_role.transfer.id
  policy = data.aws_iam_policy_document.transfer.json
}
