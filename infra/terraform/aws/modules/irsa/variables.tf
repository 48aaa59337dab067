variable "prefix" {
  description = "Name prefix."
  type        = string
}

variable "namespace" {
  description = "Kubernetes namespace of the Helm release."
  type        = string
}

variable "release" {
  description = "Helm release name (the chart names its ServiceAccounts <release>-readroom-server and -worker)."
  type        = string
}

variable "oidc_provider_arn" {
  description = "The cluster's IAM OIDC provider."
  type        = string
}

variable "oidc_provider_url" {
  description = "The cluster's OIDC issuer without https://."
  type        = string
}

variable "bundles_bucket_arn" {
  description = "Bundles bucket."
  type        = string
}

variable "checkpoints_bucket_arn" {
  description = "Audit checkpoint bucket."
  type        = string
}

variable "bundles_kms_key_arn" {
  description = "Bundles bucket key."
  type        = string
}

variable "checkpoints_kms_key_arn" {
  description = "Checkpoint bucket key."
  type        = string
}

variable "secrets_kms_key_arn" {
  description = "Secrets Manager key."
  type        = string
}

variable "server_keys_secret_arn" {
  description = "Server keys secret."
  type        = string
}

variable "worker_keys_secret_arn" {
  description = "Worker keys secret."
  type        = string
}

variable "database_secret_arn" {
  description = "Database URL secret."
  type        = string
}

variable "gcp_transfer_subject" {
  description = "Subject id of Google's Storage Transfer Service account (it assumes the transfer role)."
  type        = string
}

variable "transfer_queue_arns" {
  description = "SQS queues of bucket events, by bucket."
  type        = map(string)
}
