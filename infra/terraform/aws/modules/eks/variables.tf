variable "prefix" {
  description = "Name prefix."
  type        = string
}

variable "kubernetes_version" {
  description = "EKS version."
  type        = string
}

variable "vpc_id" {
  description = "VPC id."
  type        = string
}

variable "vpc_cidr" {
  description = "VPC range (node-to-node traffic)."
  type        = string
}

variable "private_subnet_ids" {
  description = "Private subnets: control-plane interfaces and API nodes."
  type        = list(string)
}

variable "public_subnet_ids" {
  description = "Public subnets: worker and TURN nodes."
  type        = list(string)
}

variable "availability_zones" {
  description = "Zones of the subnets, in the same order."
  type        = list(string)
}

variable "admin_cidrs" {
  description = "Ranges allowed to reach the private Kubernetes API endpoint (the operators' VPN)."
  type        = list(string)
}

variable "api_nodes" {
  description = "API node group sizes."
  type = object({
    instance_type = string
    min           = number
    desired       = number
    max           = number
  })
}

variable "worker_nodes" {
  description = "Worker node group sizes."
  type = object({
    instance_type = string
    min           = number
    desired       = number
    max           = number
  })
}

variable "media_udp_ports" {
  description = "The workers' media UDP range."
  type        = object({ from = number, to = number })
}

variable "turn" {
  description = "TURN node settings."
  type = object({
    enabled       = bool
    instance_type = string
    relay_from    = number
    relay_to      = number
  })
}

variable "log_retention_days" {
  description = "Control-plane log retention."
  type        = number
}

variable "logs_kms_key_arn" {
  description = "KMS key for the control-plane log group."
  type        = string
}

variable "database_sg_id" {
  description = "The database's security group: 5432 is opened to the API nodes here."
  type        = string
}
