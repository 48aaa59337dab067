variable "prefix" {
  description = "Name prefix."
  type        = string
}

variable "vpc_id" {
  description = "VPC of the database."
  type        = string
}

variable "database_subnet_ids" {
  description = "Subnets of the RDS subnet group."
  type        = list(string)
}

variable "db" {
  description = "RDS settings."
  type = object({
    instance_class    = string
    allocated_storage = number
    max_storage       = number
    engine_version    = string
  })
}

variable "bundle_noncurrent_days" {
  description = "Days noncurrent bundle versions are kept."
  type        = number
}

variable "checkpoint_retention_years" {
  description = "Object Lock retention of audit checkpoints."
  type        = number
}

variable "log_retention_days" {
  description = "Retention of the access-log bucket's objects, in days."
  type        = number
}

variable "break_glass_role_arn" {
  description = "Operators' role: may manage (and read) the key secrets."
  type        = string
}

variable "gcp_vpc_cidr" {
  description = "The GCP standby's range: Database Migration Service connects from it, through the VPN."
  type        = string
}
