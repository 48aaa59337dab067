output "cluster_name" {
  description = "EKS cluster name."
  value       = aws_eks_cluster.this.name
}

output "oidc_provider_arn" {
  description = "IAM OIDC provider of the cluster (IRSA)."
  value       = aws_iam_openid_connect_provider.this.arn
}

output "oidc_provider_url" {
  description = "Issuer URL of the cluster's service-account tokens, without https://."
  value       = replace(aws_eks_cluster.this.identity[0].oidc[0].issuer, "https://", "")
}

output "turn_public_ip" {
  description = "The TURN node's Elastic IP (empty when disabled)."
  value       = var.turn.enabled ? aws_eip.turn[0].public_ip : ""
}

output "worker_nodes_security_group_id" {
  description = "Security group of the worker nodes."
  value       = aws_security_group.worker_nodes.id
}
