variable "project" {
  description = "Project id."
  type        = string
}

variable "prefix" {
  description = "Name prefix."
  type        = string
}

variable "region" {
  description = "Region (regional cluster)."
  type        = string
}

variable "network_id" {
  description = "VPC."
  type        = string
}

variable "subnetwork_id" {
  description = "Subnet."
  type        = string
}

variable "pods_range" {
  description = "Pods secondary range name."
  type        = string
}

variable "services_range" {
  description = "Services secondary range name."
  type        = string
}

variable "master_cidr" {
  description = "Control plane /28."
  type        = string
}

variable "admin_cidrs" {
  description = "Ranges allowed to the control plane."
  type        = list(string)
}

variable "node_pools" {
  description = "Node pool sizes."
  type = object({
    api_machine_type    = string
    api_min             = number
    api_max             = number
    worker_machine_type = string
    worker_min          = number
    worker_max          = number
  })
}

variable "gke_kms_key_id" {
  description = "KMS key for Secrets encryption."
  type        = string
}

variable "server_gsa" {
  description = "Servers' Google service account (Workload Identity binding)."
  type        = string
}

variable "worker_gsa" {
  description = "Workers' Google service account (Workload Identity binding)."
  type        = string
}

variable "rbac_security_group" {
  description = "Google group whose member groups are bound in Kubernetes RBAC (gke-security-groups@<domain>)."
  type        = string
}
