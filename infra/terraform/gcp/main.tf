# readroom standby on GCP: VPC, GKE (API and worker node pools, Dataplane V2 NetworkPolicy,
# Workload Identity), Cloud SQL for PostgreSQL, Cloud Storage buckets used through the
# S3-compatible XML API with HMAC keys (the same aws-sdk-s3 code path as on AWS), Secret
# Manager for the keys, and the continuous replication from AWS:
#   objects   Storage Transfer Service, event-driven from the S3 buckets' SQS queues;
#   database  Database Migration Service, continuous (logical) migration from RDS over an HA
#             VPN into the Cloud SQL instance, promoted at failover.

locals {
  prefix = "${var.name}-${var.environment}"
}

module "network" {
  source        = "./modules/network"
  prefix        = local.prefix
  region        = var.region
  vpc_cidr      = var.vpc_cidr
  pods_cidr     = var.pods_cidr
  services_cidr = var.services_cidr
  udp_ports     = var.media_udp_ports
}

module "data" {
  source                    = "./modules/data"
  project                   = var.project
  prefix                    = local.prefix
  region                    = var.region
  network_id                = module.network.network_id
  private_services_peering  = module.network.private_services_peering
  db_tier                   = var.db_tier
  checkpoint_retention_days = var.checkpoint_retention_days
}

module "gke" {
  source         = "./modules/gke"
  project        = var.project
  prefix         = local.prefix
  region         = var.region
  network_id     = module.network.network_id
  subnetwork_id  = module.network.subnetwork_id
  pods_range     = module.network.pods_range_name
  services_range = module.network.services_range_name
  master_cidr    = var.master_cidr
  admin_cidrs    = var.admin_cidrs
  node_pools     = var.node_pools
  gke_kms_key_id = module.data.gke_kms_key_id
  worker_gsa     = module.data.worker_service_account_email
  server_gsa     = module.data.server_service_account_email

  rbac_security_group = var.rbac_security_group
}

module "replication" {
  source             = "./modules/replication"
  project            = var.project
  prefix             = local.prefix
  region             = var.region
  network_id         = module.network.network_id
  network_name       = module.network.network_name
  aws                = var.aws
  aws_vpn_tunnels    = var.aws_vpn_tunnels
  bgp_asn            = var.bgp_asn
  bundles_bucket     = module.data.bundles_bucket
  checkpoints_bucket = module.data.checkpoints_bucket
  sql_instance_name  = module.data.sql_instance_name
  replication_user   = var.replication_user
}
