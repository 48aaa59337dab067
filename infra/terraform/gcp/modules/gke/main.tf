# Regional GKE: private nodes and private control-plane endpoint (authorized networks),
# Dataplane V2 (enforces the chart's NetworkPolicies), Workload Identity, Shielded nodes,
# application-layer Secrets encryption, Binary Authorization, and two node pools:
#   api     private nodes;
#   worker  nodes with public addresses (WebRTC media on the host network), tainted, tagged
#           readroom-worker for the media firewall rule.

resource "google_service_account" "nodes" {
  account_id   = "${var.prefix}-gke-nodes"
  display_name = "readroom GKE nodes (logging, monitoring, image pulls only)"
}

resource "google_project_iam_member" "nodes" {
  for_each = toset(["roles/logging.logWriter", "roles/monitoring.metricWriter", "roles/monitoring.viewer",
  "roles/artifactregistry.reader"])
  project = var.project
  role    = each.value
  member  = "serviceAccount:${google_service_account.nodes.email}"
}

resource "google_container_cluster" "this" {
  # checkov:skip=CKV_GCP_12: Dataplane V2 (datapath_provider ADVANCED_DATAPATH) enforces NetworkPolicy; the network_policy block (Calico) must stay off with it
  # checkov:skip=CKV_GCP_69: the default node pool is removed; both node pools set workload_metadata_config GKE_METADATA
  name     = var.prefix
  location = var.region

  network    = var.network_id
  subnetwork = var.subnetwork_id

  remove_default_node_pool = true
  initial_node_count       = 1
  deletion_protection      = true

  release_channel {
    channel = "REGULAR"
  }

  ip_allocation_policy {
    cluster_secondary_range_name  = var.pods_range
    services_secondary_range_name = var.services_range
  }

  private_cluster_config {
    enable_private_nodes    = true
    enable_private_endpoint = true
    master_ipv4_cidr_block  = var.master_cidr
  }

  master_authorized_networks_config {
    dynamic "cidr_blocks" {
      for_each = var.admin_cidrs
      content {
        cidr_block   = cidr_blocks.value
        display_name = "operators"
      }
    }
  }

  datapath_provider = "ADVANCED_DATAPATH"

  workload_identity_config {
    workload_pool = "${var.project}.svc.id.goog"
  }

  database_encryption {
    state    = "ENCRYPTED"
    key_name = var.gke_kms_key_id
  }

  enable_shielded_nodes       = true
  enable_intranode_visibility = true
  enable_legacy_abac          = false

  binary_authorization {
    evaluation_mode = "PROJECT_SINGLETON_POLICY_ENFORCE"
  }

  authenticator_groups_config {
    security_group = var.rbac_security_group
  }

  master_auth {
    client_certificate_config {
      issue_client_certificate = false
    }
  }

  addons_config {
    http_load_balancing {
      disabled = false
    }
  }

  # Secret Manager CSI add-on: the chart's keys.*.source=csi reads worker and server keys with the
  # pod's own Workload Identity.
  secret_manager_config {
    enabled = true
  }

  logging_config {
    enable_components = ["SYSTEM_COMPONENTS", "WORKLOADS", "APISERVER"]
  }

  monitoring_config {
    enable_components = ["SYSTEM_COMPONENTS"]
    managed_prometheus {
      enabled = true
    }
  }

  resource_labels = {
    project     = "readroom"
    environment = "standby"
  }
}

resource "google_container_node_pool" "api" {
  name     = "api"
  cluster  = google_container_cluster.this.id
  location = var.region

  autoscaling {
    min_node_count = var.node_pools.api_min
    max_node_count = var.node_pools.api_max
  }

  management {
    auto_repair  = true
    auto_upgrade = true
  }

  node_config {
    machine_type    = var.node_pools.api_machine_type
    image_type      = "COS_CONTAINERD"
    service_account = google_service_account.nodes.email
    oauth_scopes    = ["https://www.googleapis.com/auth/cloud-platform"]
    labels          = { "readroom.io/pool" = "api" }
    tags            = ["readroom-api"]
    metadata        = { disable-legacy-endpoints = "true" }

    workload_metadata_config {
      mode = "GKE_METADATA"
    }

    shielded_instance_config {
      enable_secure_boot          = true
      enable_integrity_monitoring = true
    }
  }
}

resource "google_container_node_pool" "worker" {
  name     = "worker"
  cluster  = google_container_cluster.this.id
  location = var.region

  autoscaling {
    min_node_count = var.node_pools.worker_min
    max_node_count = var.node_pools.worker_max
  }

  management {
    auto_repair  = true
    auto_upgrade = true
  }

  upgrade_settings {
    max_surge       = 1
    max_unavailable = 0
  }

  # Public node addresses: graders' browsers send media to them (host network).
  network_config {
    enable_private_nodes = false
  }

  node_config {
    machine_type    = var.node_pools.worker_machine_type
    image_type      = "COS_CONTAINERD"
    service_account = google_service_account.nodes.email
    oauth_scopes    = ["https://www.googleapis.com/auth/cloud-platform"]
    labels          = { "readroom.io/pool" = "worker" }
    tags            = ["readroom-worker"]
    metadata        = { disable-legacy-endpoints = "true" }

    taint {
      key    = "readroom.io/worker"
      value  = "true"
      effect = "NO_SCHEDULE"
    }

    workload_metadata_config {
      mode = "GKE_METADATA"
    }

    shielded_instance_config {
      enable_secure_boot          = true
      enable_integrity_monitoring = true
    }
  }
}

# Workload Identity: the chart's ServiceAccounts act as the Google service accounts (which hold
# the bucket and secret bindings), each its own and no other.
resource "google_service_account_iam_member" "server" {
  service_account_id = "projects/${var.project}/serviceAccounts/${var.server_gsa}"
  role               = "roles/iam.workloadIdentityUser"
  member             = "serviceAccount:${var.project}.svc.id.goog[readroom/readroom-readroom-server]"
}

resource "google_service_account_iam_member" "worker" {
  service_account_id = "projects/${var.project}/serviceAccounts/${var.worker_gsa}"
  role               = "roles/iam.workloadIdentityUser"
  member             = "serviceAccount:${var.project}.svc.id.goog[readroom/readroom-readroom-worker]"
}
