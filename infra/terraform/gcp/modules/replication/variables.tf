variable "project" {
  description = "Project id."
  type        = string
}

variable "prefix" {
  description = "Name prefix."
  type        = string
}

variable "region" {
  description = "Region."
  type        = string
}

variable "network_id" {
  description = "VPC id."
  type        = string
}

variable "network_name" {
  description = "VPC name."
  type        = string
}

variable "aws" {
  description = "The AWS primary's buckets, transfer role, event queues, database and range."
  type = object({
    account_id         = string
    bundles_bucket     = string
    checkpoints_bucket = string
    transfer_role_arn  = string
    event_queue_arns   = map(string)
    database_host      = string
    vpc_cidr           = string
  })
}

variable "aws_vpn_tunnels" {
  description = "The four AWS VPN tunnels (empty on the first apply, before the AWS side exists)."
  type = list(object({
    outside_ip = string
    inside_aws = string
    inside_gcp = string
    psk        = string
    aws_asn    = number
  }))
  sensitive = true
}

variable "bgp_asn" {
  description = "Cloud Router ASN."
  type        = number
}

variable "bundles_bucket" {
  description = "Standby bundles bucket."
  type        = string
}

variable "checkpoints_bucket" {
  description = "Standby checkpoint bucket."
  type        = string
}

variable "sql_instance_name" {
  description = "Cloud SQL instance that receives the migration."
  type        = string
}

variable "replication_user" {
  description = "Replication user on RDS."
  type        = string
}
