variable "prefix" {
  description = "Name prefix."
  type        = string
}

variable "vpc_cidr" {
  description = "VPC range (/16)."
  type        = string
}

variable "availability_zones" {
  description = "Three zones."
  type        = list(string)
}

variable "log_retention_days" {
  description = "Flow log retention."
  type        = number
}
