# Continuous replication from the AWS primary.
#
# Objects: two event-driven Storage Transfer jobs (bundles, checkpoints). S3 sends an event for
# every new object to an SQS queue per bucket; the transfer service consumes it and copies the
# object within minutes (ciphertext stays ciphertext: bundles are age-encrypted before they
# reach S3). It authenticates to AWS by assuming the read-only transfer role with its Google
# identity; no AWS key exists anywhere.
#
# Database: Database Migration Service, a CONTINUOUS PostgreSQL → Cloud SQL job (initial dump,
# then logical replication with pglogical) from RDS through the HA VPN below into the standby
# Cloud SQL instance, which stays read-only until the job is promoted at failover.

data "google_storage_transfer_project_service_account" "this" {
  project = var.project
}

resource "google_storage_bucket_iam_member" "transfer_sink" {
  for_each = toset([var.bundles_bucket, var.checkpoints_bucket])
  bucket   = each.value
  role     = "roles/storage.admin"
  member   = "serviceAccount:${data.google_storage_transfer_project_service_account.this.email}"
}

locals {
  transfers = {
    bundles     = { source = var.aws.bundles_bucket, sink = var.bundles_bucket }
    checkpoints = { source = var.aws.checkpoints_bucket, sink = var.checkpoints_bucket }
  }
}

resource "google_storage_transfer_job" "from_s3" {
  for_each    = local.transfers
  description = "${var.prefix}: ${each.key} from S3 (event-driven)"
  project     = var.project

  transfer_spec {
    aws_s3_data_source {
      bucket_name = each.value.source
      role_arn    = var.aws.transfer_role_arn
    }
    gcs_data_sink {
      bucket_name = each.value.sink
    }
    transfer_options {
      overwrite_when                            = "DIFFERENT"
      delete_objects_from_source_after_transfer = false
      delete_objects_unique_in_sink             = false
    }
  }

  event_stream {
    name = var.aws.event_queue_arns[each.key]
  }

  logging_config {
    log_actions       = ["COPY", "FIND"]
    log_action_states = ["FAILED"]
  }

  depends_on = [google_storage_bucket_iam_member.transfer_sink]
}

# --- HA VPN to the AWS VPC (two AWS connections, four tunnels, BGP) ---------------------------
resource "google_compute_ha_vpn_gateway" "this" {
  name    = "${var.prefix}-to-aws"
  region  = var.region
  network = var.network_id
}

resource "google_compute_router" "vpn" {
  name    = "${var.prefix}-vpn"
  region  = var.region
  network = var.network_id
  bgp {
    asn            = var.bgp_asn
    advertise_mode = "DEFAULT"
  }
}

resource "google_compute_external_vpn_gateway" "aws" {
  count           = length(var.aws_vpn_tunnels) == 4 ? 1 : 0
  name            = "${var.prefix}-aws"
  redundancy_type = "FOUR_IPS_REDUNDANCY"

  dynamic "interface" {
    for_each = range(4)
    content {
      id         = interface.value
      ip_address = var.aws_vpn_tunnels[interface.value].outside_ip
    }
  }
}

resource "google_compute_vpn_tunnel" "aws" {
  count                           = length(var.aws_vpn_tunnels) == 4 ? 4 : 0
  name                            = "${var.prefix}-aws-${count.index}"
  region                          = var.region
  vpn_gateway                     = google_compute_ha_vpn_gateway.this.id
  vpn_gateway_interface           = floor(count.index / 2)
  peer_external_gateway           = google_compute_external_vpn_gateway.aws[0].id
  peer_external_gateway_interface = count.index
  shared_secret                   = var.aws_vpn_tunnels[count.index].psk
  router                          = google_compute_router.vpn.id
  ike_version                     = 2
}

resource "google_compute_router_interface" "aws" {
  count      = length(var.aws_vpn_tunnels) == 4 ? 4 : 0
  name       = "${var.prefix}-aws-${count.index}"
  region     = var.region
  router     = google_compute_router.vpn.name
  ip_range   = "${var.aws_vpn_tunnels[count.index].inside_gcp}/30"
  vpn_tunnel = google_compute_vpn_tunnel.aws[count.index].name
}

resource "google_compute_router_peer" "aws" {
  count           = length(var.aws_vpn_tunnels) == 4 ? 4 : 0
  name            = "${var.prefix}-aws-${count.index}"
  region          = var.region
  router          = google_compute_router.vpn.name
  peer_ip_address = var.aws_vpn_tunnels[count.index].inside_aws
  peer_asn        = var.aws_vpn_tunnels[count.index].aws_asn
  interface       = google_compute_router_interface.aws[count.index].name
}

# --- Database Migration Service --------------------------------------------------------------
data "google_secret_manager_secret_version" "dms_source_password" {
  secret = "${var.prefix}-dms-source-password"
}

resource "google_database_migration_service_connection_profile" "source" {
  location              = var.region
  connection_profile_id = "${var.prefix}-rds"
  display_name          = "readroom RDS (AWS primary)"

  postgresql {
    host     = var.aws.database_host
    port     = 5432
    username = var.replication_user
    password = data.google_secret_manager_secret_version.dms_source_password.secret_data
    ssl {
      type = "SERVER_ONLY"
    }
  }
}

resource "google_database_migration_service_connection_profile" "destination" {
  location              = var.region
  connection_profile_id = "${var.prefix}-cloudsql"
  display_name          = "readroom Cloud SQL (GCP standby)"

  postgresql {
    cloud_sql_id = var.sql_instance_name
  }
}

resource "google_database_migration_service_migration_job" "this" {
  location         = var.region
  migration_job_id = "${var.prefix}-continuous"
  display_name     = "readroom RDS to Cloud SQL (continuous)"
  type             = "CONTINUOUS"
  source           = google_database_migration_service_connection_profile.source.name
  destination      = google_database_migration_service_connection_profile.destination.name

  # DMS peers with the standby VPC; the VPN carries the traffic on to RDS.
  vpc_peering_connectivity {
    vpc = var.network_id
  }
}
