# Buckets. What is stored is already age ciphertext (bundles) or signed, non-secret checkpoints;
# SSE-KMS adds at-rest encryption under a key whose use is logged and limited to the IRSA roles.
#
#   bundles      SSE-KMS, versioning, public access blocked, lifecycle, access logs, events to
#                SQS (GCP transfer), replication to the replica region.
#   checkpoints  separate bucket, Object Lock in COMPLIANCE mode (nobody, the root user
#                included, can delete or overwrite a checkpoint before its retention ends);
#                PUTs must carry a checksum (Content-MD5 or x-amz-checksum-*), which readroom's
#                S3 client sends.
#   access-logs  server access logs of both.
#   *-replica    in var.replica_region, written by S3 replication only.

locals {
  buckets = {
    bundles     = "${var.prefix}-bundles-${local.account_id}"
    checkpoints = "${var.prefix}-audit-checkpoints-${local.account_id}"
    logs        = "${var.prefix}-access-logs-${local.account_id}"
  }
}

# --- access logs ---------------------------------------------------------------------------------
resource "aws_s3_bucket" "logs" {
  # checkov:skip=CKV_AWS_18: this is the access-log bucket; logging it into itself would loop
  # checkov:skip=CKV_AWS_144: access logs stay in the region; the data they describe is replicated
  # checkov:skip=CKV2_AWS_62: nothing consumes events of the access-log bucket
  # checkov:skip=CKV_AWS_145: S3 server access logging delivers only to buckets with SSE-S3 default encryption
  bucket = local.buckets.logs
}

resource "aws_s3_bucket_ownership_controls" "logs" {
  bucket = aws_s3_bucket.logs.id
  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_public_access_block" "logs" {
  bucket                  = aws_s3_bucket.logs.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_versioning" "logs" {
  bucket = aws_s3_bucket.logs.id
  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "logs" {
  bucket = aws_s3_bucket.logs.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "AES256"
    }
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "logs" {
  bucket = aws_s3_bucket.logs.id
  rule {
    id     = "expire"
    status = "Enabled"
    filter {}
    expiration {
      days = var.log_retention_days
    }
    noncurrent_version_expiration {
      noncurrent_days = 30
    }
    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
  }
}

resource "aws_s3_bucket_policy" "logs" {
  bucket = aws_s3_bucket.logs.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Sid       = "S3ServerAccessLogs"
        Effect    = "Allow"
        Principal = { Service = "logging.s3.amazonaws.com" }
        Action    = "s3:PutObject"
        Resource  = "${aws_s3_bucket.logs.arn}/*"
        Condition = { StringEquals = { "aws:SourceAccount" = local.account_id } }
      },
      {
        Sid       = "TLSOnly"
        Effect    = "Deny"
        Principal = "*"
        Action    = "s3:*"
        Resource  = [aws_s3_bucket.logs.arn, "${aws_s3_bucket.logs.arn}/*"]
        Condition = { Bool = { "aws:SecureTransport" = "false" } }
      }
    ]
  })
}

# --- bundles -----------------------------------------------------------------------------------------
resource "aws_s3_bucket" "bundles" {
  bucket = local.buckets.bundles
}

resource "aws_s3_bucket_ownership_controls" "bundles" {
  bucket = aws_s3_bucket.bundles.id
  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_public_access_block" "bundles" {
  bucket                  = aws_s3_bucket.bundles.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_versioning" "bundles" {
  bucket = aws_s3_bucket.bundles.id
  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "bundles" {
  bucket = aws_s3_bucket.bundles.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = aws_kms_key.bundles.arn
    }
    bucket_key_enabled = true
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "bundles" {
  bucket = aws_s3_bucket.bundles.id
  rule {
    id     = "versions-and-uploads"
    status = "Enabled"
    filter {}
    # A replaced or deleted bundle stays recoverable this long.
    noncurrent_version_expiration {
      noncurrent_days = var.bundle_noncurrent_days
    }
    # Ingest streams bundles as multipart uploads; a crashed ingest leaves parts behind.
    abort_incomplete_multipart_upload {
      days_after_initiation = 2
    }
  }
  rule {
    id     = "tiering"
    status = "Enabled"
    filter {
      prefix = "bundles/"
    }
    # Graded studies are read rarely after their reading period.
    transition {
      days          = 30
      storage_class = "INTELLIGENT_TIERING"
    }
  }
}

resource "aws_s3_bucket_logging" "bundles" {
  bucket        = aws_s3_bucket.bundles.id
  target_bucket = aws_s3_bucket.logs.id
  target_prefix = "bundles/"
}

resource "aws_s3_bucket_policy" "bundles" {
  bucket = aws_s3_bucket.bundles.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Sid       = "TLSOnly"
      Effect    = "Deny"
      Principal = "*"
      Action    = "s3:*"
      Resource  = [aws_s3_bucket.bundles.arn, "${aws_s3_bucket.bundles.arn}/*"]
      Condition = { Bool = { "aws:SecureTransport" = "false" } }
    }]
  })
}

resource "aws_s3_bucket_notification" "bundles" {
  bucket = aws_s3_bucket.bundles.id
  queue {
    queue_arn = aws_sqs_queue.transfer["bundles"].arn
    events    = ["s3:ObjectCreated:*"]
  }
  depends_on = [aws_sqs_queue_policy.transfer]
}

resource "aws_s3_bucket_replication_configuration" "bundles" {
  bucket     = aws_s3_bucket.bundles.id
  role       = aws_iam_role.replication.arn
  depends_on = [aws_s3_bucket_versioning.bundles]
  rule {
    id     = "to-replica-region"
    status = "Enabled"
    filter {}
    delete_marker_replication {
      status = "Enabled"
    }
    source_selection_criteria {
      sse_kms_encrypted_objects {
        status = "Enabled"
      }
    }
    destination {
      bucket        = aws_s3_bucket.bundles_replica.arn
      storage_class = "STANDARD_IA"
      encryption_configuration {
        replica_kms_key_id = aws_kms_key.replica.arn
      }
    }
  }
}

# --- audit checkpoints (Object Lock, COMPLIANCE) ------------------------------------------------
resource "aws_s3_bucket" "checkpoints" {
  bucket              = local.buckets.checkpoints
  object_lock_enabled = true
}

resource "aws_s3_bucket_ownership_controls" "checkpoints" {
  bucket = aws_s3_bucket.checkpoints.id
  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_public_access_block" "checkpoints" {
  bucket                  = aws_s3_bucket.checkpoints.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_versioning" "checkpoints" {
  bucket = aws_s3_bucket.checkpoints.id
  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_object_lock_configuration" "checkpoints" {
  bucket = aws_s3_bucket.checkpoints.id
  rule {
    default_retention {
      mode  = "COMPLIANCE"
      years = var.checkpoint_retention_years
    }
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "checkpoints" {
  bucket = aws_s3_bucket.checkpoints.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = aws_kms_key.checkpoints.arn
    }
    bucket_key_enabled = true
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "checkpoints" {
  bucket = aws_s3_bucket.checkpoints.id
  # Locked versions cannot expire before their retention; this only cleans up failed uploads.
  rule {
    id     = "uploads"
    status = "Enabled"
    filter {}
    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
  }
}

resource "aws_s3_bucket_logging" "checkpoints" {
  bucket        = aws_s3_bucket.checkpoints.id
  target_bucket = aws_s3_bucket.logs.id
  target_prefix = "checkpoints/"
}

resource "aws_s3_bucket_policy" "checkpoints" {
  bucket = aws_s3_bucket.checkpoints.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Sid       = "TLSOnly"
      Effect    = "Deny"
      Principal = "*"
      Action    = "s3:*"
      Resource  = [aws_s3_bucket.checkpoints.arn, "${aws_s3_bucket.checkpoints.arn}/*"]
      Condition = { Bool = { "aws:SecureTransport" = "false" } }
    }]
  })
}

resource "aws_s3_bucket_notification" "checkpoints" {
  bucket = aws_s3_bucket.checkpoints.id
  queue {
    queue_arn = aws_sqs_queue.transfer["checkpoints"].arn
    events    = ["s3:ObjectCreated:*"]
  }
  depends_on = [aws_sqs_queue_policy.transfer]
}

resource "aws_s3_bucket_replication_configuration" "checkpoints" {
  bucket     = aws_s3_bucket.checkpoints.id
  role       = aws_iam_role.replication.arn
  depends_on = [aws_s3_bucket_versioning.checkpoints]
  rule {
    id     = "to-replica-region"
    status = "Enabled"
    filter {}
    delete_marker_replication {
      status = "Disabled"
    }
    source_selection_criteria {
      sse_kms_encrypted_objects {
        status = "Enabled"
      }
    }
    destination {
      bucket = aws_s3_bucket.checkpoints_replica.arn
      encryption_configuration {
        replica_kms_key_id = aws_kms_key.replica.arn
      }
    }
  }
}

# --- replicas (var.replica_region) ---------------------------------------------------------------
resource "aws_s3_bucket" "bundles_replica" {
  # checkov:skip=CKV_AWS_144: this bucket is the replication target
  # checkov:skip=CKV_AWS_18: access to the data is logged at the source bucket; the replica is written by S3 replication only
  # checkov:skip=CKV2_AWS_62: nothing consumes the replica's events
  provider = aws.replica
  bucket   = "${local.buckets.bundles}-replica"
}

resource "aws_s3_bucket_public_access_block" "bundles_replica" {
  provider                = aws.replica
  bucket                  = aws_s3_bucket.bundles_replica.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_versioning" "bundles_replica" {
  provider = aws.replica
  bucket   = aws_s3_bucket.bundles_replica.id
  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "bundles_replica" {
  provider = aws.replica
  bucket   = aws_s3_bucket.bundles_replica.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = aws_kms_key.replica.arn
    }
    bucket_key_enabled = true
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "bundles_replica" {
  provider = aws.replica
  bucket   = aws_s3_bucket.bundles_replica.id
  rule {
    id     = "versions"
    status = "Enabled"
    filter {}
    noncurrent_version_expiration {
      noncurrent_days = var.bundle_noncurrent_days
    }
    abort_incomplete_multipart_upload {
      days_after_initiation = 2
    }
  }
}

resource "aws_s3_bucket" "checkpoints_replica" {
  # checkov:skip=CKV_AWS_144: this bucket is the replication target
  # checkov:skip=CKV_AWS_18: access is logged at the source bucket; the replica is written by S3 replication only
  # checkov:skip=CKV2_AWS_62: nothing consumes the replica's events
  provider            = aws.replica
  bucket              = "${local.buckets.checkpoints}-replica"
  object_lock_enabled = true
}

resource "aws_s3_bucket_public_access_block" "checkpoints_replica" {
  provider                = aws.replica
  bucket                  = aws_s3_bucket.checkpoints_replica.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_versioning" "checkpoints_replica" {
  provider = aws.replica
  bucket   = aws_s3_bucket.checkpoints_replica.id
  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_object_lock_configuration" "checkpoints_replica" {
  provider = aws.replica
  bucket   = aws_s3_bucket.checkpoints_replica.id
  rule {
    default_retention {
      mode  = "COMPLIANCE"
      years = var.checkpoint_retention_years
    }
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "checkpoints_replica" {
  provider = aws.replica
  bucket   = aws_s3_bucket.checkpoints_replica.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = aws_kms_key.replica.arn
    }
    bucket_key_enabled = true
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "checkpoints_replica" {
  provider = aws.replica
  bucket   = aws_s3_bucket.checkpoints_replica.id
  rule {
    id     = "uploads"
    status = "Enabled"
    filter {}
    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
  }
}

# --- replication role ------------------------------------------------------------------------------
resource "aws_iam_role" "replication" {
  name = "${var.prefix}-s3-replication"
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Service = "s3.amazonaws.com" }
      Action    = "sts:AssumeRole"
      Condition = { StringEquals = { "aws:SourceAccount" = local.account_id } }
    }]
  })
}

resource "aws_iam_role_policy" "replication" {
  name = "replicate"
  role = aws_iam_role.replication.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Effect   = "Allow"
        Action   = ["s3:GetReplicationConfiguration", "s3:ListBucket"]
        Resource = [aws_s3_bucket.bundles.arn, aws_s3_bucket.checkpoints.arn]
      },
      {
        Effect = "Allow"
        Action = ["s3:GetObjectVersionForReplication", "s3:GetObjectVersionAcl", "s3:GetObjectVersionTagging",
        "s3:GetObjectRetention", "s3:GetObjectLegalHold"]
        Resource = ["${aws_s3_bucket.bundles.arn}/*", "${aws_s3_bucket.checkpoints.arn}/*"]
      },
      {
        Effect   = "Allow"
        Action   = ["s3:ReplicateObject", "s3:ReplicateDelete", "s3:ReplicateTags", "s3:ObjectOwnerOverrideToBucketOwner"]
        Resource = ["${aws_s3_bucket.bundles_replica.arn}/*", "${aws_s3_bucket.checkpoints_replica.arn}/*"]
      },
      {
        Effect   = "Allow"
        Action   = ["kms:Decrypt"]
        Resource = [aws_kms_key.bundles.arn, aws_kms_key.checkpoints.arn]
      },
      {
        Effect   = "Allow"
        Action   = ["kms:Encrypt", "kms:GenerateDataKey"]
        Resource = [aws_kms_key.replica.arn]
      }
    ]
  })
}

# --- events for the GCP transfer (event-driven Storage Transfer Service) -------------------------
# One queue per bucket: each Storage Transfer job consumes (and deletes) the messages of its own
# queue.
locals {
  event_buckets = {
    bundles     = aws_s3_bucket.bundles.arn
    checkpoints = aws_s3_bucket.checkpoints.arn
  }
}

resource "aws_sqs_queue" "transfer" {
  for_each                  = local.event_buckets
  name                      = "${var.prefix}-${each.key}-events"
  message_retention_seconds = 1209600
  sqs_managed_sse_enabled   = true
}

resource "aws_sqs_queue_policy" "transfer" {
  for_each  = local.event_buckets
  queue_url = aws_sqs_queue.transfer[each.key].id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Sid       = "BucketEvents"
      Effect    = "Allow"
      Principal = { Service = "s3.amazonaws.com" }
      Action    = "sqs:SendMessage"
      Resource  = aws_sqs_queue.transfer[each.key].arn
      Condition = {
        ArnEquals    = { "aws:SourceArn" = each.value }
        StringEquals = { "aws:SourceAccount" = local.account_id }
      }
    }]
  })
}
