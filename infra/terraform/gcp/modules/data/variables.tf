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
  description = "VPC for Cloud SQL's private address."
  type        = string
}

variable "private_services_peering" {
  description = "Private services connection id (ordering)."
  type        = string
}

variable "db_tier" {
  description = "Cloud SQL tier."
  type        = string
}

variable "checkpoint_retention_days" {
  description = "Locked retention of audit checkpoints."
  type        = number
}
