# Standby VPC: one regional subnet with flow logs and Private Google Access, secondary ranges for
# GKE, Cloud NAT for private nodes, private services access for Cloud SQL, a firewall rule for
# the workers' media ports, and the global address of the standby ingress.

resource "google_compute_network" "this" {
  name                    = var.prefix
  auto_create_subnetworks = false
  routing_mode            = "GLOBAL"
}

resource "google_compute_subnetwork" "this" {
  name                     = "${var.prefix}-${var.region}"
  region                   = var.region
  network                  = google_compute_network.this.id
  ip_cidr_range            = var.vpc_cidr
  private_ip_google_access = true

  secondary_ip_range {
    range_name    = "pods"
    ip_cidr_range = var.pods_cidr
  }

  secondary_ip_range {
    range_name    = "services"
    ip_cidr_range = var.services_cidr
  }

  log_config {
    aggregation_interval = "INTERVAL_5_SEC"
    flow_sampling        = 0.5
    metadata             = "INCLUDE_ALL_METADATA"
  }
}

resource "google_compute_router" "nat" {
  name    = "${var.prefix}-nat"
  region  = var.region
  network = google_compute_network.this.id
}

resource "google_compute_router_nat" "this" {
  name                               = "${var.prefix}-nat"
  router                             = google_compute_router.nat.name
  region                             = var.region
  nat_ip_allocate_option             = "AUTO_ONLY"
  source_subnetwork_ip_ranges_to_nat = "ALL_SUBNETWORKS_ALL_IP_RANGES"

  log_config {
    enable = true
    filter = "ERRORS_ONLY"
  }
}

# Media to the workers (host network on public-address nodes, tagged readroom-worker).
resource "google_compute_firewall" "worker_media" {
  name          = "${var.prefix}-worker-media"
  network       = google_compute_network.this.id
  direction     = "INGRESS"
  source_ranges = ["0.0.0.0/0"]
  target_tags   = ["readroom-worker"]

  allow {
    protocol = "udp"
    ports    = ["${var.udp_ports.from}-${var.udp_ports.to}"]
  }

  log_config {
    metadata = "INCLUDE_ALL_METADATA"
  }
}

# Control and metrics ports of host-network workers: from the API nodes only.
resource "google_compute_firewall" "worker_control" {
  name        = "${var.prefix}-worker-control"
  network     = google_compute_network.this.id
  direction   = "INGRESS"
  source_tags = ["readroom-api"]
  target_tags = ["readroom-worker"]

  allow {
    protocol = "tcp"
    ports    = ["7443", "9464"]
  }

  log_config {
    metadata = "INCLUDE_ALL_METADATA"
  }
}

# Private services access: Cloud SQL gets a private address in this VPC, no public one.
resource "google_compute_global_address" "private_services" {
  name          = "${var.prefix}-private-services"
  purpose       = "VPC_PEERING"
  address_type  = "INTERNAL"
  prefix_length = 20
  network       = google_compute_network.this.id
}

resource "google_service_networking_connection" "this" {
  network                 = google_compute_network.this.id
  service                 = "servicenetworking.googleapis.com"
  reserved_peering_ranges = [google_compute_global_address.private_services.name]
}

# The standby ingress's address: Route 53's secondary (or, after failover, primary) record.
resource "google_compute_global_address" "ingress" {
  name = "${var.prefix}-ingress"
}
