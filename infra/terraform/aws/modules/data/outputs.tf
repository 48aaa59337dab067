output "bundles_bucket" {
  description = "Bundles bucket name."
  value       = aws_s3_bucket.bundles.bucket
}

output "bundles_bucket_arn" {
  description = "Bundles bucket ARN."
  value       = aws_s3_bucket.bundles.arn
}

output "checkpoints_bucket" {
  description = "Audit checkpoint bucket name."
  value       = aws_s3_bucket.checkpoints.bucket
}

output "checkpoints_bucket_arn" {
  description = "Audit checkpoint bucket ARN."
  value       = aws_s3_bucket.checkpoints.arn
}

output "bundles_kms_key_arn" {
  description = "Bundles bucket key."
  value       = aws_kms_key.bundles.arn
}

output "checkpoints_kms_key_arn" {
  description = "Checkpoint bucket key."
  value       = aws_kms_key.checkpoints.arn
}

output "secrets_kms_key_arn" {
  description = "Secrets Manager key."
  value       = aws_kms_key.secrets.arn
}

output "server_keys_secret_arn" {
  description = "Server keys secret."
  value       = aws_secretsmanager_secret.server_keys.arn
}

output "worker_keys_secret_arn" {
  description = "Worker keys secret."
  value       = aws_secretsmanager_secret.worker_keys.arn
}

output "database_secret_arn" {
  description = "Database URL secret."
  value       = aws_secretsmanager_secret.database_url.arn
}

output "database_endpoint" {
  description = "RDS endpoint address."
  value       = aws_db_instance.this.address
}

output "database_security_group_id" {
  description = "The database's security group (the eks module opens 5432 to the API nodes)."
  value       = aws_security_group.database.id
}

output "transfer_queue_arns" {
  description = "SQS queues of bucket events, by bucket (bundles, checkpoints)."
  value       = { for k, q in aws_sqs_queue.transfer : k => q.arn }
}

output "ecr_repositories" {
  description = "ECR repository URLs by image."
  value       = { for k, r in aws_ecr_repository.this : k => r.repository_url }
}
