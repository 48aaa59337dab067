# readroom, AWS primary: VPC, EKS (API and worker node groups), RDS PostgreSQL Multi-AZ, S3
# (bundles; audit checkpoints under Object Lock), KMS, IRSA roles, Secrets Manager for keys,
# replication to a second region and to the GCP standby, Route 53 failover.

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}

locals {
  prefix     = "${var.name}-${var.environment}"
  account_id = data.aws_caller_identity.current.account_id
}

module "network" {
  source             = "./modules/network"
  prefix             = local.prefix
  vpc_cidr           = var.vpc_cidr
  availability_zones = var.availability_zones
  log_retention_days = var.log_retention_days
}

module "data" {
  source = "./modules/data"
  providers = {
    aws         = aws
    aws.replica = aws.replica
  }
  prefix                     = local.prefix
  vpc_id                     = module.network.vpc_id
  database_subnet_ids        = module.network.database_subnet_ids
  db                         = var.db
  bundle_noncurrent_days     = var.bundle_noncurrent_days
  checkpoint_retention_years = var.checkpoint_retention_years
  log_retention_days         = var.log_retention_days
  break_glass_role_arn       = var.break_glass_role_arn
  gcp_vpc_cidr               = var.gcp_standby.vpc_cidr
}

module "eks" {
  source             = "./modules/eks"
  prefix             = local.prefix
  kubernetes_version = var.kubernetes_version
  vpc_id             = module.network.vpc_id
  vpc_cidr           = var.vpc_cidr
  private_subnet_ids = module.network.private_subnet_ids
  public_subnet_ids  = module.network.public_subnet_ids
  admin_cidrs        = var.admin_cidrs
  api_nodes          = var.api_nodes
  worker_nodes       = var.worker_nodes
  media_udp_ports    = var.media_udp_ports
  turn               = var.turn
  log_retention_days = var.log_retention_days
  database_sg_id     = module.data.database_security_group_id
  logs_kms_key_arn   = module.network.logs_kms_key_arn
  availability_zones = var.availability_zones
}

module "irsa" {
  source                  = "./modules/irsa"
  prefix                  = local.prefix
  namespace               = "readroom"
  release                 = "readroom"
  oidc_provider_arn       = module.eks.oidc_provider_arn
  oidc_provider_url       = module.eks.oidc_provider_url
  bundles_bucket_arn      = module.data.bundles_bucket_arn
  checkpoints_bucket_arn  = module.data.checkpoints_bucket_arn
  bundles_kms_key_arn     = module.data.bundles_kms_key_arn
  checkpoints_kms_key_arn = module.data.checkpoints_kms_key_arn
  secrets_kms_key_arn     = module.data.secrets_kms_key_arn
  server_keys_secret_arn  = module.data.server_keys_secret_arn
  worker_keys_secret_arn  = module.data.worker_keys_secret_arn
  database_secret_arn     = module.data.database_secret_arn
  gcp_transfer_subject    = var.gcp_standby.transfer_service_account_subject
  transfer_queue_arns     = module.data.transfer_queue_arns
}

module "dr" {
  source          = "./modules/dr"
  prefix          = local.prefix
  dns             = var.dns
  vpc_id          = module.network.vpc_id
  route_table_ids = module.network.private_route_table_ids
  gcp_standby     = var.gcp_standby
}
