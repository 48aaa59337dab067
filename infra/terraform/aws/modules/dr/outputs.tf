output "vpn_tunnels" {
  description = "The four tunnels (outside address, inside addresses, pre-shared key, AWS ASN) for the GCP side."
  sensitive   = true
  value = flatten([
    for c in aws_vpn_connection.gcp : [
      {
        outside_ip = c.tunnel1_address
        inside_aws = c.tunnel1_vgw_inside_address
        inside_gcp = c.tunnel1_cgw_inside_address
        psk        = c.tunnel1_preshared_key
        aws_asn    = c.tunnel1_bgp_asn
      },
      {
        outside_ip = c.tunnel2_address
        inside_aws = c.tunnel2_vgw_inside_address
        inside_gcp = c.tunnel2_cgw_inside_address
        psk        = c.tunnel2_preshared_key
        aws_asn    = c.tunnel2_bgp_asn
      }
    ]
  ])
}

output "health_check_ids" {
  description = "Route 53 health checks (aws, gcp)."
  value       = { aws = aws_route53_health_check.aws.id, gcp = aws_route53_health_check.gcp.id }
}
