# Disaster recovery plumbing on the AWS side:
#   - Route 53: health checks of both sides and failover records for the public name;
#   - a site-to-site VPN to the GCP standby's HA VPN (two connections, four tunnels, BGP), over
#     which Database Migration Service replicates PostgreSQL continuously.
# The object copy (S3 → Cloud Storage) needs no network path: Storage Transfer Service reads
# the buckets with the transfer role (../irsa), driven by the buckets' event queues.

resource "aws_route53_health_check" "aws" {
  fqdn              = var.dns.aws_fqdn
  port              = 443
  type              = "HTTPS"
  resource_path     = "/readyz"
  enable_sni        = true
  request_interval  = 10
  failure_threshold = 3
  measure_latency   = true
  regions           = ["eu-west-1", "us-east-1", "ap-southeast-1"]
  tags              = { Name = "${var.prefix}-aws" }
}

resource "aws_route53_health_check" "gcp" {
  fqdn              = var.dns.gcp_fqdn
  port              = 443
  type              = "HTTPS"
  resource_path     = "/readyz"
  enable_sni        = true
  request_interval  = 10
  failure_threshold = 3
  regions           = ["eu-west-1", "us-east-1", "ap-southeast-1"]
  tags              = { Name = "${var.prefix}-gcp" }
}

resource "aws_route53_record" "aws" {
  # checkov:skip=CKV2_AWS_23: the alias target is the ingress controller's load balancer, created by the AWS Load Balancer Controller from the cluster, not by Terraform
  zone_id         = var.dns.zone_id
  name            = var.dns.hostname
  type            = "A"
  set_identifier  = "aws"
  health_check_id = aws_route53_health_check.aws.id

  failover_routing_policy {
    type = var.dns.active == "aws" ? "PRIMARY" : "SECONDARY"
  }

  alias {
    name                   = var.dns.aws_lb_dns
    zone_id                = var.dns.aws_lb_zone_id
    evaluate_target_health = true
  }
}

resource "aws_route53_record" "gcp" {
  # checkov:skip=CKV2_AWS_23: the target is the GCP standby's global load balancer address, which has no AWS resource to attach
  zone_id         = var.dns.zone_id
  name            = var.dns.hostname
  type            = "A"
  ttl             = 60
  records         = [var.dns.gcp_ip]
  set_identifier  = "gcp"
  health_check_id = aws_route53_health_check.gcp.id

  failover_routing_policy {
    type = var.dns.active == "gcp" ? "PRIMARY" : "SECONDARY"
  }
}

# --- VPN to the GCP standby ---------------------------------------------------------------------
resource "aws_vpn_gateway" "this" {
  vpc_id = var.vpc_id
  tags   = { Name = "${var.prefix}-to-gcp" }
}

resource "aws_vpn_gateway_route_propagation" "this" {
  count          = length(var.route_table_ids)
  vpn_gateway_id = aws_vpn_gateway.this.id
  route_table_id = var.route_table_ids[count.index]
}

resource "aws_customer_gateway" "gcp" {
  count      = length(var.gcp_standby.vpn_gateway_ips)
  bgp_asn    = var.gcp_standby.bgp_asn
  ip_address = var.gcp_standby.vpn_gateway_ips[count.index]
  type       = "ipsec.1"
  tags       = { Name = "${var.prefix}-gcp-${count.index}" }
}

resource "aws_vpn_connection" "gcp" {
  count               = length(var.gcp_standby.vpn_gateway_ips)
  vpn_gateway_id      = aws_vpn_gateway.this.id
  customer_gateway_id = aws_customer_gateway.gcp[count.index].id
  type                = "ipsec.1"
  static_routes_only  = false

  tunnel1_ike_versions                 = ["ikev2"]
  tunnel2_ike_versions                 = ["ikev2"]
  tunnel1_phase1_encryption_algorithms = ["AES256"]
  tunnel2_phase1_encryption_algorithms = ["AES256"]
  tunnel1_phase2_encryption_algorithms = ["AES256"]
  tunnel2_phase2_encryption_algorithms = ["AES256"]
  tunnel1_phase1_integrity_algorithms  = ["SHA2-256"]
  tunnel2_phase1_integrity_algorithms  = ["SHA2-256"]
  tunnel1_phase2_integrity_algorithms  = ["SHA2-256"]
  tunnel2_phase2_integrity_algorithms  = ["SHA2-256"]

  tags = { Name = "${var.prefix}-gcp-${count.index}" }
}
