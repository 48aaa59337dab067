variable "name" {
  description = "Name prefix of every resource."
  type        = string
  default     = "readroom"
}

variable "environment" {
  description = "Environment name (pilot, prod)."
  type        = string
  default     = "prod"
}

variable "region" {
  description = "Primary AWS region."
  type        = string
  default     = "eu-central-1"
}

variable "replica_region" {
  description = "Region of the S3 replica buckets."
  type        = string
  default     = "eu-west-1"
}

variable "vpc_cidr" {
  description = "VPC address range; /16 split into public, private (API nodes) and database subnets over three zones."
  type        = string
  default     = "10.20.0.0/16"
}

variable "availability_zones" {
  description = "Three zones of the region."
  type        = list(string)
  default     = ["eu-central-1a", "eu-central-1b", "eu-central-1c"]
}

variable "kubernetes_version" {
  description = "EKS version (the chart needs >= 1.30)."
  type        = string
  default     = "1.35"
}

variable "admin_cidrs" {
  description = "Addresses allowed to reach the EKS API endpoint (operators, CI)."
  type        = list(string)
  default     = ["203.0.113.0/24"]
}

variable "api_nodes" {
  description = "API node group: instance type and sizes (the chart's server pods, ingress controller, monitoring)."
  type = object({
    instance_type = string
    min           = number
    desired       = number
    max           = number
  })
  default = {
    instance_type = "m7i.large"
    min           = 3
    desired       = 3
    max           = 6
  }
}

variable "worker_nodes" {
  description = "Worker node group (one readroom worker per node, host network). 4 vCPU / 8 GiB carries 16 sessions (values-survey.yaml)."
  type = object({
    instance_type = string
    min           = number
    desired       = number
    max           = number
  })
  default = {
    instance_type = "c7i.xlarge"
    min           = 2
    desired       = 10
    max           = 16
  }
}

variable "media_udp_ports" {
  description = "UDP range of the workers' media sockets (worker.media.udpPorts in the chart)."
  type        = object({ from = number, to = number })
  default     = { from = 40000, to = 40063 }
}

variable "turn" {
  description = "TURN relay node (coturn from the chart, pinned by the readroom.io/turn label) with a fixed public address."
  type = object({
    enabled       = bool
    instance_type = string
    relay_from    = number
    relay_to      = number
  })
  default = {
    enabled       = true
    instance_type = "c7i.large"
    relay_from    = 49160
    relay_to      = 49359
  }
}

variable "db" {
  description = "RDS PostgreSQL: instance class, storage and engine version."
  type = object({
    instance_class    = string
    allocated_storage = number
    max_storage       = number
    engine_version    = string
  })
  default = {
    instance_class    = "db.m7g.large"
    allocated_storage = 100
    max_storage       = 1000
    engine_version    = "17.4"
  }
}

variable "bundle_noncurrent_days" {
  description = "Days a replaced or deleted bundle version is kept before it expires."
  type        = number
  default     = 90
}

variable "checkpoint_retention_years" {
  description = "Object Lock (COMPLIANCE) retention of audit checkpoints: nobody, root included, can delete them earlier."
  type        = number
  default     = 10
}

variable "log_retention_days" {
  description = "CloudWatch retention of control-plane, flow and database logs."
  type        = number
  default     = 400
}

variable "dns" {
  description = <<-EOT
    Route 53 failover for the public name. `active` says which side is PRIMARY ("aws" or "gcp"):
    the failover drill and a real failover flip it (docs/deploy.md), so a recovered AWS side can
    never take traffic back from a promoted GCP side on its own. Each side is health-checked on
    /readyz through a name of its own (aws_fqdn, gcp_fqdn: CNAME/A records the ingress
    certificate also covers), and Route 53 answers with the SECONDARY only while the PRIMARY is
    unhealthy and the SECONDARY healthy: an unpromoted standby (servers scaled to zero) is never
    sent traffic.
  EOT
  type = object({
    zone_id        = string
    hostname       = string
    active         = string
    aws_lb_dns     = string
    aws_lb_zone_id = string
    aws_fqdn       = string
    gcp_ip         = string
    gcp_fqdn       = string
  })
  default = {
    zone_id        = "Z0000000000000000000"
    hostname       = "readroom.example.org"
    active         = "aws"
    aws_lb_dns     = "k8s-ingress-0000000000.elb.eu-central-1.amazonaws.com"
    aws_lb_zone_id = "Z3F0SRJ5LGBH90"
    aws_fqdn       = "aws.readroom.example.org"
    gcp_ip         = "198.51.100.10"
    gcp_fqdn       = "gcp.readroom.example.org"
  }

  validation {
    condition     = contains(["aws", "gcp"], var.dns.active)
    error_message = "dns.active must be \"aws\" or \"gcp\"."
  }
}

variable "gcp_standby" {
  description = "The GCP standby (infra/terraform/gcp outputs): the Storage Transfer Service account's subject id (it assumes a read-only role here), the HA VPN gateway addresses and the standby VPC range (Database Migration Service reaches RDS through the VPN)."
  type = object({
    transfer_service_account_subject = string
    vpn_gateway_ips                  = list(string)
    vpc_cidr                         = string
    bgp_asn                          = number
  })
  default = {
    transfer_service_account_subject = "000000000000000000000"
    vpn_gateway_ips                  = ["198.51.100.1", "198.51.100.2"]
    vpc_cidr                         = "10.60.0.0/16"
    bgp_asn                          = 65010
  }
}

variable "break_glass_role_arn" {
  description = "The role operators assume to manage secrets (the only principal besides the worker role that may read the worker identity secret)."
  type        = string
  default     = "arn:aws:iam::123456789012:role/readroom-break-glass"
}
