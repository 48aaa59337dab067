variable "prefix" {
  description = "Name prefix."
  type        = string
}

variable "dns" {
  description = "Failover DNS settings (see the root variable)."
  type = object({
    zone_id        = string
    hostname       = string
    active         = string
    aws_lb_dns     = string
    aws_lb_zone_id = string
    aws_fqdn       = string
    gcp_ip         = string
    gcp_fqdn       = string
  })
}

variable "vpc_id" {
  description = "VPC the VPN gateway attaches to."
  type        = string
}

variable "route_table_ids" {
  description = "Route tables that learn the GCP range over the VPN (private and database)."
  type        = list(string)
}

variable "gcp_standby" {
  description = "The GCP side of the VPN."
  type = object({
    transfer_service_account_subject = string
    vpn_gateway_ips                  = list(string)
    vpc_cidr                         = string
    bgp_asn                          = number
  })
}
