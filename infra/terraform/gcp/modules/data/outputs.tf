output "bundles_bucket" {
  description = "Bundles bucket."
  value       = google_storage_bucket.bundles.name
}

output "checkpoints_bucket" {
  description = "Checkpoint bucket."
  value       = google_storage_bucket.checkpoints.name
}

output "sql_instance_name" {
  description = "Cloud SQL instance (the migration destination)."
  value       = google_sql_database_instance.this.name
}

output "sql_private_ip" {
  description = "Cloud SQL private address."
  value       = google_sql_database_instance.this.private_ip_address
}

output "server_service_account_email" {
  description = "Servers' Google service account."
  value       = google_service_account.server.email
}

output "worker_service_account_email" {
  description = "Workers' Google service account."
  value       = google_service_account.worker.email
}

output "gke_kms_key_id" {
  description = "Key for GKE application-layer Secrets encryption."
  value       = google_kms_crypto_key.this["gke"].id
}
