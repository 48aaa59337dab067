output "cluster_name" {
  description = "GKE cluster (gcloud container clusters get-credentials ...)."
  value       = module.gke.cluster_name
}

output "ingress_ip" {
  description = "Global address for the standby ingress (Route 53 failover record, dns.gcp_ip in ../aws)."
  value       = module.network.ingress_ip
}

output "bundles_bucket" {
  description = "config.store.bucket on the standby (endpoint https://storage.googleapis.com, region auto)."
  value       = module.data.bundles_bucket
}

output "checkpoints_bucket" {
  description = "Audit checkpoint bucket (locked retention policy)."
  value       = module.data.checkpoints_bucket
}

output "sql_private_ip" {
  description = "Cloud SQL private address for the standby's database URL."
  value       = module.data.sql_private_ip
}

output "server_service_account" {
  description = "Google service account of the chart's server pods (iam.gke.io/gcp-service-account)."
  value       = module.data.server_service_account_email
}

output "worker_service_account" {
  description = "Google service account of the chart's worker pods (iam.gke.io/gcp-service-account)."
  value       = module.data.worker_service_account_email
}

output "transfer_service_account_subject" {
  description = "Subject id of the Storage Transfer Service account: ../aws var gcp_standby.transfer_service_account_subject."
  value       = module.replication.transfer_service_account_subject
}

output "vpn_gateway_ips" {
  description = "HA VPN interface addresses: ../aws var gcp_standby.vpn_gateway_ips."
  value       = module.replication.vpn_gateway_ips
}
