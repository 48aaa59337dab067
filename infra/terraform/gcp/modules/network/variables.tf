variable "prefix" {
  description = "Name prefix."
  type        = string
}

variable "region" {
  description = "Region."
  type        = string
}

variable "vpc_cidr" {
  description = "Node subnet."
  type        = string
}

variable "pods_cidr" {
  description = "Pods secondary range."
  type        = string
}

variable "services_cidr" {
  description = "Services secondary range."
  type        = string
}

variable "udp_ports" {
  description = "Workers' media UDP range."
  type        = object({ from = number, to = number })
}
