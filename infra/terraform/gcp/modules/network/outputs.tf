output "network_id" {
  description = "VPC id."
  value       = google_compute_network.this.id
}

output "network_name" {
  description = "VPC name."
  value       = google_compute_network.this.name
}

output "subnetwork_id" {
  description = "Subnet id."
  value       = google_compute_subnetwork.this.id
}

output "pods_range_name" {
  description = "Pods secondary range name."
  value       = "pods"
}

output "services_range_name" {
  description = "Services secondary range name."
  value       = "services"
}

output "private_services_peering" {
  description = "The private services connection (Cloud SQL depends on it)."
  value       = google_service_networking_connection.this.id
}

output "ingress_ip" {
  description = "Global address of the standby ingress."
  value       = google_compute_global_address.ingress.address
}
