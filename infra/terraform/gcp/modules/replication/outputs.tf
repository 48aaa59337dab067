output "transfer_service_account_subject" {
  description = "Subject id of the Storage Transfer Service account (the AWS transfer role trusts it)."
  value       = data.google_storage_transfer_project_service_account.this.subject_id
}

output "vpn_gateway_ips" {
  description = "The HA VPN gateway's two interface addresses (AWS customer gateways)."
  value       = [for i in google_compute_ha_vpn_gateway.this.vpn_interfaces : i.ip_address]
}
