variable "project" {
  description = "GCP project of the standby."
  type        = string
}

variable "name" {
  description = "Name prefix."
  type        = string
  default     = "readroom"
}

variable "environment" {
  description = "Environment name."
  type        = string
  default     = "prod"
}

variable "region" {
  description = "Standby region."
  type        = string
  default     = "europe-west3"
}

variable "vpc_cidr" {
  description = "Node subnet of the standby VPC (pods and services get secondary ranges); must not overlap the AWS VPC."
  type        = string
  default     = "10.60.0.0/20"
}

variable "pods_cidr" {
  description = "Secondary range for pods."
  type        = string
  default     = "10.64.0.0/14"
}

variable "services_cidr" {
  description = "Secondary range for services."
  type        = string
  default     = "10.68.0.0/20"
}

variable "master_cidr" {
  description = "/28 for the GKE control plane's private endpoint."
  type        = string
  default     = "172.16.0.0/28"
}

variable "admin_cidrs" {
  description = "Ranges allowed to reach the GKE control plane (the operators' VPN)."
  type        = list(string)
  default     = ["203.0.113.0/24"]
}

variable "node_pools" {
  description = "Standby node pools. Warm standby: small while AWS is primary; the failover drill scales them to the survey's sizes (docs/deploy.md)."
  type = object({
    api_machine_type    = string
    api_min             = number
    api_max             = number
    worker_machine_type = string
    worker_min          = number
    worker_max          = number
  })
  default = {
    api_machine_type    = "e2-standard-2"
    api_min             = 1
    api_max             = 4
    worker_machine_type = "c3-standard-4"
    worker_min          = 0
    worker_max          = 16
  }
}

variable "media_udp_ports" {
  description = "The workers' media UDP range (worker.media.udpPorts in the chart)."
  type        = object({ from = number, to = number })
  default     = { from = 40000, to = 40063 }
}

variable "db_tier" {
  description = "Cloud SQL machine tier of the standby database."
  type        = string
  default     = "db-custom-2-7680"
}

variable "checkpoint_retention_days" {
  description = "Locked retention of the checkpoint bucket (the counterpart of S3 Object Lock COMPLIANCE)."
  type        = number
  default     = 3650
}

variable "aws" {
  description = "The AWS primary (outputs of infra/terraform/aws): buckets, the role and event queues Storage Transfer uses, the database endpoint and the four VPN tunnels."
  type = object({
    account_id         = string
    bundles_bucket     = string
    checkpoints_bucket = string
    transfer_role_arn  = string
    event_queue_arns   = map(string)
    database_host      = string
    vpc_cidr           = string
  })
  default = {
    account_id         = "123456789012"
    bundles_bucket     = "readroom-prod-bundles-123456789012"
    checkpoints_bucket = "readroom-prod-audit-checkpoints-123456789012"
    transfer_role_arn  = "arn:aws:iam::123456789012:role/readroom-prod-gcp-transfer"
    event_queue_arns = {
      bundles     = "arn:aws:sqs:eu-central-1:123456789012:readroom-prod-bundles-events"
      checkpoints = "arn:aws:sqs:eu-central-1:123456789012:readroom-prod-checkpoints-events"
    }
    database_host = "readroom-prod.abcdefghijkl.eu-central-1.rds.amazonaws.com"
    vpc_cidr      = "10.20.0.0/16"
  }
}

variable "aws_vpn_tunnels" {
  description = "The AWS VPN tunnels (infra/terraform/aws output vpn_tunnels): outside address, inside addresses, pre-shared key, AWS BGP ASN."
  type = list(object({
    outside_ip = string
    inside_aws = string
    inside_gcp = string
    psk        = string
    aws_asn    = number
  }))
  sensitive = true
  default   = []
}

variable "bgp_asn" {
  description = "BGP ASN of the GCP Cloud Router (the AWS customer gateways use it)."
  type        = number
  default     = 65010
}

variable "replication_user" {
  description = "PostgreSQL user Database Migration Service replicates as on RDS (REPLICATION, rds_replication); its password is read from the Secret Manager secret dms-source-password."
  type        = string
  default     = "dms_replicator"
}

variable "rbac_security_group" {
  description = "Google Groups for RBAC: the gke-security-groups@<your domain> group."
  type        = string
  default     = "gke-security-groups@example.org"
}
