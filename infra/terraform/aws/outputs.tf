output "cluster_name" {
  description = "EKS cluster (aws eks update-kubeconfig --name ...)."
  value       = module.eks.cluster_name
}

output "server_role_arn" {
  description = "IRSA role for the chart's server ServiceAccount (server.serviceAccount.annotations)."
  value       = module.irsa.server_role_arn
}

output "worker_role_arn" {
  description = "IRSA role for the chart's worker ServiceAccount (worker.serviceAccount.annotations)."
  value       = module.irsa.worker_role_arn
}

output "bundles_bucket" {
  description = "config.store.bucket."
  value       = module.data.bundles_bucket
}

output "checkpoints_bucket" {
  description = "Audit checkpoint bucket (Object Lock, COMPLIANCE)."
  value       = module.data.checkpoints_bucket
}

output "database_endpoint" {
  description = "RDS endpoint for the database URL Secret (postgres://readroom:...@ENDPOINT:5432/readroom?sslmode=verify-full)."
  value       = module.data.database_endpoint
}

output "database_cidrs" {
  description = "networkPolicy.database.cidrs in the chart."
  value       = module.network.database_subnet_cidrs
}

output "worker_node_cidrs" {
  description = "networkPolicy.workerNodeCidrs in the chart (worker nodes sit in the public subnets)."
  value       = module.network.public_subnet_cidrs
}

output "server_keys_secret_arn" {
  description = "Secrets Manager secret for ticket.key, audit.key and server-secrets.key (value set out of band, never in Terraform state)."
  value       = module.data.server_keys_secret_arn
}

output "worker_keys_secret_arn" {
  description = "Secrets Manager secret for worker.age and worker-control.key (value set out of band)."
  value       = module.data.worker_keys_secret_arn
}

output "turn_public_ip" {
  description = "Elastic IP of the TURN node (coturn.externalIP)."
  value       = module.eks.turn_public_ip
}

output "ecr_repositories" {
  description = "Image repositories (images.*.repository)."
  value       = module.data.ecr_repositories
}

output "transfer_role_arn" {
  description = "Role the GCP Storage Transfer Service assumes to copy the buckets (infra/terraform/gcp var aws_transfer_role_arn)."
  value       = module.irsa.transfer_role_arn
}

output "transfer_queue_arns" {
  description = "SQS queues of bucket events (bundles, checkpoints) for the event-driven transfers (infra/terraform/gcp var aws.event_queue_arns)."
  value       = module.data.transfer_queue_arns
}

output "vpn_tunnels" {
  description = "Outside addresses of the AWS VPN tunnels (infra/terraform/gcp var aws_vpn_tunnels)."
  value       = module.dr.vpn_tunnels
  sensitive   = true
}
